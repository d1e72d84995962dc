"""Build runs: the builder → commit → checks → verifier → outcome loop, one plan or several.

``BuildDriver`` drives one run step by step from its events, so ``--resume`` only re-opens the
worktree and continues. ``build`` runs every named plan (``-j`` at a time; one plan's crash
becomes its ``no_verdict`` result), ``resume_run`` continues a killed run, and ``dry_run``
renders the cycle-1 prompts without sending anything.

(Named ``build_runs``, not ``build``, so the package's ``build`` stays the function.)
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from agentflow.checks import check_commands
from agentflow.config import Config, RoleModel, load_config
from agentflow.errors import AgentflowError, GitError, UsageError
from agentflow.events import BuilderCommitted, ChecksRan, RunEnded, RunResumed, RunStarted, SessionEnded, new_id
from agentflow.git import TRAILER_CYCLE, TRAILER_PLAN, TRAILER_RUN, WORKTREES_DIR, Repo
from agentflow.inputs import TrustedInputs, from_checkout, from_record, protected_findings
from agentflow.integrity import TamperingError, claim, release
from agentflow.keys import signing_key
from agentflow.ledger import Ledger
from agentflow.orchestration.api import (
    INTERRUPTED,
    BuildOptions,
    BuildResult,
    NullReporter,
    PromptPreview,
    Reporter,
    RunInterrupted,
)
from agentflow.orchestration.context import (
    ModelPool,
    _display,
    _findings_view,
    _plan_context,
    choose_patterns_text,
    describe_role,
    effective_role,
    evaluator_findings,
    render_role_prompt,
    scope_findings,
    validate_backends,
)
from agentflow.orchestration.progress import CycleState, RunProgress, project_progress, reopened_findings
from agentflow.orchestration.run import Run, _check_dict, _submitted_verdict, start_confinement
from agentflow.orchestration.worktrees import (
    ensure_git_identity,
    foreign_commits,
    plan_lock,
    prepare_worktree,
    undo_worktree,
)
from agentflow.patterns import load_patterns
from agentflow.plans import Plan, branch_name, load_plan, load_plans, resolve_plan, unknown_patterns
from agentflow.sandbox import Sandbox
from agentflow.session import RunBudget
from agentflow.untrusted import preview as preview_untrusted

REOPEN_LIMIT = 2


class BuildDriver:
    """Drives one build run step by step from its events (fresh or resumed alike)."""

    def __init__(self, run: Run, plan: Plan):
        self.run = run
        self.plan = plan
        self.worktree_repo = Repo(run.workdir, gitpython=False)
        self.doing = "the start of the run"
        self.committed: str | None = None  # the commit this process's commit step just made (HEAD since)
        self._ahead: tuple[str, threading.Thread, dict[str, Any]] | None = None  # (commit, reader, what it read)
        self._base_ahead: tuple[int, threading.Thread, dict[str, Any]] | None = None  # (cycle, reader, counts)

    def drive(self) -> RunEnded:
        try:
            self.run.check_pending()  # resumed after a kill during a session: was git tampered with?
            while True:
                progress = self.run.progress()
                if progress.ended is not None:
                    return progress.ended
                if self.run.cancel.is_set() or INTERRUPTED.is_set():
                    raise KeyboardInterrupt
                try:
                    self.step(progress)
                except TamperingError:
                    continue  # recorded (tampering_detected): the next step ends the run
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
        if progress.tampered is not None:
            self.doing = f"the end of the run after cycle {n}"
            self.run.end("no_verdict", progress.tampered.cycle, progress.tampered.reason, None)
        elif cycle.verdict is not None:
            self.doing = f"the decision after cycle {n}"
            self.after_verdict(progress, cycle)
        elif cycle.verifier is not None and cycle.checks is not None and cycle.verifier.status != "interrupted":
            self.doing = f"recording the verdict of cycle {n}"
            submitted = (
                _submitted_verdict(progress.events, cycle.verifier) if cycle.verifier.status == "completed" else None
            )
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
        self.base_counts_ahead(n)
        self.run.session("builder", n, context)

    def base_counts_ahead(self, n: int) -> None:
        """While the builder's model thinks, read on a thread the test counts of the base's verdict
        note, which cycle ``n``'s verify step compares its checks with (``Run.base_note_counts``: two
        git processes). The four runs of ``-j 4`` read them at the same instant after their checks, on
        2 CPUs, on the way to their verifiers' first requests (#19 item 5). The base is a commit id;
        its note is read as it is when the cycle starts rather than after the checks (a note another
        process writes on the base meanwhile counts from the next cycle on); the builder cannot write
        git data (its sandbox shows it read-only). A failed read is made again by the verify step."""
        found: dict[str, Any] = {}

        def read() -> None:
            with contextlib.suppress(Exception):
                found["base_counts"] = self.run.base_note_counts()

        thread = threading.Thread(target=read, name="agentflow-base-counts", daemon=True)
        thread.start()
        self._base_ahead = (n, thread, found)

    def _base_counts(self, n: int) -> Callable[[], dict[str, Any]]:
        """What ``base_counts_ahead`` read for cycle ``n``, taken once: a call waits for it (empty for
        another cycle, or when nothing was read ahead)."""
        ahead, self._base_ahead = self._base_ahead, None
        if ahead is None or ahead[0] != n:
            return dict

        def counts() -> dict[str, Any]:
            ahead[1].join()
            return ahead[2]

        return counts

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
        files: list[str] = []
        stat = None
        if commit and before == run.base_commit:  # base..commit, which the verify step reads again: asked once
            files, stat = run.changed_files(commit), run.diffstat(commit)
        elif commit:
            files, stat = run.repo.diff_summary(before, commit)
        out_of_scope = [f["file"] for f in scope_findings(files, self.plan.scope)]
        self.committed = commit
        run.emit(
            BuilderCommitted(
                run_id=run.run_id,
                cycle=n,
                commit=commit,
                files_changed=stat.files if stat else 0,
                insertions=stat.insertions if stat else 0,
                deletions=stat.deletions if stat else 0,
                out_of_scope=out_of_scope,
            )
        )
        if out_of_scope:
            run.say(f"plan {self.plan.id}: cycle {n}: changed outside the scope: {', '.join(out_of_scope)}")

    def checks_or_stop(self, n: int, committed: BuilderCommitted) -> None:
        # the commit step just made it in this process, nothing ran since: HEAD (resumed: asked)
        head = committed.commit if committed.commit and committed.commit == self.committed else self.head()
        if committed.commit is None and (n > 1 or head == self.run.base_commit):
            reason = f"cycle {n} changed nothing" if n > 1 else "the builder changed nothing"
            self.run.end("capped", n, reason, head)
            return
        self.read_ahead(head, n)
        # on a clean checkout of the commit (Run.checkout), never here: what the builder left
        # uncommitted cannot pass a check, and what the checks write never reaches the next commit
        # its checkout is removed by the verify step, once the verifier's first request is out
        self.run.run_checks(n, head, keep=True)

    def read_ahead(self, commit: str, n: int = 0) -> None:
        """While the checks run (a sandboxed process to wait for), read on a thread what the verify
        step reads of base..commit whatever the checks say: agentflow's own findings (scope, rules,
        protected inputs), the base note's test counts and the diff. Under ``-j 4`` the four runs read
        them at the same moment after their checks, on the way to their verifiers' first requests
        (#19 item 5). The same objects by id, read before the builder's code runs in the checks
        instead of after; anything that fails here is read again, and reported, by the verify step.
        The base note's counts were read while the builder's model thought (``base_counts_ahead``,
        cycle ``n``)."""
        found: dict[str, Any] = {}
        ahead = self._base_counts(n)

        def read() -> None:
            with contextlib.suppress(Exception):
                found["scope"] = self.scope_findings(commit)
                base = ahead()
                found["base_counts"] = base["base_counts"] if "base_counts" in base else self.run.base_note_counts()
                self.run.diff(commit)

        thread = threading.Thread(target=read, name="agentflow-verify-reads", daemon=True)
        thread.start()
        self._ahead = (commit, thread, found)

    def _read(self, commit: str) -> dict[str, Any]:
        """What ``read_ahead`` read of ``commit`` (waiting for it), once; empty for another commit."""
        ahead, self._ahead = self._ahead, None
        if ahead is None or ahead[0] != commit:
            return {}
        ahead[1].join()
        return ahead[2]

    def verify(self, n: int, checks: ChecksRan, progress: RunProgress) -> None:
        commit = checks.commit or self.head()
        found = self._read(commit)
        scope = found["scope"] if "scope" in found else self.scope_findings(commit)
        try:
            extra = scope + self.run.evidence_findings(checks.results, found.get("base_counts"))
            earlier = progress.cycles[n - 1].verdict if n - 1 in progress.cycles else None
            context = self.run.verifier_context(n, commit, checks.results, extra, earlier, "build")
            label = f"verifier-c{n}"
            # its first request on its way while the checkout is made (dropped if that fails)
            self.run.send_early("verifier", n, context, root=self.run.checkout_path(label))
            self.run.wait_early("verifier", n)
            # the checks' checkout (run_checks(keep=True)), or a killed run's: removed once the verifier's
            # first request is on its way, before the verifier's own checkout is made
            self.run.discard_checkout(f"checks-c{n}")
            with self.run.checkout(commit, label) as checkout:  # its commands never reach the next commit
                self.run.note_facts_ahead(commit)  # while its first request is on its way
                result = self.run.session("verifier", n, context, root=checkout, fresh_commit=commit)
                extra = self.run.judge_cut(commit, extra, result.session_id, checkout)
        finally:
            self.run.drop_early()
            self.run.discard_checkout(f"checks-c{n}")  # whatever failed before (nothing left: no git process)
        failure = None if result.status == "completed" else (result.reason or result.status)
        self.run.record_verdict(n, commit, checks.results, result.submitted, failure, extra)

    def record(self, n: int, checks: ChecksRan, submitted: dict[str, Any] | None, failure: str) -> None:
        """A verifier session ended before its verdict was recorded (resume): record it now."""
        commit = checks.commit or self.head()
        extra = self.scope_findings(commit) + self.run.evidence_findings(checks.results)
        self.run.record_verdict(n, commit, checks.results, submitted, None if submitted else failure, extra)

    def scope_findings(self, commit: str) -> list[dict[str, Any]]:
        """Findings agentflow adds itself on base..commit: files outside the scope, the deterministic
        rules' findings (agentflow.rules), and trusted inputs the change touches (protected_path)."""
        run = self.run
        files = run.changed_files(commit)
        return (
            scope_findings(files, self.plan.scope)
            + run.rule_findings(commit)
            + protected_findings(run.repo, run.base_commit, commit, run.config)
        )

    def after_verdict(self, progress: RunProgress, cycle: CycleState) -> None:
        verdict = cycle.verdict
        assert verdict is not None
        n = cycle.number
        if verdict.outcome != "changes_requested":
            self.run.end(verdict.outcome, n, verdict.reason, verdict.commit)
            return
        reopened = {
            fid: count for fid, count in reopened_findings(progress.verdicts()).items() if count >= REOPEN_LIMIT
        }
        if reopened:
            ids = ", ".join(sorted(reopened))
            self.run.end(
                "capped", n, f"finding(s) {ids} reopened {REOPEN_LIMIT} times: {verdict.reason}", verdict.commit
            )
            return
        if n >= self.run.max_cycles:
            self.run.end(
                "capped",
                n,
                f"cycle cap {self.run.max_cycles} reached without approval: {verdict.reason}",
                verdict.commit,
            )
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
            "criteria": [
                {"evidence": "", **c, "text": criteria_text.get(c.get("id", ""), "")}
                for c in data.get("criteria", [])
                if c.get("status") != "met"
            ],
            "failed_checks": [
                _check_dict(c) for c in (previous.checks.results if previous.checks else []) if not c.passed
            ],
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
        run_id=run.run_id,
        plan_id=plan.id,
        plan_title=plan.title,
        plan_path=_display(plan.path),
        branch=branch_name(plan),
        worktree=run.workdir,
        outcome=ended.outcome,
        reason=ended.reason,
        cycles=ended.cycles,
        cost_usd=round(progress.cost_usd, 6),
        commit=ended.commit,
        findings=list(last.get("findings", [])),
        criteria=list(last.get("criteria", [])),
    )


