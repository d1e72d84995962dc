"""Deterministic rules over inferred schemas.

Rules (``rule`` ids are part of the findings contract):

- ``required_field``: configured ``events.required`` (scope field -> fields): every event of a type
  carrying the scope field must carry each listed field. critical for isolation fields, else high.
- ``missing_sibling_field``: among the types sharing a scope field (a configured isolation field
  such as ``tenant_id``, or a scope of ``events.required``), a field that most of them carry
  (more than half of them, at least two) is missing from every event of some. critical for
  isolation fields (the cross-tenant leak), medium for other fields.
- ``key_segment_missing``: ``#``-delimited keys of sibling types (same field, same first label)
  mostly carry a segment (``CAPSULE#``) that a type's key template skips. When the same type already
  has an isolation-field finding for the matching field (``CAPSULE`` -> ``capsule_id``), the key
  evidence is added to that finding instead of a second finding for the same defect.
- ``key_template_inconsistent``: one type's keys in one field use templates with different labels.
- ``partial_field``: a field present in only part of one type's events.
- ``null_field``: a field that is null in some events of a type and not in others.
- ``type_mismatch``: a field whose JSON type differs between events of one type (integer and
  number count as one type).
- ``drift_*``: differences against a baseline (``agentflow.evaluator.baseline``).

Exempt types (``events.exempt_types`` globs, e.g. ``Tenant*``) are platform-level: they take no
part in the comparisons between sibling types (neither flagged nor counted as siblings), and are
never flagged for isolation fields. Explicit ``required`` rules still apply to their other fields.

Finding ids are ``EV-`` plus a hash of rule, event type, field and detail, so the same defect has
the same id in every run and the ledger can tell open from closed findings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from agentflow.evaluator.analysis import Analysis, Finding, TypeSchema
from agentflow.evaluator.keys import template_labels
from agentflow.verdict import severity_rank  # one severity scale for verdicts and evaluator

SIBLING_SHARE = 0.5  # "most": strictly more than this share of the siblings


@dataclass
class RuleConfig:
    isolation_fields: list[str] = field(default_factory=lambda: ["tenant_id", "capsule_id"])
    exempt_types: list[str] = field(default_factory=list)
    required: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: object) -> RuleConfig:
        """From ``config.Events`` (kept duck-typed so this module does not need the config)."""
        return cls(
            isolation_fields=list(getattr(events, "isolation_fields", ["tenant_id", "capsule_id"])),
            exempt_types=list(getattr(events, "exempt_types", [])),
            required={k: list(v) for k, v in getattr(events, "required", {}).items()},
        )

    def is_isolation(self, path: str) -> bool:
        leaf = path.rsplit(".", 1)[-1]
        return path in self.isolation_fields or leaf in self.isolation_fields

    def is_exempt(self, event_type: str) -> bool:
        return any(fnmatchcase(event_type, glob) for glob in self.exempt_types)

    def skip(self, event_type: str, path: str) -> bool:
        """Exempt types are never flagged for isolation fields."""
        return self.is_exempt(event_type) and self.is_isolation(path)

    def label_field(self, label: str) -> str | None:
        """The isolation field a key label stands for: ``CAPSULE`` -> ``capsule_id``."""
        wanted = label.lower()
        for name in self.isolation_fields:
            if name.lower() in (wanted, f"{wanted}_id", f"{wanted}id"):
                return name
        return None


def finding_id(rule: str, event_type: str, path: str | None, detail: str = "") -> str:
    digest = hashlib.sha256(f"{rule}|{event_type}|{path or ''}|{detail}".encode()).hexdigest()
    return f"EV-{digest[:8]}"


def _make(
    rule: str, severity: str, schema: TypeSchema, path: str | None, message: str, evidence: dict, detail: str = ""
) -> Finding:
    return Finding(rule, severity, schema.name, path, message, evidence, id=finding_id(rule, schema.name, path, detail))


def _parent_paths(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def run_rules(analysis: Analysis, config: RuleConfig) -> list[Finding]:
    """All schema rules, deduplicated and sorted (severity, type, field, rule)."""
    where = analysis.where
    findings: list[Finding] = []
    findings += required_fields(analysis, config, where)
    findings += missing_sibling_fields(analysis, config, where)
    findings += within_type(analysis, config, where)
    findings = key_segments(analysis, config, findings)
    return sort_findings(dedupe(findings))


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (-severity_rank(f.severity), f.event_type, f.field or "", f.rule, f.id))


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per defect: an explicit ``required_field`` beats the inferred rules on the same field."""
    required = {(f.event_type, f.field) for f in findings if f.rule == "required_field"}
    seen: set[str] = set()
    out = []
    for f in findings:
        if f.rule in ("missing_sibling_field", "partial_field") and (f.event_type, f.field) in required:
            continue
        if f.id not in seen:
            seen.add(f.id)
            out.append(f)
    return out


