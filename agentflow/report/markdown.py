"""Every Markdown report (GitHub-flavoured, for PR comments and job summaries): metrics, one
verification, one run's timeline.

Every cell and inline line a report fills with outside text (plan titles, commands, the model's
summaries, findings and evidence) goes through ``markdown_cell``, the one escaper."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentflow.report.figures import NA, empty_message, figure_rows, fmt_usd, pattern_rows, period_label, plan_rows
from agentflow.report.show import diffstat, evidence_cell, header_rows, tokens_text, transcript_entries
from agentflow.report.verify import VerifyReport, check_status, location
from agentflow.text import markdown_cell, markdown_code

if TYPE_CHECKING:
    from agentflow.metrics.model import MetricsReport
    from agentflow.show import Timeline


def markdown_table(header: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return lines


def metrics_markdown(report: MetricsReport) -> str:
    lines = [f"## agentflow metrics: {period_label(report)}", ""]
    if report.empty:
        return "\n".join([*lines, empty_message(report), ""])
    rows = [[r.label, r.value, r.previous, r.change] for r in figure_rows(report)]
    lines += markdown_table(["Figure", "This period", "Previous", "Change"], rows, [":---", "---:", "---:", "---:"])
    patterns = pattern_rows(report)
    if patterns:
        lines += ["", "### Findings by pattern", ""]
        lines += markdown_table(
            ["Pattern", "Findings", "Previous"], [list(p) for p in patterns], [":---", "---:", "---:"]
        )
    plans = plan_rows(report)
    if plans:
        lines += ["", "### Plans finished in this period", ""]
        lines += markdown_table(
            ["Plan", "Title", "Runs", "Cycles", "Outcome", "Estimate", "Actual"],
            [[p["plan"], p["title"], p["runs"], p["cycles"], p["outcome"], p["estimate"], p["actual"]] for p in plans],
            [":---", ":---", "---:", "---:", ":---", "---:", "---:"],
        )
    lines += ["", f"_Source: {report.source}. Definitions: docs/metrics.md._", ""]
    return "\n".join(lines)


# -- one verification (`agentflow verify --format md`, the step summary) -----------------------------


def verify_markdown(report: VerifyReport) -> str:
    icon = "✅" if report.passed else ("⚠️" if report.outcome == "no_verdict" else "❌")
    plan = (
        f"plan {markdown_code(report.plan_id)} {markdown_cell(report.plan_title)}"
        if report.plan_id
        else "no plan (patterns only)"
    )
    lines = [
        f"## {icon} agentflow verify: `{report.outcome}`",
        "",
        f"{plan} · base {markdown_code(report.base)} (`{report.base_commit[:12]}`) · head `{report.head[:12]}` · "
        f"run `{report.run_id}` · ${report.cost_usd:.2f}",
    ]
    if report.summary:
        lines += ["", f"> {markdown_cell(report.summary)}"]
    if report.reasons and not report.passed:
        lines += ["", "**Not approved because:**", ""] + [f"- {markdown_cell(r)}" for r in report.reasons]
    if report.checks:
        lines += ["", "### Checks", "", "| check | result | time |", "|---|---|---|"]
        lines += [
            f"| {markdown_code(c['command'])} | {markdown_cell(check_status(c))} | {c.get('duration_s', 0):.1f}s |"
            for c in report.checks
        ]
    if report.criteria:
        lines += ["", "### Acceptance criteria", "", "| id | criterion | status | evidence |", "|---|---|---|---|"]
        lines += [
            "| " + " | ".join(markdown_cell(v) for v in (c["id"], c.get("text"), c["status"], c.get("evidence"))) + " |"
            for c in report.criteria
        ]
    if report.findings:
        lines += ["", "### Findings", "", "| id | severity | where | pattern | finding |", "|---|---|---|---|---|"]
        lines += [
            "| "
            + " | ".join(
                markdown_cell(v) for v in (f["id"], f["severity"], location(f), f.get("pattern"), f["message"])
            )
            + " |"
            for f in report.findings
        ]
    return "\n".join(lines) + "\n"


# -- one run's timeline (`agentflow show --format md`) ------------------------------------------------


def show_markdown(timeline: Timeline) -> str:
    run = timeline.run
    lines = [f"## agentflow run `{run.run_id}`", "", "| | |", "|:--|:--|"]
    lines += [f"| {k} | {markdown_cell(v)} |" for k, v in header_rows(run)]
    for cycle in timeline.cycles:
        lines += ["", f"### Cycle {cycle.cycle}", ""]
        if cycle.builder:
            lines.append(
                f"**Builder** ({cycle.builder.status}, {fmt_usd(cycle.builder.cost_usd)}): "
                f"{markdown_cell(cycle.builder.summary or NA)}"
            )
            lines.append("")
        lines += [f"**Commit:** {markdown_cell(diffstat(cycle.commit))}", ""]
        if cycle.checks:
            lines += ["| Check | Result | Seconds |", "|:--|:--|--:|"]
            lines += [
                f"| {markdown_code(c['command'])} | {'pass' if c['passed'] else 'fail'}{markdown_cell(evidence_cell(c))} "
                f"| {c['duration_s']:.1f} |"
                for c in cycle.checks
            ]
            lines.append("")
        verdict = cycle.verdict
        if verdict:
            lines.append(
                f"**Verdict:** {verdict.outcome} (decision: {verdict.decision or NA}). "
                f"{markdown_cell(verdict.summary or '')}"
            )
            if verdict.criteria:
                lines += ["", "| Criterion | Status | Evidence |", "|:--|:--|:--|"]
                lines += [
                    f"| {markdown_cell(c.get('id'))} | {markdown_cell(c.get('status'))} | {markdown_cell(c.get('evidence', ''))} |"
                    for c in verdict.criteria
                ]
            if verdict.findings:
                lines += ["", "| Finding | Severity | Pattern | Where | Message |", "|:--|:--|:--|:--|:--|"]
                lines += [
                    f"| {markdown_cell(f.get('id'))} | {markdown_cell(f.get('severity'))} | {markdown_cell(f.get('pattern') or '')} | "
                    f"{markdown_cell(f.get('file') or '')}{markdown_cell(':' + str(f['line'])) if f.get('line') else ''} | "
                    f"{markdown_cell(f.get('message', ''))} |"
                    for f in verdict.findings
                ]
    for override in timeline.overrides:
        lines += [
            "",
            f"**Override** ({override.ts}): {override.outcome}: {markdown_cell(override.reason or '')}",
        ]
    lines += [
        "",
        "### Sessions",
        "",
        "| Session | Role | Cycle | Status | Turns | Tokens | Cost |",
        "|:--|:--|--:|:--|--:|:--|--:|",
    ]
    lines += [
        f"| `{s.session_id}` | {s.role} | {s.cycle} | {s.status} | {s.turns} | "
        f"{tokens_text(s.tokens)} | {fmt_usd(s.cost_usd)} |"
        for s in timeline.sessions
    ]
    for sid, messages in (timeline.transcripts or {}).items():
        lines += ["", f"<details><summary>Transcript {sid}</summary>", ""]
        for heading, text in transcript_entries(messages):
            lines += [f"**{heading}**", "", "```", text.replace("```", "`\u200b``"), "```", ""]
        lines.append("</details>")
    return "\n".join(lines) + "\n"