def _open_run(
    root: Path,
    config: Config,
    plan: Plan,
    options: BuildOptions,
    reporter: Reporter,
    ledger: Ledger,
    run_id: str,
    base_commit: str,
    max_cycles: int,
    spent: float,
    cancel: threading.Event | None = None,
    resumed: RunProgress | None = None,
    inputs: TrustedInputs | None = None,
    branch_from: str | None = None,
    early: bool = False,
) -> Run:
    """The run's models, worktree (its branch made from ``branch_from``, default the config's base,
    when it does not exist) and sandbox.

    ``early`` (a new run): its builder's first request goes out before the worktree is made, so the
    model thinks while git checks the branch out (``Run.send_early``); when the worktree cannot be
    made the run fails as before, with nothing created, and that reply is dropped."""
    repo = Repo(root, gitpython=False)
    models = _models(root, config, options, resumed)
    models.check()  # before the worktree: a missing key creates nothing
    branch = branch_name(plan)
    path = root / WORKTREES_DIR / branch.removeprefix("agentflow/")
    budget = RunBudget(limit_usd=options.budget_usd or config.limits.run_cost_usd, spent_usd=spent)
    sandbox = start_confinement(config, reporter, f"plan {plan.id}: ")  # before the worktree: fails closed first
    run = Run(
        root=root,
        repo=repo,
        config=config,
        plan=plan,
        options=options,
        reporter=reporter,
        ledger=ledger,
        run_id=run_id,
        workdir=path,
        base_commit=base_commit,
        max_cycles=max_cycles,
        models=models,
        budget=budget,
        patterns_text=choose_patterns_text(
            list(inputs.patterns) if inputs is not None else load_patterns(root, config),
            plan,
            config.patterns.token_budget,
        ),
        cancel=cancel or threading.Event(),
        inputs=inputs,
        sandbox=sandbox,
    )
    if early:
        run.send_early("builder", 1, builder_context(plan, run, 1, None))
    try:
        run.wait_early("builder", 1)  # the worktree is needed only once the reply is in
        prepare_worktree(repo, branch, branch_from or config.base, path)
    except BaseException:
        run.drop_early()
        raise
    return run


