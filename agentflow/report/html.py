"""The HTML reports, metrics and one run's timeline: one self-contained file each (inline CSS and
SVG, no scripts, no network), from the Jinja2 templates in ``templates/`` (autoescaped)."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from agentflow.metrics.model import OUTCOMES, ROLES, SEVERITIES, EstimateFigures, MetricsReport
from agentflow.report.charts import (
    OUTCOME_COLORS,
    ROLE_COLORS,
    SEVERITY_COLORS,
    Segment,
    hbar_chart,
    stacked_columns,
)
from agentflow.report.figures import (
    NA,
    empty_message,
    figure_rows,
    fmt_delta,
    fmt_float,
    fmt_hours,
    fmt_pct,
    fmt_speedup,
    fmt_usd,
    pattern_rows,
    period_label,
    plan_rows,
)
from agentflow.report.show import check_line, diffstat, header_rows, tokens_text, transcript_entries

if TYPE_CHECKING:
    from agentflow.show import Timeline


@cache
def environment() -> Environment:
    """Templates from ``agentflow/report/templates``; autoescaped, undefined variables are errors."""
    return Environment(
        loader=PackageLoader("agentflow.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _usd_axis(value: float) -> str:
    return f"${value:,.2f}" if value < 10 else f"${value:,.0f}"


def cycles_chart(report: MetricsReport) -> Markup:
    rows = [
        (
            f"{row.plan} {row.title or ''}".strip(),
            [
                Segment(
                    row.cycles,
                    OUTCOME_COLORS.get(row.outcome or "in progress", "#90a4ae"),
                    f"cycles ({(row.outcome or 'in progress').replace('_', ' ')})",
                )
            ],
        )
        for row in report.plans_detail
    ]
    outcomes = sorted({row.outcome or "in progress" for row in report.plans_detail})
    return hbar_chart(
        rows,
        label="Rework cycles per plan, coloured by outcome",
        value_format=lambda v: f"{v:.0f}",
        legend_items=[(o, OUTCOME_COLORS.get(o, "#90a4ae")) for o in outcomes],
        empty_message="No build run finished in this period",
    )


def outcomes_chart(report: MetricsReport) -> Markup:
    rows = [(name.replace("_", " "), [Segment(report.outcomes[name], OUTCOME_COLORS[name], name)]) for name in OUTCOMES]
    return hbar_chart(
        rows,
        label="Verdict outcomes per cycle",
        value_format=lambda v: f"{v:.0f}",
        empty_message="No verdict in this period",
    )


def findings_chart(report: MetricsReport) -> Markup:
    detail = report.findings.by_pattern_severity
    rows = []
    for pattern, count in report.findings.by_pattern.items():
        per_sev = detail.get(pattern) or {"info": count}
        rows.append((pattern, [Segment(per_sev.get(sev, 0), SEVERITY_COLORS[sev], sev) for sev in SEVERITIES]))
    used = [sev for sev in SEVERITIES if report.findings.by_severity.get(sev)]
    return hbar_chart(
        rows,
        label="Verifier findings by pattern, stacked by severity",
        value_format=lambda v: f"{v:.0f}",
        legend_items=[(sev, SEVERITY_COLORS[sev]) for sev in used],
        empty_message="No finding in this period",
    )


MAX_DAILY_COLUMNS = 62  # beyond two months a column per day is too thin to read: weeks, then months


def cost_buckets(by_day: dict[str, dict[str, float]]) -> tuple[str, list[tuple[str, dict[str, float]]]]:
    """The chart's columns: days, or weeks (from Monday) or months for long periods, with their label."""
    days = [(date.fromisoformat(day), cost) for day, cost in by_day.items()]
    if len(days) <= MAX_DAILY_COLUMNS:
        return "day", [(day.strftime("%b %d"), cost) for day, cost in days]
    if len(days) <= 7 * MAX_DAILY_COLUMNS:
        unit, key = "week", lambda d: (d - timedelta(days=d.weekday())).strftime("%b %d")
    else:
        unit, key = "month", lambda d: d.strftime("%b %Y")
    buckets: dict[str, dict[str, float]] = {}
    for day, cost in days:
        cell = buckets.setdefault(key(day), dict.fromkeys(ROLES, 0.0))
        for role in ROLES:
            cell[role] = round(cell[role] + cost[role], 6)
    return unit, list(buckets.items())


