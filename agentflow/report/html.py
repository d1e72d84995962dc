"""The HTML reports: one self-contained file each (inline CSS and SVG, no scripts, no network)."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from agentflow.metrics import OUTCOMES, ROLES, SEVERITIES
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


def cycles_chart(report: dict[str, Any]) -> Markup:
    rows = [
        (
            f"{row['plan']} {row.get('title') or ''}".strip(),
            [
                Segment(
                    row["cycles"],
                    OUTCOME_COLORS.get(row.get("outcome") or "in progress", "#90a4ae"),
                    f"cycles ({(row.get('outcome') or 'in progress').replace('_', ' ')})",
                )
            ],
        )
        for row in report.get("plans_detail") or []
    ]
    outcomes = sorted({row.get("outcome") or "in progress" for row in report.get("plans_detail") or []})
    return hbar_chart(
        rows,
        label="Rework cycles per plan, coloured by outcome",
        value_format=lambda v: f"{v:.0f}",
        legend_items=[(o, OUTCOME_COLORS.get(o, "#90a4ae")) for o in outcomes],
        empty_message="No build run finished in this period",
    )


def outcomes_chart(report: dict[str, Any]) -> Markup:
    rows = [
        (name.replace("_", " "), [Segment(report["outcomes"][name], OUTCOME_COLORS[name], name)]) for name in OUTCOMES
    ]
    return hbar_chart(
        rows,
        label="Verdict outcomes per cycle",
        value_format=lambda v: f"{v:.0f}",
        empty_message="No verdict in this period",
    )


def findings_chart(report: dict[str, Any]) -> Markup:
    detail = report["findings"].get("by_pattern_severity") or {}
    rows = []
    for pattern, count in report["findings"]["by_pattern"].items():
        per_sev = detail.get(pattern) or {"info": count}
        rows.append((pattern, [Segment(per_sev.get(sev, 0), SEVERITY_COLORS[sev], sev) for sev in SEVERITIES]))
    used = [sev for sev in SEVERITIES if report["findings"]["by_severity"].get(sev)]
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


def cost_chart(report: dict[str, Any]) -> Markup:
    by_day = report["cost_usd"].get("by_day")
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


def _estimate_note(estimate: dict[str, Any]) -> str:
    if estimate.get("estimated_hours") is None:
        return "run start times are unknown here"
    if not estimate.get("plans"):
        return "no approved plan with an estimate"
    note = f"{fmt_hours(estimate['estimated_hours'])} estimated, {fmt_hours(estimate['actual_hours'])} actual"
    return f"{note}; {estimate['speedup_note']}" if estimate.get("speedup_note") else note


def _kpis(report: dict[str, Any]) -> list[dict[str, str]]:
    """The headline figures, each with the change against the previous period."""
    prev = report.get("previous") or {}

    def card(title: str, value: str, kind: str, now: Any, before: Any, note: str = "") -> dict[str, str]:
        change = fmt_delta(kind, now, before) if prev else ""
        return {"title": title, "value": value, "change": change, "note": note}

    plans, prev_plans = report["plans"], prev.get("plans") or {}
    cost, prev_cost = report["cost_usd"], prev.get("cost_usd") or {}
    estimate, prev_estimate = report["estimate"], prev.get("estimate") or {}
    return [
        card(
            "Plans approved",
            f"{plans['approved']} of {plans['built']} built",
            "int",
            plans["approved"],
            prev_plans.get("approved"),
            f"{plans['merged']} merged",
        ),
        card(
            "First-pass approval",
            fmt_pct(report["first_pass_approval_rate"]),
            "pct",
            report["first_pass_approval_rate"],
            prev.get("first_pass_approval_rate"),
            "approved in cycle 1",
        ),
        card(
            "Cycles per plan",
            fmt_float(report["cycles"]["mean_per_plan"]),
            "float",
            report["cycles"]["mean_per_plan"],
            (prev.get("cycles") or {}).get("mean_per_plan"),
            f"max {report['cycles']['max']}",
        ),
        card(
            "Cost per approved plan",
            fmt_usd(cost.get("per_approved_plan")),
            "usd",
            cost.get("per_approved_plan"),
            prev_cost.get("per_approved_plan"),
            f"{fmt_usd(cost['total'])} in total" if cost.get("total") is not None else "cost is only in the ledger",
        ),
        card(
            "Speedup vs estimate",
            fmt_speedup(estimate.get("speedup")),
            "speedup",
            estimate.get("speedup"),
            prev_estimate.get("speedup"),
            _estimate_note(estimate),
        ),
    ]


def render_html(report: dict[str, Any]) -> str:
    """The metrics report as one self-contained HTML page."""
    template = environment().get_template("metrics.html.j2")
    sections: dict[str, list[Any]] = {}
    by_day = report["cost_usd"].get("by_day")
    cost_unit = cost_buckets(by_day)[0] if by_day else "day"
    for row in figure_rows(report):
        sections.setdefault(row.section, []).append(row)
    return template.render(
        report=report,
        period=period_label(report),
        empty=bool(report.get("empty")),
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
