"""The result of analysing logs: inferred schemas per event type, errors, and findings.

``build_analysis`` turns an aggregator's shape table into per-type field statistics; the rules
(``agentflow.evaluator.rules``) then read only these summaries, never the events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentflow.evaluator import templates as key_counts
from agentflow.evaluator.schema import SAMPLE_LINES, Aggregator, Location, LogError


@dataclass(slots=True)
class FieldSchema:
    count: int = 0
    types: dict[str, int] = field(default_factory=dict)  # json type -> events
    examples: list[Any] = field(default_factory=list)
    lines_by_type: dict[str, list[Location]] = field(default_factory=dict)
    missing_lines: list[Location] = field(default_factory=list)


class ShapeFields(Mapping[str, FieldSchema]):
    """The fields of a type of one shape (``TypeSchema.uniform``): each in every event with one JSON
    type, its lines the type's, none missing. A ``FieldSchema`` is made when a field is asked for
    (and kept); membership, order and size are the shape's (``paths``: path -> JSON type, one dict
    shared by the types of one shape). With 2,000 types of 17 fields, making every FieldSchema up
    front took a third of the analysis, and the rules and the text report read none of them;
    ``TypeSchema.to_json`` writes a field without making it."""

    __slots__ = ("paths", "count", "lines", "examples", "_made")

    def __init__(self, paths: dict[str, str], count: int, lines: list[Location], examples: dict[str, list[Any]]):
        self.paths = paths
        self.count = count
        self.lines = lines  # the type's earliest lines: every field's lines_by_type
        self.examples = examples  # the shape's examples by path (at most EXAMPLES_PER_FIELD)
        self._made: dict[str, FieldSchema] | None = None

    def __getitem__(self, path: str) -> FieldSchema:
        made = self._made
        if made is None:
            made = self._made = {}
        stats = made.get(path)
        if stats is None:
            json_type, count = self.paths[path], self.count
            stats = made[path] = FieldSchema(
                count, {json_type: count}, list(self.examples.get(path, ())[:3]), {json_type: self.lines}
            )
        return stats

    def __contains__(self, path: object) -> bool:
        return path in self.paths

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def keys(self):  # the shared dict's keys: set operations in C
        return self.paths.keys()

    def get(self, path: str, default: Any = None) -> Any:
        return self[path] if path in self.paths else default

    def items(self) -> list[tuple[str, FieldSchema]]:  # type: ignore[override]
        return [(path, self[path]) for path in self.paths]

    def values(self) -> list[FieldSchema]:  # type: ignore[override]
        return [self[path] for path in self.paths]

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def to_json(self, count: int) -> dict[str, Any]:
        """``TypeSchema.to_json``'s fields, the same values, without making the FieldSchemas."""
        made = self._made or {}
        out: dict[str, Any] = {}
        presence = round(self.count / count, 4) if count else 0.0
        examples = self.examples
        for path, json_type in self.paths.items():
            stats = made.get(path)
            if stats is not None:
                out[path] = _field_json(stats, count)
                continue
            out[path] = {
                "presence": presence,
                "count": self.count,
                "types": [json_type],
                "type_counts": {json_type: self.count},
                "examples": list(examples.get(path, ())[:3]),
            }
        return out


def _field_json(f: FieldSchema, count: int) -> dict[str, Any]:
    return {
        "presence": round(f.count / count, 4) if count else 0.0,
        "count": f.count,
        "types": sorted(f.types),
        "type_counts": dict(sorted(f.types.items())),
        "examples": f.examples,
    }


