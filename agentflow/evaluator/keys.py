"""Key templates: ``TENANT#t-1#CAPSULE#c-9#ROLE#r-3`` -> ``TENANT#{}#CAPSULE#{}#ROLE#{}``.

Single-table designs (DynamoDB and friends) build partition and sort keys from ``LABEL#value``
pairs. A key's *template* keeps the labels and blanks the values, so the keys of sibling entities
can be compared: an entity whose key lacks the ``CAPSULE#`` segment its siblings carry is not
isolated by capsule.

The rule reads the segments left to right as ``LABEL#value`` pairs. A segment that looks like a
label (an upper-case identifier) is kept, and the segment after it is its value (``{}``), unless
that segment is itself a label followed by a value: then the first label is a bare literal prefix
(``PLATFORM#TENANT#t1`` -> ``PLATFORM#TENANT#{}``, not ``PLATFORM#{}#{}``). Any other segment is a
value. An upper-case value after a label is still a value when a label follows it
(``TENANT#ACME#CAPSULE#c1`` -> ``TENANT#{}#CAPSULE#{}``).

Almost all keys strictly alternate label and value, and then the template depends only on the
segments at even positions: it is memoised on them (bounded, so keys that are not alternating
label/value pairs cannot grow memory without limit). A key with an upper-case segment at an odd
position may shift the alternation and is built segment by segment (``needs_full_build``).
"""

from __future__ import annotations

import re

LABEL = _LABEL = re.compile(r"[A-Z][A-Z0-9_]*\Z")  # a segment that is a label (the fast path uses it too)
_CACHE_LIMIT = 4096
_cache: dict[tuple[int, tuple[str, ...]], str] = {}


_KEY_TEXT = re.compile(r"[A-Z][A-Z0-9_]*#[^#\s]+(#[^#\s]+)*\Z")


def looks_like_key(value: str) -> bool:
    """A string (or a template) is a key when it reads as upper-case labels and ids joined by ``#``:
    it starts with a label (``TENANT#...``), has no empty segment, no white space, and at least one
    label of two characters or more. Free text that merely contains a ``#`` is not a key: ``C#``,
    ``F# and C#`` (template ``C#{}``, one one-letter label), ``issue #12``, ``https://x/#top``. The
    test works on templates too, so the decision is taken after counting, the same on every path."""
    if "#" not in value or _KEY_TEXT.match(value) is None:
        return False
    return any(len(part) >= 2 and _LABEL.match(part) for part in value.split("#"))


def _build(parts: list[str]) -> str:
    """The template of the segments ``parts`` by the pairing rule of the module docstring."""
    out: list[str] = []
    index, count = 0, len(parts)
    while index < count:
        if not _LABEL.match(parts[index]):
            out.append("{}")
            index += 1
            continue
        out.append(parts[index])
        following = index + 1
        if following < count:
            bare_prefix = (
                _LABEL.match(parts[following]) is not None
                and following + 1 < count
                and not _LABEL.match(parts[following + 1])
            )
            if bare_prefix:
                index = following
                continue
            out.append("{}")
        index += 2
    return "#".join(out)


def needs_full_build(parts: list[str]) -> bool:
    """True when an odd-position segment could be a label (may shift the alternation): such keys
    cannot use the even-segment memo. An upper-case letter there is a cheap superset of the label
    test (the fast path checks a whole block at once for ASCII upper case at odd positions and
    counts such keys by skeleton, ``fastpath.CompiledType.count_keys``)."""
    odd = "".join(parts[1::2])
    return odd != odd.lower()


def key_template(value: str) -> str:
    """The template of a ``#``-delimited key (see the module docstring)."""
    parts = value.split("#")
    if needs_full_build(parts):
        return _build(parts)
    memo_key = (len(parts), tuple(parts[0::2]))
    template = _cache.get(memo_key)
    if template is None:
        template = _build(parts)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[memo_key] = template
    return template


def template_of(memo_key: tuple) -> str:
    """The template for ``(number of segments, *segments at even positions)`` (see ``key_template``).

    Only valid for keys without a possible label at an odd position (``needs_full_build`` false):
    then every even segment that looks like a label is kept and every other segment is a value."""
    count, evens = memo_key[0], memo_key[1:]
    return "#".join(
        (evens[i // 2] if _LABEL.match(evens[i // 2]) else "{}") if i % 2 == 0 else "{}" for i in range(count)
    )


def template_labels(template: str) -> list[str]:
    """The labels of a template in order: ``TENANT#{}#CAPSULE#{}`` -> ``["TENANT", "CAPSULE"]``."""
    return [part for part in template.split("#") if part != "{}"]