def _samples(where, locations) -> list[str]:
    return [where(location) for location in locations]


# -- explicit rules ----------------------------------------------------------------------------------


def required_fields(analysis: Analysis, config: RuleConfig, where) -> list[Finding]:
    out = []
    for scope, wanted in config.required.items():
        for schema in analysis.types:
            if scope not in schema.fields:
                continue
            for path in wanted:
                if config.skip(schema.name, path):
                    continue
                stats = schema.fields.get(path)
                present = stats.count if stats else 0
                if present >= schema.count:
                    continue
                severity = "critical" if config.is_isolation(path) else "high"
                lines = stats.missing_lines if stats else schema.lines
                out.append(
                    _make(
                        "required_field",
                        severity,
                        schema,
                        path,
                        f"{schema.name} events carry {scope} but {schema.count - present} of {schema.count} "
                        f"lack {path}, which the configuration requires",
                        {
                            "events": schema.count,
                            "missing": schema.count - present,
                            "scope": scope,
                            "sample_lines": _samples(where, lines),
                        },
                    )
                )
    return out


# -- inferred rules --------------------------------------------------------------------------------


def scope_fields(analysis: Analysis, config: RuleConfig) -> list[str]:
    scopes = list(dict.fromkeys([*config.isolation_fields, *config.required]))
    return [s for s in scopes if any(s in t.fields for t in analysis.types)]


def missing_sibling_fields(analysis: Analysis, config: RuleConfig, where) -> list[Finding]:
    out: list[Finding] = []
    for scope in scope_fields(analysis, config):
        group = [t for t in analysis.types if scope in t.fields]
        if len(group) - sum(config.is_exempt(t.name) for t in group) < 2:
            continue
        carriers: dict[str, list[str]] = {}
        for schema in group:
            for path in schema.fields:
                carriers.setdefault(path, []).append(schema.name)
        common = {p: names for p, names in carriers.items() if len(names) >= 2}
        siblings = {t.name for t in group if not config.is_exempt(t.name)}
        for schema in group:
            if config.is_exempt(schema.name):
                continue  # platform-level types are not siblings of the tenant-scoped ones
            flagged: set[str] = set()
            for path in sorted(common, key=lambda p: (p.count("."), p)):
                names = common[path]
                if path in schema.fields or config.skip(schema.name, path):
                    continue
                carrying = [n for n in names if n in siblings]
                if len(carrying) < 2 or len(carrying) / len(siblings) <= SIBLING_SHARE:
                    continue
                if any(parent in flagged for parent in _parent_paths(path)):
                    continue
                flagged.add(path)
                isolation = config.is_isolation(path)
                out.append(
                    _make(
                        "missing_sibling_field",
                        "critical" if isolation else "medium",
                        schema,
                        path,
                        f"{schema.name} lacks {path}, which {len(carrying)} of {len(siblings)} event types sharing "
                        f"{scope} carry" + (" (an isolation field: a cross-tenant leak risk)" if isolation else ""),
                        {
                            "events": schema.count,
                            "missing": schema.count,
                            "scope": scope,
                            "siblings_with_field": sorted(carrying),
                            "sample_lines": _samples(where, schema.lines),
                        },
                    )
                )
    return out