def _models(root: Path, config: Config, options: BuildOptions, resumed: RunProgress | None) -> ModelPool:
    """The run's models. A resumed run keeps the backends, models and scripts its first event
    recorded unless the command line names others; its script continues after the sessions the
    run already played (an interrupted one is played again)."""
    overridden = options.backend or options.model or options.script or options.models
    if resumed is None or overridden or not resumed.start.models:
        return ModelPool(validate_backends(config, options, root, ("builder", "verifier")), options.models, root)
    roles = {role: RoleModel.model_validate(cfg) for role, cfg in resumed.start.models.items()}
    for cfg in roles.values():
        if cfg.backend == "scripted" and not Path(cfg.script or "").is_file():
            raise UsageError(
                "the run's script is gone", where=cfg.script, fix="pass the script again with --script FILE"
            )
    played: dict[str, int] = {}
    for session in (e for e in resumed.events if isinstance(e, SessionEnded)):
        if session.status != "interrupted":
            played[session.role] = played.get(session.role, 0) + 1
    return ModelPool(roles, None, root, played=played)


def build_plan(
    root: Path,
    plan: Plan,
    options: BuildOptions,
    reporter: Reporter | None = None,
    config: Config | None = None,
    cancel: threading.Event | None = None,
    run_id: str | None = None,
) -> BuildResult:
    """One build run of ``plan``, from a new run id (``run_id`` when given) to ``RunEnded``.

    The trusted inputs (config, prompts, patterns, the plan) are read from the checkout now, once;
    the run uses them and records them in ``run_started``.
    """
    inputs = from_checkout(root, plan.path)
    config = inputs.config  # the same files ``config`` was read from, read again with everything else
    plan = inputs.plan or plan
    reporter = reporter or NullReporter()
    repo = Repo(root, gitpython=False)
    branch = branch_name(plan)
    # whether the plan's branch exists and the base's commit: one git process (were two)
    found = repo.commits([f"refs/heads/{branch}", config.base])
    reused = f"refs/heads/{branch}" in found
    if reused:
        foreign = foreign_commits(repo, config.base, branch, plan.id)
        if foreign:
            raise UsageError(
                f"branch {branch} already exists with {len(foreign)} commit(s) agentflow did not make for plan "
                f"{plan.id} (e.g. {foreign[0]}); building on it would verify them as the plan's work",
                fix=f"rename it (`git branch -m {branch} {branch}-mine`) or delete it, then build again",
            )
    # A reused branch is verified from where it left the base, so earlier cycles stay in the diff.
    base_commit = repo.merge_base(config.base, branch) if reused else found.get(config.base) or repo.rev(config.base)
    with Ledger.open(root) as ledger, _claimed(root, branch):
        ledger.require_writable()  # before the worktree (page 1 only: a failed first append undoes it below)
        fresh = not (root / WORKTREES_DIR / branch.removeprefix("agentflow/")).exists()  # under the plan's lock
        run_id = run_id or new_id("r")
        run = _open_run(
            root,
            config,
            plan,
            options,
            reporter,
            ledger,
            run_id,
            base_commit,
            effective_max_cycles(plan, options, config),
            0.0,
            cancel,
            inputs=inputs,
            branch_from=base_commit,  # the commit just read: the same branch, one git process less
            early=True,
        )
        _await_primed()  # the validator and the secrets' forms every run shares, before its first event
        # a worktree made just now is a clean checkout of its branch: nothing to ask git
        if not fresh and Repo(run.workdir, gitpython=False).is_dirty(untracked=True):
            run.say(
                f"plan {plan.id}: the worktree {run.workdir} has uncommitted changes; they become part of "
                "cycle 1's commit"
            )
        try:
            _started(run, plan, inputs, branch)
        except Exception:  # a ledger the check passed (it writes page 1 only) failed on the first append
            if fresh:  # what this run made goes again: nothing is left half made (a worktree, no run)
                undo_worktree(repo, branch, run.workdir, None if reused else base_commit)
            raise
        ended = BuildDriver(run, plan).drive()
        return _result(run, plan, ended)


