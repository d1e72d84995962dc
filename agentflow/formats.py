"""Output formats of ``agentflow verify``: text, json, md, github, sarif, junit.

Every format renders the same ``VerifyReport``. The machine formats follow their specifications
strictly because CI systems parse them:

* ``github``: workflow commands (``::error file=..,line=..,title=..::message``) escaped per GitHub's
  rules (``%`` ``\\r`` ``\\n`` in the message; also ``:`` and ``,`` in properties), at most
  ``ANNOTATIONS_PER_LEVEL`` annotations per level (GitHub shows no more), the rest folded into one
  notice. ``github_step_summary`` appends the Markdown report to ``$GITHUB_STEP_SUMMARY``.
* ``sarif``: SARIF 2.1.0 (one result per finding, failed check and unmet criterion).
* ``junit``: JUnit XML, one testcase per acceptance criterion and per check, plus one for the verdict.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentflow import __version__
from agentflow.text import one_line

FORMATS = ("text", "json", "md", "github", "sarif", "junit")
CHECKS_PASSED, CHECKS_FAILED = "checks_passed", "checks_failed"  # the outcomes of `verify --checks-only`
ANNOTATIONS_PER_LEVEL = 10
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/agentflow/agentflow"
GITHUB_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "notice", "info": "notice"}
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


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
    renderers = {
        "text": to_text,
        "json": to_json,
        "md": to_markdown,
        "github": to_github,
        "sarif": to_sarif,
        "junit": to_junit,
    }
    if fmt not in renderers:
        from agentflow.errors import UsageError

        raise UsageError(f"unknown format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")
    from agentflow.redact import redact

    return redact(renderers[fmt](redacted(report)))


ReportTarget = tuple[str, Path | None]
"""``(format, file)``; ``None`` is standard output."""


def report_targets(fmt: str, output: Path | None, extra: Mapping[str, Path | None]) -> list[ReportTarget]:
    """Every report one verification is rendered to: ``fmt`` to ``output`` (stdout when None), then
    each extra ``format -> file`` that is set.

    One verification, several reports: CI needs annotations and a SARIF file from the same verdict
    and pays once. Checked before anything runs (a clash found after the verifier ran would waste
    it): an unknown format, or two reports aimed at the same file, is an input error.
    """
    from agentflow.errors import UsageError

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
    return targets


# -- text, json, markdown ----------------------------------------------------------------------------------


def _location(finding: Mapping[str, Any]) -> str:
    file = finding.get("file")
    if not file:
        return ""
    return f"{file}:{finding['line']}" if finding.get("line") else str(file)


def evidence_text(check: Mapping[str, Any]) -> str:
    """A JUnit check's counts ("12 tests, 0 failures, 0 errors, 1 skipped"), or why it has none; "" for
    a check without ``junit: true``."""
    if not check.get("junit"):
        return ""
    if check.get("tests") is None:
        return f"no JUnit counts: {check.get('evidence') or 'no report'}"
    counts = ", ".join(f"{check.get(k) or 0} {k}" for k in ("tests", "failures", "errors", "skipped"))
    return counts + (f": {check['evidence']}" if check.get("evidence") else "")


def _check_status(check: Mapping[str, Any]) -> str:
    evidence = evidence_text(check)
    suffix = f"; {evidence}" if evidence else ""
    if check.get("passed"):
        return "passed" + suffix
    if check.get("exit_code") is None:
        return "timed out" + suffix
    return f"failed (exit {check['exit_code']}{suffix})"


def to_text(report: VerifyReport) -> str:
    lines = [
        report.title,
        f"base {report.base} ({report.base_commit[:12]})  head {report.head[:12]}  "
        f"run {report.run_id}  cost ${report.cost_usd:.2f}",
    ]
    if report.decision:
        lines.append(f"decision: {report.decision}")
    if report.summary:
        lines += ["", report.summary]
    if report.checks:
        lines += ["", "Checks:"]
        lines += [
            f"  {'PASS' if c.get('passed') else 'FAIL'} {c['command']} ({_check_status(c)}, "
            f"{c.get('duration_s', 0):.1f}s)"
            for c in report.checks
        ]
    if report.criteria:
        lines += ["", "Acceptance criteria:"]
        for c in report.criteria:
            evidence = f" - {c['evidence']}" if c.get("evidence") else ""
            lines.append(f"  {c['status'].upper():10} {c['id']}: {c.get('text', '')}{evidence}")
    if report.findings:
        lines += ["", "Findings:"]
        for f in report.findings:
            where = f" {_location(f)}" if _location(f) else ""
            pattern = f" [{f['pattern']}]" if f.get("pattern") else ""
            lines.append(f"  {f['severity'].upper():8} {f['id']}{where}{pattern}: {f['message']}")
            if f.get("suggestion"):
                lines.append(f"           fix: {f['suggestion']}")
    if report.reasons and not report.passed:
        lines += ["", "Not approved because:"] + [f"  - {one_line(r)}" for r in report.reasons]
    return "\n".join(lines) + "\n"


def to_json(report: VerifyReport) -> str:
    data = asdict(report)
    data["approved"] = report.approved
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _md_cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def to_markdown(report: VerifyReport) -> str:
    icon = "✅" if report.passed else ("⚠️" if report.outcome == "no_verdict" else "❌")
    plan = f"plan `{report.plan_id}` {report.plan_title}" if report.plan_id else "no plan (patterns only)"
    lines = [
        f"## {icon} agentflow verify: `{report.outcome}`",
        "",
        f"{plan} · base `{report.base}` (`{report.base_commit[:12]}`) · head `{report.head[:12]}` · "
        f"run `{report.run_id}` · ${report.cost_usd:.2f}",
    ]
    if report.summary:
        lines += ["", f"> {_md_cell(report.summary)}"]
    if report.reasons and not report.passed:
        lines += ["", "**Not approved because:**", ""] + [f"- {_md_cell(r)}" for r in report.reasons]
    if report.checks:
        lines += ["", "### Checks", "", "| check | result | time |", "|---|---|---|"]
        lines += [
            f"| `{_md_cell(c['command'])}` | {_check_status(c)} | {c.get('duration_s', 0):.1f}s |"
            for c in report.checks
        ]
    if report.criteria:
        lines += ["", "### Acceptance criteria", "", "| id | criterion | status | evidence |", "|---|---|---|---|"]
        lines += [
            f"| {c['id']} | {_md_cell(c.get('text'))} | {c['status']} | {_md_cell(c.get('evidence'))} |"
            for c in report.criteria
        ]
    if report.findings:
        lines += ["", "### Findings", "", "| id | severity | where | pattern | finding |", "|---|---|---|---|---|"]
        lines += [
            f"| {_md_cell(f['id'])} | {f['severity']} | {_md_cell(_location(f))} | {_md_cell(f.get('pattern'))} "
            f"| {_md_cell(f['message'])} |"
            for f in report.findings
        ]
    return "\n".join(lines) + "\n"


# -- GitHub workflow commands -------------------------------------------------------------------------------


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
                    f"{check['command']}: {_check_status(check)}\n{check.get('output_tail', '')}",
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
    from agentflow.redact import redact

    with path.open("a", encoding="utf-8") as handle:
        handle.write(redact(to_markdown(redacted(report))) + "\n")
    return path


# -- SARIF 2.1.0 -----------------------------------------------------------------------------------------------

# GitHub code scanning: every result needs a location in the repository, every rule a description
# and help text, and fingerprints that stay the same when the same problem is reported again.
SARIF_RULES: dict[str, tuple[str, str, str]] = {
    # id: (short description, full description, help)
    "agentflow/check": (
        "A check command failed",
        "A check command declared in agentflow.yaml or the plan exited non-zero or timed out on this change.",
        "Run the command locally, fix what it reports, push again. The gate stays closed while a check fails.",
    ),
    "agentflow/criterion": (
        "An acceptance criterion is not met",
        "The independent verifier found an acceptance criterion of the plan unmet or did not answer it.",
        "Read the criterion in the plan file and the verifier's evidence, change the code until it holds.",
    ),
    "agentflow/finding": (
        "Verifier finding",
        "A problem the independent verifier found in the change (not tied to a CLAUDE.md pattern).",
        "Read the finding's message and suggestion; fix it or answer it in the plan, then re-verify.",
    ),
}
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "1.0"}


def _rule_id(finding: Mapping[str, Any]) -> str:
    if finding.get("rule"):
        return f"rule/{finding['rule']}"  # agentflow's deterministic rules (agentflow.rules)
    return f"pattern/{finding['pattern']}" if finding.get("pattern") else "agentflow/finding"


def _rule_texts(rule_id: str) -> tuple[str, str, str]:
    if rule_id in SARIF_RULES:
        return SARIF_RULES[rule_id]
    if rule_id.startswith("rule/"):
        from agentflow.rules import OVERRIDE, rule_doc

        name = rule_id.split("/", 1)[1]
        what = rule_doc(name)
        return (
            f"{name}: {what}"[:200],
            f"agentflow's deterministic rule '{name}' (no model involved): {what}.",
            f"See the rule in docs/build.md. To resolve: {OVERRIDE}.",
        )
    pattern = rule_id.split("/", 1)[-1]
    return (
        f"Violates the '{pattern}' pattern",
        f"The change does not follow the '{pattern}' pattern of the project's CLAUDE.md.",
        f"Read the '{pattern}' section of CLAUDE.md (`agentflow patterns show {pattern}`): follow its Pattern, "
        "avoid its Anti-patterns.",
    )


def _fingerprint(*parts: Any) -> str:
    import hashlib

    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()[:32]


def repo_relative(path: Any) -> str | None:
    """``path`` as a URI relative to the repository root, or None when it is not one (absolute,
    escaping with ``..``, empty): GitHub drops results whose location is outside the repository."""
    text = str(path or "").replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text) or ".." in text.split("/"):
        return None
    return text


def _physical(uri: str, line: Any = None) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": {"uri": uri}}
    if isinstance(line, int) and not isinstance(line, bool) and line >= 1:
        location["region"] = {"startLine": line}
    return {"physicalLocation": location}


def sarif_anchor(report: VerifyReport) -> str:
    """The file a result without a place of its own points at: the plan, else the patterns file."""
    return report.plan_path or report.patterns_path or "CLAUDE.md"


def to_sarif(report: VerifyReport) -> str:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    anchor = sarif_anchor(report)
    plan_key = report.plan_id or "patterns-only"

    def rule(rule_id: str, severity: str = "high") -> int:
        if rule_id not in index:
            short, full, help_text = _rule_texts(rule_id)
            index[rule_id] = len(rules)
            rules.append(
                {
                    "id": rule_id,
                    "name": rule_id.replace("/", "-"),
                    "shortDescription": {"text": short},
                    "fullDescription": {"text": full},
                    "help": {"text": help_text, "markdown": help_text},
                    "defaultConfiguration": {"level": SARIF_LEVEL.get(severity, "warning")},
                    "properties": {"tags": ["agentflow"], "precision": "medium"},
                }
            )
        return index[rule_id]

    results: list[dict[str, Any]] = []
    for finding in report.findings:
        rule_id = _rule_id(finding)
        severity = str(finding.get("severity", ""))
        file = repo_relative(finding.get("file"))
        results.append(
            {
                "ruleId": rule_id,
                "ruleIndex": rule(rule_id, severity),
                "level": SARIF_LEVEL.get(severity, "warning"),
                "message": {
                    "text": one_line(finding["message"])
                    + (f" Suggestion: {one_line(finding['suggestion'])}" if finding.get("suggestion") else "")
                },
                "locations": [_physical(file, finding.get("line")) if file else _physical(anchor, 1)],
                "partialFingerprints": {"agentflowFindingId/v1": _fingerprint(plan_key, rule_id, finding["id"])},
                "properties": {
                    "severity": severity or None,
                    "findingId": finding["id"],
                    "security-severity": SECURITY_SEVERITY.get(severity, "5.5"),
                },
            }
        )
    for check in report.checks:
        if not check.get("passed"):
            results.append(
                {
                    "ruleId": "agentflow/check",
                    "ruleIndex": rule("agentflow/check"),
                    "level": "error",
                    "message": {
                        "text": f"{check['command']}: {_check_status(check)}\n{check.get('output_tail', '')}".rstrip()
                    },
                    "locations": [_physical(repo_relative(check.get("file")) or anchor, check.get("line") or 1)],
                    "partialFingerprints": {"agentflowFindingId/v1": _fingerprint(plan_key, "check", check["command"])},
                }
            )
    for criterion in report.criteria:
        if criterion["status"] in ("unmet", "unanswered"):
            evidence = f" Evidence: {one_line(criterion['evidence'])}" if criterion.get("evidence") else ""
            results.append(
                {
                    "ruleId": "agentflow/criterion",
                    "ruleIndex": rule("agentflow/criterion"),
                    "level": "error",
                    "message": {
                        "text": f"{criterion['id']} {criterion['status']}: {criterion.get('text', '')}{evidence}"
                    },
                    "locations": [_physical(anchor, criterion.get("line") or 1)],
                    "partialFingerprints": {
                        "agentflowFindingId/v1": _fingerprint(plan_key, "criterion", criterion["id"])
                    },
                }
            )
    sarif = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "agentflow",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"agentflow/plan-{plan_key}/"},
                "invocations": [
                    {
                        "executionSuccessful": report.outcome != "no_verdict",
                        "properties": {
                            "outcome": report.outcome,
                            "decision": report.decision,
                            "reasons": report.reasons,
                        },
                    }
                ],
                "results": results,
                "properties": {
                    "runId": report.run_id,
                    "planId": report.plan_id,
                    "base": report.base_commit,
                    "head": report.head,
                    "costUsd": report.cost_usd,
                    "checks": [
                        {
                            "command": c["command"],
                            "passed": bool(c.get("passed")),
                            **{k: c.get(k) for k in ("tests", "failures", "errors", "skipped") if c.get("junit")},
                        }
                        for c in report.checks
                    ],
                },
            }
        ],
    }
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"


# -- JUnit XML --------------------------------------------------------------------------------------------------


def _xml(text: Any) -> str:
    return _XML_ILLEGAL.sub("", str(text if text is not None else ""))


def _suite(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, "testsuite", name=name)


def _case(suite: ET.Element, name: str, time: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=suite.get("name", ""), name=_xml(name), time=f"{time:.3f}")


def _finish_suite(suite: ET.Element) -> tuple[int, int, int]:
    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return len(cases), failures, skipped


def to_junit(report: VerifyReport) -> str:
    root = ET.Element("testsuites", name="agentflow verify")
    verdict = _suite(root, "agentflow.verdict")
    case = _case(verdict, f"outcome ({report.plan_id or 'patterns only'})")
    if not report.passed:
        body = "\n".join(
            [
                report.summary,
                *report.reasons,
                *(f"[{f['severity']}] {f['id']} {_location(f)}: {f['message']}" for f in report.findings),
            ]
        )
        failure = ET.SubElement(case, "failure", message=_xml(report.outcome), type=_xml(report.outcome))
        failure.text = _xml(body)
    criteria = _suite(root, "agentflow.criteria")
    for criterion in report.criteria:
        case = _case(criteria, f"{criterion['id']}: {criterion.get('text', '')}".rstrip(": "))
        status = criterion["status"]
        if status in ("unmet", "unanswered"):
            failure = ET.SubElement(case, "failure", message=_xml(status), type=_xml(status))
            failure.text = _xml(criterion.get("evidence", ""))
        elif status == "unclear":
            ET.SubElement(case, "skipped", message=_xml(f"unclear: {criterion.get('evidence', '')}"))
    checks = _suite(root, "agentflow.checks")
    for check in report.checks:
        case = _case(checks, check["command"], float(check.get("duration_s") or 0.0))
        if not check.get("passed"):
            failure = ET.SubElement(case, "failure", message=_xml(_check_status(check)), type="check")
            failure.text = _xml(check.get("output_tail", ""))
        out = ET.SubElement(case, "system-out")
        evidence = evidence_text(check)
        out.text = _xml((f"[JUnit report: {evidence}]\n" if evidence else "") + str(check.get("output_tail", "")))
    totals = [_finish_suite(s) for s in (verdict, criteria, checks)]
    root.set("tests", str(sum(t[0] for t in totals)))
    root.set("failures", str(sum(t[1] for t in totals)))
    root.set("errors", "0")
    # no `skipped` on <testsuites>: the Jenkins JUnit schema (junit-10.xsd) has it on <testsuite> only
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
