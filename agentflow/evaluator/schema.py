"""Streaming schema inference over parsed events.

The hot path is per event, so it is built around one observation: events of one type almost always
share one *shape* (the same keys, in the same order, with the same JSON types). The aggregator
therefore keys a small table on ``(event type, shape signature)`` and, per event, only computes the
signature and bumps a counter. The expensive work (walking every field, collecting examples,
finding key-like strings) happens on the first few events of each new shape. Field statistics per
type are derived from the shape table at the end: a field's presence is the sum of the counts of
the shapes that contain it.

Once the first ``LEARN_LINES`` lines have taught the shapes, ``agentflow.evaluator.fastpath``
compiles those of the *hot* types (``HOT_SHARE`` of the events or more) so msgspec decodes and
shape-checks each line in C, and decodes the rarer types by structure (``RARE_PATH``: types alike
but for their name share one Struct class); lines it rejects come back here.

Memory therefore grows with types x shapes x fields, never with the number of events. The shape
table is capped (``MAX_SHAPES``); events of shapes beyond the cap are counted as *unanalysed* and
reported, never silently dropped.

Arrays are leaves: a field holding a list is typed ``array``; objects inside arrays are not walked.

Key templates are counted per (type, field) for *every* string value containing ``#``, and the
rules of ``agentflow.evaluator.templates`` decide at the end which fields are key fields and which
templates are reported, so the result does not depend on counting order. Finding those values stays
cheap: the ``#`` in the fields known to hold some are compared with the ``#`` bytes of the raw line
(general path) or block (fast path), and only a line with a ``#`` elsewhere (or a ``\\u0023``
escape that may hide one) is walked field by field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from agentflow.evaluator import templates as key_counts
from agentflow.evaluator.keys import key_template

MAX_SHAPES = 50_000
SAMPLE_LINES = 3  # line numbers kept per shape
EXAMPLE_EVENTS = 3  # events per shape whose values are kept as examples
EXAMPLES_PER_FIELD = 3
MAX_ERRORS = 1000  # error entries kept per aggregator; bad_lines counts all
MAX_TEMPLATES = key_counts.MAX_TEMPLATES  # key templates reported per field (the rest: "(other)")
OTHER_TEMPLATE = key_counts.OTHER_TEMPLATE
LEARN_LINES = 2000  # lines analysed by the general path before the first compilation
MAX_COMPILES = 16  # a log whose shapes keep changing stays on the general path after this
# A new shape recompiles once the general path took this many lines per compiled type (at least 8
# types' worth) since the last compilation: recompiling 2,000 types costs more than a few lines.
RECOMPILE_AFTER = 32
# Only *hot* types are compiled: those with at least this share of the events seen so far (a type
# once compiled stays). With nested classes and mask functions shared by structure (fastpath) a
# type costs about 0.25 ms to compile, but a 2,000-class union still decodes slower than a few
# classes (caches), and a type with 100 events gains little: compiling all 2,000 rare types of the
# benchmark was no faster than the general path for them (benchmarks/README.md).
# Rare types are decoded by structure instead (RARE_PATH below); whether a type is hot is
# reconsidered each time the general path took half as many lines as were analysed so far.
HOT_SHARE = 0.01
# The rare types (fewer events than HOT_SHARE) are decoded by *structure* (``fastpath.RareType``):
# types alike but for their name share one Struct class, decoder and mask function, and a type costs
# only its counts. Those of a few shapes, seen at least twice (any at the first compilation).
RARE_PATH = True
RARE_MIN_EVENTS = 2
RARE_MAX_SHAPES = 8
RARE_MAX_FIELDS = 256  # over the type's shapes: 1,000 types of 500 own keys each made minutes of compiling


def _fast_path_available() -> bool:
    try:
        import msgspec  # noqa: F401
    except ImportError:  # the general path does everything, only slower
        return False
    return True


FAST_PATH = _fast_path_available()

JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}

Location = tuple[int, int]  # (file index, line number)


def shape_key(event_type: str, payload: dict[str, Any]) -> tuple[Any, ...]:
    """An exact, hashable description of an event's type and shape: ``(type, keys, value types)``,
    then the keys and value types of each nested object in pre-order (the value types say which
    values are objects, so the flat tuple reads back one way only). Flat: one tuple to hash and
    compare, not one per nested object (``Aggregator._add_slow`` computes the same key inline)."""
    types = tuple(map(type, payload.values()))
    if dict in types:
        key = [event_type, tuple(payload), types]
        for value in payload.values():
            if type(value) is dict:
                _nested_key(value, key, 1)
        return tuple(key)
    return (event_type, tuple(payload), types)


def _nested_key(obj: dict[str, Any], key: list[Any], depth: int) -> None:
    if depth > MAX_NESTING:
        raise RecursionError(TOO_DEEP)
    types = tuple(map(type, obj.values()))
    key.append(tuple(obj))
    key.append(types)
    if dict in types:
        for value in obj.values():
            if type(value) is dict:
                _nested_key(value, key, depth + 1)


def flatten(obj: dict[str, Any], prefix: str = "") -> list[tuple[str, str, Any]]:
    """``[(path, json type, value)]`` for every node; objects are listed and walked, arrays are leaves."""
    out: list[tuple[str, str, Any]] = []
    for key, value in obj.items():
        path = f"{prefix}{key}"
        out.append((path, JSON_TYPES.get(type(value), "unknown"), value))
        if type(value) is dict:
            out.extend(flatten(value, path + "."))
    return out


def _walk(
    obj: dict[str, Any],
    prefix: str,
    keys: tuple[str, ...],
    nodes: list[tuple[str, str, Any]],
    strings: list[tuple[str, tuple[str, ...]]],
) -> None:
    """``flatten`` into ``nodes`` and the (path, accessor) of every string (``_strings``) into
    ``strings``, in one walk."""
    for key, value in obj.items():
        path = f"{prefix}{key}"
        kind = type(value)
        nodes.append((path, JSON_TYPES.get(kind, "unknown"), value))
        if kind is str:
            strings.append((path, (*keys, key)))
        elif kind is dict:
            _walk(value, path + ".", (*keys, key), nodes, strings)


def _values(obj: dict[str, Any], out: list[Any]) -> None:
    """Every node's value in ``flatten`` order (objects are listed and walked)."""
    for value in obj.values():
        out.append(value)
        if type(value) is dict:
            _values(value, out)


