"""The figures of a metrics report as labelled, formatted rows shared by every format.

Text, Markdown and HTML all print ``figure_rows(report)``, so a figure reads the same everywhere
and a test can check one list against all three outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agentflow.metrics import OUTCOMES, ROLES, SEVERITIES

NA = "—"
Formatter = Callable[[Any], str]


def fmt_int(value: Any) -> str:
    return NA if value is None else f"{int(value):,}"


def fmt_float(value: Any) -> str:
    return NA if value is None else f"{value:,.2f}"


def fmt_pct(value: Any) -> str:
    return NA if value is None else f"{value * 100:.1f}%"


def fmt_usd(value: Any) -> str:
    return NA if value is None else f"${value:,.2f}"


def fmt_hours(value: Any) -> str:
    """Time in the unit that fits: seconds below a minute, minutes below an hour, else hours (an agent
    run is often seconds or minutes, an estimate days)."""
    if value is None:
        return NA
    if 0 <= value < 1:
        seconds = value * 3600
        if seconds < 59.5:
            return f"{seconds:.0f} s"
        return f"{seconds / 60:.0f} min"
    return f"{value:,.2f} h"


def fmt_speedup(value: Any) -> str:
    if value is None:
        return NA
    return f"{value:,.0f}×" if value >= 100 else f"{value:,.2f}×"


def _signed(value: float, text: str) -> str:
    if round(value, 6) == 0:
        return "0"
    return f"+{text}" if value > 0 else f"−{text}"


def fmt_delta(kind: str, now: Any, before: Any) -> str:
    """The change from ``before`` to ``now``; empty when either is unknown."""
    if not isinstance(now, (int, float)) or not isinstance(before, (int, float)):
        return ""
    diff = now - before
    match kind:
        case "int":
            return _signed(diff, f"{abs(int(diff)):,}")
        case "pct":
            return _signed(diff, f"{abs(diff) * 100:.1f} pts")
        case "usd":
            return _signed(diff, f"${abs(diff):,.2f}")
        case "hours":
            return _signed(diff, fmt_hours(abs(diff)))
        case "speedup":
            return _signed(diff, f"{abs(diff):,.2f}×")
        case _:
            return _signed(diff, f"{abs(diff):,.2f}")


FORMATTERS: dict[str, Formatter] = {
    "int": fmt_int,
    "float": fmt_float,
    "pct": fmt_pct,
    "usd": fmt_usd,
    "hours": fmt_hours,
    "speedup": fmt_speedup,
}


@dataclass(frozen=True)
class Row:
    section: str
    label: str
    value: str
    previous: str
    change: str
    key: str  # dotted path in the JSON, e.g. "plans.built"


def _get(data: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _spec() -> list[tuple[str, str, str, str]]:
    """(section, label, JSON path, kind) of every figure, in reading order."""
    spec = [
        ("Plans", "Plans built", "plans.built", "int"),
        ("Plans", "Plans approved", "plans.approved", "int"),
        ("Plans", "Plans merged", "plans.merged", "int"),
        ("Plans", "Plans capped", "plans.capped", "int"),
        ("Plans", "Plans rejected", "plans.rejected", "int"),
        ("Plans", "Runs", "runs", "int"),
    ]
    spec += [("Sessions", f"{role.capitalize()} sessions", f"sessions.{role}", "int") for role in ROLES]
    spec += [
        ("Cycles", "Cycles (total)", "cycles.total", "int"),
        ("Cycles", "Cycles per plan (mean)", "cycles.mean_per_plan", "float"),
        ("Cycles", "Cycles (max of a run)", "cycles.max", "int"),
        ("Cycles", "First-pass approval rate", "first_pass_approval_rate", "pct"),
    ]
    spec += [("Outcomes", f"Verdicts {name.replace('_', ' ')}", f"outcomes.{name}", "int") for name in OUTCOMES]
    spec += [("Outcomes", "Human overrides", "overrides", "int")]
    spec += [("Findings", "Verifier findings", "findings.total", "int")]
    spec += [("Findings", f"Findings {sev}", f"findings.by_severity.{sev}", "int") for sev in SEVERITIES]
    spec += [
        ("Findings", "Evaluator findings opened", "evaluator_findings.opened", "int"),
        ("Findings", "Evaluator findings closed", "evaluator_findings.closed", "int"),
        ("Findings", "Evaluator findings open", "evaluator_findings.open", "int"),
        ("Tokens", "Input tokens", "tokens.input", "int"),
        ("Tokens", "Output tokens", "tokens.output", "int"),
        ("Tokens", "Cache read tokens", "tokens.cache_read", "int"),
        ("Tokens", "Cache write tokens", "tokens.cache_write", "int"),
        ("Tokens", "Cache hit ratio", "cache_hit_ratio", "pct"),
        ("Cost", "Cost (total)", "cost_usd.total", "usd"),
    ]
    spec += [("Cost", f"Cost {role}", f"cost_usd.per_role.{role}", "usd") for role in ROLES]
    spec += [
        ("Cost", "Cost per approved plan", "cost_usd.per_approved_plan", "usd"),
        ("Git", "Commits with agentflow trailers", "commits", "int"),
        ("Time", "Time to approval (mean)", "time_to_approval_hours.mean", "hours"),
        ("Time", "Time to approval (max)", "time_to_approval_hours.max", "hours"),
        ("Time", "Estimated hours (approved plans)", "estimate.estimated_hours", "hours"),
        ("Time", "Actual hours (same plans)", "estimate.actual_hours", "hours"),
        ("Time", "Speedup", "estimate.speedup", "speedup"),
    ]
    return spec


def figure_rows(report: dict[str, Any]) -> list[Row]:
    """Every figure of ``report`` with its previous value and the change, formatted."""
    previous = report.get("previous") or {}
    rows = []
    for section, label, path, kind in _spec():
        now, before = _get(report, path), _get(previous, path) if previous else None
        value = FORMATTERS[kind](now)
        if kind == "speedup" and now is None and _get(report, "estimate.speedup_note"):
            value = f"{NA} (actual time under 1 min)"  # too short to compare with an estimate: say why
        rows.append(
            Row(
                section,
                label,
                value,
                FORMATTERS[kind](before) if previous else NA,
                fmt_delta(kind, now, before),
                path,
            )
        )
    return rows


def period_label(report: dict[str, Any]) -> str:
    """``2026-11-20 00:00 → 2026-11-27 00:00 UTC``."""
    start = datetime.fromisoformat(report["period"]["start"])
    end = datetime.fromisoformat(report["period"]["end"])
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"


def empty_message(report: dict[str, Any]) -> str:
    return (
        f"Nothing in this period ({period_label(report)}): no agentflow runs, sessions, verdicts, "
        "merges or commits. Widen it with --since (e.g. --since 30d)."
    )


def plan_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    """The per-plan table: plan, title, runs, cycles, outcome, estimate, actual."""
    return [
        {
            "plan": str(row["plan"]),
            "title": row.get("title") or "",
            "runs": fmt_int(row["runs"]),
            "cycles": fmt_int(row["cycles"]),
            "outcome": (row.get("outcome") or "in progress").replace("_", " "),
            "estimate": fmt_hours(row.get("estimate_hours")),
            "actual": fmt_hours(row.get("actual_hours")),
        }
        for row in report.get("plans_detail") or []
    ]


def pattern_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(pattern, findings now, findings in the previous period)."""
    now = report["findings"]["by_pattern"]
    before = ((report.get("previous") or {}).get("findings") or {}).get("by_pattern") or {}
    return [(name, fmt_int(count), fmt_int(before.get(name, 0))) for name, count in now.items()]
