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

Domain module: no typer, no rich. Progress goes to a ``Reporter`` the caller supplies.
"""

from __future__ import annotations

import json
import os
import re
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agentflow import prompts
from agentflow.checks import check_commands, run_checks
from agentflow.config import Config, RoleModel, load_config
from agentflow.errors import AgentflowError, ExitCode, GitError, UsageError
from agentflow.events import (
    BuilderCommitted,
    CheckResult,
    ChecksRan,
    Event,
    Outcome,
    RunEnded,
    RunResumed,
    RunStarted,
    SessionEnded,
    SessionStarted,
    ToolCalled,
    VerdictRecorded,
    new_id,
)
from agentflow.formats import VerifyReport
from agentflow.git import TRAILER_CYCLE, TRAILER_PLAN, TRAILER_RUN, Repo
from agentflow.ledger import Ledger
from agentflow.models.base import Model
from agentflow.patterns import Pattern, load_patterns, render_patterns, select_patterns
from agentflow.plans import Plan, branch_name, load_plan, resolve_plan
from agentflow.session import RunBudget, SessionLimits, SessionResult, SessionSpec, run_role_session
from agentflow.verdict import Verdict, VerdictNote, compute_outcome, signing_key

WORKTREES_DIR = Path(".agentflow") / "worktrees"
MAX_DIFF_CHARS = 80_000
TASK_MARKER = "<!-- agentflow:task -->"
DEFAULT_SYSTEM = "You are an agentflow {role}. Follow the instructions in the first message."
SCOPE_PATTERN = "scope"
REOPEN_LIMIT = 2
BACKENDS = ("anthropic", "scripted", "command", "claude-code")
VERIFIER_BACKENDS = ("anthropic", "scripted", "claude-code")

# git refuses concurrent writes to the same ref or worktree list: serialise them across -j threads.
_GIT_LOCK = threading.Lock()

ModelFactory = Callable[[str, int], Model]
"""``(role, cycle) -> Model``: lets tests and the demo supply models directly."""


# -- public types ----------------------------------------------------------------------------------


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


# -- run projection ----------------------------------------------------------------------------------


@dataclass
class CycleState:
    """What one cycle has done so far, as its events say."""

    number: int
    builder: SessionEnded | None = None  # the last builder session that ended
    builder_running: bool = False
    committed: BuilderCommitted | None = None
    checks: ChecksRan | None = None
    verifier: SessionEnded | None = None
    verdict: VerdictRecorded | None = None


@dataclass
class RunProgress:
    start: RunStarted
    cycles: dict[int, CycleState]
    ended: RunEnded | None
    cost_usd: float
    events: list[Event]

    @property
    def current(self) -> CycleState:
        number = max(self.cycles) if self.cycles else 1
        return self.cycles.setdefault(number, CycleState(number))

    def verdicts(self) -> list[VerdictRecorded]:
        return [c.verdict for _, c in sorted(self.cycles.items()) if c.verdict is not None]


def project_progress(events: list[Event]) -> RunProgress:
    """Fold a run's events into per-cycle state (what ``next_step`` needs)."""
    start = events[0]
    if not isinstance(start, RunStarted):
        raise UsageError("the run's first event is not run_started", fix="start a new build")
    cycles: dict[int, CycleState] = {}
    ended: RunEnded | None = None
    cost = 0.0

    def cycle(number: int) -> CycleState:
        return cycles.setdefault(number, CycleState(number))

    for event in events:
        if isinstance(event, SessionStarted) and event.role == "builder":
            cycle(event.cycle).builder_running = True
        elif isinstance(event, SessionEnded):
            cost += event.cost_usd
            if event.role == "builder":
                cycle(event.cycle).builder, cycle(event.cycle).builder_running = event, False
            elif event.role == "verifier":
                cycle(event.cycle).verifier = event
        elif isinstance(event, BuilderCommitted):
            cycle(event.cycle).committed = event
        elif isinstance(event, ChecksRan):
            cycle(event.cycle).checks = event
        elif isinstance(event, VerdictRecorded):
            cycle(event.cycle).verdict = event
        elif isinstance(event, RunEnded):
            ended = event
    return RunProgress(start, cycles, ended, cost, events)


def reopened_findings(verdicts: Sequence[VerdictRecorded]) -> dict[str, int]:
    """How often each finding id came back after a rework cycle was asked to fix it."""
    seen: set[str] = set()
    counts: dict[str, int] = {}
    for verdict in verdicts:
        ids = {str(f.get("id")) for f in (verdict.verdict or {}).get("findings", []) if f.get("id")}
        for finding_id in ids & seen:
            counts[finding_id] = counts.get(finding_id, 0) + 1
        seen |= ids
    return counts


# -- helpers: scope, prompts, models -------------------------------------------------------------------


def _glob_regex(glob: str) -> re.Pattern[str]:
    """``**`` crosses folders, ``*`` and ``?`` stay inside one; a trailing ``/`` means the whole folder."""
    if glob.endswith("/"):
        glob += "**"
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out + r"\Z")


def in_scope(path: str, scope: Sequence[str]) -> bool:
    """True when ``scope`` is empty (no restriction) or a glob (or folder prefix) matches ``path``."""
    if not scope:
        return True
    for glob in scope:
        glob = glob.strip().removeprefix("./")
        if _glob_regex(glob).match(path) or path.startswith(glob.rstrip("/") + "/"):
            return True
    return False


def scope_findings(files: Sequence[str], scope: Sequence[str]) -> list[dict[str, Any]]:
    """Files changed outside the plan's scope, as medium findings with ids stable across cycles."""
    return [
        {
            "id": f"scope:{path}",
            "severity": "medium",
            "file": path,
            "line": None,
            "pattern": SCOPE_PATTERN,
            "message": f"{path} is outside the plan's scope ({', '.join(scope)})",
            "suggestion": "revert the change or widen the plan's scope explicitly",
        }
        for path in files
        if not in_scope(path, scope)
    ]


def split_prompt(rendered: str, role: str) -> tuple[str, str]:
    """A template's system part (before ``TASK_MARKER``) and first user message (after it).

    Runs of blank lines left by template conditionals are collapsed to one.
    """
    rendered = re.sub(r"\n{3,}", "\n\n", rendered)
    if TASK_MARKER in rendered:
        system, task = rendered.split(TASK_MARKER, 1)
        return system.strip() + "\n", task.strip() + "\n"
    return DEFAULT_SYSTEM.format(role=role), rendered


def render_role_prompt(role: str, root: Path, context: dict[str, Any]) -> tuple[str, str]:
    return split_prompt(prompts.render(role, root, **context), role)


