"""Key template counts: the one set of rules both the general and the compiled fast path use.

Each event type keeps, per field path, ``template -> events`` for every string value containing a
``#`` (``agentflow.evaluator.keys.key_template``). The results must not depend on the order events
are counted in (which path counted them, how the file was split between workers), so:

- **Key field.** A field is reported as a key field when *any* of its values looks like a key
  (``keys.looks_like_key``: a ``#`` and a leading label). Its other ``#`` values are reported too
  (``t1#ORDER#9`` -> ``{}#ORDER#{}`` shows a key that lacks its leading label).
- **Report cap.** Counting is exact; only the report keeps the ``MAX_TEMPLATES`` most frequent
  templates (ties: alphabetical) and sums the rest under ``(other)`` (``report``).
- **Memory bound.** A field with more than ``MAX_TRACKED`` distinct templates is not a set of keys
  worth comparing: its counts collapse to ``{"(other)": events}`` (plus a marker when one of them
  looked like a key). Whether that happens depends only on the number of distinct templates, so
  collapsing is order-independent too (``add`` and ``merge`` agree on it).
"""

from __future__ import annotations

from agentflow.evaluator.keys import looks_like_key

MAX_TEMPLATES = 50  # templates reported per key field; the rest are summed under OTHER_TEMPLATE
MAX_TRACKED = 1000  # distinct templates counted exactly per (type, field) before collapsing
OTHER_TEMPLATE = "(other)"  # never a template: every template contains '#'
KEY_SEEN = "(key seen)"  # in a collapsed count: some collapsed template started with a label

Counts = dict[str, int]


def add(counts: Counts, template: str, n: int = 1) -> None:
    """Count ``n`` events of ``template`` (the hot loops inline the ``template in counts`` case)."""
    if template in counts:
        counts[template] += n
    elif OTHER_TEMPLATE in counts:  # collapsed
        counts[OTHER_TEMPLATE] += n
        if KEY_SEEN not in counts and looks_like_key(template):
            counts[KEY_SEEN] = 0
    else:
        counts[template] = n
        if len(counts) > MAX_TRACKED:
            _collapse(counts)


def merge(target: Counts, source: Counts) -> None:
    """Add ``source``'s counts to ``target`` (the same result as adding its events one by one)."""
    if OTHER_TEMPLATE in source and OTHER_TEMPLATE not in target:
        _collapse(target)
    for template, n in source.items():
        if template == KEY_SEEN:
            target[KEY_SEEN] = 0
        elif template == OTHER_TEMPLATE:
            target[OTHER_TEMPLATE] += n
        else:
            add(target, template, n)


def _collapse(counts: Counts) -> None:
    key_seen = any(looks_like_key(template) for template in counts)
    total = sum(counts.values())
    counts.clear()
    counts[OTHER_TEMPLATE] = total
    if key_seen:
        counts[KEY_SEEN] = 0


def is_key_field(counts: Counts) -> bool:
    """True when one of the counted values looked like a key (a template with a leading label)."""
    return KEY_SEEN in counts or any(map(_looks_like_key, counts))


_KEYLIKE: dict[str, bool] = {}  # looks_like_key by template: the types of a log share a few templates


def _looks_like_key(template: str) -> bool:
    known = _KEYLIKE.get(template)
    if known is None:
        if len(_KEYLIKE) >= 4096:
            _KEYLIKE.clear()
        known = _KEYLIKE[template] = looks_like_key(template)
    return known


def report(counts: Counts) -> Counts:
    """The reported templates of a key field: the ``MAX_TEMPLATES`` most frequent (ties by template),
    the rest summed under ``(other)``; most frequent first."""
    if len(counts) == 1:  # one template (most key fields of most types), or collapsed to (other)
        return dict(counts)
    if OTHER_TEMPLATE in counts:
        return {OTHER_TEMPLATE: counts[OTHER_TEMPLATE]}
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:MAX_TEMPLATES])
    rest = sum(n for _, n in ranked[MAX_TEMPLATES:])
    if rest:
        kept[OTHER_TEMPLATE] = rest
    return kept


def key_fields(by_path: dict[str, Counts]) -> dict[str, Counts]:
    """``report`` of every key field of one type, by path (sorted: independent of counting order)."""
    return {path: report(counts) for path, counts in sorted(by_path.items()) if is_key_field(counts)}
