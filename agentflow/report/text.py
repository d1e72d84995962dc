"""Every plain-text report (the terminal default): metrics, one verification, one run's timeline,
the status table and the log's event lines. Plain and aligned, no colour or box drawing: they must
read well in CI logs and pipes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentflow.report.figures import (
    empty_message,
    figure_rows,
    pattern_rows,
    period_label,
    plan_rows,
)

# the status table and the log's event lines live in ``agentflow.report.lines``, which imports
# nothing heavy (`status` and `log` start fast, #19 item 1); re-exported: every text report is here
from agentflow.report.lines import KEY_FIELDS, event_line, gate_text, status_table  # noqa: F401
from agentflow.report.show import show_text  # noqa: F401 - re-exported: every text report is here
from agentflow.text import one_line

if TYPE_CHECKING:
    from agentflow.metrics.model import MetricsReport
    from agentflow.report.verify import VerifyReport


def aligned_table(header: list[str], rows: list[list[str]], left: frozenset[int] = frozenset({0})) -> list[str]:
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


def metrics_text(report: MetricsReport) -> str:
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
    lines += aligned_table(["Figure", "This period", "Previous", "Change"], table)
    patterns = pattern_rows(report)
    if patterns:
        lines += ["", "Findings by pattern (what the verifier catches most):"]
        lines += aligned_table(["Pattern", "Findings", "Previous"], [list(p) for p in patterns])
    plans = plan_rows(report)
    if plans:
        lines += ["", "Plans finished in this period:"]
        lines += aligned_table(
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


# -- one verification (`agentflow verify`) --------------------------------------------------------


def verify_text(report: VerifyReport) -> str:
    from agentflow.report.verify import check_status, location  # here: metrics and show import no VerifyReport

    lines = [
        report.title,
        f"base {report.base} ({report.base_commit[:12]})  head {report.head[:12]}  "
        f"run {report.run_id}  cost ${report.cost_usd:.2f}",
    ]
    if report.decision:
        lines.append(f"decision: {report.decision}")
    # every field a model, a note or the change supplied is folded onto its line, after agentflow's own
    # words: a file name or summary holding "\n::add-mask::..." started a workflow command in an Actions log
    if report.summary:
        lines += ["", f"summary: {one_line(report.summary)}"]
    if report.checks:
        lines += ["", "Checks:"]
        lines += [
            f"  {'PASS' if c.get('passed') else 'FAIL'} {c['command']} ({check_status(c)}, "
            f"{c.get('duration_s', 0):.1f}s)"
            for c in report.checks
        ]
    if report.criteria:
        lines += ["", "Acceptance criteria:"]
        for c in report.criteria:
            evidence = f" - {one_line(c['evidence'])}" if c.get("evidence") else ""
            lines.append(
                f"  {one_line(c['status']).upper():10} {one_line(c['id'])}: {one_line(c.get('text', ''))}{evidence}"
            )
    if report.findings:
        lines += ["", "Findings:"]
        for f in report.findings:
            where = f" {one_line(location(f))}" if location(f) else ""
            pattern = f" [{one_line(f['pattern'])}]" if f.get("pattern") else ""
            severity = one_line(f["severity"]).upper()
            lines.append(f"  {severity:8} {one_line(f['id'])}{where}{pattern}: {one_line(f['message'])}")
            if f.get("suggestion"):
                lines.append(f"           fix: {one_line(f['suggestion'])}")
    if report.reasons and not report.passed:
        lines += ["", "Not approved because:"] + [f"  - {one_line(r)}" for r in report.reasons]
    return "\n".join(lines) + "\n"


# -- the gate (`agentflow gate`) -----------------------------------------------------------------