def _started(run: Run, plan: Plan, inputs: TrustedInputs, branch: str) -> None:
    """The run's first event, ``RunStarted``."""
    run.emit(
        RunStarted(
            run_id=run.run_id,
            mode="build",
            plan_id=plan.id,
            plan_path=_display(plan.path, run.root),
            plan_title=plan.title,
            estimate_hours=plan.estimate_hours,
            branch=branch,
            base=run.config.base,
            base_commit=run.base_commit,
            max_cycles=run.max_cycles,
            models=run.models.recorded(),
            **inputs.record(),
            sandbox=run.sandbox_name,
        )
    )


def resume_run(root: Path, run_id: str, options: BuildOptions, reporter: Reporter | None = None) -> BuildResult:
    """Continue a killed build run from its events; finished sessions are never run again."""
    reporter = reporter or NullReporter()
    with Ledger.open(root) as ledger:
        view = ledger.run(run_id)
        verify_resumable(root, ledger, run_id)  # a broken or legacy chain is never resumed (#13 item 2)
        ledger.require_writable()
        progress = project_progress(view.events)
        start = progress.start
        if start.mode != "build":
            raise UsageError(
                f"run {run_id} is a {start.mode} run; only build runs can be resumed",
                fix="run `agentflow verify` again instead",
            )
        if progress.ended is not None:
            raise UsageError(
                f"run {run_id} already ended ({progress.ended.outcome})",
                fix=f"start a new run with `agentflow build {start.plan_path}`",
            )
        inputs = None
        if start.inputs:  # exactly the inputs the run started with, whatever the files say now
            inputs = from_record(root, start.inputs, start.inputs_text, start.plan_path)
            config = inputs.config
            plan = inputs.plan or load_plan(root / (start.plan_path or ""))
        else:  # a run recorded before trusted inputs: its files as they are
            config = load_config(root)
            plan = load_plan(root / (start.plan_path or ""))  # recorded relative to the root (or absolute)
        with _claimed(root, branch_name(plan)):
            run = _open_run(
                root,
                config,
                plan,
                options,
                reporter,
                ledger,
                run_id,
                start.base_commit or "",
                start.max_cycles,
                progress.cost_usd,
                resumed=progress,
                inputs=inputs,
            )
            run.emit(RunResumed(run_id=run_id))
            ended = BuildDriver(run, plan).drive()
            run.repo.auto_maintenance()  # the commits' own, skipped (Repo.commit_all)
            return _result(run, plan, ended)