def within_type(analysis: Analysis, config: RuleConfig, where) -> list[Finding]:
    out: list[Finding] = []
    for schema in analysis.types:
        for path, stats in schema.fields.items():
            if config.skip(schema.name, path):
                continue
            isolation = config.is_isolation(path)
            parent = path.rsplit(".", 1)[0] if "." in path else None
            parent_count = schema.fields[parent].count if parent in schema.fields else schema.count
            if stats.count < parent_count:
                out.append(
                    _make(
                        "partial_field",
                        "high" if isolation else "low",
                        schema,
                        path,
                        f"{path} is present in {stats.count} of {schema.count} {schema.name} events",
                        {
                            "events": schema.count,
                            "present": stats.count,
                            "missing": schema.count - stats.count,
                            "presence": round(stats.count / schema.count, 4),
                            "sample_lines_missing": _samples(where, stats.missing_lines),
                        },
                    )
                )
            nulls = stats.types.get("null", 0)
            if 0 < nulls < stats.count:
                out.append(
                    _make(
                        "null_field",
                        "high" if isolation else "low",
                        schema,
                        path,
                        f"{path} is null in {nulls} of {stats.count} {schema.name} events that carry it",
                        {
                            "events": schema.count,
                            "null": nulls,
                            "sample_lines_null": _samples(where, stats.lines_by_type.get("null", [])),
                        },
                    )
                )
            kinds = {("number" if t == "integer" else t) for t in stats.types if t != "null"}
            if len(kinds) > 1:
                out.append(
                    _make(
                        "type_mismatch",
                        "high" if isolation else "medium",
                        schema,
                        path,
                        f"{path} has different JSON types across {schema.name} events: "
                        + ", ".join(f"{t} ({n})" for t, n in sorted(stats.types.items())),
                        {
                            "events": schema.count,
                            "types": dict(sorted(stats.types.items())),
                            "sample_lines": {t: _samples(where, ls) for t, ls in sorted(stats.lines_by_type.items())},
                        },
                    )
                )
    return out


def _labels_of(counts: dict[str, int]) -> dict[str, int]:
    """Template -> events, without the overflow bucket."""
    return {t: n for t, n in counts.items() if "#" in t}


def key_segments(analysis: Analysis, config: RuleConfig, findings: list[Finding]) -> list[Finding]:
    """Key templates that skip a segment their siblings carry, and inconsistent templates in one type."""
    out = list(findings)
    by_field: dict[tuple[str, str], list[tuple[TypeSchema, dict[str, int]]]] = {}
    for schema in analysis.types:
        for path, counts in schema.key_templates.items():
            templates = _labels_of(counts)
            if not templates:
                continue
            if len({tuple(template_labels(t)) for t in templates}) > 1 and not config.is_exempt(schema.name):
                out.append(
                    _make(
                        "key_template_inconsistent",
                        "medium",
                        schema,
                        path,
                        f"{schema.name}.{path} keys use {len(templates)} templates: " + ", ".join(sorted(templates)),
                        {"events": schema.count, "templates": dict(sorted(templates.items()))},
                    )
                )
            # A template without any label ("{}#{}", from keys such as "#x") has no first label
            # and no sibling to compare with.
            first_labels = {labels[0] for t in templates if (labels := template_labels(t))}
            for first in first_labels:
                by_field.setdefault((path, first), []).append(
                    (schema, {t: n for t, n in templates.items() if template_labels(t)[:1] == [first]})
                )
    for (path, _first), members in sorted(by_field.items()):
        members = [(s, t) for s, t in members if not config.is_exempt(s.name)]
        if len(members) < 2:
            continue
        label_types: dict[str, set[str]] = {}
        for schema, templates in members:
            for template in templates:
                for label in template_labels(template):
                    label_types.setdefault(label, set()).add(schema.name)
        for schema, templates in members:
            for label, names in sorted(label_types.items()):
                if len(names) < 2 or len(names) / len(members) <= SIBLING_SHARE:
                    continue
                lacking = {t: n for t, n in templates.items() if label not in template_labels(t)}
                if not lacking:
                    continue
                out = _key_finding(out, config, schema, path, label, lacking, sorted(names), len(members))
    return out


def _key_finding(
    out: list[Finding],
    config: RuleConfig,
    schema: TypeSchema,
    path: str,
    label: str,
    lacking: dict[str, int],
    carriers: list[str],
    siblings: int,
) -> list[Finding]:
    isolation_field = config.label_field(label)
    evidence = {
        "templates": dict(sorted(lacking.items())),
        "segment": f"{label}#",
        "siblings_with_segment": carriers,
        "key_field": path,
    }
    if isolation_field is not None:
        for existing in out:
            if (
                existing.event_type == schema.name
                and existing.field is not None
                and existing.field.rsplit(".", 1)[-1] == isolation_field
                and existing.rule in ("missing_sibling_field", "required_field")
            ):
                existing.evidence["key_templates"] = evidence
                existing.message += f"; its keys ({path}) also skip the {label}# segment"
                return out
    events = sum(lacking.values())
    out.append(
        _make(
            "key_segment_missing",
            "high" if isolation_field else "medium",
            schema,
            path,
            f"{schema.name}.{path} key template {', '.join(sorted(lacking))} skips the {label}# segment that "
            f"{len(carriers)} of {siblings} sibling types carry ({events} events)",
            {"events": schema.count, **evidence},
            detail=label,
        )
    )
    return out
