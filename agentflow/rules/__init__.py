"""Deterministic rules over a change: tampering with tests and checks, files developer tools run on
their own (auto-run), content a checkout gets that the change does not show, prompt injection.

Each rule has an id, a message, a severity (high unless documented otherwise in docs/build.md) and a
``check(change) -> list[finding]``. Findings are DESIGN.md finding objects (``id``, ``severity``,
``file``, ``line``, ``pattern``, ``message``, ``suggestion``) plus ``rule``; the verifier cannot drop
or soften them (``agentflow.orchestration.run`` merges them over the verdict), so a high one blocks
approval and only a recorded human override (``agentflow approve --override``) opens the gate.

The rules are pure functions of the change: the same diff always gives the same findings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from agentflow.rules.change import Change, FileDiff, Line, change_from_git, parse_diff

Finding = dict[str, Any]

OVERRIDE = "fix the change, or a human records `agentflow approve --override --reason ...`"


@dataclass(frozen=True)
class Rule:
    id: str
    message: str  # what it catches (docs/build.md's table)
    severity: str
    check: Callable[[Change], list[Finding]]


def finding(
    rule: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    severity: str = "high",
    suggestion: str | None = None,
) -> Finding:
    """A rule finding; its id (``rule.<hash of file:line>``) is stable while the offending line stays put."""
    return {
        "id": finding_id(rule, f"{file or ''}:{line or ''}"),
        "severity": severity,
        "file": file,
        "line": line,
        "pattern": rule,
        "rule": rule,
        "message": message,
        "suggestion": suggestion or OVERRIDE,
    }


def finding_id(rule: str, where: str) -> str:
    """``rule.<8 hex>``: a finding id that is a valid model id (``[A-Za-z0-9_.-]{1,64}``)."""
    return f"{rule}.{hashlib.sha256(where.encode()).hexdigest()[:8]}"


def registry() -> list[Rule]:
    """Every rule, in the order they run."""
    from agentflow.rules import autorun, checkout, injection, tamper

    return [*tamper.RULES, *autorun.RULES, *checkout.RULES, *injection.RULES]


def rule_doc(rule_id: str) -> str:
    """What the rule ``rule_id`` catches (one line), for reports."""
    from agentflow.evidence import RULE, RULE_DOC
    from agentflow.rules import budget

    if rule_id == RULE:
        return RULE_DOC
    if rule_id == budget.RULE:
        return budget.RULE_DOC
    return next((r.message for r in registry() if r.id == rule_id), f"agentflow rule {rule_id}")


def run_rules(change: Change) -> list[Finding]:
    """All findings of all rules on ``change``, without duplicate ids (first wins)."""
    found: dict[str, Finding] = {}
    for rule in registry():
        for item in rule.check(change):
            found.setdefault(item["id"], item)
    return list(found.values())


def cut_findings(diff: str, limit: int, read: Collection[str] = ()) -> list[Finding]:
    """The ``diff_cut`` finding of the verifier's diff (``agentflow.rules.budget``)."""
    from agentflow.rules.budget import cut_findings as found

    return found(diff, limit, read)


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.get("severity") in ("critical", "high")]


__all__ = [
    "OVERRIDE",
    "Change",
    "FileDiff",
    "Finding",
    "Line",
    "Rule",
    "blocking",
    "change_from_git",
    "cut_findings",
    "finding",
    "finding_id",
    "parse_diff",
    "registry",
    "rule_doc",
    "run_rules",
]