def cost_chart(report: MetricsReport) -> Markup:
    by_day = report.cost_usd.by_day
    if by_day is None:
        return hbar_chart([], label="Cost per role per day", empty_message="Cost is only in the ledger (not in git)")
    unit, buckets = cost_buckets(by_day)
    columns = [(label, [Segment(cost[role], ROLE_COLORS[role], role) for role in ROLES]) for label, cost in buckets]
    return stacked_columns(
        columns,
        label=f"Cost in US dollars per role per {unit}",
        value_format=_usd_axis,
        legend_items=[(role, ROLE_COLORS[role]) for role in ROLES],
        empty_message="No cost in this period",
    )


def _estimate_note(estimate: EstimateFigures) -> str:
    if estimate.estimated_hours is None:
        return "run start times are unknown here"
    if not estimate.plans:
        return "no approved plan with an estimate"
    note = f"{fmt_hours(estimate.estimated_hours)} estimated, {fmt_hours(estimate.actual_hours)} actual"
    return f"{note}; {estimate.speedup_note}" if estimate.speedup_note else note


def _kpis(report: MetricsReport) -> list[dict[str, str]]:
    """The headline figures, each with the change against the previous period."""
    prev = report.previous

    def card(title: str, value: str, kind: str, now: Any, before: Any, note: str = "") -> dict[str, str]:
        change = fmt_delta(kind, now, before) if prev else ""
        return {"title": title, "value": value, "change": change, "note": note}

    plans, cost, estimate = report.plans, report.cost_usd, report.estimate
    return [
        card(
            "Plans approved",
            f"{plans.approved} of {plans.built} built",
            "int",
            plans.approved,
            prev.plans.approved if prev else None,
            f"{plans.merged} merged",
        ),
        card(
            "First-pass approval",
            fmt_pct(report.first_pass_approval_rate),
            "pct",
            report.first_pass_approval_rate,
            prev.first_pass_approval_rate if prev else None,
            "approved in cycle 1",
        ),
        card(
            "Cycles per plan",
            fmt_float(report.cycles.mean_per_plan),
            "float",
            report.cycles.mean_per_plan,
            prev.cycles.mean_per_plan if prev else None,
            f"max {report.cycles.max}",
        ),
        card(
            "Cost per approved plan",
            fmt_usd(cost.per_approved_plan),
            "usd",
            cost.per_approved_plan,
            prev.cost_usd.per_approved_plan if prev else None,
            f"{fmt_usd(cost.total)} in total" if cost.total is not None else "cost is only in the ledger",
        ),
        card(
            "Speedup vs estimate",
            fmt_speedup(estimate.speedup),
            "speedup",
            estimate.speedup,
            prev.estimate.speedup if prev else None,
            _estimate_note(estimate),
        ),
    ]


def metrics_html(report: MetricsReport) -> str:
    """The metrics report as one self-contained HTML page."""
    template = environment().get_template("metrics.html.j2")
    sections: dict[str, list[Any]] = {}
    by_day = report.cost_usd.by_day
    cost_unit = cost_buckets(by_day)[0] if by_day else "day"
    for row in figure_rows(report):
        sections.setdefault(row.section, []).append(row)
    return template.render(
        report=report,
        period=period_label(report),
        empty=report.empty,
        empty_message=empty_message(report),
        kpis=_kpis(report),
        charts=[
            ("Cycles per plan", cycles_chart(report)),
            ("Verdict outcomes", outcomes_chart(report)),
            ("Findings by pattern", findings_chart(report)),
            (f"Cost per role per {cost_unit}", cost_chart(report)),
        ],
        sections=sections,
        patterns=pattern_rows(report),
        plans=plan_rows(report),
        na=NA,
    )


def show_html(timeline: Timeline) -> str:
    transcripts = {sid: transcript_entries(m) for sid, m in (timeline.transcripts or {}).items()}
    return (
        environment()
        .get_template("show.html.j2")
        .render(
            t=timeline,
            header=header_rows(timeline.run),
            diffstat=diffstat,
            check_line=check_line,
            usd=fmt_usd,
            tokens=tokens_text,
            transcripts=transcripts,
            na=NA,
        )
    )