def _example(value: Any) -> Any:
    """A short, JSON-safe example value (long strings are cut, containers summarised); the callers
    inline the common cases: a string of at most 80 characters and the values of ``AS_IS``."""
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:77] + "..."
    if isinstance(value, dict):
        return f"{{{len(value)} keys}}"
    if isinstance(value, list):
        return f"[{len(value)} items]"
    return value


AS_IS = frozenset([int, float, bool, type(None)])  # their example is the value itself (_example)


@dataclass(slots=True)
class Shape:
    """One (event type, shape) seen in the logs with how often and where."""

    event_type: str
    fields: tuple[tuple[str, str], ...]  # (path, json type) of every node
    count: int = 0
    lines: list[Location] = field(default_factory=list)
    examples: dict[str, list[Any]] = field(default_factory=dict)
    string_paths: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (path, accessor) of every string
    key_paths: tuple[tuple[str, tuple[str, ...]], ...] = ()  # those seen holding a '#' (grows)

    def merge(self, other: Shape) -> None:
        self.add(other.count, other.lines, other.examples)

    def add(self, count: int, lines: list[Location], examples: dict[str, list[Any]]) -> None:
        """``merge`` of a shape's counts, lines and examples without building the Shape."""
        self.count += count
        self.lines = sorted(self.lines + lines)[:SAMPLE_LINES]
        for path, values in examples.items():
            mine = self.examples.setdefault(path, [])
            for value in values:
                if len(mine) < EXAMPLES_PER_FIELD and value not in mine:
                    mine.append(value)


def _get(obj: dict[str, Any], accessor: tuple[str, ...]) -> Any:
    for part in accessor:
        obj = obj[part]
    return obj


@dataclass(slots=True)
class LogError:
    file: str
    line: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}


