"""The session contract every engine shares: what to run and what came of it.

``agentflow.session`` runs API-style models in its tool loop; external engines (the ``command``
backend, Claude Code) run whole sessions themselves. All of them take a ``SessionSpec`` and return
a ``SessionResult``, so this module sits below them all and imports none of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentflow import config
from agentflow.events import Usage

Status = Literal["completed", "failed", "limits", "interrupted"]
ProgressFn = Callable[[dict[str, Any]], None]


class LimitsExceeded(Exception):
    """A session or run limit was reached; the message names which."""


@dataclass
class SessionLimits:
    max_turns: int = 60
    max_tokens: int = 4_000_000
    max_cost_usd: float = 5.0
    max_seconds: float = 1800.0
    output_tokens: int = 8192
    command_timeout: float = 600.0  # per run_command call

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
