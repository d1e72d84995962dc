"""The verdict contract (DESIGN.md "Roles, tools, verdict" and "Git").

* ``Verdict``: what a verifier submits through ``submit_verdict``.
* ``compute_outcome``: the outcome is computed, never taken from the model.
* ``VerdictNote``: the JSON line stored in ``refs/notes/agentflow`` on the verified commit,
  optionally signed with HMAC-SHA256 over its canonical JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentflow.events import CheckResult, Outcome

SIGNING_KEY_ENV = "AGENTFLOW_SIGNING_KEY"
Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")  # most severe first
BLOCKING_SEVERITIES = frozenset({"critical", "high"})


def severity_rank(severity: str) -> int:
    """Higher is more severe (info 1 ... critical 5); 0 for anything that is not a severity."""
    return len(SEVERITIES) - SEVERITIES.index(severity) if severity in SEVERITIES else 0


class Criterion(BaseModel):
    id: str
    status: Literal["met", "unmet", "unclear"]
    evidence: str = ""


class Finding(BaseModel):
    id: str
    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None
    pattern: str | None = None
    suggestion: str | None = None


class Verdict(BaseModel):
    """The ``submit_verdict`` input."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "request_changes", "reject"]
    summary: str
    criteria: list[Criterion] = []
    findings: list[Finding] = []


VERDICT_SCHEMA: dict[str, Any] = Verdict.model_json_schema()


def compute_outcome(
    verdict: Verdict | None,
    checks: Sequence[CheckResult] = (),
    criteria_ids: Sequence[str] = (),
) -> tuple[Outcome, list[str]]:
    """The outcome and the reasons it is not ``approved`` (empty when approved).

    ``approved`` only if the decision is approve, every check passed, no criterion is unmet (nor
    left unanswered), and no critical/high finding is open.
    """
    if verdict is None:
        return "no_verdict", ["no verdict was submitted"]
    reasons: list[str] = []
    reasons += [f"check failed: {c.command}" for c in checks if not c.passed]
    answered = {c.id: c.status for c in verdict.criteria}
    reasons += [f"criterion {c.id} unmet" for c in verdict.criteria if c.status == "unmet"]
    reasons += [f"criterion {cid} not answered" for cid in criteria_ids if cid not in answered]
    reasons += [
        f"{f.severity} finding {f.id}: {f.message}" for f in verdict.findings if f.severity in BLOCKING_SEVERITIES
    ]
    if verdict.decision == "reject":
        return "rejected", [f"verifier rejected: {verdict.summary}", *reasons]
    if verdict.decision == "request_changes":
        return "changes_requested", ["verifier requested changes", *reasons]
    if reasons:
        return "changes_requested", reasons
    return "approved", []


class VerdictNote(BaseModel):
    """One line of ``refs/notes/agentflow``; fields beyond DESIGN.md's are extensions."""

    model_config = ConfigDict(extra="allow")
    v: int = 1
    plan: str | None = None
    run: str | None = None
    outcome: Outcome
    decision: str | None = None
    tree: str
    base: str | None = None
    patch_id: str | None = None
    checks: list[dict[str, Any]] = []
    models: dict[str, str] = {}
    prompts_sha: str | None = None
    ts: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    findings: list[dict[str, Any]] = []
    override: bool = False
    reason: str | None = None
    by: str | None = None
    sig: str | None = None

    def canonical(self) -> bytes:
        """Canonical JSON of everything but ``sig``: sorted keys, no spaces, UTF-8."""
        data = self.model_dump(mode="json", exclude={"sig"})
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def signed(self, key: str) -> VerdictNote:
        sig = hmac.new(key.encode(), self.canonical(), hashlib.sha256).hexdigest()
        return self.model_copy(update={"sig": sig})

    def signature_valid(self, key: str) -> bool:
        if not self.sig:
            return False
        expected = hmac.new(key.encode(), self.canonical(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.sig)

    def to_line(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def signing_key() -> str | None:
    return os.environ.get(SIGNING_KEY_ENV) or None