def _plan_context(plan: Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "id": plan.id,
        "title": plan.title,
        "path": _display(plan.path),
        "text": plan.text,
        "body": plan.body,
        "scope": list(plan.scope),
        "checks": list(plan.checks),
        "criteria": [{"id": c.id, "text": c.text} for c in plan.criteria],
    }


FINDING_KEYS = ("id", "severity", "file", "line", "pattern", "message", "suggestion")
EVALUATOR_KEYS = ("id", "rule", "severity", "event_type", "field", "message", "evidence")


def _complete(item: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Every key a template may use present (None when absent): templates use StrictUndefined."""
    return {**{key: None for key in keys}, **item}


def _findings_view(findings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_complete(f, FINDING_KEYS) for f in findings]


def _display(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (default: the cwd) when it is inside, else as given."""
    try:
        return str(path.resolve().relative_to((base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def choose_patterns_text(patterns: list[Pattern], plan: Plan | None, budget: int) -> str:
    """The patterns for the prompt: the plan's selection, or (no plan) all that fit the budget."""
    if plan is not None:
        chosen = select_patterns(patterns, plan, budget)
    else:
        chosen, used = [], 0
        for pattern in patterns:
            if used + pattern.tokens <= budget:
                chosen.append(pattern)
                used += pattern.tokens
    return render_patterns(chosen)


def evaluator_findings(ledger: Ledger | None, plan: Plan | None) -> list[dict[str, Any]]:
    """Open evaluator findings that concern the plan (all of them when there is no plan)."""
    if ledger is None:
        return []
    findings = ledger.open_findings()
    if not findings or plan is None:
        return [_complete(f, EVALUATOR_KEYS) for f in findings]
    from agentflow.evaluator import relevant_findings  # lazy: only when there are findings to filter

    return [_complete(f, EVALUATOR_KEYS) for f in relevant_findings(findings, plan)]


def effective_role(config: Config, role: str, options: BuildOptions, root: Path) -> RoleModel:
    """The role's model config after ``--backend``, ``--model`` and ``--script``."""
    cfg = config.models.for_role(role)  # type: ignore[arg-type]
    update: dict[str, Any] = {}
    if options.script is not None:
        update["script"] = str(options.script.resolve())
        update["backend"] = options.backend or "scripted"
    if options.backend:
        update["backend"] = options.backend
    if options.model:
        update["model"] = options.model
    cfg = cfg.model_copy(update=update)
    if cfg.script and not Path(cfg.script).is_absolute():
        cfg = cfg.model_copy(update={"script": str((root / cfg.script).resolve())})
    return cfg


def validate_backends(config: Config, options: BuildOptions, root: Path, roles: Sequence[str]) -> dict[str, RoleModel]:
    """Per-role model config, refusing combinations that cannot work before anything starts."""
    chosen = {}
    for role in roles:
        cfg = effective_role(config, role, options, root)
        if cfg.backend not in BACKENDS:
            raise UsageError(f"unknown backend {cfg.backend!r}", fix=f"use one of {', '.join(BACKENDS)}")
        if options.models is None:
            if role == "verifier" and cfg.backend not in VERIFIER_BACKENDS:
                raise UsageError(
                    f"the {cfg.backend} backend can only be the builder (a verifier must submit a verdict)",
                    where=config.source or "agentflow.yaml",
                    fix="set models.verifier.backend to anthropic, scripted or claude-code",
                )
            if cfg.backend == "scripted" and not cfg.script:
                raise UsageError(f"the scripted backend needs a script for the {role}",
                                 fix="pass --script FILE or set models.<role>.script")
            if cfg.backend == "scripted" and not Path(cfg.script or "").is_file():
                raise UsageError("no such script file", where=cfg.script, fix="pass an existing --script FILE")
            if cfg.backend == "command" and not cfg.command:
                raise UsageError("the command backend needs a command", where=config.source or "agentflow.yaml",
                                 fix="set models.builder.command, e.g. 'my-agent --prompt-file {prompt_file}'")
        chosen[role] = cfg
    return chosen


class ModelPool:
    """Models of one run, created once: a script is loaded once so each session takes its next
    entry, and an API client is built (and its key checked) before anything starts."""

    def __init__(self, roles: dict[str, RoleModel], factory: ModelFactory | None, root: Path | None = None):
        self.roles = roles
        self.factory = factory
        self.root = root or Path.cwd()
        self._scripts: dict[str, Any] = {}
        self._api: dict[str, Model] = {}

    def check(self) -> None:
        """Fail now (exit 2) on what would fail at the first session: no API key, missing extra."""
        if self.factory is not None:
            return
        for role, cfg in self.roles.items():
            if cfg.backend == "anthropic":
                self.model(role, 1)
            elif cfg.backend == "claude-code":
                from agentflow.models.claude_code import ensure_available

                ensure_available()

    def model(self, role: str, cycle: int) -> Model | None:
        if self.factory is not None:
            return self.factory(role, cycle)
        cfg = self.roles[role]
        if cfg.backend == "scripted":
            from agentflow.models.scripted import ScriptedModel

            script = str(cfg.script)
            if script not in self._scripts:
                self._scripts[script] = ScriptedModel.load(Path(script))
            return self._scripts[script].for_role(role)
        if cfg.backend == "anthropic":
            if role not in self._api:
                from agentflow.models.registry import get_model

                self._api[role] = get_model(cfg, root=self.root, role=role)
            return self._api[role]
        return None  # external agents (command, claude-code): run_role_session runs them

    def describe(self) -> dict[str, str]:
        if self.factory is not None:
            return {role: "function" for role in self.roles}
        return {role: describe_role(cfg) for role, cfg in self.roles.items()}


def describe_role(cfg: RoleModel) -> str:
    """``backend:model`` (a scripted role is named by its script, the model name means nothing there)."""
    if cfg.backend == "scripted":
        return f"scripted:{Path(cfg.script or '?').name}"
    if cfg.backend == "command":
        return f"command:{(cfg.command or '?').split()[0]}"
    return f"{cfg.backend}:{cfg.model}"


# -- git: identity and worktrees --------------------------------------------------------------------------------------


FALLBACK_IDENTITY = {"GIT_AUTHOR_NAME": "agentflow", "GIT_AUTHOR_EMAIL": "agentflow@localhost",
                     "GIT_COMMITTER_NAME": "agentflow", "GIT_COMMITTER_EMAIL": "agentflow@localhost"}


def ensure_git_identity(repo: Repo, reporter: Reporter) -> None:
    """Commits and notes need an identity; CI runners often have none configured.

    Without one, agentflow commits as ``agentflow <agentflow@localhost>`` and says so, rather than
    failing after the sessions have been paid for.
    """
    configured = repo.git("config", "user.name", check=False) and repo.git("config", "user.email", check=False)
    if configured or all(os.environ.get(name) for name in FALLBACK_IDENTITY):
        return
    for name, value in FALLBACK_IDENTITY.items():
        os.environ.setdefault(name, value)
    reporter.on_message("git has no user.name/user.email here: commits and notes are made as "
                        "agentflow <agentflow@localhost> (configure git to change that)")


def _ensure_excluded(repo: Repo) -> None:
    """Keep ``.agentflow/`` out of ``git status`` without editing a tracked file."""
    if repo.ok("check-ignore", "-q", ".agentflow/ledger.db"):
        return
    common = Path(repo.git("rev-parse", "--git-common-dir"))
    exclude = (common if common.is_absolute() else repo.root / common) / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    existing = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
    if ".agentflow/" not in existing.splitlines():
        exclude.write_text(existing + ("" if existing.endswith("\n") or not existing else "\n") + ".agentflow/\n",
                           encoding="utf-8")


def prepare_worktree(repo: Repo, branch: str, base_ref: str, path: Path) -> Path:
    """Create or reuse the plan's branch (from ``base_ref``) and its worktree at ``path``."""
    with _GIT_LOCK:
        _ensure_excluded(repo)
        registered = {path.resolve(): ref for path, ref in repo.worktrees()}
        resolved = path.resolve()
        if resolved in registered:
            if registered[resolved] != f"refs/heads/{branch}":
                raise GitError(f"worktree {path} has {registered[resolved] or 'a detached HEAD'} checked out, "
                               f"not {branch}", fix=f"remove it with `git worktree remove {path}`")
            return path
        repo.git("worktree", "prune")
        if path.exists() and any(path.iterdir()):
            raise GitError(f"{path} exists and is not a worktree of this repository",
                           fix="move it away; agentflow creates the worktree itself")
        path.parent.mkdir(parents=True, exist_ok=True)
        if repo.branch_exists(branch):
            repo.git("worktree", "add", "--quiet", str(path), branch)
        else:
            repo.git("worktree", "add", "--quiet", "-b", branch, str(path), repo.rev(base_ref))
    return path


def add_detached_worktree(repo: Repo, commit: str, path: Path) -> Path:
    with _GIT_LOCK:
        _ensure_excluded(repo)
        path.parent.mkdir(parents=True, exist_ok=True)
        repo.git("worktree", "add", "--quiet", "--detach", str(path), commit)
    return path


def remove_worktree(repo: Repo, path: Path) -> None:
    with _GIT_LOCK:
        repo.git("worktree", "remove", "--force", str(path), check=False)
        repo.git("worktree", "prune", check=False)


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything one run needs; steps append events through ``emit``."""

    root: Path  # the user's repository
    repo: Repo
    config: Config
    plan: Plan | None
    options: BuildOptions
    reporter: Reporter
    ledger: Ledger
    run_id: str
    workdir: Path  # the worktree (build) or the verified tree (verify)
    base_commit: str
    max_cycles: int
    models: ModelPool
    budget: RunBudget
    patterns_text: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)

    def emit(self, event: Event) -> None:
        self.ledger.append(event)
        self.reporter.on_event(event)

    def say(self, message: str) -> None:
        self.reporter.on_message(message)

    def events(self) -> list[Event]:
        return self.ledger.events(run_id=self.run_id)

    def progress(self) -> RunProgress:
        return project_progress(self.events())

    @property
    def label(self) -> str:
        return f"plan {self.plan.id}" if self.plan is not None else "verify"

    def on_progress(self, progress: dict[str, Any]) -> None:
        if self.cancel.is_set():  # Ctrl-C reached the main thread while this run works in another (-j)
            raise KeyboardInterrupt
        self.reporter.on_progress({"plan": self.plan.id if self.plan else None, "run_id": self.run_id, **progress})

    # -- sessions ------------------------------------------------------------------------------

    def session(self, role: str, cycle: int, context: dict[str, Any]) -> SessionResult:
        system, prompt = render_role_prompt(role, self.root, context)
        cfg = self.models.roles[role]
        spec = SessionSpec(
            role=role, cycle=cycle, run_id=self.run_id, root=self.workdir, system=system, prompt=prompt,
            limits=SessionLimits.from_config(self.config.limits), budget=self.budget,
            backend=cfg.backend, model_name="scripted" if cfg.backend == "scripted" else cfg.model, role_cfg=cfg,
        )
        self.say(f"{self.label}: cycle {cycle}: {role} session ({describe_role(cfg)})")
        return run_role_session(spec, self.ledger, model=self.models.model(role, cycle), on_progress=self.on_progress)

    # -- verification (shared by build and verify runs) ----------------------------------------------

    def run_checks(self, cycle: int, commit: str) -> ChecksRan:
        commands = check_commands(self.config.checks, self.plan.checks if self.plan else ())
        if commands:
            self.say(f"{self.label}: cycle {cycle}: running {len(commands)} check(s)")
        results = run_checks(commands, self.workdir, self.config.limits.command_timeout)
        event = ChecksRan(run_id=self.run_id, cycle=cycle, commit=commit, results=results)
        self.emit(event)
        return event

    def verifier_context(self, cycle: int, commit: str, checks: list[CheckResult],
                         extra_findings: list[dict[str, Any]], earlier: VerdictRecorded | None,
                         mode: str) -> dict[str, Any]:
        diff = self.repo.diff(self.base_commit, commit)
        truncated = len(diff) > MAX_DIFF_CHARS
        if truncated:
            diff = diff[:MAX_DIFF_CHARS]
        plan = self.plan
        return {
            "mode": mode,
            "cycle": cycle,
            "max_cycles": self.max_cycles,
            "plan": _plan_context(plan),
            "criteria": _plan_context(plan)["criteria"] if plan else [],
            "patterns": self.patterns_text,
            "base": self.base_commit[:12],
            "head": commit[:12],
            "diffstat": str(self.repo.diffstat(self.base_commit, commit)),
            "files": self.repo.changed_files(self.base_commit, commit),
            "diff": diff,
            "diff_truncated": truncated,
            "checks": [_check_dict(c) for c in checks],
            "open_findings": evaluator_findings(self.ledger, plan),
            "scope_findings": _findings_view(extra_findings),
            "earlier_findings": _findings_view((earlier.verdict or {}).get("findings", [])) if earlier else [],
            "earlier_criteria": [c for c in (earlier.verdict or {}).get("criteria", [])
                                 if c.get("status") != "met"] if earlier else [],
        }

    def record_verdict(self, cycle: int, commit: str, checks: list[CheckResult], submitted: dict[str, Any] | None,
                       failure: str | None, extra_findings: list[dict[str, Any]]) -> tuple[VerdictRecorded, list[str]]:
        """Compute the outcome, then record it twice: a ledger event and a git note on ``commit``.

        Returns the event and the reasons it is not approved (the event joins them into one string).
        """
        verdict: Verdict | None = None
        if submitted is not None:
            try:
                verdict = Verdict.model_validate(submitted)
            except ValueError as exc:
                failure = f"the submitted verdict is invalid: {exc}"
        if verdict is not None and extra_findings:
            listed = {f.id for f in verdict.findings}
            merged = [*verdict.model_dump()["findings"], *(f for f in extra_findings if f["id"] not in listed)]
            verdict = verdict.model_copy(update={"findings": Verdict.model_validate(
                {**verdict.model_dump(), "findings": merged}).findings})
        criteria_ids = [c.id for c in self.plan.criteria] if self.plan else []
        outcome, reasons = compute_outcome(verdict, checks, criteria_ids)
        if verdict is None and failure:
            reasons = [failure]
        verdict_data = verdict.model_dump(mode="json", exclude_none=True) if verdict else None
        key = signing_key()
        self._append_note(commit, VerdictNote(
            plan=self.plan.id if self.plan else None, run=self.run_id, outcome=outcome,
            decision=verdict.decision if verdict else None, tree=self.repo.tree(commit), base=self.base_commit,
            patch_id=self.repo.patch_id(self.base_commit, commit), checks=[_check_dict(c) for c in checks],
            models=self.models.describe(), prompts_sha=prompts.prompts_sha(self.root),
            findings=list(verdict_data["findings"]) if verdict_data else [],
            reason="; ".join(reasons)[:1000] or None, **self._note_extensions(cycle),
        ))
        event = VerdictRecorded(
            run_id=self.run_id, cycle=cycle, commit=commit, outcome=outcome,
            decision=verdict.decision if verdict else None, reason="; ".join(reasons) or None,
            verdict=verdict_data, signed=bool(key),
        )
        self.emit(event)
        return event, reasons

    def _note_extensions(self, cycle: int) -> dict[str, Any]:
        """Note fields beyond DESIGN.md's that let ``metrics --from-git`` on a fresh clone compute
        cycles, time to approval and the estimate without the ledger.

        ``run_started`` has whole seconds like the note's ``ts``, so their difference is never negative.
        """
        starts = [e for e in self.ledger.events(run_id=self.run_id, kinds=["run_started"]) if isinstance(e, RunStarted)]
        start = starts[0] if starts else None
        return {
            "cycle": cycle,
            "run_started": start.ts.isoformat(timespec="seconds") if start else None,
            "estimate_hours": start.estimate_hours if start else None,
        }

    def _append_note(self, commit: str, note: VerdictNote) -> None:
        key = signing_key()
        if key:
            note = note.signed(key)
        with _GIT_LOCK:
            self.repo.append_note(commit, note.to_line())

    def end(self, outcome: Outcome, cycles: int, reason: str | None, commit: str | None) -> RunEnded:
        if outcome == "capped":
            self._note_cap(cycles, reason)
        event = RunEnded(run_id=self.run_id, outcome=outcome, cycles=cycles, reason=reason, commit=commit)
        self.emit(event)
        return event

    def _note_cap(self, cycles: int, reason: str | None) -> None:
        """Append a ``capped`` line to the last verified commit's note, so git (a fresh clone's
        metrics, the gate) sees the cap; the gate reads it as not approved.

        Nothing is written when no cycle was verified (there is no verified commit to put it on), nor
        twice: a run resumed after the note was written but before ``RunEnded`` finds it there.
        """
        progress = self.progress()
        verdicts = progress.verdicts()
        if not verdicts or verdicts[-1].commit is None:
            return
        last, commit = verdicts[-1], verdicts[-1].commit
        if any(note.get("run") == self.run_id and note.get("outcome") == "capped"
               for note in _note_dicts(self.repo.notes(commit))):
            return
        checked = progress.cycles[last.cycle].checks
        self._append_note(commit, VerdictNote(
            plan=self.plan.id if self.plan else None, run=self.run_id, outcome="capped",
            tree=self.repo.tree(commit), base=self.base_commit, patch_id=self.repo.patch_id(self.base_commit, commit),
            checks=[_check_dict(c) for c in checked.results] if checked else [], models=self.models.describe(),
            prompts_sha=prompts.prompts_sha(self.root), findings=list((last.verdict or {}).get("findings", [])),
            reason=(reason or "capped")[:1000], **self._note_extensions(cycles),
        ))


def _note_dicts(lines: Sequence[str]) -> list[dict[str, Any]]:
    """The JSON objects among note lines (other lines are skipped, as the gate does)."""
    found = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            found.append(data)
    return found


def _check_dict(check: CheckResult) -> dict[str, Any]:
    return {**check.model_dump(mode="json"), "passed": check.passed}


def _submitted_verdict(events: list[Event], session: SessionEnded) -> dict[str, Any] | None:
    """The verdict a finished verifier session submitted (its last successful submit_verdict call)."""
    found = None
    for event in events:
        if isinstance(event, ToolCalled) and event.session_id == session.session_id:
            if event.tool.endswith("submit_verdict") and not event.is_error:  # claude-code: mcp__..__
                found = dict(event.input)
    return found


# -- build runs --------------------------------------------------------------------------------------------


class BuildDriver:
    """Drives one build run step by step from its events (fresh or resumed alike)."""

    def __init__(self, run: Run, plan: Plan):
        self.run = run
        self.plan = plan
        self.worktree_repo = Repo(run.workdir)
        self.doing = "the start of the run"

    def drive(self) -> RunEnded:
        try:
            while True:
                progress = self.run.progress()
                if progress.ended is not None:
                    return progress.ended
                if self.run.cancel.is_set():
                    raise KeyboardInterrupt
                self.step(progress)
        except KeyboardInterrupt:
            raise RunInterrupted(
                f"run {self.run.run_id} (plan {self.plan.id}) interrupted during {self.doing}; the ledger has "
                "every finished step",
                fix=f"continue with `agentflow build --resume {self.run.run_id}`",
            ) from None

    def step(self, progress: RunProgress) -> None:
        """Do the next thing this run needs (``self.doing`` names it, for the interrupt message)."""
        cycle = progress.current
        n = cycle.number
        if cycle.verdict is not None:
            self.doing = f"the decision after cycle {n}"
            self.after_verdict(progress, cycle)
        elif cycle.verifier is not None and cycle.checks is not None and cycle.verifier.status != "interrupted":
            self.doing = f"recording the verdict of cycle {n}"
            submitted = _submitted_verdict(progress.events, cycle.verifier) \
                if cycle.verifier.status == "completed" else None
            self.record(n, cycle.checks, submitted, cycle.verifier.reason or cycle.verifier.status)
        elif cycle.checks is not None:
            self.doing = f"the verifier session of cycle {n}"
            self.verify(n, cycle.checks, progress)
        elif cycle.committed is not None:
            self.doing = f"the checks of cycle {n}"
            self.checks_or_stop(n, cycle.committed)
        elif cycle.builder is not None and cycle.builder.status in ("completed", "limits"):
            self.doing = f"the commit of cycle {n}"
            self.commit(n, cycle.builder)
        elif cycle.builder is not None and cycle.builder.status == "failed":
            self.doing = f"the end of the run after cycle {n}"
            self.run.end("no_verdict", n, f"builder session failed: {cycle.builder.reason}", self.head())
        else:
            self.doing = f"the builder session of cycle {n}"
            self.build(n, progress)

    def head(self) -> str:
        return self.worktree_repo.rev("HEAD")

    # -- steps ---------------------------------------------------------------------------------------

    def build(self, n: int, progress: RunProgress) -> None:
        previous = progress.cycles.get(n - 1)
        context = builder_context(self.plan, self.run, n, previous)
        self.run.session("builder", n, context)

    def commit(self, n: int, builder: SessionEnded) -> None:
        run = self.run
        before = self.head()
        # The builder's summary stays in the ledger, not in the commit message: the verifier can read
        # `git log`, and it must never see the builder's self-assessment.
        message = f"agentflow: {self.plan.title} (cycle {n})"
        if builder.status == "limits":
            message += f"\n\nThe builder session stopped early: {builder.reason}"
        trailers = {TRAILER_PLAN: self.plan.id, TRAILER_RUN: run.run_id, TRAILER_CYCLE: str(n)}
        commit = self.worktree_repo.commit_all(message, trailers)
        if commit is None and self.worktree_repo.trailers(before) == trailers:
            # killed between `git commit` and the ledger event: the commit exists, record it
            commit, before = before, self.worktree_repo.rev(f"{before}^")
        files = self.worktree_repo.changed_files(before, commit) if commit else []
        stat = self.worktree_repo.diffstat(before, commit) if commit else None
        out_of_scope = [f["file"] for f in scope_findings(files, self.plan.scope)]
        run.emit(BuilderCommitted(
            run_id=run.run_id, cycle=n, commit=commit, files_changed=stat.files if stat else 0,
            insertions=stat.insertions if stat else 0, deletions=stat.deletions if stat else 0,
            out_of_scope=out_of_scope,
        ))
        if out_of_scope:
            run.say(f"plan {self.plan.id}: cycle {n}: changed outside the scope: {', '.join(out_of_scope)}")

    def checks_or_stop(self, n: int, committed: BuilderCommitted) -> None:
        head = self.head()
        if committed.commit is None and (n > 1 or head == self.run.base_commit):
            reason = f"cycle {n} changed nothing" if n > 1 else "the builder changed nothing"
            self.run.end("capped", n, reason, head)
            return
        self.run.run_checks(n, head)
        self.discard_check_changes(n)

    def discard_check_changes(self, n: int) -> None:
        """Checks must not change what is verified, and their artifacts (caches, build output not
        ignored by .gitignore) must not slip into the next cycle's commit: restore the commit."""
        repo = self.worktree_repo
        if not repo.is_dirty(untracked=True):
            return
        changed = [line[3:] for line in repo.git("status", "--porcelain").splitlines()]
        repo.git("checkout", "--", ".")
        repo.git("clean", "-fdq")
        self.run.say(f"plan {self.plan.id}: cycle {n}: the checks changed the worktree; restored "
                     f"({', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''})")

    def verify(self, n: int, checks: ChecksRan, progress: RunProgress) -> None:
        commit = checks.commit or self.head()
        extra = self.scope_findings(commit)
        earlier = progress.cycles[n - 1].verdict if n - 1 in progress.cycles else None
        context = self.run.verifier_context(n, commit, checks.results, extra, earlier, "build")
        result = self.run.session("verifier", n, context)
        failure = None if result.status == "completed" else (result.reason or result.status)
        self.run.record_verdict(n, commit, checks.results, result.submitted, failure, extra)

    def record(self, n: int, checks: ChecksRan, submitted: dict[str, Any] | None, failure: str) -> None:
        """A verifier session ended before its verdict was recorded (resume): record it now."""
        commit = checks.commit or self.head()
        self.run.record_verdict(n, commit, checks.results, submitted, None if submitted else failure,
                                self.scope_findings(commit))

    def scope_findings(self, commit: str) -> list[dict[str, Any]]:
        return scope_findings(self.run.repo.changed_files(self.run.base_commit, commit), self.plan.scope)

    def after_verdict(self, progress: RunProgress, cycle: CycleState) -> None:
        verdict = cycle.verdict
        assert verdict is not None
        n = cycle.number
        if verdict.outcome != "changes_requested":
            self.run.end(verdict.outcome, n, verdict.reason, verdict.commit)
            return
        reopened = {fid: count for fid, count in reopened_findings(progress.verdicts()).items()
                    if count >= REOPEN_LIMIT}
        if reopened:
            ids = ", ".join(sorted(reopened))
            self.run.end("capped", n, f"finding(s) {ids} reopened {REOPEN_LIMIT} times: {verdict.reason}",
                         verdict.commit)
            return
        if n >= self.run.max_cycles:
            self.run.end("capped", n, f"cycle cap {self.run.max_cycles} reached without approval: {verdict.reason}",
                         verdict.commit)
            return
        self.run.say(f"plan {self.plan.id}: cycle {n}: changes requested; reworking")
        self.doing = f"the builder session of cycle {n + 1}"
        progress.cycles[n + 1] = CycleState(n + 1)
        self.build(n + 1, progress)


def builder_context(plan: Plan, run: Run, n: int, previous: CycleState | None) -> dict[str, Any]:
    """What the builder sees: plan, patterns, evaluator findings, and (rework) the last verdict."""
    rework = None
    if previous is not None and previous.verdict is not None:
        data = previous.verdict.verdict or {}
        criteria_text = {c.id: c.text for c in plan.criteria}
        rework = {
            "cycle": previous.number,
            "outcome": previous.verdict.outcome,
            "reason": previous.verdict.reason or "",
            "summary": data.get("summary", ""),
            "findings": _findings_view(data.get("findings", [])),
            "criteria": [{"evidence": "", **c, "text": criteria_text.get(c.get("id", ""), "")}
                         for c in data.get("criteria", []) if c.get("status") != "met"],
            "failed_checks": [_check_dict(c) for c in (previous.checks.results if previous.checks else [])
                              if not c.passed],
        }
    return {
        "cycle": n,
        "max_cycles": run.max_cycles,
        "plan": _plan_context(plan),
        "patterns": run.patterns_text,
        "evaluator_findings": evaluator_findings(run.ledger, plan),
        "checks": check_commands(run.config.checks, plan.checks),
        "rework": rework,
    }


def effective_max_cycles(plan: Plan, options: BuildOptions, config: Config) -> int:
    """plan.max_cycles > --max-cycles > config."""
    return plan.max_cycles or options.max_cycles or config.limits.max_cycles


def _result(run: Run, plan: Plan, ended: RunEnded) -> BuildResult:
    progress = run.progress()
    verdicts = progress.verdicts()
    last = (verdicts[-1].verdict or {}) if verdicts else {}
    return BuildResult(
        run_id=run.run_id, plan_id=plan.id, plan_title=plan.title, plan_path=_display(plan.path),
        branch=branch_name(plan), worktree=run.workdir, outcome=ended.outcome, reason=ended.reason,
        cycles=ended.cycles, cost_usd=round(progress.cost_usd, 6), commit=ended.commit,
        findings=list(last.get("findings", [])), criteria=list(last.get("criteria", [])),
    )


def _open_run(root: Path, config: Config, plan: Plan, options: BuildOptions, reporter: Reporter, ledger: Ledger,
              run_id: str, base_commit: str, max_cycles: int, spent: float,
              cancel: threading.Event | None = None) -> Run:
    repo = Repo(root)
    models = ModelPool(validate_backends(config, options, root, ("builder", "verifier")), options.models, root)
    models.check()  # before the worktree: a missing key creates nothing
    branch = branch_name(plan)
    worktree = prepare_worktree(repo, branch, config.base, root / WORKTREES_DIR / branch.removeprefix("agentflow/"))
    budget = RunBudget(limit_usd=options.budget_usd or config.limits.run_cost_usd, spent_usd=spent)
    return Run(
        root=root, repo=repo, config=config, plan=plan, options=options, reporter=reporter, ledger=ledger,
        run_id=run_id, workdir=worktree, base_commit=base_commit, max_cycles=max_cycles,
        models=models, budget=budget,
        patterns_text=choose_patterns_text(load_patterns(root, config), plan, config.patterns.token_budget),
        cancel=cancel or threading.Event(),
    )


def build_plan(root: Path, plan: Plan, options: BuildOptions, reporter: Reporter | None = None,
               config: Config | None = None, cancel: threading.Event | None = None,
               run_id: str | None = None) -> BuildResult:
    """One build run of ``plan``, from a new run id (``run_id`` when given) to ``RunEnded``."""
    config = config or load_config(root)
    reporter = reporter or NullReporter()
    repo = Repo(root)
    branch = branch_name(plan)
    # A reused branch is verified from where it left the base, so earlier cycles stay in the diff.
    base_commit = repo.merge_base(config.base, branch) if repo.branch_exists(branch) else repo.rev(config.base)
    with Ledger.open(root) as ledger:
        run_id = run_id or new_id("r")
        run = _open_run(root, config, plan, options, reporter, ledger, run_id, base_commit,
                        effective_max_cycles(plan, options, config), 0.0, cancel)
        if Repo(run.workdir).is_dirty(untracked=True):
            run.say(f"plan {plan.id}: the worktree {run.workdir} has uncommitted changes; they become part of "
                    "cycle 1's commit")
        run.emit(RunStarted(
            run_id=run_id, mode="build", plan_id=plan.id, plan_path=_display(plan.path, root), plan_title=plan.title,
            estimate_hours=plan.estimate_hours, branch=branch, base=config.base, base_commit=run.base_commit,
            max_cycles=run.max_cycles,
        ))
        ended = BuildDriver(run, plan).drive()
        return _result(run, plan, ended)


def resume_run(root: Path, run_id: str, options: BuildOptions, reporter: Reporter | None = None) -> BuildResult:
    """Continue a killed build run from its events; finished sessions are never run again."""
    config = load_config(root)
    reporter = reporter or NullReporter()
    with Ledger.open(root) as ledger:
        view = ledger.run(run_id)
        progress = project_progress(view.events)
        start = progress.start
        if start.mode != "build":
            raise UsageError(f"run {run_id} is a {start.mode} run; only build runs can be resumed",
                             fix="run `agentflow verify` again instead")
        if progress.ended is not None:
            raise UsageError(f"run {run_id} already ended ({progress.ended.outcome})",
                             fix=f"start a new run with `agentflow build {start.plan_path}`")
        plan = load_plan(root / (start.plan_path or ""))  # recorded relative to the root (or absolute)
        run = _open_run(root, config, plan, options, reporter, ledger, run_id, start.base_commit or "",
                        start.max_cycles, progress.cost_usd)
        run.emit(RunResumed(run_id=run_id))
        ended = BuildDriver(run, plan).drive()
        return _result(run, plan, ended)


def load_build_plans(root: Path, refs: Sequence[str]) -> list[Plan]:
    """Resolve and validate every plan before anything starts (exit 2 on the first problem)."""
    if not refs:
        raise UsageError("no plan given", fix="name one or more plan files or ids: `agentflow build .plans/1-x.md`")
    plans = [resolve_plan(root, ref) for ref in refs]
    seen: dict[str, Plan] = {}
    for plan in plans:
        if plan.id in seen:
            raise UsageError(f"plan {plan.id} is named twice", fix="name each plan once")
        seen[plan.id] = plan
    return plans


def require_base(repo: Repo, config: Config) -> str:
    """The commit of the configured base branch; a clear exit 2 naming the setting when it is missing."""
    if not repo.ok("rev-parse", "--verify", "--quiet", f"{config.base}^{{commit}}"):
        current = repo.current_branch()
        hint = f", e.g. `base: {current}`" if current and current != config.base else ""
        raise GitError(
            f"base branch {config.base!r} does not exist",
            where=config.source or "agentflow.yaml",
            fix=f"set `base:` in agentflow.yaml to the branch changes are merged into{hint}",
        )
    return repo.rev(config.base)


def preflight(root: Path, config: Config, options: BuildOptions) -> None:
    """Refuse what would fail later, before a run or worktree is created."""
    repo = Repo(root)
    if not repo.has_commits():
        raise GitError("the repository has no commits yet", where=root, fix="commit something first")
    require_base(repo, config)
    if options.jobs < 1:
        raise UsageError("-j must be at least 1")
    if options.max_cycles is not None and options.max_cycles < 1:
        raise UsageError("--max-cycles must be at least 1")
    if options.budget_usd is not None and options.budget_usd <= 0:
        raise UsageError("--budget-usd must be positive")
    ModelPool(validate_backends(config, options, root, ("builder", "verifier")), options.models, root).check()


def build(root: Path, refs: Sequence[str], options: BuildOptions, reporter: Reporter | None = None) -> list[BuildResult]:
    """Build every plan named in ``refs`` (``options.jobs`` at a time); one result per plan, in order.

    Input problems (bad plan, bad config, unknown base) raise before any run starts.
    """
    config = load_config(root)
    plans = load_build_plans(root, refs)
    preflight(root, config, options)
    reporter = reporter or NullReporter()
    ensure_git_identity(Repo(root), reporter)
    for plan in plans:
        if plan.status == "draft":
            reporter.on_message(f"plan {plan.id} is a draft (status: draft); building it anyway")
    if len(plans) == 1:
        return [build_plan(root, plans[0], options, reporter, config)]
    if options.jobs == 1:
        return [build_contained(root, plan, options, reporter, config) for plan in plans]
    return _build_parallel(root, plans, options, reporter, config)


def build_contained(root: Path, plan: Plan, options: BuildOptions, reporter: Reporter, config: Config,
                    cancel: threading.Event | None = None) -> BuildResult:
    """``build_plan`` for one plan of several: a crash becomes this plan's ``no_verdict`` result.

    One plan's failure (a bug, a git or disk error) must not cost the other plans their runs and
    summaries; its run is ended as ``no_verdict`` with the error as the one-line reason. Interrupts
    still propagate: Ctrl-C stops every run.
    """
    run_id = new_id("r")
    try:
        return build_plan(root, plan, options, reporter, config, cancel, run_id=run_id)
    except RunInterrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - contained on purpose: reported as this plan's outcome
        reason = crash_reason(exc)
        if os.environ.get("AGENTFLOW_DEBUG", "") not in ("", "0"):
            reporter.on_message(traceback.format_exc())
        reporter.on_message(f"plan {plan.id}: the build failed: {reason}")
        return _crashed_result(root, plan, run_id, reason, reporter)


def crash_reason(exc: BaseException) -> str:
    """One line for an unexpected error: agentflow errors say what to do, anything else is internal."""
    text = str(exc) if isinstance(exc, AgentflowError) else f"internal error: {type(exc).__name__}: {exc}"
    return (text.strip().splitlines() or [type(exc).__name__])[0][:500]


def _crashed_result(root: Path, plan: Plan, run_id: str, reason: str, reporter: Reporter) -> BuildResult:
    """End the crashed run in the ledger (if it started and has not ended) and describe it.

    Best effort: the ledger may be what failed; the result is returned either way.
    """
    started, cycles, cost = False, 0, 0.0
    try:
        with Ledger.open(root) as ledger:
            events = ledger.events(run_id=run_id)
            if events and isinstance(events[0], RunStarted):
                started = True
                progress = project_progress(events)
                cycles, cost = max(progress.cycles, default=0), progress.cost_usd
                if progress.ended is None:
                    ended = RunEnded(run_id=run_id, outcome="no_verdict", cycles=cycles, reason=reason)
                    ledger.append(ended)
                    reporter.on_event(ended)
    except Exception as exc:  # noqa: BLE001 - already handling a failure; say so, do not mask it
        reporter.on_message(f"plan {plan.id}: could not record the end of run {run_id}: {crash_reason(exc)}")
    branch = branch_name(plan)
    return BuildResult(
        run_id=run_id if started else "", plan_id=plan.id, plan_title=plan.title, plan_path=_display(plan.path),
        branch=branch, worktree=root / WORKTREES_DIR / branch.removeprefix("agentflow/"), outcome="no_verdict",
        reason=reason, cycles=cycles, cost_usd=round(cost, 6), commit=None,
    )


def _build_parallel(root: Path, plans: list[Plan], options: BuildOptions, reporter: Reporter,
                    config: Config, cancel: threading.Event | None = None) -> list[BuildResult]:
    """Each plan in its own thread, worktree and ledger connection.

    Ctrl-C arrives in the main thread only: it sets ``cancel``, which every worker checks between
    steps and at each session turn, so all runs stop at a recorded point and can be resumed.
    """
    cancel = cancel or threading.Event()
    pool = ThreadPoolExecutor(max_workers=min(options.jobs, len(plans)), thread_name_prefix="agentflow")
    try:
        futures = [pool.submit(build_contained, root, plan, options, reporter, config, cancel) for plan in plans]
        try:
            wait(futures)
        except KeyboardInterrupt:
            cancel.set()
            wait(futures)
        interrupted = [f.exception() for f in futures if isinstance(f.exception(), RunInterrupted)]
        if interrupted:
            raise RunInterrupted("; ".join(e.problem for e in interrupted if isinstance(e, RunInterrupted)),
                                 fix="continue each run with `agentflow build --resume RUN`")
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True)


# -- dry run -----------------------------------------------------------------------------------------------


def dry_run(root: Path, refs: Sequence[str], options: BuildOptions) -> list[PromptPreview]:
    """The builder and verifier prompts of cycle 1 for each plan; nothing is sent or created."""
    from agentflow.ledger import ledger_path

    config = load_config(root)
    plans = load_build_plans(root, refs)
    repo = Repo(root)
    require_base(repo, config)
    roles = validate_backends(config, options, root, ("builder", "verifier"))
    patterns = load_patterns(root, config)
    ledger = Ledger.open(root) if ledger_path(root).exists() else None
    previews: list[PromptPreview] = []
    try:
        for plan in plans:
            patterns_text = choose_patterns_text(patterns, plan, config.patterns.token_budget)
            max_cycles = effective_max_cycles(plan, options, config)
            builder = {
                "cycle": 1, "max_cycles": max_cycles, "plan": _plan_context(plan), "patterns": patterns_text,
                "evaluator_findings": evaluator_findings(ledger, plan),
                "checks": check_commands(config.checks, plan.checks), "rework": None,
            }
            verifier = {
                "mode": "build", "cycle": 1, "max_cycles": max_cycles, "plan": _plan_context(plan),
                "criteria": _plan_context(plan)["criteria"],  # type: ignore[index]
                "patterns": patterns_text, "base": config.base, "head": branch_name(plan),
                "diffstat": "the builder's change", "files": [],
                "diff": "(the diff of the builder's commit goes here)", "diff_truncated": False,
                "checks": [{"command": c, "exit_code": None, "duration_s": 0.0, "output_tail": "(not run)",
                            "passed": False} for c in check_commands(config.checks, plan.checks)],
                "open_findings": evaluator_findings(ledger, plan), "scope_findings": [],
                "earlier_findings": [], "earlier_criteria": [],
            }
            for role, context in (("builder", builder), ("verifier", verifier)):
                system, prompt = render_role_prompt(role, root, context)
                previews.append(PromptPreview(plan.id, f"{role} ({describe_role(roles[role])})", 1,
                                              system, prompt))
    finally:
        if ledger is not None:
            ledger.close()
    return previews


# -- verify runs (CI) ----------------------------------------------------------------------------------------


def plan_from_trailers(repo: Repo, base: str, head: str) -> str | None:
    """The ``Agentflow-Plan`` trailer of the newest commit in base..head that has one."""
    out = repo.git("log", f"--format=%(trailers:key={TRAILER_PLAN},valueonly,separator=%x2C)%x00",
                   f"{base}..{head}")
    for entry in out.split("\x00"):
        value = entry.strip().split(",")[0].strip()
        if value:
            return value
    return None


def verify(root: Path, *, base: str | None = None, head: str = "HEAD", plan_ref: str | None = None,
           options: BuildOptions | None = None, reporter: Reporter | None = None) -> VerifyReport:
    """Checks and one verifier session on base...head of the repository at ``root`` (no builder).

    Records a run (mode ``verify``), its verdict event and the verdict note on ``head``.
    """
    options = options or BuildOptions()
    reporter = reporter or NullReporter()
    config = load_config(root)
    repo = Repo(root)
    if not repo.has_commits():
        raise GitError("the repository has no commits yet", where=root, fix="commit something first")
    head_commit = repo.rev(head)
    base_ref = base or config.base
    base_commit = repo.merge_base(repo.rev(base_ref), head_commit)
    if base_commit == head_commit:
        raise UsageError(f"nothing to verify: {head} has no commits that {base_ref} lacks",
                         fix="pass the branch the change will merge into as --base")
    plan: Plan | None = None
    if plan_ref:
        plan = resolve_plan(root, plan_ref)
    elif (trailer := plan_from_trailers(repo, base_commit, head_commit)) is not None:
        try:
            plan = resolve_plan(root, trailer)
        except UsageError:
            reporter.on_message(f"the Agentflow-Plan trailer names plan {trailer!r}, which is not in this "
                                "repository; judging against the patterns alone")
    roles = validate_backends(config, options, root, ("verifier",))
    models = ModelPool(roles, options.models, root)
    models.check()
    ensure_git_identity(repo, reporter)
    use_root = head_commit == repo.rev("HEAD") and not repo.is_dirty()
    with _GIT_LOCK:
        _ensure_excluded(repo)
    with Ledger.open(root) as ledger:
        run_id = new_id("r")
        workdir = root if use_root else add_detached_worktree(repo, head_commit, root / WORKTREES_DIR / f"verify-{run_id}")
        try:
            run = Run(
                root=root, repo=repo, config=config, plan=plan, options=options, reporter=reporter, ledger=ledger,
                run_id=run_id, workdir=workdir, base_commit=base_commit, max_cycles=1,
                models=models,
                budget=RunBudget(limit_usd=options.budget_usd or config.limits.run_cost_usd),
                patterns_text=choose_patterns_text(load_patterns(root, config), plan, config.patterns.token_budget),
            )
            run.emit(RunStarted(
                run_id=run_id, mode="verify", plan_id=plan.id if plan else None,
                plan_path=_display(plan.path, root) if plan else None, plan_title=plan.title if plan else None,
                estimate_hours=plan.estimate_hours if plan else None, branch=repo.current_branch(),
                base=base_ref, base_commit=base_commit, max_cycles=1,
            ))
            try:
                checks = run.run_checks(1, head_commit)
                extra = scope_findings(repo.changed_files(base_commit, head_commit), plan.scope) if plan else []
                context = run.verifier_context(1, head_commit, checks.results, extra, None, "verify")
                result = run.session("verifier", 1, context)
                failure = None if result.status == "completed" else (result.reason or result.status)
                recorded, reasons = run.record_verdict(1, head_commit, checks.results, result.submitted, failure,
                                                       extra)
            except KeyboardInterrupt:
                raise RunInterrupted(f"verify run {run_id} interrupted", fix="run `agentflow verify` again") from None
            run.end(recorded.outcome, 1, recorded.reason, head_commit)
            cost = run.progress().cost_usd
        finally:
            if workdir != root:
                remove_worktree(repo, workdir)
    return _verify_report(run, recorded, reasons, checks.results, head_commit, base_ref, cost)


def _verify_report(run: Run, recorded: VerdictRecorded, reasons: list[str], checks: list[CheckResult], head: str,
                   base_ref: str, cost: float) -> VerifyReport:
    data = recorded.verdict or {}
    answered = {c["id"]: c for c in data.get("criteria", [])}
    criteria = []
    for criterion in run.plan.criteria if run.plan else []:
        answer = answered.pop(criterion.id, {})
        criteria.append({"id": criterion.id, "text": criterion.text, "status": answer.get("status", "unanswered"),
                         "evidence": answer.get("evidence", "")})
    criteria += [{"id": cid, "text": "", "status": c.get("status", "unclear"), "evidence": c.get("evidence", "")}
                 for cid, c in answered.items()]
    return VerifyReport(
        run_id=run.run_id, outcome=recorded.outcome, decision=recorded.decision,
        reasons=reasons, summary=data.get("summary", ""),
        base=base_ref, base_commit=run.base_commit, head=head, plan_id=run.plan.id if run.plan else None,
        plan_title=run.plan.title if run.plan else None, criteria=criteria,
        findings=list(data.get("findings", [])), checks=[_check_dict(c) for c in checks],
        cost_usd=round(cost, 6), models=run.models.describe(), signed=recorded.signed,
    )
