"""Typed ledger events: a discriminated union on ``kind`` with a format version ``v``.

Every operation appends one of these; runs, sessions and plan states are projections of them
(``agentflow.ledger``). Add a kind by adding a class and listing it in ``Event``; never change the
meaning of an existing field (bump ``FORMAT_VERSION`` and keep reading the old shape instead).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

FORMAT_VERSION = 1

Outcome = Literal["approved", "changes_requested", "rejected", "no_verdict", "capped"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


MAX_EVENT_STRING = 2_000  # longer strings in event payloads are clipped; transcripts keep them whole


def clip(value: Any) -> Any:
    """A JSON value for an event: strings over ``MAX_EVENT_STRING`` characters (file contents) cut."""
    if isinstance(value, str) and len(value) > MAX_EVENT_STRING:
        return value[:MAX_EVENT_STRING] + f"[... {len(value) - MAX_EVENT_STRING} more characters]"
    if isinstance(value, dict):
        return {k: clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clip(v) for v in value]
    return value


def now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A short sortable-enough id: ``r-20261127-a1b2c3``."""
    return f"{prefix}-{now():%Y%m%d}-{secrets.token_hex(3)}"


class Usage(BaseModel):
    """Token usage; ``cache_read``/``cache_write`` are prompt-cache input tokens."""

    model_config = ConfigDict(defer_build=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read=self.cache_read + other.cache_read,
            cache_write=self.cache_write + other.cache_write,
        )

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read + self.cache_write


class _Event(BaseModel):
    # defer_build: a class's validator is built when first used, not at import (16 kinds cost
    # tens of milliseconds of every command's start-up otherwise; ``log`` and ``status`` use none)
    model_config = ConfigDict(extra="forbid", defer_build=True)
    v: int = FORMAT_VERSION
    ts: datetime = Field(default_factory=now)
    run_id: str | None = None


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    mode: Literal["build", "verify"] = "build"
    plan_id: str | None = None
    plan_path: str | None = None
    plan_title: str | None = None
    estimate_hours: float | None = None
    branch: str | None = None
    base: str | None = None
    base_commit: str | None = None
    max_cycles: int = 1
    models: dict[str, dict[str, Any]] = {}  # role -> backend, model, script, command: what --resume reuses
    # Trusted inputs (``agentflow.inputs``), read once when the run started: where from ("checkout",
    # "base <commit>"), the sha256 of each (config, prompts, patterns, plan) and its text, so that
    # ``--resume`` continues with exactly these. Empty in runs recorded before they existed.
    inputs_source: str | None = None
    inputs: dict[str, str] = {}
    inputs_text: dict[str, str] = {}
    sandbox: Literal["bwrap", "off"] | None = None  # where the run's agent processes ran (None: before #12)


class RunResumed(_Event):
    kind: Literal["run_resumed"] = "run_resumed"


class SessionStarted(_Event):
    kind: Literal["session_started"] = "session_started"
    session_id: str
    role: Literal["builder", "verifier", "evaluator"]
    cycle: int = 1
    backend: str
    model: str


class ModelCalled(_Event):
    kind: Literal["model_called"] = "model_called"
    session_id: str
    turn: int
    model: str
    usage: Usage = Field(default_factory=Usage)  # no instance at import: it would build the validator
    cost_usd: float = 0.0
    stop_reason: str | None = None
    duration_s: float = 0.0
    retries: int = 0  # transient failures (429, 529, 5xx, connection, timeout) retried for this call


class ToolCalled(_Event):
    kind: Literal["tool_called"] = "tool_called"
    session_id: str
    turn: int
    tool: str
    input: dict[str, Any] = {}
    is_error: bool = False
    output_chars: int = 0
    duration_s: float = 0.0


class SessionEnded(_Event):
    kind: Literal["session_ended"] = "session_ended"
    session_id: str
    role: Literal["builder", "verifier", "evaluator"]
    cycle: int = 1
    status: Literal["completed", "failed", "limits", "interrupted"]
    reason: str | None = None
    turns: int = 0
    usage: Usage = Field(default_factory=Usage)  # no instance at import: it would build the validator
    cost_usd: float = 0.0
    summary: str | None = None
    external_id: str | None = None  # e.g. a Claude Code session id


