"""The figures of a metrics report as labelled, formatted rows shared by every format.

Text, Markdown and HTML all print ``figure_rows(report)``, so a figure reads the same everywhere
and a test can check one list against all three outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

from agentflow.report.fmt import (  # noqa: F401 - re-exported: the figures' formatters
    FORMATTERS,
    NA,
    Formatter,
    fmt_delta,
    fmt_float,
    fmt_hours,
    fmt_int,
    fmt_pct,
    fmt_speedup,
    fmt_usd,
)

if TYPE_CHECKING:
    from agentflow.metrics.model import MetricsReport


class Row(NamedTuple):  # Row and Figure: NamedTuples, half a frozen dataclass's cost at import (#19)
    section: str
    label: str
    value: str
    previous: str
    change: str
    key: str  # dotted path in the JSON, e.g. "plans.built"


class Figure(NamedTuple):
    """One figure of the report: where it is shown, how it is formatted, and how it is read."""

    section: str
    label: str
    key: str  # its dotted path in the JSON (the HTML table's ``data-key``)
    kind: str  # a key of FORMATTERS
    read: Callable[[MetricsReport], Any]


def _entry(part: Callable[[MetricsReport], dict[str, Any] | None], name: str) -> Callable[[MetricsReport], Any]:
    """Reads ``name`` of a mapping keyed by data (a role, an outcome, a severity); None when it is unknown."""
    return lambda r: (part(r) or {}).get(name)


def _evaluator(name: str) -> Callable[[MetricsReport], Any]:
    return lambda r: getattr(r.evaluator_findings, name) if r.evaluator_findings else None


def _tokens(name: str) -> Callable[[MetricsReport], Any]:
    return lambda r: getattr(r.tokens, name) if r.tokens else None


@cache
def figures() -> tuple[Figure, ...]:
    """Every figure, in reading order (built on first use: the gate's renderers share this package and
    must not import the metrics model)."""
    from agentflow.metrics.model import OUTCOMES, ROLES, SEVERITIES

    spec = [
        Figure("Plans", "Plans built", "plans.built", "int", lambda r: r.plans.built),
        Figure("Plans", "Plans approved", "plans.approved", "int", lambda r: r.plans.approved),
        Figure("Plans", "Plans merged", "plans.merged", "int", lambda r: r.plans.merged),
        Figure("Plans", "Plans capped", "plans.capped", "int", lambda r: r.plans.capped),
        Figure("Plans", "Plans rejected", "plans.rejected", "int", lambda r: r.plans.rejected),
        Figure("Plans", "Runs", "runs", "int", lambda r: r.runs),
    ]
    spec += [
        Figure(
            "Sessions", f"{role.capitalize()} sessions", f"sessions.{role}", "int", _entry(lambda r: r.sessions, role)
        )
        for role in ROLES
    ]
    spec += [
        Figure("Cycles", "Cycles (total)", "cycles.total", "int", lambda r: r.cycles.total),
        Figure("Cycles", "Cycles per plan (mean)", "cycles.mean_per_plan", "float", lambda r: r.cycles.mean_per_plan),
        Figure("Cycles", "Cycles (max of a run)", "cycles.max", "int", lambda r: r.cycles.max),
        Figure(
            "Cycles",
            "First-pass approval rate",
            "first_pass_approval_rate",
            "pct",
            lambda r: r.first_pass_approval_rate,
        ),
    ]
    spec += [
        Figure(
            "Outcomes",
            f"Verdicts {name.replace('_', ' ')}",
            f"outcomes.{name}",
            "int",
            _entry(lambda r: r.outcomes, name),
        )
        for name in OUTCOMES
    ]
    spec += [
        Figure("Outcomes", "Human overrides", "overrides", "int", lambda r: r.overrides),
        Figure("Findings", "Verifier findings", "findings.total", "int", lambda r: r.findings.total),
    ]
    spec += [
        Figure(
            "Findings",
            f"Findings {sev}",
            f"findings.by_severity.{sev}",
            "int",
            _entry(lambda r: r.findings.by_severity, sev),
        )
        for sev in SEVERITIES
    ]
    spec += [
        Figure("Findings", "Evaluator findings opened", "evaluator_findings.opened", "int", _evaluator("opened")),
        Figure("Findings", "Evaluator findings closed", "evaluator_findings.closed", "int", _evaluator("closed")),
        Figure("Findings", "Evaluator findings open", "evaluator_findings.open", "int", _evaluator("open")),
        Figure("Tokens", "Input tokens", "tokens.input", "int", _tokens("input")),
        Figure("Tokens", "Output tokens", "tokens.output", "int", _tokens("output")),
        Figure("Tokens", "Cache read tokens", "tokens.cache_read", "int", _tokens("cache_read")),
        Figure("Tokens", "Cache write tokens", "tokens.cache_write", "int", _tokens("cache_write")),
        Figure("Tokens", "Cache hit ratio", "cache_hit_ratio", "pct", lambda r: r.cache_hit_ratio),
        Figure("Cost", "Cost (total)", "cost_usd.total", "usd", lambda r: r.cost_usd.total),
    ]
    spec += [
        Figure("Cost", f"Cost {role}", f"cost_usd.per_role.{role}", "usd", _entry(lambda r: r.cost_usd.per_role, role))
        for role in ROLES
    ]
    spec += [
        Figure(
            "Cost",
            "Cost per approved plan",
            "cost_usd.per_approved_plan",
            "usd",
            lambda r: r.cost_usd.per_approved_plan,
        ),
        Figure("Git", "Commits with agentflow trailers", "commits", "int", lambda r: r.commits),
        Figure(
            "Time",
            "Time to approval (mean)",
            "time_to_approval_hours.mean",
            "hours",
            lambda r: r.time_to_approval_hours.mean,
        ),
        Figure(
            "Time",
            "Time to approval (max)",
            "time_to_approval_hours.max",
            "hours",
            lambda r: r.time_to_approval_hours.max,
        ),
        Figure(
            "Time",
            "Estimated hours (approved plans)",
            "estimate.estimated_hours",
            "hours",
            lambda r: r.estimate.estimated_hours,
        ),
        Figure(
            "Time", "Actual hours (same plans)", "estimate.actual_hours", "hours", lambda r: r.estimate.actual_hours
        ),
        Figure("Time", "Speedup", "estimate.speedup", "speedup", lambda r: r.estimate.speedup),
    ]
    return tuple(spec)


def figure_rows(report: MetricsReport) -> list[Row]:
    """Every figure of ``report`` with its previous value and the change, formatted."""
    previous = report.previous
    rows = []
    for figure in figures():
        fmt = FORMATTERS[figure.kind]
        now = figure.read(report)
        before = figure.read(previous) if previous else None
        value = fmt(now)
        if figure.kind == "speedup" and now is None and report.estimate.speedup_note:
            value = f"{NA} (actual time under 1 min)"  # too short to compare with an estimate: say why
        rows.append(
            Row(
                figure.section,
                figure.label,
                value,
                fmt(before) if previous else NA,
                fmt_delta(figure.kind, now, before),
                figure.key,
            )
        )
    return rows


def period_label(report: MetricsReport) -> str:
    """``2026-11-20 00:00 → 2026-11-27 00:00 UTC``."""
    start = datetime.fromisoformat(report.period.start)
    end = datetime.fromisoformat(report.period.end)
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC"


def empty_message(report: MetricsReport) -> str:
    return (
        f"Nothing in this period ({period_label(report)}): no agentflow runs, sessions, verdicts, "
        "merges or commits. Widen it with --since (e.g. --since 30d)."
    )


def plan_rows(report: MetricsReport) -> list[dict[str, str]]:
    """The per-plan table: plan, title, runs, cycles, outcome, estimate, actual (formatted cells)."""
    return [
        {
            "plan": str(row.plan),
            "title": row.title or "",
            "runs": fmt_int(row.runs),
            "cycles": fmt_int(row.cycles),
            "outcome": (row.outcome or "in progress").replace("_", " "),
            "estimate": fmt_hours(row.estimate_hours),
            "actual": fmt_hours(row.actual_hours),
        }
        for row in report.plans_detail
    ]


def pattern_rows(report: MetricsReport) -> list[tuple[str, str, str]]:
    """(pattern, findings now, findings in the previous period)."""
    now = report.findings.by_pattern
    before = report.previous.findings.by_pattern if report.previous else {}
    return [(name, fmt_int(count), fmt_int(before.get(name, 0))) for name, count in now.items()]
