"""The session contract every engine shares: what to run and what came of it.

``agentflow.session`` runs API-style models in its tool loop; external engines (the ``command``
backend, Claude Code) run whole sessions themselves. All of them take a ``SessionSpec``, keep their
record with a ``SessionRecorder`` and return a ``SessionResult``, so this module sits below them all
and imports none of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentflow import config
from agentflow.events import ModelCalled, SessionEnded, SessionStarted, ToolCalled, Usage, clip, new_id

if TYPE_CHECKING:
    from agentflow.ledger import Ledger
    from agentflow.sandbox import Sandbox

Status = Literal["completed", "failed", "limits", "interrupted"]
ProgressFn = Callable[[dict[str, Any]], None]
# Tools that end a session; recorded whole in events because orchestration reads them back.
TERMINAL_TOOLS = ("finish", "submit_verdict", "submit_findings")


class LimitsExceeded(Exception):
    """A session or run limit was reached; the message names which."""


_DEFAULTS = config.Limits()  # one set of defaults: the config's


@dataclass(frozen=True)
class SessionLimits:
    """The limits of one session, each documented and checked here (``check``) before every model
    call; built from ``config.Limits`` (``from_config``), whose defaults it shares.

    * ``max_turns``: model calls in the session;
    * ``max_tokens``: input + output tokens so far;
    * ``max_cost_usd``: dollars spent plus the next call's worst-case estimate;
    * ``max_seconds``: wall time since the session started;
    * ``output_tokens``: max tokens of one reply (passed to the model, not checked here);
    * ``command_timeout``: seconds per ``run_command`` (enforced by the tools).
    """

    max_turns: int = _DEFAULTS.max_turns
    max_tokens: int = _DEFAULTS.max_tokens
    max_cost_usd: float = _DEFAULTS.session_cost_usd
    max_seconds: float = _DEFAULTS.session_seconds
    output_tokens: int = _DEFAULTS.output_tokens
    command_timeout: float = _DEFAULTS.command_timeout

    @classmethod
    def from_config(cls, limits: config.Limits) -> SessionLimits:
        return cls(
            max_turns=limits.max_turns,
            max_tokens=limits.max_tokens,
            max_cost_usd=limits.session_cost_usd,
            max_seconds=limits.session_seconds,
            output_tokens=limits.output_tokens,
            command_timeout=limits.command_timeout,
        )

    def check(self, *, turns: int, tokens: int, seconds: float, cost_usd: float, next_call_usd: float) -> None:
        """``LimitsExceeded`` naming the first limit that the next model call would break."""
        if turns >= self.max_turns:
            raise LimitsExceeded(f"turn limit reached ({self.max_turns} model calls)")
        if tokens >= self.max_tokens:
            raise LimitsExceeded(f"token limit reached ({tokens} of {self.max_tokens})")
        if seconds >= self.max_seconds:
            raise LimitsExceeded(f"time limit reached ({seconds:.0f} s of {self.max_seconds:g} s)")
        if cost_usd + next_call_usd > self.max_cost_usd:
            raise LimitsExceeded(
                f"session cost limit: ${cost_usd:.2f} spent of ${self.max_cost_usd:.2f} and "
                f"the next call may cost up to ${next_call_usd:.2f}"
            )


@dataclass
class RunBudget:
    """Dollars for a whole run, shared by all its sessions (thread-safe)."""

    limit_usd: float
    spent_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def check(self, estimate_usd: float) -> None:
        """``LimitsExceeded`` when a call estimated at ``estimate_usd`` could exceed the budget."""
        with self._lock:
            if self.spent_usd + estimate_usd > self.limit_usd:
                raise LimitsExceeded(
                    f"run budget: ${self.spent_usd:.2f} of ${self.limit_usd:.2f} spent and the next call may cost "
                    f"up to ${estimate_usd:.2f}"
                )

    def charge(self, cost_usd: float) -> None:
        with self._lock:
            self.spent_usd += cost_usd

    @property
    def remaining_usd(self) -> float:
        return max(0.0, self.limit_usd - self.spent_usd)


@dataclass
class SessionSpec:
    role: str
    cycle: int
    run_id: str
    root: Path  # the worktree
    system: str  # rendered system prompt
    prompt: str  # rendered first user message (plan, patterns, diff...)
    limits: SessionLimits
    budget: RunBudget
    backend: str
    model_name: str
    role_cfg: config.RoleModel | None = None
    sandbox: Sandbox | None = None  # where the session's processes run; None: the default (mode auto)
    # root is a checkout agentflow just made of this commit (detached, nothing changed or untracked):
    # a verifier's commands are undone back to it without asking git what it was first
    fresh_commit: str | None = None


@dataclass
class SessionResult:
    session_id: str
    role: str
    status: Status
    reason: str | None
    turns: int
    usage: Usage
    cost_usd: float
    submitted: dict[str, Any] | None  # finish input (builder) or the verdict (verifier)
    external_id: str | None = None


def submitted_summary(submitted: dict[str, Any] | None) -> str | None:
    """The ``summary`` string a terminal tool's input carries (finish, submit_verdict), if any."""
    summary = submitted.get("summary") if submitted else None
    return summary if isinstance(summary, str) else None