@dataclass
class TypeSchema:
    name: str
    count: int
    fields: dict[str, FieldSchema] | ShapeFields  # ShapeFields: a type of one shape (uniform)
    key_templates: dict[str, dict[str, int]]  # key field path -> template -> events (templates.report)
    lines: list[Location]
    envelope: str = "plain"  # plain, eventbridge or cloudevents: where the payload came from
    source: str | None = None  # the envelope's `source` (EventBridge, CloudEvents): a family of types
    unanalysed: int = 0  # events of this type beyond the shape cap: counted, not walked field by field
    # Every field in every event, with one JSON type (a type of one shape): no finding within the type.
    uniform: bool = field(default=False, compare=False, repr=False)
    shape_fields: tuple[tuple[str, str], ...] | None = field(default=None, compare=False, repr=False)  # if uniform

    def presence(self, path: str) -> float:
        """Share of the events where ``path``'s parent is an object that carry ``path`` (nullable
        parents: ``a.b`` is measured over the events where ``a`` is a non-null object)."""
        stats = self.fields.get(path)
        if stats is None:
            return 0.0
        base = self.parent_objects(path)
        return stats.count / base if base else 0.0

    def parent_objects(self, path: str) -> int:
        """The events in which ``path``'s parent is a JSON object (all events for a top-level field)."""
        if "." not in path:
            return self.count
        parent = self.fields.get(path.rsplit(".", 1)[0])
        return parent.types.get("object", 0) if parent else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.name,
            "count": self.count,
            "envelope": self.envelope,
            "source": self.source,
            "unanalysed_events": self.unanalysed,
            "fields": self.fields.to_json(self.count)
            if type(self.fields) is ShapeFields
            else {path: _field_json(f, self.count) for path, f in self.fields.items()},
            "key_templates": [
                {"field": path, "template": template, "count": n}
                for path, counts in self.key_templates.items()
                for template, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            ],
        }


@dataclass
class Finding:
    rule: str
    severity: str
    event_type: str
    field: str | None
    message: str
    evidence: dict[str, Any]
    id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity,
            "event_type": self.event_type,
            "field": self.field,
            "message": self.message,
            "evidence": self.evidence,
        }


@dataclass
class Analysis:
    files: list[str]
    events: int
    bad_lines: int
    unanalysed: int
    types: list[TypeSchema]
    errors: list[LogError]
    findings: list[Finding] = field(default_factory=list)
    review: str | None = None  # the --llm evaluator session's summary
    isolation_fields: list[str] = field(default_factory=list)  # configured (events.isolation_fields)
    inferred_scope: list[str] = field(default_factory=list)  # rules.infer_scope
    warnings: list[str] = field(default_factory=list)  # e.g. a configured isolation field matching nothing

    def type(self, name: str) -> TypeSchema | None:
        return next((t for t in self.types if t.name == name), None)

    def where(self, location: Location) -> str:
        file_index, line = location
        return f"{self.files[file_index]}:{line}"

    def to_json(self) -> dict[str, Any]:
        data = {
            "events": self.events,
            "bad_lines": self.bad_lines,
            "unanalysed_events": self.unanalysed,
            "files": self.files,
            "types": [t.to_json() for t in self.types],
            "findings": [f.to_json() for f in self.findings],
            "errors": [e.to_json() for e in self.errors],
            "isolation_fields": self.isolation_fields,
            "inferred_scope": self.inferred_scope,
            "warnings": self.warnings,
        }
        if self.review is not None:
            data["review"] = self.review
        return data


def build_analysis(aggregator: Aggregator, files: list[str]) -> Analysis:
    """Per-type field statistics from the aggregator's shapes (deterministic order)."""
    aggregator.finish()  # the fast path's counts, and the maps of types with few shapes
    by_type: dict[str, list[Any]] = {name: [] for name in aggregator.unanalysed_by_type}
    for shape in aggregator.shapes.values():
        by_type.setdefault(shape.event_type, []).append(shape)
    alike: dict[tuple[tuple[str, str], ...], tuple[Any, dict[str, str] | None]] = {}  # _one_shape_schema
    types = [
        _type_schema(name, shapes, aggregator.templates.get(name, {}), alike)
        for name, shapes in sorted(by_type.items())
    ]
    for schema in types:
        schema.envelope, schema.source = aggregator.envelopes.get(schema.name, ("plain", None))
        schema.unanalysed = aggregator.unanalysed_by_type.get(schema.name, 0)
    errors = [LogError(files[i] if i < len(files) else "?", line, message) for i, line, message in aggregator.errors]
    errors.sort(key=lambda e: (files.index(e.file) if e.file in files else 0, e.line))
    return Analysis(files, aggregator.events, aggregator.bad_lines, aggregator.unanalysed, types, errors)