def verify_resumable(root: Path, ledger: Ledger, run_id: str) -> None:
    """ChainBroken (exit 2) unless the run's chain holds and still holds the chain head of every
    verdict note this run wrote (removing a rejection's events from the end of a run breaks it)."""
    from agentflow.chain import LEGACY, ChainProblem, verify_rows
    from agentflow.ledger import ChainBroken
    from agentflow.notes import parse_lines

    problem = ledger.chain_problem(run_id)
    if problem is not None and problem.problem == LEGACY:
        problem = ChainProblem(run_id, None, None, f"{LEGACY}: it cannot be resumed")
    if problem is None:
        heads = [
            note.chain
            for lines in Repo(root, gitpython=False).notes_map().values()
            for note in parse_lines(lines)[0]
            if note.run == run_id and isinstance(note.chain, str)
        ]
        rows = ledger.chain_rows(run_id)
        for head in heads:
            problem = verify_rows(run_id, rows, None, strict=False, contains=head)
            if problem is not None:
                break
    if problem is not None:
        raise ChainBroken(problem)


@contextlib.contextmanager
def _claimed(root: Path, branch: str) -> Iterator[None]:
    """The run owns its plan branch: concurrent runs' integrity checks leave it alone."""
    ref = f"refs/heads/{branch}"
    with plan_lock(root, branch):  # and no other process builds the same plan meanwhile
        claim(root, ref)
        try:
            yield
        finally:
            release(root, ref)


def load_build_plans(root: Path, refs: Sequence[str], config: Config | None = None) -> list[Plan]:
    """Resolve and validate every plan before anything starts (exit 2 on the first problem), the
    patterns they name included, so that bad input creates no branch, worktree or run."""
    if not refs:
        raise UsageError("no plan given", fix="name one or more plan files or ids: `agentflow build .plans/1-x.md`")
    every_plan = functools.cache(lambda: load_plans(root))  # read once for all the refs that are ids
    plans = [resolve_plan(root, ref, every_plan) for ref in refs]
    seen: dict[str, Plan] = {}
    known = {pattern.id for pattern in load_patterns(root, config or load_config(root))}
    for plan in plans:
        if plan.id in seen:
            raise UsageError(f"plan {plan.id} is named twice", fix="name each plan once")
        seen[plan.id] = plan
        for problem in unknown_patterns(plan, known):
            raise problem
    return plans