class BuilderCommitted(_Event):
    kind: Literal["builder_committed"] = "builder_committed"
    cycle: int
    commit: str | None  # None: the builder changed nothing
    files_changed: int = 0
    insertions: int = 0
    deletions: int = 0
    out_of_scope: list[str] = []


class CheckResult(BaseModel):
    model_config = ConfigDict(defer_build=True)

    command: str
    exit_code: int | None  # None: timed out
    duration_s: float
    output_tail: str = ""
    # evidence (checks declared with `junit: true`, agentflow.evidence): the report's counts, and why
    # the report fails the check (None when it passes or there is no report to read)
    junit: bool = False
    tests: int | None = None
    failures: int | None = None
    errors: int | None = None
    skipped: int | None = None
    evidence: str | None = None

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not (self.junit and (self.evidence or self.tests is None))


class ChecksRan(_Event):
    kind: Literal["checks_ran"] = "checks_ran"
    cycle: int
    commit: str | None = None
    results: list[CheckResult] = []


class VerdictRecorded(_Event):
    kind: Literal["verdict_recorded"] = "verdict_recorded"
    cycle: int
    commit: str | None = None
    outcome: Outcome
    decision: str | None = None
    reason: str | None = None
    verdict: dict[str, Any] | None = None  # the submitted verdict (DESIGN.md schema)
    override: bool = False
    signed: bool = False


class RunEnded(_Event):
    kind: Literal["run_ended"] = "run_ended"
    outcome: Outcome
    cycles: int
    reason: str | None = None
    commit: str | None = None


class Merged(_Event):
    kind: Literal["merged"] = "merged"
    plan_id: str | None = None
    branch: str
    into: str
    commit: str


class FindingsRecorded(_Event):
    """Evaluator findings; ``findings`` are DESIGN.md event-log findings (JSON objects)."""

    kind: Literal["findings_recorded"] = "findings_recorded"
    source: str = "evaluator"
    logs: list[str] = []
    findings: list[dict[str, Any]] = []


class TamperingDetected(_Event):
    """An agent session changed the repository's git data (``agentflow.integrity``): the run ends
    ``no_verdict``; ``changes`` name what changed, ``restored`` says whether all was put back."""

    kind: Literal["tampering_detected"] = "tampering_detected"
    cycle: int = 1
    role: str
    changes: list[str] = []
    restored: bool = True
    problems: list[str] = []
    reason: str


class GitSnapshotTaken(_Event):
    """The git data before an agent session (``agentflow.integrity.GitSnapshot.record``)."""

    kind: Literal["git_snapshot"] = "git_snapshot"
    cycle: int = 1
    role: str
    snapshot: dict[str, Any] = {}


class GitChecked(_Event):
    """The git data after an agent session was compared with its snapshot (``changes``: tampering)."""

    kind: Literal["git_checked"] = "git_checked"
    cycle: int = 1
    role: str
    changes: list[str] = []


class BuilderCommitsFolded(_Event):
    """The builder committed by itself; its commits were folded into agentflow's own commit."""

    kind: Literal["builder_commits_folded"] = "builder_commits_folded"
    cycle: int = 1
    commits: list[str] = []
    onto: str


Event = Annotated[
    RunStarted
    | RunResumed
    | SessionStarted
    | ModelCalled
    | ToolCalled
    | SessionEnded
    | BuilderCommitted
    | ChecksRan
    | VerdictRecorded
    | RunEnded
    | Merged
    | FindingsRecorded
    | TamperingDetected
    | BuilderCommitsFolded
    | GitSnapshotTaken
    | GitChecked,
    Field(discriminator="kind"),
]

event_adapter: TypeAdapter[Event] = TypeAdapter(Event, config=ConfigDict(defer_build=True))


def parse_event(data: str | bytes) -> Event:
    return event_adapter.validate_json(data)
