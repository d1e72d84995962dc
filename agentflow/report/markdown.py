"""The metrics report as GitHub-flavoured Markdown (for PR comments and job summaries)."""

from __future__ import annotations

from agentflow.metrics.model import MetricsReport
from agentflow.report.figures import empty_message, figure_rows, pattern_rows, period_label, plan_rows


def _cell(text: str) -> str:
    """A table cell: pipes escaped, newlines flattened, and no raw HTML (titles come from plan files)."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: MetricsReport) -> str:
    lines = [f"## agentflow metrics: {period_label(report)}", ""]
    if report.empty:
        return "\n".join([*lines, empty_message(report), ""])
    rows = [[r.label, r.value, r.previous, r.change] for r in figure_rows(report)]
    lines += _table(["Figure", "This period", "Previous", "Change"], rows, [":---", "---:", "---:", "---:"])
    patterns = pattern_rows(report)
    if patterns:
        lines += ["", "### Findings by pattern", ""]
        lines += _table(["Pattern", "Findings", "Previous"], [list(p) for p in patterns], [":---", "---:", "---:"])
    plans = plan_rows(report)
    if plans:
        lines += ["", "### Plans finished in this period", ""]
        lines += _table(
            ["Plan", "Title", "Runs", "Cycles", "Outcome", "Estimate", "Actual"],
            [[p["plan"], p["title"], p["runs"], p["cycles"], p["outcome"], p["estimate"], p["actual"]] for p in plans],
            [":---", ":---", "---:", "---:", ":---", "---:", "---:"],
        )
    lines += ["", f"_Source: {report.source}. Definitions: docs/metrics.md._", ""]
    return "\n".join(lines)