def _type_schema(
    name: str, shapes: list[Any], templates: dict[str, dict[str, int]], alike: dict | None = None
) -> TypeSchema:
    """One type's statistics. Sample lines are the earliest over all shapes (each shape keeps its
    first lines), so they do not depend on how events were split into shapes or worker ranges.
    ``templates``: the type's key template counts by field (``agentflow.evaluator.templates``)."""
    if len(shapes) == 1:  # most types of a log of many types: every field in every event
        schema = _one_shape_schema(name, shapes[0], templates, {} if alike is None else alike)
        if schema is not None:
            return schema
    fields: dict[str, FieldSchema] = {}
    lines: list[Location] = []
    for shape in shapes:
        lines += shape.lines
        for path, json_type in shape.fields:
            stats = fields.get(path)
            if stats is None:
                stats = fields[path] = FieldSchema()
            stats.count += shape.count
            stats.types[json_type] = stats.types.get(json_type, 0) + shape.count
            stats.lines_by_type.setdefault(json_type, []).extend(shape.lines)
            for example in shape.examples.get(path, []):
                if len(stats.examples) < 3 and example not in stats.examples:
                    stats.examples.append(example)
    count = sum(shape.count for shape in shapes)
    _missing_lines(shapes, fields, count)
    for stats in fields.values():
        stats.lines_by_type = {t: _earliest(ls) for t, ls in stats.lines_by_type.items()}
    return TypeSchema(name, count, fields, key_counts.key_fields(templates), _earliest(lines))


def _one_shape_schema(
    name: str, shape: Any, templates: dict[str, dict[str, int]], alike: dict | None = None
) -> TypeSchema | None:
    """``_type_schema`` of a type with one shape, the same result in one pass: each field is in
    every event with one JSON type, its lines are the type's and none is missing (None when a
    path repeats in the shape, which only the general walk adds up). ``alike``: shape fields ->
    (one tuple of them for all the types of that shape, their ``ShapeFields.paths`` or None)."""
    if alike is None:
        alike = {}
    known = alike.get(shape.fields)
    if known is None:
        paths = dict(shape.fields)
        known = alike[shape.fields] = (shape.fields, paths if len(paths) == len(shape.fields) else None)
    key, paths = known
    if paths is None:
        return None
    count, earliest = shape.count, _earliest(shape.lines)
    fields = ShapeFields(paths, count, earliest, shape.examples)
    schema = TypeSchema(name, count, fields, key_counts.key_fields(templates), list(earliest))
    schema.uniform, schema.shape_fields = True, key
    return schema


def _missing_lines(shapes: list[Any], fields: dict[str, FieldSchema], count: int) -> None:
    """Each field's earliest lines of events without it. The shapes are walked in order of their first
    line and a field stops once no later shape can have an earlier line: each step is a shape that
    has the field (paid for by the field itself) or one of a few without it, so the cost is the
    size of the shape table, not shapes x fields (200 shapes of 2,000 distinct keys took 10 s)."""
    order = sorted((s for s in shapes if s.lines), key=lambda s: min(s.lines))
    firsts = [min(s.lines) for s in order]
    present = [{path for path, _ in s.fields} for s in order]
    for path, stats in fields.items():
        if stats.count >= count:
            continue  # in every event
        found: list[Location] = []
        for shape, first, paths in zip(order, firsts, present, strict=True):
            if len(found) >= SAMPLE_LINES and first > found[SAMPLE_LINES - 1]:
                break
            if path not in paths:
                found = sorted(set(found).union(shape.lines))
        stats.missing_lines = found[:SAMPLE_LINES]


def _earliest(locations: list[Location]) -> list[Location]:
    return sorted(set(locations))[:SAMPLE_LINES]