class Aggregator:
    """Accumulates shapes, bad lines and counts; mergeable (workers send theirs back to the parent).

    ``type_field`` is a dotted path naming the event type (``--type-field``); without it the type
    comes from ``detail-type`` (EventBridge, payload in ``detail``), CloudEvents ``type`` (when
    ``specversion`` is present; payload in ``data``), ``type`` or ``event_type``.
    """

    def __init__(self, type_field: str | None = None):
        self.type_field = tuple(type_field.split(".")) if type_field else None
        self.shapes: dict[tuple[Any, ...], Shape] = {}
        # event type -> field path -> key template -> events (agentflow.evaluator.templates)
        self.templates: dict[str, dict[str, dict[str, int]]] = {}
        self.events = 0
        self.bad_lines = 0
        self.unanalysed = 0
        self.errors: list[tuple[int, int, str]] = []  # (file index, line, message)
        # The compiled fast path (agentflow.evaluator.fastpath), once the first lines taught the shapes.
        self.fast_enabled = FAST_PATH and (type_field is None or "." not in type_field)
        self.fast: Any = None
        self.learned = 0  # lines analysed before the first compilation
        self.compiles = 0
        self.checked = False  # whether the shapes were considered for compiling at all
        self.dirty = False  # a new shape appeared since the last compilation
        self.slow_since = 0  # lines the general path took (or rescanned) since the last compilation
        self.plain_only = True  # no EventBridge/CloudEvents/event_type envelope seen
        # event type -> (envelope format, first `source` seen): families by source (rules.py)
        self.envelopes: dict[str, tuple[str, str | None]] = {}
        self.unanalysed_by_type: dict[str, int] = {}  # events beyond MAX_SHAPES, per type
        # event type -> paths of map-like objects (labels, attribute maps): their keys collapse to {*}
        self.map_paths: dict[str, tuple[tuple[str, ...], ...]] = {}
        # event type -> top-level keys kept when the root itself is map-like (root_map_keys)
        self.root_keep: dict[str, frozenset[str]] = {}
        self.shapes_by_type: dict[str, int] = {}
        self._ambiguous: dict[tuple[tuple[str, str], ...], bool] = {}  # ambiguous_keys by shape fields
        self._walked: tuple[dict[str, Any], Any, list[Any]] | None = (
            None  # _new_shape's walk: (payload, nodes or fields, values)
        )
        # A shape key without its type (the structure) -> (fields, string paths) of its shapes: a new
        # shape of a structure seen before in another type (many types alike but for their name)
        # takes them instead of walking the event to build every path again; bounded.
        self._structures: dict[tuple[Any, ...], tuple[tuple[tuple[str, str], ...], tuple[Any, ...]]] = {}

    # -- per event -----------------------------------------------------------------------------

    def bad(self, file_index: int, line: int, message: str) -> None:
        self.bad_lines += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((file_index, line, message))

    def classify(self, event: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """``(type or None, payload)`` of a decoded event (see the class docstring)."""
        if self.type_field is not None:
            try:
                return _get(event, self.type_field), event
            except (KeyError, TypeError):
                return None, event
        event_type = event.get("detail-type")
        if event_type is not None:
            self.plain_only = False
            payload = event.get("detail")
            if type(event_type) is str and event_type not in self.envelopes:
                self.envelopes[event_type] = ("eventbridge", _source(event.get("source")))
            return event_type, payload if type(payload) is dict else {}
        event_type = event.get("type")
        if event_type is None:
            event_type = event.get("event_type")
            if event_type is not None:  # a line without any type is a bad line, not an envelope
                self.plain_only = False
            return event_type, event
        if "specversion" in event:
            self.plain_only = False
            payload = event.get("data")
            if type(event_type) is str and event_type not in self.envelopes:
                self.envelopes[event_type] = ("cloudevents", _source(event.get("source")))
            return event_type, payload if type(payload) is dict else {}
        return event_type, event

    def add_lines(
        self, lines: list[bytes], file_index: int, first_line: int, hashes: tuple[int, bool] | None = None
    ) -> None:
        """Parse and aggregate JSON Lines; ``first_line`` is the line number of ``lines[0]``.

        The first ``LEARN_LINES`` lines go through the general path and teach the shapes; then the
        shapes are compiled and the rest is decoded by the fast path, which hands every line it
        cannot decode exactly back to the general path (and recompiles after new shapes).
        ``hashes``: ``hash_census`` of these lines when the caller has them in one piece (cheaper).
        """
        if not self.fast_enabled:
            self._add_slow(lines, file_index, first_line)
            return
        start = 0
        if self.fast is None and self.learned < LEARN_LINES:
            start = min(len(lines), LEARN_LINES - self.learned)
            self._add_slow(lines[:start], file_index, first_line)
            hashes = None
            self.learned += start
            if self.learned < LEARN_LINES:
                return
        if self._compile_due():
            self._compile()
        if start < len(lines):
            if self.fast is None:
                self._add_slow(lines[start:], file_index, first_line + start)
                self.slow_since += len(lines) - start
            else:
                self._add_fast(lines[start:] if start else lines, file_index, first_line + start, hashes)

    def _compile_due(self) -> bool:
        """Time to (re)compile: never yet; new shapes of a compiled schema after enough general-path
        lines; or the general path took half as many lines as were analysed (a rare type may be hot now)."""
        if not self.checked:
            return True
        if self.slow_since >= max(RECOMPILE_AFTER * 8, self.events // 2):
            return True
        return (
            self.fast is not None and self.dirty and self.slow_since >= RECOMPILE_AFTER * max(8, len(self.fast.types))
        )

    def _compile(self) -> None:
        from agentflow.evaluator import fastpath

        self.flush()
        self.dirty = False
        self.checked = True
        if not self.plain_only:  # mixed envelopes: the general path decides each event's payload
            self.fast, self.fast_enabled = None, False
            return
        if self.compiles >= MAX_COMPILES or len(self.shapes) >= MAX_SHAPES:
            return  # keep the current compiled schema; new shapes keep going the general path
        by_type: dict[str, list[Shape]] = {}
        events: dict[str, int] = {}
        for shape in self.shapes.values():
            if shape.event_type not in self.map_paths:  # maps are collapsed by the general path only
                by_type.setdefault(shape.event_type, []).append(shape)
                events[shape.event_type] = events.get(shape.event_type, 0) + shape.count
        compiled = {c.name: c for c in self.fast.types.values()} if self.fast is not None else {}
        known_rare = self.fast.rare if self.fast is not None else {}
        hot = HOT_SHARE * self.events
        rare = {
            name: shapes
            for name, shapes in by_type.items()
            if RARE_PATH
            and name not in compiled
            and events[name] < hot
            and self._rare_eligible(name, shapes, events[name], name in known_rare)
        }
        by_type = {name: shapes for name, shapes in by_type.items() if name in compiled or events[name] >= hot}
        for name in list(by_type):
            shapes = by_type[name]
            if len(shapes) > 1 and self._find_maps(name, shapes):
                self._recollapse(name)  # a type with maps is left to the general path (it collapses them)
                del by_type[name]
            elif any(ambiguous_keys(shape.fields) for shape in shapes):
                del by_type[name]  # a key with a dot: the compiled schema names its fields by dotted path
        tag = self.type_field[0] if self.type_field else "type"
        key_paths = {name: set(self.templates.get(name, ())) for name in [*by_type, *rare]}  # fields seen with a '#'
        self.slow_since = 0
        if (
            by_type.keys() == compiled.keys()
            and rare.keys() == known_rare.keys()
            and all(compiled[name].same_input(shapes, key_paths[name]) for name, shapes in by_type.items())
            and all(known_rare[name].same_input(shapes, key_paths[name]) for name, shapes in rare.items())
        ):
            return  # nothing new to compile (no type, or the same types and shapes)
        previous = self.fast
        self.fast = (
            fastpath.compile_schema(by_type, tag, EXAMPLE_EVENTS, key_paths, previous, rare)
            if by_type or rare
            else None
        )
        self.compiles += 1
        if self.fast is not None:
            fresh = [r for name, r in self.fast.rare.items() if known_rare.get(name) is not r]
            if fresh:
                by_name: dict[str, list[tuple[Any, Shape]]] = {r.name: [] for r in fresh}
                for key, shape in self.shapes.items():
                    if shape.event_type in by_name:
                        by_name[shape.event_type].append((key, shape))
                for r in fresh:
                    r.seed(by_name[r.name])

    def _rare_eligible(self, name: str, shapes: list[Shape], events: int, known: bool = False) -> bool:
        """Whether a rare type is decoded by structure (``fastpath.RareType``) rather than left to the
        general path: a name that reads the same in JSON (no escape) and holds no '#' (the fast path
        counts a tagged name's template apart), at least ``RARE_MIN_EVENTS`` events unless at the
        first compilation or ``known`` (already decoded by structure: a type of one event in a log
        of ever new types would cost a compiled entry for nothing), a few shapes of at most
        ``RARE_MAX_FIELDS`` fields in all, no map-like object and no key with a dot. Asked again
        at every compilation: a type whose events keep bringing new keys (a map not recognised
        yet) leaves the structure path instead of being compiled again, larger each time."""
        if "#" in name or '"' in name or "\\" in name or not name.isprintable():
            return False
        if events < RARE_MIN_EVENTS and self.compiles and not known:
            return False
        if len(shapes) > RARE_MAX_SHAPES or sum(len(shape.fields) for shape in shapes) > RARE_MAX_FIELDS:
            return False
        if len(shapes) > 1:
            found, keep = _find_map_like([(s, *_nodes(s.fields)) for s in shapes])
            if found or keep is not None:
                return False
        ambiguous = self._ambiguous
        for shape in shapes:
            known = ambiguous.get(shape.fields)
            if known is None:
                known = ambiguous[shape.fields] = ambiguous_keys(shape.fields)
            if known:
                return False
        return True

    def _add_fast(
        self, lines: list[bytes], file_index: int, first_line: int, hashes: tuple[int, bool] | None = None
    ) -> None:
        fell: list[int] = []  # indexes of the lines the general path took

        def slow(raws: list[bytes], index: int, line: int) -> None:
            fell.append(line - first_line)
            self.slow_since += 1
            self._add_slow(raws, index, line)

        counted, found = self.fast.run(lines, file_index, first_line, slow, _note)
        self.events += counted  # not in one statement: the general path adds to events meanwhile
        # The fast path only looks at the fields known to hold a '#'. Every '#' of the lines it
        # counted accounted for there (and no escape that could hide one): nothing else to count.
        raw, escaped = hashes if hashes is not None else hash_census(b"\n".join(lines))
        raw -= sum(lines[i].count(b"#") for i in fell)
        if raw != found or escaped:
            self.slow_since += len(lines)
            self._scan_fast_lines(lines, set(fell))

    def _scan_fast_lines(self, lines: list[bytes], fell: set[int]) -> None:
        """Count the '#' values of fields the compiled schema does not collect (rare: a field seen
        with a '#' for the first time); the next compilation collects them in the fast loop."""
        tag = self.type_field[0] if self.type_field else "type"
        for index, raw in enumerate(lines):
            if index in fell or (b"#" not in raw and b"\\u0023" not in raw):
                continue
            event = _loads_any(raw)
            if type(event) is not dict or type(event.get(tag)) is not str:
                continue
            event_type = event[tag]
            collected = self.fast.key_paths(event_type)
            by_path = self.templates.setdefault(event_type, {})
            for path, _, value in _strings(event):
                if path in collected or path == tag or "#" not in value:
                    continue  # the fast loop counted it (the tag: CompiledSchema.run)
                if path not in by_path:
                    by_path[path] = {}
                    self.dirty = True
                key_counts.add(by_path[path], key_template(value))

    def flush(self) -> None:
        """Move the fast path's counts into the shape table (before merging or building the analysis)."""
        if self.fast is None:
            return
        self.fast.count_pending()
        for compiled in self.fast.types.values():
            templates = compiled.take_templates()
            for mask, count in compiled.counts.items():
                lines, examples = compiled.samples.get(mask, ([], {}))
                self._add_fast_shape(compiled.name, compiled.fields_for(mask), count, lines, examples)
            compiled.counts.clear()  # the generated loop holds these very dicts: clear, never replace
            compiled.samples.clear()
            by_path = self.templates.setdefault(compiled.name, {})
            for path, counts in templates.items():
                key_counts.merge(by_path.setdefault(path, {}), counts)
        for rare in self.fast.rare.values():
            self._flush_rare(rare)

    def _add_fast_shape(
        self,
        name: str,
        fields: tuple[tuple[str, str], ...],
        count: int,
        lines: list[Location],
        examples: dict[str, list[Any]],
    ) -> tuple[tuple[Any, ...], Shape] | None:
        """A shape the fast path counted, into the shape table: merged into the same shape of its type
        (its maps collapsed when they were recognised after it was compiled), else a new entry
        (returned with its key), else, past ``MAX_SHAPES``, counted as unanalysed."""
        key: tuple[Any, ...] = ("fast", name, fields)
        if name in self.map_paths:
            fields = collapse_fields(fields, list(self.map_paths[name]), self.root_keep.get(name))
            key = ("mapped", name, fields)
        shape = Shape(name, fields, count, lines, examples)
        mine = self.shapes.get(key)
        if mine is not None:
            mine.merge(shape)
        elif len(self.shapes) < MAX_SHAPES:
            self.shapes[key] = shape
            return key, shape
        else:
            self.unanalysed += count
            self.unanalysed_by_type[name] = self.unanalysed_by_type.get(name, 0) + count
        return None

    def _flush_rare(self, rare: Any) -> None:
        """A rare type's counts since the last flush into the shape table: added to the general path's
        shape of the same mask when there is one (``RareType.general``), so that the table, its order,
        sample lines and examples are those of the general path alone; else as a fast shape."""
        base = rare.base
        if rare.counts == base and not rare.pending_keys():
            return  # nothing since the last flush (the end of a file, then the end of reading)
        templates = rare.take_templates()
        for mask, total in rare.counts.items():
            count = total - base.get(mask, 0)
            if not count:
                continue
            lines, examples = rare.samples.get(mask) or ([], {})
            target = rare.general.get(mask)
            if target is not None and self.shapes.get(target[0]) is target[1] and rare.name not in self.map_paths:
                target[1].add(count, lines, examples)  # Shape.merge without building a Shape
                continue
            fields = rare.fields_for(mask)
            if (added := self._add_fast_shape(rare.name, fields, count, lines, examples)) is not None:
                rare.general[mask] = added
        base.update(rare.counts)
        rare.samples.clear()
        by_path = self.templates.setdefault(rare.name, {})
        for path, counts in templates.items():
            key_counts.merge(by_path.setdefault(path, {}), counts)

    def _add_slow(self, lines: list[bytes], file_index: int, first_line: int) -> None:
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        shapes, classify, templates, nested_key = self.shapes, self.classify, self.templates, _nested_key
        plain = self.type_field is None
        line, analysed = first_line - 1, 0
        for raw in lines:
            line += 1
            try:
                event = loads(raw)
            except decode_error as exc:
                event = _slow_parse(raw)  # valid JSON orjson refuses, e.g. integers over 64 bits
                if event is _INVALID:
                    if raw.strip():
                        self.bad(file_index, line, _parse_problem(raw, exc))
                    continue
            if type(event) is not dict:
                self.bad(file_index, line, f"not a JSON object (a JSON {JSON_TYPES.get(type(event), 'value')})")
                continue
            # Fast path for the common plain envelope; classify() handles the others.
            event_type = event.get("type") if plain else None
            if event_type is None or "detail-type" in event or "specversion" in event:
                event_type, payload = classify(event)
                if type(event_type) is not str or not event_type:
                    self.bad(file_index, line, "no event type (looked for " + self.type_description() + ")")
                    continue
            elif type(event_type) is not str or not event_type:
                self.bad(file_index, line, "no event type (looked for " + self.type_description() + ")")
                continue
            else:
                payload = event
            if self.map_paths and event_type in self.map_paths:
                payload = collapse_maps(payload, self.map_paths[event_type], self.root_keep.get(event_type))
            try:
                types = tuple(map(type, payload.values()))  # shape_key, inline
                if dict in types:
                    key = [event_type, tuple(payload), types]
                    for value in payload.values():
                        if type(value) is dict:
                            nested_key(value, key, 1)
                    key = tuple(key)
                else:
                    key = (event_type, tuple(payload), types)
                shape = shapes.get(key)
                if shape is None:
                    if len(shapes) >= MAX_SHAPES:
                        self._unanalysed(event_type)
                        analysed += 1
                        continue
                    shape = self._shape_for(key, event_type, payload)
                shape.count += 1
                if shape.count <= EXAMPLE_EVENTS:
                    self._observe(shape, payload, (file_index, line))
            except RecursionError:
                self.bad(file_index, line, TOO_DEEP)
                continue
            analysed += 1
            hashes = raw.count(b"#")
            if hashes or b"\\u" in raw:
                by_path = templates.get(event_type)
                if by_path is None:
                    by_path = templates[event_type] = {}
                for path, accessor in shape.key_paths:
                    value = payload[path] if len(accessor) == 1 else _get(payload, accessor)
                    if "#" not in value:
                        continue
                    hashes -= value.count("#")
                    counts = by_path[path]
                    template = key_template(value)
                    if template in counts:
                        counts[template] += 1
                    else:
                        key_counts.add(counts, template)
                if hashes or b"\\u0023" in raw:  # a '#' elsewhere (or an escape that may hide one)
                    self._scan_shape(shape, by_path, payload)
        self.events += analysed

    def add_event(self, event: Any, file_index: int, line: int) -> None:
        """Aggregate one already-decoded event (JSON arrays use this path)."""
        if type(event) is not dict:
            self.bad(file_index, line, f"not a JSON object (a JSON {JSON_TYPES.get(type(event), 'value')})")
            return
        event_type, payload = self.classify(event)
        if type(event_type) is not str or not event_type:
            self.bad(file_index, line, "no event type (looked for " + self.type_description() + ")")
            return
        if self.map_paths and event_type in self.map_paths:
            payload = collapse_maps(payload, self.map_paths[event_type], self.root_keep.get(event_type))
        try:
            key = shape_key(event_type, payload)
            shape = self.shapes.get(key)
            if shape is None:
                if len(self.shapes) >= MAX_SHAPES:
                    self.events += 1
                    self._unanalysed(event_type)
                    return
                shape = self._shape_for(key, event_type, payload)
            shape.count += 1
            if shape.count <= EXAMPLE_EVENTS:
                self._observe(shape, payload, (file_index, line))
        except RecursionError:
            self.bad(file_index, line, TOO_DEEP)
            return
        self.events += 1
        by_path = self.templates.setdefault(event_type, {})
        for path, accessor in shape.key_paths:
            value = _get(payload, accessor)
            if "#" in value:
                key_counts.add(by_path[path], key_template(value))
        self._scan_shape(shape, by_path, payload)

    def type_description(self) -> str:
        if self.type_field is not None:
            return ".".join(self.type_field)
        return "detail-type, type, event_type"

    def _unanalysed(self, event_type: str) -> None:
        self.unanalysed += 1
        self.unanalysed_by_type[event_type] = self.unanalysed_by_type.get(event_type, 0) + 1

    def _shape_for(self, key: tuple[Any, ...], event_type: str, payload: dict[str, Any]) -> Shape:
        """A new shape in the table; every ``MAP_CHECK`` shapes of one type, look for map-like objects."""
        shape = self.shapes[key] = self._new_shape(event_type, payload, key)
        seen = self.shapes_by_type[event_type] = self.shapes_by_type.get(event_type, 0) + 1
        if seen % MAP_CHECK == 0 and self._find_maps(
            event_type, [s for s in self.shapes.values() if s.event_type == event_type]
        ):
            # The next compilation leaves this type to the general path. The new shape may
            # have been merged into another: count this event there.
            return self._recollapse(event_type).get(id(shape), shape)
        return shape

    def _find_maps(self, event_type: str, shapes: list[Shape]) -> bool:
        """Look for map-like objects (and a map-like root) in one type's shapes; True if new ones."""
        found, root = _find_map_like([(s, *_nodes(s.fields)) for s in shapes])
        keep = self.root_keep.get(event_type)
        new_root = keep is None and root is not None
        if new_root:
            self.root_keep[event_type] = keep = root
        known = set(self.map_paths.get(event_type, ()))
        new = set(found) - known
        if keep is not None:  # maps under the root's collapsed keys are gone with them
            new = {p for p in new if p[0] in keep}
            known = {p for p in known if p[0] in keep}
        if not new and not new_root:
            return False
        self.map_paths[event_type] = tuple(sorted(known | new))
        return True

    def finish(self) -> None:
        """The end of reading: flush the fast path, look for map-like objects in every type with
        more than one shape (also those with fewer than ``MAP_CHECK`` shapes, and the shapes the
        last periodic check did not see), and collapse the maps of every type that has some (also
        in shapes merged from workers that had not recognised them)."""
        self.flush()
        keys_by_type: dict[str, list[tuple[Any, ...]]] = {}
        for key, shape in self.shapes.items():
            keys_by_type.setdefault(shape.event_type, []).append(key)
        for event_type, keys in keys_by_type.items():
            if len(keys) > 1:
                self._find_maps(event_type, [self.shapes[k] for k in keys])
            if event_type in self.map_paths:
                self._recollapse(event_type, keys)

    def _recollapse(self, event_type: str, keys: list[tuple[Any, ...]] | None = None) -> dict[int, Shape]:
        """Merge the type's shapes that differ only inside map-like objects (their keys become {*});
        returns ``id(old shape) -> the shape it was merged into``. ``keys``: the type's shape keys."""
        paths = list(self.map_paths[event_type])
        keep = self.root_keep.get(event_type)
        merged: dict[int, Shape] = {}
        if keys is None:
            keys = [k for k, s in self.shapes.items() if s.event_type == event_type]
        for key in keys:
            shape = self.shapes.pop(key)
            mapping = path_map(shape.fields, paths, keep)
            shape.fields = _fields_of(mapping)
            shape.string_paths = tuple(sp for sp in shape.string_paths if not _under_map(sp[1], paths, keep))
            shape.key_paths = tuple(sp for sp in shape.key_paths if not _under_map(sp[1], paths, keep))
            shape.examples = _collapse_examples(shape.examples, {old: new for old, new, _ in mapping})
            target_key = ("mapped", event_type, shape.fields)
            mine = self.shapes.get(target_key)
            if mine is None:
                self.shapes[target_key] = shape
            else:
                mine.merge(shape)
                merged[id(shape)] = mine
        self.shapes_by_type[event_type] = len(keys) - len(merged)
        return merged

    def _new_shape(self, event_type: str, payload: dict[str, Any], key: tuple[Any, ...] | None = None) -> Shape:
        """The shape of ``payload``; ``key``: its shape key (``shape_key``), whose structure (the key
        without the type) decides the fields and string paths (``_structures``)."""
        self.dirty = True
        structure = key[1:] if key is not None else None
        known = self._structures.get(structure) if structure is not None else None
        if known is not None:
            fields, string_paths = known
            values: list[Any] = []
            _values(payload, values)
            self._walked = (payload, fields, values)  # the new shape's first event is observed next
            return Shape(event_type, fields, string_paths=string_paths)
        nodes: list[tuple[str, str, Any]] = []
        strings: list[tuple[str, tuple[str, ...]]] = []
        _walk(payload, "", (), nodes, strings)  # flatten and _strings in one walk
        self._walked = (payload, nodes, [])  # the new shape's first event is observed next: walked once
        fields = tuple([(path, json_type) for path, json_type, _ in nodes])
        string_paths = tuple(strings)
        if structure is not None:
            if len(self._structures) >= MAX_STRUCTURES:
                self._structures.clear()
            self._structures[structure] = (fields, string_paths)
        return Shape(event_type, fields, string_paths=string_paths)

    def _scan_shape(self, shape: Shape, by_path: dict[str, dict[str, int]], payload: dict[str, Any]) -> None:
        """Count the '#' values of the shape's string fields not yet known to hold one, and remember
        those fields (``key_paths``) so that the next events of this shape check them first."""
        known = {path for path, _ in shape.key_paths}
        for path, accessor in shape.string_paths:
            if path in known:
                continue
            value = _get(payload, accessor)
            if "#" not in value:
                continue
            shape.key_paths += ((path, accessor),)
            if path not in by_path:
                by_path[path] = {}
                self.dirty = True  # the fast path must collect this field from now on
            key_counts.add(by_path[path], key_template(value))

    def _observe(self, shape: Shape, payload: dict[str, Any], where: Location) -> None:
        shape.lines.append(where)
        walked, self._walked = self._walked, None
        if walked is None or walked[0] is not payload:
            _add_examples(shape.examples, flatten(payload))
        elif walked[2] or not walked[1]:  # the fields of a known structure, and the event's values
            nodes = zip(walked[1], walked[2], strict=True)
            _add_examples(shape.examples, ((path, json_type, value) for (path, json_type), value in nodes))
        else:
            _add_examples(shape.examples, walked[1])

    # -- combining -----------------------------------------------------------------------------

    def merge(self, other: Aggregator, file_offset: int = 0, line_offset: int = 0) -> None:
        """Fold ``other`` into this aggregator, shifting its line numbers by ``line_offset``."""
        self.flush()
        other.flush()
        self.events += other.events
        self.bad_lines += other.bad_lines
        self.unanalysed += other.unanalysed
        for file_index, line, message in other.errors:
            if len(self.errors) < MAX_ERRORS:
                self.errors.append((file_index + file_offset, line + line_offset, message))
        for event_type, paths in other.templates.items():
            by_path = self.templates.setdefault(event_type, {})
            for path, counts in paths.items():
                key_counts.merge(by_path.setdefault(path, {}), counts)
        for event_type, envelope in other.envelopes.items():
            self.envelopes.setdefault(event_type, envelope)
        for event_type, n in other.unanalysed_by_type.items():
            self.unanalysed_by_type[event_type] = self.unanalysed_by_type.get(event_type, 0) + n
        for event_type, paths in other.map_paths.items():
            self.map_paths[event_type] = tuple(sorted(set(self.map_paths.get(event_type, ())) | set(paths)))
        for event_type, keep in other.root_keep.items():  # fewer kept keys: collapsing again is safe
            mine = self.root_keep.get(event_type)
            self.root_keep[event_type] = keep if mine is None else mine & keep
        for key, shape in other.shapes.items():
            if line_offset or file_offset:
                shape.lines = [(f + file_offset, n + line_offset) for f, n in shape.lines]
            mine = self.shapes.get(key)
            if mine is None:
                if len(self.shapes) >= MAX_SHAPES:
                    self.unanalysed += shape.count
                    self.unanalysed_by_type[shape.event_type] = (
                        self.unanalysed_by_type.get(shape.event_type, 0) + shape.count
                    )
                    continue
                self.shapes[key] = shape
            else:
                mine.merge(shape)


# Objects nested deeper than this are a bad line (TOO_DEEP): as deep as Python's recursion limit let
# the nested shape key go when it took two frames a level (``evaluate`` from the command line).
MAX_NESTING = 487
TOO_DEEP = "nested too deeply to analyse (objects within objects beyond Python's recursion limit)"
MAX_STRUCTURES = 4096  # Aggregator._structures
MAP_CHECK = 64  # look for map-like objects each time a type reaches another 64 shapes
MAP_MIN_KEYS = 32  # a map-like object: at least this many distinct keys over the type's shapes ...
MAP_MAX_SHARE = 0.2  # ... each in at most this share of the type's events (median)
MAP_KEY = "{*}"


def _source(value: Any) -> str | None:
    return value if type(value) is str else None


def _under_map(keys: tuple[str, ...], maps: list[tuple[str, ...]], keep: frozenset[str] | None = None) -> bool:
    """Whether the node at ``keys`` is inside a map-like object (or under a collapsed key of a map-like root)."""
    if keep is not None and keys[0] not in keep:
        return True
    return any(len(keys) > len(m) and keys[: len(m)] == m for m in maps)


def _collapse_examples(examples: dict[str, list[Any]], mapping: dict[str, str]) -> dict[str, list[Any]]:
    """A shape's examples by collapsed path (``path_map``), at most ``EXAMPLES_PER_FIELD`` each."""
    out: dict[str, list[Any]] = {}
    for path, values in examples.items():
        mine = out.setdefault(mapping.get(path, path), [])
        for value in values:
            if len(mine) < EXAMPLES_PER_FIELD and value not in mine:
                mine.append(value)
    return out


def _nodes(fields: tuple[tuple[str, str], ...]) -> tuple[list[tuple[str, str, str, str]], dict[str, tuple[str, ...]]]:
    """``([(path, json type, parent path, key)], {object path: its keys from the root})`` of a
    shape's nodes (the root is ``""``). Paths join keys with dots, so a key holding a dot
    (``app.kubernetes.io/name``) makes them ambiguous; the nodes are in ``flatten`` order (an object,
    then its children), which tells them apart: a node's parent is the innermost object before it
    whose path is a prefix of its own."""
    out: list[tuple[str, str, str, str]] = []
    objects: dict[str, tuple[str, ...]] = {"": ()}
    stack: list[str] = []  # paths of the open objects
    prefix = ""  # stack[-1] + "."
    for path, json_type in fields:
        while stack and not path.startswith(prefix):
            stack.pop()
            prefix = stack[-1] + "." if stack else ""
        parent = stack[-1] if stack else ""
        key = path[len(prefix) :]
        out.append((path, json_type, parent, key))
        if json_type == "object":
            objects[path] = (*objects[parent], key)
            stack.append(path)
            prefix = path + "."
    return out, objects


def ambiguous_keys(fields: tuple[tuple[str, str], ...]) -> bool:
    """Whether a key of the shape holds a dot (its path does not name its parent object)."""
    return any("." in key for _, _, _, key in _nodes(fields)[0])


def map_like_paths(shapes: list[Shape]) -> list[tuple[str, ...]]:
    """Objects of one type used as maps (their keys from the root): many distinct child keys, each
    in few of the events where the object is present (not of all the type's events: an object in
    one event of fifty, such as ``changes.new_repository``, is a record, not a map)."""
    return _find_map_like([(s, *_nodes(s.fields)) for s in shapes])[0]


def _find_map_like(
    walked: list[tuple[Shape, list[tuple[str, str, str, str]], dict[str, tuple[str, ...]]]],
) -> tuple[list[tuple[str, ...]], frozenset[str] | None]:
    """``(map_like_paths, root_map_keys)`` of shapes already walked by ``_nodes``."""
    children: dict[str, dict[str, int]] = {}
    objects: dict[str, int] = {}  # path -> events where it is an object
    keys_of: dict[str, tuple[str, ...]] = {}
    total = 0
    for shape, nodes, shape_objects in walked:
        total += shape.count
        for path, json_type, parent, key in nodes:
            if json_type == "object":
                objects[path] = objects.get(path, 0) + shape.count
            if key == MAP_KEY:
                continue
            by_leaf = children.get(parent)
            if by_leaf is None:
                by_leaf = children[parent] = {}
                keys_of[parent] = shape_objects[parent]
            by_leaf[key] = by_leaf.get(key, 0) + shape.count
    found: list[tuple[str, ...]] = []
    for parent in sorted((p for p in children if p), key=lambda p: (len(keys_of[p]), keys_of[p])):
        keys = keys_of[parent]
        if any(keys[: len(f)] == f for f in found):
            continue
        if is_map_like(list(children[parent].values()), objects.get(parent) or 1):
            found.append(keys)
    root = children.get("", {})
    keep = None
    if is_map_like(list(root.values()), total or 1):
        keep = frozenset(key for key, n in root.items() if kept_at_root(n, total))
    return found, keep


def kept_at_root(count: int, events: int) -> bool:
    """Whether a top-level key in ``count`` of a map-like root's ``events`` stays a field of its own
    (the type field, a tenant id) rather than collapsing into ``{*}``."""
    return count / (events or 1) > MAP_MAX_SHARE and count > 1


def is_map_like(counts: list[int], base: int) -> bool:
    """Keys (their event counts, over ``base`` events holding the object) of a map: at least
    ``MAP_MIN_KEYS`` of them, the median in at most ``MAP_MAX_SHARE`` of the events, or, with the
    object in more than one event, the median in one event only (keys that never repeat: a type
    of four events is too small for a share)."""
    if len(counts) < MAP_MIN_KEYS:
        return False
    median = sorted(counts)[len(counts) // 2]
    return median / base <= MAP_MAX_SHARE or (base > 1 and median == 1)


def root_map_keys(shapes: list[Shape]) -> frozenset[str] | None:
    """The top-level keys to keep when the events' root object is used as a map (every event with
    its own keys), else None: top-level keys as map-like as ``is_map_like`` says. The keys in more
    events than ``MAP_MAX_SHARE`` (and more than one: the type field, a tenant id) are kept; the
    others collapse to ``{*}``."""
    return _find_map_like([(s, *_nodes(s.fields)) for s in shapes])[1]


def collapse_maps(
    payload: dict[str, Any], maps: tuple[tuple[str, ...], ...], keep: frozenset[str] | None = None
) -> dict[str, Any]:
    """A copy of ``payload`` whose map-like objects keep one representative child under ``{*}``;
    with ``keep`` (``root_map_keys``) the root is a map too: its other keys collapse the same way."""
    if keep is None:
        out = dict(payload)
    else:
        out, rest = {}, None
        for key, value in payload.items():
            if key in keep:
                out[key] = value
            elif rest is None:
                rest = (value,)
        if rest is not None:
            out[MAP_KEY] = rest[0]
    for parts in maps:
        _collapse_at(out, parts)
    return out


def _collapse_at(obj: dict[str, Any], parts: tuple[str, ...]) -> None:
    head = parts[0]
    value = obj.get(head)
    if type(value) is not dict:
        return
    if len(parts) == 1:
        obj[head] = {MAP_KEY: next(iter(value.values()))} if value else {}
        return
    copy = obj[head] = dict(value)
    _collapse_at(copy, parts[1:])


def collapse_fields(
    fields: tuple[tuple[str, str], ...], maps: list[tuple[str, ...]], keep: frozenset[str] | None = None
) -> tuple[tuple[str, str], ...]:
    """A shape's (path, json type) nodes with the keys of map-like objects (``maps``: their keys
    from the root) replaced by ``{*}``, and with ``keep``, the top-level keys not in it
    (``collapse_maps``)."""
    return _fields_of(path_map(fields, maps, keep))


def _fields_of(mapping: list[tuple[str, str, str]]) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}  # one node per path: a shape counts each of its fields once
    for _, path, json_type in mapping:
        out.setdefault(path, json_type)
    return tuple(out.items())


def path_map(
    fields: tuple[tuple[str, str], ...], maps: list[tuple[str, ...]], keep: frozenset[str] | None = None
) -> list[tuple[str, str, str]]:
    """``[(path, collapsed path, json type)]`` of a shape's nodes (``collapse_fields``)."""
    map_set = set(maps)
    nodes, objects = _nodes(fields)
    is_map = {path: keys in map_set for path, keys in objects.items()}
    new_of: dict[str, str] = {"": ""}  # original object path -> collapsed path, parents first
    out: list[tuple[str, str, str]] = []
    for path, json_type, parent, key in nodes:
        if is_map[parent] or (not parent and keep is not None and key not in keep):
            key = MAP_KEY
        base = new_of[parent]
        new = f"{base}.{key}" if base else key
        if json_type == "object":
            new_of[path] = new
        out.append((path, new, json_type))
    return out


_INVALID = object()
_ESCAPED_HASH = re.compile(rb"\\u0023")


def hash_census(data: bytes) -> tuple[int, bool]:
    """``(number of '#' bytes, whether a \\u0023 escape may hide another)`` in raw JSON text.

    Measured on 4 MB of log: ``replace`` 45 ns a line against ``count`` 90; the escape search is
    skipped (a memchr) unless the text has a backslash at all, and ``re`` beats ``in`` (63 vs 119)."""
    return len(data) - len(data.replace(b"#", b"")), b"\\" in data and _ESCAPED_HASH.search(data) is not None


def _strings(
    obj: dict[str, Any], prefix: str = "", keys: tuple[str, ...] = ()
) -> list[tuple[str, tuple[str, ...], str]]:
    """``[(path, accessor, value)]`` of every string in ``obj`` and its nested objects (as ``flatten``)."""
    out: list[tuple[str, tuple[str, ...], str]] = []
    for key, value in obj.items():
        if type(value) is str:
            out.append((f"{prefix}{key}", (*keys, key), value))
        elif type(value) is dict:
            out.extend(_strings(value, f"{prefix}{key}.", (*keys, key)))
    return out


def _loads_any(raw: bytes) -> Any:
    """orjson, or the standard library for the rare valid JSON orjson refuses; ``_INVALID`` if neither."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _slow_parse(raw)


def _note(compiled: Any, mask: int, file_index: int, line: int, raw: bytes) -> None:
    """Where and what the first events of a fast-path shape were (the fast path keeps no values)."""
    found = compiled.samples.get(mask)
    if found is None:
        found = compiled.samples[mask] = ([], {})
    found[0].append((file_index, line))
    _examples_into(found[1], raw)


def _examples_into(examples: dict[str, list[Any]], raw: bytes) -> None:
    """Example values for a fast-path shape's first events (the fast path keeps no values)."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    _add_examples(examples, flatten(event))


def _add_examples(by_path: dict[str, list[Any]], nodes: Iterable[tuple[str, str, Any]]) -> None:
    """Up to ``EXAMPLES_PER_FIELD`` distinct example values per path of ``nodes`` (objects have none):
    short strings, numbers, booleans and null as they are, anything else through ``_example``."""
    as_is = AS_IS
    for path, json_type, value in nodes:
        if json_type == "object":
            continue
        found = by_path.get(path)
        if found is None:
            found = by_path[path] = []
        elif len(found) >= EXAMPLES_PER_FIELD:
            continue
        kind = type(value)
        example = value if (kind is str and len(value) <= 80) or kind in as_is else _example(value)
        if example not in found:
            found.append(example)


def _slow_parse(raw: bytes) -> Any:
    """The standard library's parser, for the rare lines orjson rejects; ``_INVALID`` if it fails too."""
    import json

    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _INVALID


def _parse_problem(raw: bytes, exc: Exception) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as uexc:
        return f"invalid UTF-8 at byte {uexc.start}"
    message = str(exc).split(":", 1)[0] if str(exc) else "invalid JSON"
    return f"invalid JSON: {message}"
