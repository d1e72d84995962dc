"""Build and verify runs: the builder → commit → checks → verifier → outcome loop.

A build run is driven by its own events. Each step reads the run's events from the ledger, works
out what is left to do (``BuildDriver.step``) and appends the events of that step. A fresh run and a
resumed one therefore take the same path: ``--resume`` only re-opens the worktree and continues,
and a session that finished is never run again.

Steps of one cycle: builder session → commit (trailers ``Agentflow-Plan/Run/Cycle``) → checks →
verifier session (fresh context: never the builder's transcript or summary) → verdict (ledger
event and git note). The outcome is computed (``verdict.compute_outcome``), never taken from the
model. ``changes_requested`` starts the next cycle, up to the cycle cap; a finding reopened twice
or a cycle that changes nothing ends the run early as ``capped``.

Verify runs (CI) are one verification of ``base...head`` of the repository itself: checks and a
verifier session, no builder.

Domain package: no typer, no rich. Progress goes to a ``Reporter`` the caller supplies.

Modules import downward only (no cycles)::

    build_runs, verify_runs   the runs: BuildDriver, build, resume_run, dry_run; verify
    → run                     Run: sessions, checks, verdicts and notes
    → context, progress,      scope, prompts, plan/patterns/findings context, models per role;
      worktrees               the run projection (events → cycle state); git identity, worktrees
    → api                     BuildOptions, BuildResult, Reporter, RunInterrupted, exit codes

This module re-exports the public API, so ``from agentflow.orchestration import build, verify``
works. Patch a name where it is looked up (``agentflow.orchestration.build_runs.wait``), not here:
a re-export is a second reference, and replacing it changes nothing the runs call.
"""

from __future__ import annotations

from typing import Any

from agentflow.orchestration.api import (
    INTERRUPTED,
    BuildOptions,
    BuildResult,
    ModelFactory,
    NullReporter,
    PromptPreview,
    Reporter,
    RunInterrupted,
    exit_code_for,
)
from agentflow.orchestration.build_runs import (
    REOPEN_LIMIT,
    BuildDriver,
    build,
    build_contained,
    build_plan,
    builder_context,
    crash_reason,
    dry_run,
    effective_max_cycles,
    load_build_plans,
    preflight,
    require_base,
    resume_run,
)
from agentflow.orchestration.context import (
    DEFAULT_SYSTEM,
    EVALUATOR_KEYS,
    FINDING_KEYS,
    SCOPE_PATTERN,
    TASK_MARKER,
    ModelPool,
    choose_patterns_text,
    describe_role,
    effective_role,
    evaluator_findings,
    in_scope,
    render_role_prompt,
    scope_findings,
    split_prompt,
    validate_backends,
)
from agentflow.orchestration.progress import CycleState, RunProgress, project_progress, reopened_findings
from agentflow.orchestration.run import MAX_DIFF_CHARS, Run
from agentflow.orchestration.worktrees import (
    FALLBACK_IDENTITY,
    WORKTREES_DIR,
    add_detached_worktree,
    ensure_git_identity,
    prepare_worktree,
    remove_worktree,
)

# verify runs (and the VerifyReport they return) are imported on first use: a build does not need them
_VERIFY_RUNS = frozenset({"plan_from_trailers", "verify", "verify_checks"})


def __getattr__(name: str) -> Any:
    if name in _VERIFY_RUNS:
        from agentflow.orchestration import verify_runs

        return getattr(verify_runs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "INTERRUPTED",
    "DEFAULT_SYSTEM",
    "EVALUATOR_KEYS",
    "FALLBACK_IDENTITY",
    "FINDING_KEYS",
    "MAX_DIFF_CHARS",
    "REOPEN_LIMIT",
    "SCOPE_PATTERN",
    "TASK_MARKER",
    "verify_checks",
    "WORKTREES_DIR",
    "BuildDriver",
    "BuildOptions",
    "BuildResult",
    "CycleState",
    "ModelFactory",
    "ModelPool",
    "NullReporter",
    "PromptPreview",
    "Reporter",
    "Run",
    "RunInterrupted",
    "RunProgress",
    "add_detached_worktree",
    "build",
    "build_contained",
    "build_plan",
    "builder_context",
    "choose_patterns_text",
    "crash_reason",
    "describe_role",
    "dry_run",
    "effective_max_cycles",
    "effective_role",
    "ensure_git_identity",
    "evaluator_findings",
    "exit_code_for",
    "in_scope",
    "load_build_plans",
    "plan_from_trailers",
    "preflight",
    "prepare_worktree",
    "project_progress",
    "remove_worktree",
    "render_role_prompt",
    "reopened_findings",
    "require_base",
    "resume_run",
    "scope_findings",
    "split_prompt",
    "validate_backends",
    "verify",
]
