"""The report of one verification (``agentflow verify``) and its formats: text, json, md, github, sarif, junit.

``VerifyReport`` is what a verification produced, independent of how it is printed; ``render``
writes it in one format, redacted. Each format lives with the other reports of that format:
``report.text``, ``report.jsonout``, ``report.markdown``, ``report.github`` (workflow commands and the
step summary), ``report.sarif`` (SARIF 2.1.0) and ``report.junit`` (JUnit XML). The machine formats
follow their specifications strictly because CI systems parse them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.report.fmt import evidence_text  # noqa: F401 - re-exported (junit, show use it from here)

FORMATS = ("text", "json", "md", "github", "sarif", "junit")
CHECKS_PASSED, CHECKS_FAILED = "checks_passed", "checks_failed"  # the outcomes of `verify --checks-only`


@dataclass
class VerifyReport:
    """The result of one verification, independent of how it is printed."""

    run_id: str
    outcome: str
    decision: str | None
    reasons: list[str]
    summary: str
    base: str
    base_commit: str
    head: str
    plan_id: str | None = None
    plan_title: str | None = None
    criteria: list[dict[str, Any]] = field(default_factory=list)  # id, text, status, evidence
    findings: list[dict[str, Any]] = field(default_factory=list)  # DESIGN.md finding objects
    checks: list[dict[str, Any]] = field(default_factory=list)  # command, exit_code, duration_s, output_tail, passed
    cost_usd: float = 0.0
    models: dict[str, str] = field(default_factory=dict)
    signed: bool = False
    plan_path: str | None = None  # relative to the repository root: where SARIF points unmet criteria
    patterns_path: str | None = None  # where results point when there is no plan

    @property
    def approved(self) -> bool:
        return self.outcome == "approved"

    @property
    def passed(self) -> bool:
        """Green for CI: approved, or every check passed in a ``verify --checks-only`` run."""
        return self.outcome in ("approved", CHECKS_PASSED)

    @property
    def title(self) -> str:
        plan = f"plan {self.plan_id}: {self.plan_title}" if self.plan_id else "no plan (patterns only)"
        return f"agentflow verify: {self.outcome} ({plan})"


def redacted(report: VerifyReport) -> VerifyReport:
    """``report`` with every string in it redacted like the ledger (secrets, their hex and base64 forms)."""
    from dataclasses import fields, replace

    from agentflow.redact import redact_data

    return replace(report, **{f.name: redact_data(getattr(report, f.name)) for f in fields(report)})


def render(report: VerifyReport, fmt: str) -> str:
    """``report`` in format ``fmt`` (one of ``FORMATS``), redacted: no report carries a secret."""
    if fmt not in FORMATS:
        from agentflow.errors import UsageError

        raise UsageError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    from agentflow.redact import redact

    return redact(_renderer(fmt)(redacted(report)))


def _renderer(fmt: str) -> Callable[[VerifyReport], str]:
    """The function of ``agentflow.report`` that writes ``fmt`` (each format lives in its own module)."""
    from agentflow.report import github, jsonout, junit, markdown, sarif, text

    return {
        "text": text.verify_text,
        "json": jsonout.verify_json,
        "md": markdown.verify_markdown,
        "github": github.to_github,
        "sarif": sarif.to_sarif,
        "junit": junit.to_junit,
    }[fmt]


ReportTarget = tuple[str, Path | None]
"""``(format, file)``; ``None`` is standard output."""


def report_targets(fmt: str, output: Path | None, extra: Mapping[str, Path | None]) -> list[ReportTarget]:
    """Every report one verification is rendered to: ``fmt`` to ``output`` (stdout when None), then
    each extra ``format -> file`` that is set.

    One verification, several reports: CI needs annotations and a SARIF file from the same verdict
    and pays once. Checked before anything runs, since a problem found after the verifier ran would
    waste the paid verification: ``UsageError`` (exit 2) for an unknown format, two reports aimed at
    the same file, or a path that cannot take a report (``agentflow.files.check_report_file``: a
    folder, a file where a folder must be, a folder that cannot be written, a link, FIFO or device
    inside the checkout). Nothing is created; the paths are checked again when the reports are written.
    """
    from agentflow.errors import UsageError
    from agentflow.files import check_report_file

    targets: list[ReportTarget] = [(fmt, output), *((name, path) for name, path in extra.items() if path is not None)]
    seen: dict[Path, str] = {}
    for name, path in targets:
        if name not in FORMATS:
            raise UsageError(f"unknown format {name!r}", fix=f"use one of {', '.join(FORMATS)}")
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise UsageError(
                f"the {seen[key]} and {name} reports would both be written to {path}",
                fix="give each report its own file",
            )
        seen[key] = name
    for _name, path in targets:
        if path is not None:
            check_report_file(path)
    return targets


# -- pieces every format shows the same way ----------------------------------------------------------------


def location(finding: Mapping[str, Any]) -> str:
    file = finding.get("file")
    if not file:
        return ""
    return f"{file}:{finding['line']}" if finding.get("line") else str(file)


def check_status(check: Mapping[str, Any]) -> str:
    evidence = evidence_text(check)
    suffix = f"; {evidence}" if evidence else ""
    if check.get("passed"):
        return "passed" + suffix
    if check.get("exit_code") is None:
        return "timed out" + suffix
    return f"failed (exit {check['exit_code']}{suffix})"
