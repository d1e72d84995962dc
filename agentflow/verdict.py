"""The verdict contract (DESIGN.md "Roles, tools, verdict" and "Git").

* ``Verdict``: what a verifier submits through ``submit_verdict``.
* ``compute_outcome``: the outcome is computed, never taken from the model.
* ``VerdictNote``: the JSON line stored in ``refs/notes/agentflow`` on the verified commit,
  optionally signed with HMAC-SHA256 over its canonical JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agentflow.events import CheckResult, Outcome
from agentflow.keys import SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV, signing_key  # noqa: F401 (re-exported)
from agentflow.notes import canonical_json, sign
from agentflow.redact import redact

MODEL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MODEL_ID_RULE = "[A-Za-z0-9_.-]{1,64}"
SUMMARY_CHARS = 500
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
    rule: str | None = None  # set by agentflow's deterministic rules (agentflow.rules), never needed from a model


class Verdict(BaseModel):
    """The ``submit_verdict`` input."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "request_changes", "reject"]
    summary: str
    criteria: list[Criterion] = []
    findings: list[Finding] = []


VERDICT_SCHEMA: dict[str, Any] = Verdict.model_json_schema()
# ids a model chooses end up in notes, annotations and file names: tell the model the rule
for _name in ("Criterion", "Finding"):
    VERDICT_SCHEMA["$defs"][_name]["properties"]["id"]["pattern"] = f"^{MODEL_ID_RULE}$"


def invalid_ids(verdict: Verdict) -> list[str]:
    """The criterion and finding ids of a submitted verdict that break ``[A-Za-z0-9_.-]{1,64}``.

    Such a verdict is refused (fail closed: the cycle ends as no_verdict) rather than repaired: an id
    is how rework, notes and reports refer to a finding, and a rewritten one would silently change it.
    """
    ids = [("criterion", c.id) for c in verdict.criteria] + [("finding", f.id) for f in verdict.findings]
    return [f"{kind} id {value[:80]!r}" for kind, value in ids if not MODEL_ID.fullmatch(value)]


def compute_outcome(
    verdict: Verdict | None,
    checks: Sequence[CheckResult] = (),
    criteria_ids: Sequence[str] = (),
    *,
    text: bool = True,
) -> tuple[Outcome, list[str]]:
    """The outcome and the reasons it is not ``approved`` (empty when approved).

    ``approved`` only if the decision is approve, every check passed, no criterion is unmet (nor
    left unanswered), and no critical/high finding is open. ``text=False``: the reasons carry facts
    only (no finding message; the summary redacted and shortened), as notes do.
    """
    if verdict is None:
        return "no_verdict", ["no verdict was submitted"]
    reasons: list[str] = []
    reasons += [
        f"check failed: {c.command}" + (f" ({c.evidence})" if c.evidence else "") for c in checks if not c.passed
    ]
    answered = {c.id: c.status for c in verdict.criteria}
    reasons += [f"criterion {c.id} unmet" for c in verdict.criteria if c.status == "unmet"]
    reasons += [f"criterion {cid} not answered" for cid in criteria_ids if cid not in answered]
    reasons += [
        f"{f.severity} finding {f.id}" + (f": {f.message}" if text else "")
        for f in verdict.findings
        if f.severity in BLOCKING_SEVERITIES
    ]
    if verdict.decision == "reject":
        summary = verdict.summary if text else note_summary(verdict.summary)
        return "rejected", [f"verifier rejected: {summary}", *reasons]
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
        """Canonical JSON of everything but ``sig``: sorted keys, no spaces, UTF-8 (``notes.canonical_json``)."""
        return canonical_json(self.model_dump(mode="json", exclude={"sig"}))

    def signed(self, key: str) -> VerdictNote:
        return self.model_copy(update={"sig": sign(key, self.canonical())})

    def signature_valid(self, key: str) -> bool:
        import hmac

        return bool(self.sig) and hmac.compare_digest(sign(key, self.canonical()), self.sig or "")

    def to_line(self) -> str:
        return canonical_json(self.model_dump(mode="json")).decode()


# -- what a note may carry: facts, never check output or finding text ------------------------------


def note_summary(summary: str | None) -> str | None:
    """A model's summary as a note may carry it: one line, redacted, at most ``SUMMARY_CHARS``."""
    if not summary:
        return None
    return redact(" ".join(summary.split()))[:SUMMARY_CHARS]


def note_checks(checks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check facts for a note: the (trusted) command, exit code, duration and result; no output."""
    keep = ("command", "exit_code", "duration_s", "passed", "junit", "tests", "failures", "errors", "skipped")
    return [{k: redact(v) if isinstance(v, str) else v for k, v in c.items() if k in keep} for c in checks]


def note_findings(findings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finding facts for a note: id, severity, file, line, pattern; never the message or suggestion."""
    keep = ("id", "severity", "file", "line", "pattern", "rule", "source")
    return [{k: redact(v) if isinstance(v, str) else v for k, v in f.items() if k in keep} for f in findings]


def note_criteria(criteria: Sequence[Any]) -> list[dict[str, str]]:
    """Criterion facts for a note: id and status (met, unmet, unclear); never the evidence text."""
    result = []
    for c in criteria:
        cid, status = (c.id, c.status) if hasattr(c, "id") else (c.get("id"), c.get("status"))
        result.append({"id": str(cid), "status": str(status)})
    return result
