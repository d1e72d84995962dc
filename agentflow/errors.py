"""Errors and exit codes (DESIGN.md, "Exit codes").

Every error agentflow reports is one line naming the file, the problem and the fix. Domain modules
raise these; ``agentflow.cli`` turns them into a message on stderr and the documented exit code.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    NOT_APPROVED = 1  # not approved, gate closed, findings at or above the threshold
    USAGE = 2  # bad plan, bad config, not a git repo, unreadable file
    BACKEND = 3  # model or backend failure: no verdict could be obtained
    INTERRUPTED = 130


class AgentflowError(Exception):
    """An error with a one-line message and an exit code.

    ``where`` names the file (and line or key) the problem is in, ``fix`` says what to do.
    """

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, problem: str, *, where: str | Path | None = None, fix: str | None = None):
        self.problem = problem
        self.where = str(where) if where is not None else None
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.problem}" if self.where else self.problem
        return f"{text} ({self.fix})" if self.fix else text


class UsageError(AgentflowError):
    """Bad input from the user: arguments, plan, config, repository state."""


class ConfigError(UsageError):
    pass


class PlanError(UsageError):
    pass


class GitError(UsageError):
    pass


class BackendError(AgentflowError):
    """A model backend failed; no verdict could be obtained."""

    exit_code = ExitCode.BACKEND


class LedgerError(UsageError):
    pass
