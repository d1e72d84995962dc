"""The public types of build and verify runs: options in, results out, and where progress goes.

The bottom of ``agentflow.orchestration``: every other module of the package imports from here,
this one imports none of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agentflow.errors import AgentflowError, ExitCode
from agentflow.events import Event, Outcome
from agentflow.models.base import Model

ModelFactory = Callable[[str, int], Model]
"""``(role, cycle) -> Model``: lets tests and the demo supply models directly."""

INTERRUPTED = threading.Event()
"""Set by the command line's SIGINT handler (``cli/run.py``) besides the ``KeyboardInterrupt`` it
raises: a run checks it between steps and at every session turn, so a Ctrl-C whose exception Python
ignored (raised inside a ``__del__`` or a finalizer, where exceptions are only printed) still stops
every run at a recorded point."""


class Reporter(Protocol):
    """Where a run tells what it does. Called from worker threads with ``-j``: be thread-safe."""

    def on_event(self, event: Event) -> None:
        """An event orchestration appended (run, commit, checks, verdict, end)."""

    def on_progress(self, progress: dict[str, Any]) -> None:
        """Live session progress: plan, role, cycle, turn, tokens, cost_usd, elapsed_s, tool."""

    def on_message(self, message: str) -> None:
        """A line for the human: a step starting, a warning."""


class NullReporter:
    """A reporter that ignores everything (library use, tests)."""

    def on_event(self, event: Event) -> None:
        pass

    def on_progress(self, progress: dict[str, Any]) -> None:
        pass

    def on_message(self, message: str) -> None:
        pass


class RunInterrupted(AgentflowError):
    """The user interrupted a run; the ledger records where, ``--resume`` continues it."""

    exit_code = ExitCode.INTERRUPTED


@dataclass
class BuildOptions:
    """What the command line (or a library caller) can override for a run."""

    max_cycles: int | None = None
    backend: str | None = None
    model: str | None = None
    budget_usd: float | None = None
    script: Path | None = None
    jobs: int = 1
    models: ModelFactory | None = None


@dataclass
class BuildResult:
    """The end of one build run, for the summary and the exit code."""

    run_id: str
    plan_id: str
    plan_title: str
    plan_path: str
    branch: str
    worktree: Path
    outcome: Outcome
    reason: str | None
    cycles: int
    cost_usd: float
    commit: str | None
    findings: list[dict[str, Any]] = field(default_factory=list)
    criteria: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return exit_code_for(self.outcome)

    @property
    def next_command(self) -> str:
        if self.outcome == "approved":
            return f"agentflow merge {self.plan_id}"
        if not self.run_id:  # failed before its run started
            return f"fix the cause above, then `agentflow build {self.plan_path}`"
        if self.outcome == "no_verdict":
            return f"agentflow show {self.run_id}  # see why no verdict was obtained, then `agentflow build {self.plan_path}`"
        return f"address the findings (agentflow show {self.run_id}), then `agentflow build {self.plan_path}` again"


@dataclass(frozen=True)
class PromptPreview:
    """A prompt ``--dry-run`` shows instead of sending."""

    plan_id: str | None
    role: str
    cycle: int
    system: str
    prompt: str


def exit_code_for(outcome: str | None) -> int:
    """DESIGN.md exit codes: 0 approved, 3 no verdict, 1 any other outcome."""
    if outcome == "approved":
        return int(ExitCode.OK)
    if outcome == "no_verdict" or outcome is None:
        return int(ExitCode.BACKEND)
    return int(ExitCode.NOT_APPROVED)