class SessionRecorder:
    """The record of one session, kept the same way by every engine.

    Engines differ in how a session runs (the API tool loop, Claude Code, a shell command) but not
    in what is recorded: the session id, turn/usage/cost counters and start time; the
    ``SessionStarted``, ``ModelCalled``, ``ToolCalled`` and ``SessionEnded`` events; the progress
    dict; the transcript; and the ``SessionResult``. Engines own the counters' meaning (when a turn
    begins, whether a reported figure replaces the running sum) and so update them directly.

    Cost reaches the run budget once: a model call's cost is charged when it is recorded, and
    ``finish`` charges whatever cost was set without being charged (an engine that learns its
    cost only at the end sets ``cost`` and lets ``finish`` charge it).
    """

    def __init__(self, spec: SessionSpec, ledger: Ledger, on_progress: ProgressFn | None = None):
        self.spec, self.ledger, self.on_progress = spec, ledger, on_progress
        self.session_id = new_id("s")
        self.started = time.monotonic()
        self.turns = 0
        self.usage = Usage()
        self.cost = 0.0
        self._charged = 0.0

    def start(self, backend: str, model: str) -> None:
        self.ledger.append(
            SessionStarted(
                run_id=self.spec.run_id,
                session_id=self.session_id,
                role=self.spec.role,
                cycle=self.spec.cycle,
                backend=backend,
                model=model,
            )
        )

    def record_model_call(
        self,
        model: str,
        usage: Usage,
        *,
        cost_usd: float = 0.0,
        stop_reason: str | None = None,
        duration_s: float = 0.0,
        retries: int = 0,
    ) -> None:
        """Add a reply's usage and cost to the session (charging the run budget) and record it."""
        self.usage = self.usage + usage
        self.cost += cost_usd
        self._charge(cost_usd)
        self.ledger.append(
            ModelCalled(
                run_id=self.spec.run_id,
                session_id=self.session_id,
                turn=self.turns,
                model=model,
                usage=usage,
                cost_usd=cost_usd,
                stop_reason=stop_reason,
                duration_s=round(duration_s, 3),
                retries=retries,
            )
        )

    def record_tool_call(
        self, tool: str, input: dict[str, Any], *, is_error: bool, output_chars: int, duration_s: float
    ) -> None:
        """Record a tool call; inputs are clipped except for terminal tools, which orchestration reads."""
        self.ledger.append(
            ToolCalled(
                run_id=self.spec.run_id,
                session_id=self.session_id,
                turn=self.turns,
                tool=tool,
                input=input if tool in TERMINAL_TOOLS else clip(input),
                is_error=is_error,
                output_chars=output_chars,
                duration_s=round(duration_s, 3),
            )
        )

    def progress(self, **extra: Any) -> None:
        if self.on_progress is not None:
            self.on_progress(
                {
                    "role": self.spec.role,
                    "cycle": self.spec.cycle,
                    "turn": self.turns,
                    "tokens": self.usage.total,
                    "cost_usd": round(self.cost, 6),
                    "elapsed_s": round(time.monotonic() - self.started, 1),
                    **extra,
                }
            )

    def save_transcript(self, messages: list[Any]) -> None:
        self.ledger.save_transcript(self.session_id, self.spec.role, self.spec.run_id, messages)

    def finish(
        self,
        status: Status,
        reason: str | None,
        submitted: dict[str, Any] | None,
        *,
        summary: str | None = None,
        transcript: list[Any] | None = None,
        external_id: str | None = None,
    ) -> SessionResult:
        """Charge the uncharged cost, save ``transcript`` (if given), append ``SessionEnded``.

        ``summary`` is the event's summary; engines pass ``submitted_summary(submitted)`` or their own.
        """
        self._charge(self.cost - self._charged)
        if transcript is not None:
            self.save_transcript(transcript)
        self.ledger.append(
            SessionEnded(
                run_id=self.spec.run_id,
                session_id=self.session_id,
                role=self.spec.role,
                cycle=self.spec.cycle,
                status=status,
                reason=reason,
                turns=self.turns,
                usage=self.usage,
                cost_usd=round(self.cost, 6),
                summary=summary,
                external_id=external_id,
            )
        )
        return SessionResult(
            self.session_id,
            self.spec.role,
            status,
            reason,
            self.turns,
            self.usage,
            self.cost,
            submitted,
            external_id=external_id,
        )

    def _charge(self, cost_usd: float) -> None:
        self.spec.budget.charge(cost_usd)
        self._charged += cost_usd
