"""A verification as SARIF 2.1.0: one result per finding, failed check and unmet criterion (GitHub code scanning)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from agentflow import __version__
from agentflow.report.verify import VerifyReport, check_status
from agentflow.text import one_line

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/agentflow/agentflow"
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}

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
                        "text": f"{check['command']}: {check_status(check)}\n{check.get('output_tail', '')}".rstrip()
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
