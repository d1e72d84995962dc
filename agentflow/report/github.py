"""GitHub Actions output of a verification and of the gate: workflow commands (annotations), log lines
that cannot be read as commands, and the job's step summary.

Workflow commands (``::error file=..,line=..,title=..::message``) are escaped per GitHub's rules
(``%`` ``\\r`` ``\\n`` in the message; also ``:`` and ``,`` in properties), at most
``ANNOTATIONS_PER_LEVEL`` annotations per level (GitHub shows no more), the rest folded into one
notice. ``github_step_summary`` appends the Markdown report to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow.redact import redact
from agentflow.report.markdown import verify_markdown
from agentflow.report.text import gate_text
from agentflow.report.verify import VerifyReport, check_status, redacted
from agentflow.text import one_line

if TYPE_CHECKING:
    from agentflow.gate import GateResult

ANNOTATIONS_PER_LEVEL = 10
GITHUB_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "notice", "info": "notice"}


def escape_data(text: str) -> str:
    """Escape a workflow command's message (GitHub's ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command's property value (GitHub's ``escapeProperty``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(level: str, message: str, **properties: Any) -> str:
    """One workflow command; every property value and the message escaped (they may come from a model)."""
    props = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items() if v not in (None, ""))
    return f"::{level}{' ' + props if props else ''}::{escape_data(message)}"


def log_line(text: str) -> str:
    """A line of plain output in a GitHub Actions log that cannot be read as a workflow command.

    The runner acts on lines that start with ``::`` (``::stop-commands::``, ``::add-mask::``...) and on
    the legacy ``##[command]`` form anywhere in a line: text from a model or a note is folded onto
    one line and both markers are broken (``:%3A``, ``#%23[``).
    """
    return one_line(text).replace("::", ":%3A").replace("##[", "#%23[")


def _annotations(report: VerifyReport) -> list[tuple[str, str, dict[str, Any]]]:
    """(level, message, properties) for the outcome, failed checks, unmet criteria and findings."""
    items: list[tuple[str, str, dict[str, Any]]] = []
    outcome_level = "notice" if report.passed else "error"
    message = report.summary or report.outcome
    if report.reasons and not report.passed:
        message += "\n" + "\n".join(f"- {r}" for r in report.reasons)
    items.append((outcome_level, message, {"title": f"agentflow: {report.outcome}"}))
    for check in report.checks:
        if not check.get("passed"):
            items.append(
                (
                    "error",
                    f"{check['command']}: {check_status(check)}\n{check.get('output_tail', '')}",
                    {"title": f"check failed: {check['command']}"},
                )
            )
    for criterion in report.criteria:
        if criterion["status"] in ("unmet", "unanswered"):
            items.append(
                (
                    "error",
                    f"{criterion['id']} {criterion['status']}: {criterion.get('text', '')}\n"
                    f"{criterion.get('evidence', '')}".strip(),
                    {"title": f"criterion {criterion['id']}"},
                )
            )
    for finding in report.findings:
        level = GITHUB_LEVEL.get(finding.get("severity", ""), "warning")
        text = finding["message"] + (f"\nSuggestion: {finding['suggestion']}" if finding.get("suggestion") else "")
        pattern = f" [{finding['pattern']}]" if finding.get("pattern") else ""
        items.append(
            (
                level,
                text,
                {
                    "file": finding.get("file"),
                    "line": finding.get("line"),
                    "title": f"{finding['id']} ({finding['severity']}){pattern}",
                },
            )
        )
    return items


def to_github(report: VerifyReport) -> str:
    """Annotations, at most ``ANNOTATIONS_PER_LEVEL`` per level; the overflow becomes one notice."""
    items = _annotations(report)
    overflow_exists = any(
        sum(1 for lvl, _, _ in items if lvl == level) > ANNOTATIONS_PER_LEVEL
        for level in ("error", "warning", "notice")
    )
    caps = {
        "error": ANNOTATIONS_PER_LEVEL,
        "warning": ANNOTATIONS_PER_LEVEL,
        "notice": ANNOTATIONS_PER_LEVEL - (1 if overflow_exists else 0),
    }
    shown: dict[str, int] = {}
    lines: list[str] = []
    folded: list[str] = []
    for level, message, props in items:
        if shown.get(level, 0) < caps[level]:
            shown[level] = shown.get(level, 0) + 1
            lines.append(workflow_command(level, message, **props))
        else:
            folded.append(f"{level}: {props.get('title', '')}: {message.splitlines()[0] if message else ''}")
    if folded:
        lines.append(
            workflow_command(
                "notice",
                f"{len(folded)} more annotation(s) not shown (GitHub shows {ANNOTATIONS_PER_LEVEL} per level):\n"
                + "\n".join(folded),
                title="agentflow: more findings",
            )
        )
    return "\n".join(lines) + "\n"


def github_step_summary(report: VerifyReport, env: Mapping[str, str] | None = None) -> Path | None:
    """Append the Markdown report to ``$GITHUB_STEP_SUMMARY`` when it is set; returns the file."""
    env = os.environ if env is None else env
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(redact(verify_markdown(redacted(report))) + "\n")
    return path


# -- the gate (`agentflow gate --format github`) -------------------------------------------------


def gate_annotation(result: GateResult) -> str:
    """GitHub Actions: one ``::error`` (closed) or ``::notice`` (open) annotation.

    Every field from a note or a model is escaped (``workflow_command``): it cannot end the
    annotation or start a workflow command of its own.
    """
    level = "notice" if result.open else "error"
    return workflow_command(
        level,
        redact("\n".join([result.headline(), *result.reasons])),
        title=f"agentflow gate ({result.status.value})",
    )


def gate_log(result: GateResult) -> str:
    """The text report for a GitHub Actions log: no line of it can be read as a workflow command
    (``::stop-commands::``, ``##[...]``; ``log_line``)."""
    return "\n".join(log_line(line) for line in gate_text(result).splitlines())


def gate_step_summary(result: GateResult) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY`` (note fields folded onto one line, table cells escaped, redacted)."""
    return redact(_gate_summary(result))


def _gate_cell(value: Any) -> str:
    from agentflow.text import markdown_cell

    return markdown_cell(one_line(str(value or "")))


def _gate_summary(result: GateResult) -> str:
    from agentflow.gate import SHORT

    icon = "✅" if result.open else "❌"
    lines = [
        f"### {icon} agentflow gate: {'open' if result.open else 'closed'} ({result.status.value})",
        "",
        f"`{result.ref}` at `{result.commit[:SHORT]}` (tree `{result.tree[:SHORT]}`)",
        "",
        *(f"- {_gate_cell(reason)}" for reason in result.reasons),
    ]
    note = result.note
    if note is not None:
        lines += [
            "",
            "| verdict | plan | run | at | signed | override |",
            "|---|---|---|---|---|---|",
            f"| {_gate_cell(note.outcome)} | {_gate_cell(note.plan)} | {_gate_cell(note.run)} | {_gate_cell(note.ts)} "
            f"| {'yes' if result.signed else 'no'} | {'yes: ' + _gate_cell(note.reason) if note.override else 'no'} |",
        ]
    return "\n".join(lines) + "\n"
