"""Key templates: ``TENANT#t-1#CAPSULE#c-9#ROLE#r-3`` -> ``TENANT#{}#CAPSULE#{}#ROLE#{}``.

Single-table designs (DynamoDB and friends) build partition and sort keys from ``LABEL#value``
pairs. A key's *template* keeps the labels and blanks the values, so the keys of sibling entities
can be compared: an entity whose key lacks the ``CAPSULE#`` segment its siblings carry is not
isolated by capsule.

The rule is positional and exact: segments at even positions (0, 2, ...) are kept when they look
like a label (an upper-case identifier), every other segment becomes ``{}``. Because the template
depends only on the even segments, it is memoised on them (bounded, so keys that are not
alternating label/value pairs cannot grow memory without limit).
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_CACHE_LIMIT = 4096
_cache: dict[tuple[int, tuple[str, ...]], str] = {}


def looks_like_key(value: str) -> bool:
    """A string is a key when it has a ``#`` and starts with a label (``TENANT#...``)."""
    if "#" not in value:
        return False
    head = value.split("#", 1)[0]
    return bool(_LABEL.match(head))


def _build(parts: list[str]) -> str:
    return "#".join(
        part if index % 2 == 0 and _LABEL.match(part) else "{}" for index, part in enumerate(parts)
    )


def key_template(value: str) -> str:
    """The template of a ``#``-delimited key (see the module docstring)."""
    parts = value.split("#")
    memo_key = (len(parts), tuple(parts[0::2]))
    template = _cache.get(memo_key)
    if template is None:
        template = _build(parts)
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[memo_key] = template
    return template


def template_of(memo_key: tuple) -> str:
    """The template for ``(number of segments, *segments at even positions)`` (see ``key_template``)."""
    count, evens = memo_key[0], memo_key[1:]
    return "#".join(
        (evens[i // 2] if _LABEL.match(evens[i // 2]) else "{}") if i % 2 == 0 else "{}" for i in range(count)
    )


def template_labels(template: str) -> list[str]:
    """The labels of a template in order: ``TENANT#{}#CAPSULE#{}`` -> ``["TENANT", "CAPSULE"]``."""
    return [part for part in template.split("#") if part != "{}"]
