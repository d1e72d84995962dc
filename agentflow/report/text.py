"""The metrics report as aligned plain text (the terminal default)."""

from __future__ import annotations

from agentflow.metrics.model import MetricsReport
from agentflow.report.figures import empty_message, figure_rows, pattern_rows, period_label, plan_rows


def _table(header: list[str], rows: list[list[str]], left: frozenset[int] = frozenset({0})) -> list[str]:
    """Columns padded to their widest cell; the ``left`` columns are text, the others numbers."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=False))
        )
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return [line.rstrip() for line in lines]


def render_text(report: MetricsReport) -> str:
    lines = [f"agentflow metrics  {period_label(report)}  (source: {report.source})", ""]
    if report.empty:
        lines.append(empty_message(report))
        return "\n".join(lines) + "\n"
    section = None
    table: list[list[str]] = []
    for row in figure_rows(report):
        if row.section != section:
            section = row.section
            table.append([f"[{section}]", "", "", ""])
        table.append([f"  {row.label}", row.value, row.previous, row.change])
    lines += _table(["Figure", "This period", "Previous", "Change"], table)
    patterns = pattern_rows(report)
    if patterns:
        lines += ["", "Findings by pattern (what the verifier catches most):"]
        lines += _table(["Pattern", "Findings", "Previous"], [list(p) for p in patterns])
    plans = plan_rows(report)
    if plans:
        lines += ["", "Plans finished in this period:"]
        lines += _table(
            ["Plan", "Runs", "Cycles", "Outcome", "Estimate", "Actual"],
            [
                [
                    f"{p['plan']} {p['title']}".strip()[:60],
                    p["runs"],
                    p["cycles"],
                    p["outcome"],
                    p["estimate"],
                    p["actual"],
                ]
                for p in plans
            ],
            left=frozenset({0, 3}),
        )
    if report.source == "git":
        lines += ["", "From git alone: sessions, tokens and cost are only in the ledger (shown as —)."]
    return "\n".join(lines) + "\n"
