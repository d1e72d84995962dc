"""Schema baselines: save the inferred schemas, later report drift against them.

A baseline is a small JSON file (``--save-baseline FILE``)::

    {"agentflow_baseline": 1, "events": N,
     "types": {"AccountCreated": {"count": N, "fields": {"tenant_id": ["string"], ...}}}}

Drift rules (``--baseline FILE``): ``drift_field_removed`` (medium; low for a field in fewer than
half of the baseline's events; never for a field whose parent is null in every newer event; critical for an isolation
field), ``drift_type_changed`` (medium), ``drift_field_added`` (low), ``drift_type_added`` and
``drift_type_missing`` (info: a log sample may simply not contain every type).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentflow.errors import UsageError
from agentflow.evaluator.analysis import Analysis, Finding
from agentflow.evaluator.rules import RuleConfig, finding_id

BASELINE_VERSION = 1


def baseline_of(analysis: Analysis) -> dict[str, Any]:
    return {
        "agentflow_baseline": BASELINE_VERSION,
        "events": analysis.events,
        "types": {
            t.name: {
                "count": t.count,
                "fields": {path: sorted(f.types) for path, f in t.fields.items()},
                # share of the events where the parent is an object (optional fields: low when gone)
                "presence": {path: round(t.presence(path), 4) for path in t.fields},
            }
            for t in analysis.types
        },
    }


def save_baseline(analysis: Analysis, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        from agentflow.evaluator.report import render_json

        path.write_text(render_json(baseline_of(analysis), sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the baseline: {exc.strerror}", where=path) from None


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("no such baseline", where=path, fix="create one with --save-baseline") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"not a readable baseline: {exc}", where=path, fix="recreate it with --save-baseline"
        ) from None
    if (
        not isinstance(data, dict)
        or data.get("agentflow_baseline") != BASELINE_VERSION
        or not isinstance(data.get("types"), dict)
    ):
        raise UsageError("not an agentflow baseline (version 1)", where=path, fix="recreate it with --save-baseline")
    return data


def _finding(
    rule: str, severity: str, event_type: str, path: str | None, message: str, evidence: dict[str, Any]
) -> Finding:
    return Finding(rule, severity, event_type, path, message, evidence, id=finding_id(rule, event_type, path))


def drift(analysis: Analysis, baseline: dict[str, Any], config: RuleConfig, source: str = "baseline") -> list[Finding]:
    """Findings for every difference between the analysed schemas and ``baseline``."""
    out: list[Finding] = []
    before: dict[str, Any] = baseline["types"]
    now = {t.name: t for t in analysis.types}
    for name in sorted(set(before) - set(now)):
        out.append(
            _finding(
                "drift_type_missing",
                "info",
                name,
                None,
                f"{name} is in the baseline but not in these logs",
                {"baseline": source},
            )
        )
    for name in sorted(set(now) - set(before)):
        out.append(
            _finding(
                "drift_type_added",
                "info",
                name,
                None,
                f"{name} is new since the baseline ({now[name].count} events)",
                {"baseline": source},
            )
        )
    for name in sorted(set(now) & set(before)):
        old_fields: dict[str, list[str]] = before[name].get("fields", {})
        schema = now[name]
        presence: dict[str, float] = before[name].get("presence", {})
        for path in [p for p in old_fields if p not in schema.fields]:
            if config.skip(name, path) or any(p in old_fields and p not in schema.fields for p in _ancestors(path)):
                continue
            if "{*}" in path:
                continue  # the keys of a map-like object
            if "." in path and schema.parent_objects(path) == 0:
                continue  # its parent was null (or not an object) in every newer event: nothing to compare
            critical = config.is_isolation(path)
            optional = presence.get(path, 1.0) < 0.5  # in fewer than half of the baseline's events
            out.append(
                _finding(
                    "drift_field_removed",
                    "critical" if critical else ("low" if optional else "medium"),
                    name,
                    path,
                    f"{name} no longer carries {path} (present in the baseline)",
                    {
                        "baseline": source,
                        "events": schema.count,
                        "sample_lines": [analysis.where(loc) for loc in schema.lines],
                    },
                )
            )
        for path, stats in schema.fields.items():
            if path not in old_fields:
                if any(p not in old_fields for p in _ancestors(path)):
                    continue
                out.append(
                    _finding(
                        "drift_field_added",
                        "low",
                        name,
                        path,
                        f"{name} gained {path} since the baseline ({stats.count} events)",
                        {"baseline": source, "events": stats.count},
                    )
                )
                continue
            old = {("number" if t == "integer" else t) for t in old_fields[path] if t != "null"}
            new = {("number" if t == "integer" else t) for t in stats.types if t != "null"}
            if old and new and old != new:
                out.append(
                    _finding(
                        "drift_type_changed",
                        "medium",
                        name,
                        path,
                        f"{name}.{path} changed type from {'/'.join(sorted(old))} to {'/'.join(sorted(new))}",
                        {"baseline": source, "before": sorted(old), "after": sorted(new)},
                    )
                )
    return out


def _ancestors(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]