def require_base(repo: Repo, config: Config) -> str:
    """The commit of the configured base branch; a clear exit 2 naming the setting when it is missing
    (one git process: ``rev`` asks the same ``rev-parse`` again only when it names nothing)."""
    found = repo.git("rev-parse", "--verify", "--quiet", f"{config.base}^{{commit}}", check=False)
    if not found or config.base.startswith("-"):
        current = repo.current_branch()
        hint = f", e.g. `base: {current}`" if current and current != config.base else ""
        raise GitError(
            f"base branch {config.base!r} does not exist",
            where=config.source or "agentflow.yaml",
            fix=f"set `base:` in agentflow.yaml to the branch changes are merged into{hint}",
        )
    return found.strip()


def preflight(root: Path, config: Config, options: BuildOptions) -> None:
    """Refuse what would fail later, before a run or worktree is created."""
    repo = Repo(root, gitpython=False)
    try:
        require_base(repo, config)
    except GitError:
        if not repo.has_commits():  # asked only then: the base exists in a repository with commits
            raise GitError("the repository has no commits yet", where=root, fix="commit something first") from None
        raise
    if options.jobs < 1:
        raise UsageError("-j must be at least 1")
    if options.max_cycles is not None and options.max_cycles < 1:
        raise UsageError("--max-cycles must be at least 1")
    if options.budget_usd is not None and options.budget_usd <= 0:
        raise UsageError("--budget-usd must be positive")
    Sandbox.from_config(config.sandbox, where=config.source)  # fails closed (exit 2) before anything starts
    ModelPool(validate_backends(config, options, root, ("builder", "verifier")), options.models, root).check()


def build(
    root: Path, refs: Sequence[str], options: BuildOptions, reporter: Reporter | None = None
) -> list[BuildResult]:
    """Build every plan named in ``refs`` (``options.jobs`` at a time); one result per plan, in order.

    Input problems (bad plan, bad config, unknown base) raise before any run starts.
    """
    signing_key()  # read once, before anything runs: bad key input is exit 2, and redact knows the key
    config = load_config(root)
    if options.models is None and any(
        effective_role(config, role, options, root).backend == "anthropic" for role in ("builder", "verifier")
    ):  # the roles as --backend and --script leave them: a scripted build never imports the SDK
        from agentflow.models.anthropic import prefetch_sdk

        # off the critical path: the import (about a second) overlaps the checks below and the
        # worktree preparation; the first model call waits for it (AnthropicModel.client)
        prefetch_sdk()
    _prime_shared_state()  # on a thread: it overlaps the git processes below and the runs' first ones
    waiting = threading.Event()
    # the builder's prompt compiled while the plans are read and checked: the first request needs it
    end_warm_up = warm_up(root, waiting, sandboxed=config.sandbox.mode != "off")
    try:
        return _build(root, refs, options, reporter, config, waiting)
    finally:
        end_warm_up()


def _build(
    root: Path,
    refs: Sequence[str],
    options: BuildOptions,
    reporter: Reporter | None,
    config: Config,
    waiting: threading.Event,
) -> list[BuildResult]:
    plans = load_build_plans(root, refs, config)
    preflight(root, config, options)
    reporter = _WaitingRuns(reporter or NullReporter(), min(options.jobs, len(plans)), waiting)
    ensure_git_identity(Repo(root, gitpython=False), reporter)
    for plan in plans:
        if plan.status == "draft":
            reporter.on_message(f"plan {plan.id} is a draft (status: draft); building it anyway")
    if options.jobs > 1 and len(plans) > 1:
        # made (or migrated) once, here: -j runs creating a new ledger at once waited for each other
        # (SQLite answers "locked" at once while another connection converts the file to WAL, and
        # each of them retried every 50 ms), the last one 0.1-0.2 s before its run could start
        Ledger.open(root).close()
    if len(plans) == 1:
        results = [build_contained(root, plans[0], options, reporter, config, contain=False)]
    elif options.jobs == 1:
        results = [build_contained(root, plan, options, reporter, config) for plan in plans]
    else:
        results = _build_parallel(root, plans, options, reporter, config)
    Repo(root, gitpython=False).auto_maintenance()  # once, for every run's commits (Repo.commit_all)
    return results


_PRIMING: list[threading.Thread] = []  # the build's priming thread, once started (``_await_primed``)


def _prime_shared_state() -> threading.Thread:
    """Build, in a thread started before the plans are read, what every run builds on its first use
    and then shares: the validator of stored events (pydantic builds it on the first event read,
    10-30 ms) and the secrets' encoded forms (on the first redacted append). Neither build takes a
    lock, so the runs of ``-j 4``, reaching them at the same moment, each built their own: four
    times the work, on one GIL, right before their first model call; a single run built them on
    its way to its first call, while here they overlap the git processes of the pre-flight and of
    the runs' own start (a run waits for them just before its first event: ``_await_primed``)
    (#19 item 5). Best effort: a run builds what is missing itself."""

    def prime() -> None:
        with contextlib.suppress(Exception):
            from agentflow.events import RunStarted, parse_event
            from agentflow.redact import redact

            parse_event(RunStarted(run_id="r-prime").model_dump_json())
            redact("")

    thread = threading.Thread(target=prime, name="agentflow-prime", daemon=True)
    thread.start()
    _PRIMING[:] = [thread]
    return thread


def _await_primed() -> None:
    """Wait for the build's priming thread, if one was started (a run's first event needs both)."""
    for thread in list(_PRIMING):
        thread.join()


# how long the warm-up waits for the first runs to reach their model before importing the rules anyway
RULES_WARM_UP_WAIT_S = 30.0
# and, once they have, for their requests to be on their way (a model call takes far longer)
WARM_UP_AFTER_WAITING_S = 0.05


def warm_up(root: Path, waiting: threading.Event, sandboxed: bool = False) -> Callable[[], None]:
    """In a background thread, while the worktrees are prepared: import jinja2 and compile the role
    prompts of the checkout into the cache every run's sessions render from (``prompts.precompile``,
    keyed by the exact text, so a prompt that differs by the time a run reads it compiles anew): the
    builder's first. Then, once ``waiting`` is set (the first runs wait for their model: the GIL is
    free), the other roles' prompts and the rules the verify step runs. Under ``-j`` each run used
    to pay these on its own critical path, all at once and holding the GIL; done before the first
    model call, the verifier's prompt and the rules (0.1 and 0.2 s under load) delayed every run's
    start (#19 item 5). Then what the first checks and the verify step would each do for themselves, at
    the same moment under ``-j``: as root, the sandbox's scan of root-only files (``sandbox.root_only``,
    once per process: 25 ms alone, 0.15 s of every run's wait when four runs' first checks scanned
    at once) and the evidence module. Best effort: the runs do the same themselves and report any
    problem. Returns what ends it: the build calls it when it ends, so that no warm-up outlives its
    build (one that ended before its runs waited kept waiting 30 s, then scanned and imported, in a
    test that had patched what it called)."""
    ended = threading.Event()

    def load() -> None:
        with contextlib.suppress(Exception):
            from agentflow import prompts
            from agentflow.inputs import ROLES

            inputs = from_checkout(root)
            prompts.precompile(inputs.texts[inputs.prompt_names["builder"]])  # the first session's
            if waiting.wait(RULES_WARM_UP_WAIT_S) and not ended.is_set():
                # "waiting for the model" is said just before a request is built and sent (a few ms
                # of the GIL each): compiling the rules then delayed the first requests
                time.sleep(WARM_UP_AFTER_WAITING_S)
            if ended.is_set():
                return  # the build is over: nothing left to warm
            for role in ROLES:
                prompts.precompile(inputs.texts[inputs.prompt_names[role]])
            from agentflow.rules import registry

            registry()
            import agentflow.evidence  # noqa: F401 - the verify step's (and xml.etree's)
            import agentflow.notes  # noqa: F401 - the verify step's and the verdict's (run.py imports them there)
            import agentflow.untrusted  # noqa: F401
            import agentflow.verdict  # noqa: F401

            if sandboxed and os.geteuid() == 0:
                from agentflow.sandbox import root_only

                root_only()

    thread = threading.Thread(target=load, name="agentflow-warm-up", daemon=True)
    thread.start()

    def end() -> None:
        ended.set()
        waiting.set()  # wakes it if it still waits for the runs
        thread.join()  # the step it is in (a prompt's compilation, an import) ends it

    return end


class _WaitingRuns:
    """The build's reporter, passed everything; sets ``waiting`` once ``runs`` runs have waited for
    their model (the session's "waiting for the model" progress), the moment ``warm_up`` imports
    the rules."""

    def __init__(self, reporter: Reporter, runs: int, waiting: threading.Event | None = None):
        self.reporter, self.runs = reporter, max(runs, 1)
        self.waiting = waiting or threading.Event()
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def on_event(self, event: Any) -> None:
        self.reporter.on_event(event)

    def on_message(self, message: str) -> None:
        self.reporter.on_message(message)

    def on_progress(self, progress: dict[str, Any]) -> None:
        if not self.waiting.is_set() and progress.get("activity") == "waiting for the model":
            with self._lock:
                self._seen.add(str(progress.get("run_id")))
                if len(self._seen) >= self.runs:
                    self.waiting.set()
        self.reporter.on_progress(progress)


def build_contained(
    root: Path,
    plan: Plan,
    options: BuildOptions,
    reporter: Reporter,
    config: Config,
    cancel: threading.Event | None = None,
    *,
    contain: bool = True,
) -> BuildResult:
    """``build_plan`` whose failure never leaves its run "in progress": the run is ended as
    ``no_verdict`` with the error as the one-line reason.

    With several plans (``contain``), one plan's failure (a bug, a git or disk error) must not cost
    the others their runs and summaries: it becomes this plan's result. A single plan
    (``contain=False``) re-raises, so the error reaches the user with its own exit code. Interrupts
    always propagate: Ctrl-C stops every run, resumably.
    """
    run_id = new_id("r")
    try:
        return build_plan(root, plan, options, reporter, config, cancel, run_id=run_id)
    except RunInterrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - contained on purpose: reported as this plan's outcome
        reason = crash_reason(exc)
        if not contain:
            _crashed_result(root, plan, run_id, reason, reporter)
            raise
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
        if crash_reason(exc) != reason:  # the ledger is what failed: said once, by the caller
            reporter.on_message(f"plan {plan.id}: could not record the end of run {run_id}: {crash_reason(exc)}")
    branch = branch_name(plan)
    return BuildResult(
        run_id=run_id if started else "",
        plan_id=plan.id,
        plan_title=plan.title,
        plan_path=_display(plan.path),
        branch=branch,
        worktree=root / WORKTREES_DIR / branch.removeprefix("agentflow/"),
        outcome="no_verdict",
        reason=reason,
        cycles=cycles,
        cost_usd=round(cost, 6),
        commit=None,
    )


def _build_parallel(
    root: Path,
    plans: list[Plan],
    options: BuildOptions,
    reporter: Reporter,
    config: Config,
    cancel: threading.Event | None = None,
) -> list[BuildResult]:
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
            raise RunInterrupted(
                "; ".join(e.problem for e in interrupted if isinstance(e, RunInterrupted)),
                fix="continue each run with `agentflow build --resume RUN`",
            )
        return [future.result() for future in futures]
    finally:
        pool.shutdown(wait=True)


# -- dry run -----------------------------------------------------------------------------------------------


def dry_run(root: Path, refs: Sequence[str], options: BuildOptions) -> list[PromptPreview]:
    """The builder and verifier prompts of cycle 1 for each plan; nothing is sent or created."""
    from agentflow.ledger import ledger_path

    config = load_config(root)
    plans = load_build_plans(root, refs)
    repo = Repo(root, gitpython=False)
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
                "cycle": 1,
                "max_cycles": max_cycles,
                "plan": _plan_context(plan),
                "patterns": patterns_text,
                "evaluator_findings": evaluator_findings(ledger, plan),
                "checks": check_commands(config.checks, plan.checks),
                "rework": None,
            }
            verifier = {
                "mode": "build",
                "cycle": 1,
                "max_cycles": max_cycles,
                "plan": _plan_context(plan),
                "criteria": _plan_context(plan)["criteria"],  # type: ignore[index]
                "patterns": patterns_text,
                "base": config.base,
                "head": branch_name(plan),
                "diffstat": "the builder's change",
                "files": [],
                "diff": "(the diff of the builder's commit goes here)",
                "diff_truncated": False,
                "checks": [
                    {
                        "command": c,
                        "exit_code": None,
                        "duration_s": 0.0,
                        "output_tail": "(not run)",
                        "passed": False,
                        "junit": False,
                        "tests": None,
                        "evidence": None,
                    }
                    for c in check_commands(config.checks, plan.checks)
                ],
                "open_findings": evaluator_findings(ledger, plan),
                "scope_findings": [],
                "rule_findings": [],
                "earlier_findings": [],
                "earlier_criteria": [],
                **preview_untrusted("(the diff of the builder's commit goes here)"),
            }
            for role, context in (("builder", builder), ("verifier", verifier)):
                system, prompt = render_role_prompt(role, root, context)
                previews.append(PromptPreview(plan.id, f"{role} ({describe_role(roles[role])})", 1, system, prompt))
    finally:
        if ledger is not None:
            ledger.close()
    return previews
