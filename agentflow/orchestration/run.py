"""The run: everything one build or verify run needs (``Run``), its sessions, checks and verdicts.

Steps append events through ``Run.emit``; a verdict is recorded twice, as a ledger event and as a
git note on the verified commit. The outcome is computed (``verdict.compute_outcome``), never
taken from the model.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import threading
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from agentflow import integrity, prompts
from agentflow.checks import check_specs, run_checks
from agentflow.config import Config
from agentflow.events import (
    BuilderCommitsFolded,
    CheckResult,
    ChecksRan,
    Event,
    GitChecked,
    GitSnapshotTaken,
    Outcome,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionStarted,
    TamperingDetected,
    ToolCalled,
    VerdictRecorded,
)
from agentflow.git import EMPTY_TREE, NOTES_REF, DiffStat, Repo, is_full_id
from agentflow.inputs import TrustedInputs
from agentflow.ledger import Ledger
from agentflow.orchestration.api import INTERRUPTED, BuildOptions, Reporter
from agentflow.orchestration.context import (
    ModelPool,
    _display,
    _findings_view,
    _plan_context,
    describe_role,
    evaluator_findings,
    in_scope,
    render_role_prompt,
)
from agentflow.orchestration.progress import RunProgress, project_progress
from agentflow.orchestration.worktrees import (
    _GIT_LOCK,
    WORKTREES_DIR,
    add_detached_worktree,
    remove_tree,
    remove_worktree,
)
from agentflow.plans import Plan
from agentflow.redact import redact
from agentflow.sandbox import Sandbox, make_non_dumpable
from agentflow.session import (
    EarlyCall,
    RunBudget,
    SessionLimits,
    SessionResult,
    SessionSpec,
    run_role_session,
    send_first_call,
)

if TYPE_CHECKING:
    from agentflow.verdict import Verdict, VerdictNote

# agentflow.verdict, agentflow.notes and agentflow.untrusted are imported where they are used (the
# verify step, the verdict): not on the way to a run's first model call (#19 item 5); the build's
# warm-up imports them while the runs wait for their model (build_runs.warm_up)

MAX_DIFF_CHARS = 80_000
EARLY_WAIT = 1.0  # seconds a run waits for its first request to go out before making its worktree or checkout
T = TypeVar("T")


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
    context: tuple[str, str] | None = None  # (label, text): the pull-request text of `verify --context`
    base_checks: list[CheckResult] | None = None  # the same checks run on the base (`verify --compare-base`)
    inputs: TrustedInputs | None = None  # config, prompts, patterns, plan as read when the run started

    sandbox: Sandbox | None = None  # None: from the config (mode auto fails closed where bwrap cannot run)
    _summaries: dict[tuple[str, str], tuple[list[str], DiffStat]] = field(default_factory=dict, repr=False)
    _tree_cache: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict, repr=False)
    _patch_ids: dict[tuple[str, str], str | None] = field(default_factory=dict, repr=False)
    _diffs: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _messages: dict[tuple[str, str], list[str]] = field(default_factory=dict, repr=False)
    # first requests sent ahead of their session (``send_early``): (role, cycle) -> (what it was made of, call)
    _early: dict[tuple[str, int], tuple[tuple[str, str, Path], EarlyCall]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.sandbox is None:
            self.sandbox = Sandbox.from_config(self.config.sandbox, where=self.config.source)

    @property
    def prompts_sha(self) -> str:
        return self.inputs.prompts_sha if self.inputs is not None else prompts.prompts_sha(self.root)

    @property
    def sandbox_name(self) -> str:
        assert self.sandbox is not None
        return self.sandbox.name

    def emit(self, event: Event) -> None:
        self.ledger.append(event)
        self.reporter.on_event(event)

    def emit_many(self, events: list[Event]) -> None:
        """A step's events in one transaction (``Ledger.append_many``): a kill keeps all or none."""
        self.ledger.append_many(events)
        for event in events:
            self.reporter.on_event(event)

    def say(self, message: str) -> None:
        self.reporter.on_message(message)

    def events(self) -> list[Event]:
        """The run's events, read only while its chain holds (ChainBroken otherwise: fail closed)."""
        self.ledger.verify_run(self.run_id)
        return self.ledger.events(run_id=self.run_id)

    def progress(self) -> RunProgress:
        return project_progress(self.events())

    @property
    def label(self) -> str:
        return f"plan {self.plan.id}" if self.plan is not None else "verify"

    def on_progress(self, progress: dict[str, Any]) -> None:
        # Ctrl-C reached the main thread while this run works in another (-j), or its KeyboardInterrupt
        # was raised where Python ignores it (a __del__): the handler's flag says so
        if self.cancel.is_set() or INTERRUPTED.is_set():
            raise KeyboardInterrupt
        self.reporter.on_progress({"plan": self.plan.id if self.plan else None, "run_id": self.run_id, **progress})

    # -- sessions ------------------------------------------------------------------------------

    def session(
        self, role: str, cycle: int, context: dict[str, Any], root: Path | None = None, fresh_commit: str | None = None
    ) -> SessionResult:
        """One session in ``root`` (default: the run's worktree), its processes inside the sandbox;
        ``fresh_commit``: ``root`` is a checkout of it made just now (``Run.checkout``).

        Its first request is on its way before the git snapshot is taken (sent by ``send_early``,
        or here): the model's reply is only data until the session runs its tool calls, after the
        snapshot, so the snapshot still comes before anything the agent does (#19 item 5)."""
        spec = self._session_spec(role, cycle, context, root, fresh_commit)
        cfg = self.models.roles[role]
        self.say(f"{self.label}: cycle {cycle}: {role} session ({describe_role(cfg)})")
        model = self.models.model(role, cycle)
        early = self._take_early(spec, model)
        try:
            where = integrity.locate(self.root, spec.root)  # two git processes, outside the lock
            with _GIT_LOCK(self.root):
                before = integrity.snapshot(self.root, spec.root, where)
            # recorded, so that a run killed during the session is still checked when it is resumed
            self.emit(GitSnapshotTaken(run_id=self.run_id, cycle=cycle, role=role, snapshot=before.record()))
        except BaseException:
            if early is not None:
                early.drop()
            raise
        try:
            result = run_role_session(spec, self.ledger, model=model, on_progress=self.on_progress, early=early)
        except BaseException:
            self.guard(before, role, cycle, raising=False)  # an interrupted session leaves git as it found it
            raise
        self.guard(before, role, cycle)
        return result

    def _session_spec(
        self, role: str, cycle: int, context: dict[str, Any], root: Path | None, fresh_commit: str | None
    ) -> SessionSpec:
        if self.inputs is not None:
            system, prompt = self.inputs.render(role, context)
        else:
            system, prompt = render_role_prompt(role, self.root, context)
        cfg = self.models.roles[role]
        return SessionSpec(
            role=role,
            cycle=cycle,
            run_id=self.run_id,
            root=root or self.workdir,
            system=system,
            prompt=prompt,
            limits=SessionLimits.from_config(self.config.limits),
            budget=self.budget,
            backend=cfg.backend,
            model_name="scripted" if cfg.backend == "scripted" else cfg.model,
            role_cfg=cfg,
            sandbox=self.sandbox,
            fresh_commit=fresh_commit,
        )

    def send_early(self, role: str, cycle: int, context: dict[str, Any], root: Path | None = None) -> None:
        """Send the first request of the ``role`` session of ``cycle`` now (``session.EarlyCall``),
        before what only the session's tools need exists: the run's worktree, the verifier's checkout
        (``root``, made next). Only for an API model of the run's own (``AnthropicModel``); the
        session uses the reply only if it sends the very same request (same prompts, same folder),
        else it is dropped, as it is when the run fails first (``drop_early``)."""
        if self.models.factory is not None or self.models.roles[role].backend != "anthropic":
            return
        spec = self._session_spec(role, cycle, context, root, None)
        call = send_first_call(spec, self.models.model(role, cycle))
        if call is not None:
            self.drop_early()  # never two on their way
            self._early[(role, cycle)] = ((spec.system, spec.prompt, Path(spec.root)), call)

    def wait_early(self, role: str, cycle: int) -> None:
        """Let the first request ``send_early`` sent for ``role``'s session of ``cycle`` go out before
        the run makes what the session needs only once the reply is in (its worktree, the verifier's
        checkout): under ``-j`` four runs' worktrees took the CPU and the GIL the SDK client's TLS
        context and the requests waited for. At most ``EARLY_WAIT`` seconds (#19 item 5)."""
        pending = self._early.get((role, cycle))
        if pending is not None:
            pending[1].wait_sending(EARLY_WAIT)

    def _take_early(self, spec: SessionSpec, model: Any) -> EarlyCall | None:
        """The session's first call: the one ``send_early`` sent for it, or sent now."""
        pending = self._early.pop((spec.role, spec.cycle), None)
        if pending is not None:
            made_of, call = pending
            if made_of == (spec.system, spec.prompt, Path(spec.root)):
                return call
            call.drop()
        self.drop_early()
        return send_first_call(spec, model)

    def drop_early(self) -> None:
        """Forget the first requests sent ahead whose session will not run (the run failed first)."""
        for _, call in self._early.values():
            call.drop()
        self._early.clear()

    def check_pending(self) -> None:
        """A session whose snapshot was never checked (the run was killed during it): compare the
        git data with the recorded snapshot now, before anything else happens (``--resume``)."""
        pending = None
        for event in self.events():
            if isinstance(event, GitSnapshotTaken):
                pending = event
            elif isinstance(event, GitChecked | TamperingDetected):
                pending = None
        if pending is None:
            return
        before = integrity.GitSnapshot.from_record(self.root, pending.snapshot)
        if not before.workdir.is_dir():
            before = replace(before, workdir=self.workdir)
        # the kill may be long past: other runs made or moved their branches since (-j, or a
        # build of another plan before this resume); theirs, and never put back from here
        others = self.ledger.other_branches(self.run_id) - {before.own_branch}
        self.guard(before, pending.role, pending.cycle, raising=False, others=others)

    def _other_runs(self) -> Container[str]:
        """Runs other agentflow processes may be noting verdicts for while a session of this one runs
        (looked up one id at a time: the ledger's runs are never all listed)."""
        return self.ledger.other_runs(self.run_id)

    def guard(
        self,
        before: integrity.GitSnapshot,
        role: str,
        cycle: int,
        raising: bool = True,
        others: Container[str] = (),
    ) -> None:
        """After a session: fold a builder's own commits; anything else changed in the git data is
        tampering: put back, recorded, and (``raising``) ``TamperingError``. The run's step ends it."""
        where = integrity.locate(self.root, before.workdir)  # after the session, outside the lock
        # the worktree's set-ID files and nested `.git`s in one walk, before any git command reads its files,
        # and outside the lock: it is this session's own (the four runs of -j 4 took turns for it)
        scanned = integrity.scan(before)
        with _GIT_LOCK(self.root):
            found = integrity.check(
                before,
                allow_commits=role == "builder",
                other_runs=self._other_runs,
                where=where,
                others=others,
                scanned=scanned,
            )
            problems = integrity.restore(before, others) if found.changes else []
        # one step, one transaction: a kill never leaves the check recorded without its tampering
        # (resume would then see no pending snapshot and never look again)
        step: list[Event] = [GitChecked(run_id=self.run_id, cycle=cycle, role=role, changes=found.changes)]
        if found.folded and found.onto:
            step.append(BuilderCommitsFolded(run_id=self.run_id, cycle=cycle, commits=found.folded, onto=found.onto))
        reason = found.reason(role, cycle) if found.changes else ""
        if found.changes:
            step.append(
                TamperingDetected(
                    run_id=self.run_id,
                    cycle=cycle,
                    role=role,
                    changes=found.changes,
                    restored=not problems,
                    problems=problems,
                    reason=reason,
                )
            )
        self.emit_many(step)
        if found.folded and found.onto:
            self.say(
                f"{self.label}: cycle {cycle}: the builder committed by itself ({len(found.folded)} commit(s)); "
                "folded into agentflow's commit"
            )
        if found.changes and raising:
            raise integrity.TamperingError(reason)

    # -- verification (shared by build and verify runs) ----------------------------------------------

    @contextlib.contextmanager
    def checkout(self, commit: str, label: str, keep: bool = False) -> Iterator[Path]:
        """A throwaway detached worktree of ``commit`` (only what was committed), removed afterwards
        (also on failure). Checks and the verifier each get one, so nothing uncommitted in the
        builder's directory can decide a check and nothing a verifier does reaches the next commit.
        ``keep``: left in place when the block ends without an error, for the caller to remove with
        ``discard_checkout`` (on an error it is removed here, as always)."""
        path = self.checkout_path(label)
        _discard_checkout(self.repo, path)  # left over by a killed run
        add_detached_worktree(self.repo, commit, path)
        try:
            yield path
        except BaseException:
            _discard_checkout(self.repo, path)
            raise
        if not keep:
            _discard_checkout(self.repo, path)

    def discard_checkout(self, label: str) -> None:
        """Remove the throwaway checkout ``label`` (``checkout(..., keep=True)``'s), if it is there."""
        _discard_checkout(self.repo, self.checkout_path(label))

    def checkout_path(self, label: str) -> Path:
        return self.root / WORKTREES_DIR / f"{label}-{self.run_id}"

    def run_checks(self, cycle: int, commit: str, keep: bool = False) -> ChecksRan:
        """The checks of ``cycle`` on a clean checkout of ``commit``; ``keep``: that checkout is left
        for the caller to remove (``discard_checkout(f"checks-c{cycle}")``) once the verifier's first
        request is on its way: its removal was the last step before that request (#19 item 5)."""
        commands = check_specs(self.config.checks, self.plan.checks if self.plan else ())
        if commands:
            self.say(f"{self.label}: cycle {cycle}: running {len(commands)} check(s)")
            self.on_progress({"role": "checks", "cycle": cycle, "activity": f"running {len(commands)} check(s)"})
            with self.checkout(commit, f"checks-c{cycle}", keep=keep) as clean:
                results = run_checks(commands, clean, self.config.limits.command_timeout, sandbox=self.sandbox)
        else:
            results = []
        event = ChecksRan(run_id=self.run_id, cycle=cycle, commit=commit, results=results)
        self.emit(event)
        return event

    def verifier_context(
        self,
        cycle: int,
        commit: str,
        checks: list[CheckResult],
        extra_findings: list[dict[str, Any]],
        earlier: VerdictRecorded | None,
        mode: str,
    ) -> dict[str, Any]:
        from agentflow.diffbudget import fit

        diff, cut_files = fit(self.diff(commit), MAX_DIFF_CHARS)  # a fair share per file, not a prefix
        truncated = bool(cut_files)
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
            "diffstat": str(self.diffstat(commit)),
            "files": self.changed_files(commit),
            "diff": diff,
            "diff_truncated": truncated,
            "diff_cut_files": cut_files,
            "checks": [_check_dict(c) for c in checks],
            "open_findings": evaluator_findings(self.ledger, plan),
            "scope_findings": _findings_view([f for f in extra_findings if not f.get("rule")]),
            "rule_findings": _findings_view([f for f in extra_findings if f.get("rule")]),
            **self._untrusted_context(commit, diff, checks),
            "earlier_findings": _findings_view((earlier.verdict or {}).get("findings", [])) if earlier else [],
            "earlier_criteria": [c for c in (earlier.verdict or {}).get("criteria", []) if c.get("status") != "met"]
            if earlier
            else [],
        }

    def _untrusted_context(self, commit: str, diff: str, checks: list[CheckResult]) -> dict[str, Any]:
        """The change's content as labelled untrusted blocks (``agentflow.untrusted``)."""
        from agentflow import untrusted

        nonce = untrusted.new_nonce()
        files = self.changed_files(commit)
        messages = self._commit_messages(commit)
        outputs = "\n\n".join(f"$ {c.command}\n{c.output_tail}" for c in checks if not c.passed and c.output_tail)
        plan_changed = self.plan is not None and self._plan_path() in files
        return {
            "untrusted_nonce": nonce,
            "diff_block": untrusted.block("diff", diff, nonce),
            "files_block": untrusted.block("file-names", "\n".join(files), nonce),
            "commits_block": untrusted.block("commit-messages", "\n\n---\n\n".join(messages), nonce),
            "check_output_block": untrusted.block("check-output", outputs, nonce) if outputs else "",
            "plan_block": untrusted.block("plan", self.plan.body, nonce) if plan_changed and self.plan else "",
            "pr_block": untrusted.block("pull-request", self.context[1], nonce) if self.context else "",
        }

    def changed_files(self, commit: str) -> list[str]:
        """The files base..commit changes, one git process per commit however many steps ask
        (the commit step, scope, rules, the verifier's context), shared with ``diffstat``."""
        return list(self._summary(commit)[0])

    def diffstat(self, commit: str) -> DiffStat:
        """The diffstat of base..commit (the commit step and the verifier's context show it)."""
        return self._summary(commit)[1]

    def _summary(self, commit: str) -> tuple[list[str], DiffStat]:
        return self._by_commit(self._summaries, commit, lambda: self.repo.diff_summary(self.base_commit, commit))

    def _by_commit(self, cache: dict[tuple[str, str], T], commit: str, read: Callable[[], T]) -> T:
        """``read()`` once per (base, commit) when both are full ids (immutable content); a name
        (HEAD, a branch) can move, so it is asked every time."""
        key = (self.base_commit, commit)
        if not all(is_full_id(c) for c in key):
            return read()
        if key not in cache:
            cache[key] = read()
        return cache[key]

    def _commit_messages(self, commit: str) -> list[str]:
        """base..commit's commit messages, one git process per commit (the rules and the verifier's
        context both read them)."""
        return list(self._by_commit(self._messages, commit, lambda: self._read_messages(commit)))

    def _read_messages(self, commit: str) -> list[str]:
        log = self.repo.git("log", "--format=%B%x00", f"{self.base_commit}..{commit}")
        return [m.strip() for m in log.split("\x00") if m.strip()]

    def _plan_path(self) -> str | None:
        return _display(self.plan.path, self.root) if self.plan else None

    def rule_findings(self, commit: str) -> list[dict[str, Any]]:
        """The deterministic rules (``agentflow.rules``) over base..commit, the commit messages, the plan
        when the change edits it and the pull-request text."""
        from agentflow.rules import change_from_git, cut_findings, run_rules

        texts: list[tuple[str, str]] = [self.context] if self.context else []
        plan = self.plan
        if plan is not None and self._plan_path() in self.changed_files(commit):
            texts.append(("plan", plan.text))
        # a plan new in the change is the change's text: its scope softens no rule (test_attacks_plan_scope.py)
        trusted_scope = plan is not None and not (self.inputs is not None and self.inputs.plan_from_change)
        scope = list(plan.scope) if plan is not None and trusted_scope else []
        change = change_from_git(
            self.repo,
            self.base_commit,
            commit,
            texts=texts,
            test_scope=(lambda path: bool(scope) and in_scope(path, scope)),
            messages=self._commit_messages(commit),
        )
        return run_rules(change) + cut_findings(self.diff(commit), MAX_DIFF_CHARS)  # what the verifier's diff cut

    def judge_cut(self, commit: str, extra: list[dict[str, Any]], session_id: str, root: Path) -> list[dict[str, Any]]:
        """``extra`` with its ``diff_cut`` finding judged again after the verifier's session ``session_id``
        (run in ``root``): a cut file it read whole with ``read_file``, or with Claude Code's ``Read``
        (``read_whole``, against the file as committed), was shown to it (``agentflow.rules.budget``).
        No cut, no ledger read."""
        from agentflow.git import cat_file_batch
        from agentflow.rules import cut_findings
        from agentflow.rules.budget import RULE, read_whole
        from agentflow.tools import MAX_READ_CHARS

        if not any(f.get("rule") == RULE for f in extra):
            return extra
        read, claude_reads = set(), []
        for event in self.events():
            if not isinstance(event, ToolCalled) or event.session_id != session_id or event.is_error:
                continue
            if event.tool == "read_file" and isinstance(path := event.input.get("path"), str):
                if event.output_chars <= MAX_READ_CHARS:
                    read.add(_tree_path(path, root))
            elif event.tool == "Read" and isinstance(path := event.input.get("file_path"), str):
                claude_reads.append((_tree_path(path, root), event))
        if claude_reads:
            names = sorted({path for path, _ in claude_reads if path != ".." and not path.startswith("../")})
            blobs = dict(
                zip(names, cat_file_batch(self.repo.root, [f"{commit}:{name}" for name in names]), strict=True)
            )
            for path, event in claude_reads:
                blob = blobs.get(path)
                text = blob[1].decode("utf-8", "replace") if blob is not None and blob[0] == "blob" else None
                if read_whole(event.input, event.output_chars, text):
                    read.add(path)
        kept = [f for f in extra if f.get("rule") != RULE]
        return kept + cut_findings(self.diff(commit), MAX_DIFF_CHARS, read)

    def evidence_findings(
        self, checks: list[CheckResult], base_counts: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Fewer tests or more skipped than on the base: from ``--compare-base`` or the base's notes
        (``base_counts``: ``base_note_counts()`` read beforehand)."""
        from agentflow import evidence

        current = [_check_dict(c) for c in checks]
        if self.base_checks is not None:
            base = {c.command: counts for c in self.base_checks if (counts := evidence.counts_of(_check_dict(c)))}
            return evidence.regressions(current, base, "verify --compare-base")
        if base_counts is None:
            base_counts = self.base_note_counts()
        return evidence.regressions(current, base_counts, f"verdict note on the base {self.base_commit[:12]}")

    def base_note_counts(self) -> dict[str, Any]:
        """The test counts of the base's newest verdict note about the base itself (signed, with a key)."""
        from agentflow import evidence
        from agentflow.notes import parse_lines
        from agentflow.verdict import signing_key

        notes, _ = parse_lines(self.repo.notes(self.base_commit))
        # only lines about the base itself: a signed line of another commit copied onto its note (its
        # tree and commit are not the base's) gave its own, lower counts (tests/test_attacks_note_replay.py)
        tree = self.repo.trees([self.base_commit]).get(self.base_commit)
        notes = [n for n in notes if n.tree == tree and n.data.get("commit") in (None, self.base_commit)]
        if key := signing_key():  # with a key, an unsigned line is anybody's: one claiming 0 tests hid a regression
            notes = [n for n in notes if n.signature_valid(key)]
        notes.sort(key=lambda n: n.timestamp)  # the newest verdict's counts win
        return evidence.base_counts_from_notes(n.model_dump() for n in notes)

    def record_verdict(
        self,
        cycle: int,
        commit: str,
        checks: list[CheckResult],
        submitted: dict[str, Any] | None,
        failure: str | None,
        extra_findings: list[dict[str, Any]],
    ) -> tuple[VerdictRecorded, list[str]]:
        """Compute the outcome, then record it twice: a ledger event and a git note on ``commit``.

        Returns the event and the reasons it is not approved (the event joins them into one string).
        """
        from agentflow.verdict import (
            MODEL_ID_RULE,
            Verdict,
            VerdictNote,
            compute_outcome,
            invalid_ids,
            note_checks,
            note_findings,
            note_summary,
            signing_key,
        )

        self.ledger.verify_run(self.run_id)  # never a verdict computed from a broken chain (#13 item 2)
        verdict: Verdict | None = None
        if submitted is not None:
            try:
                verdict = Verdict.model_validate(submitted)
            except ValueError as exc:
                failure = f"{INVALID_VERDICT}: {exc}"
            if verdict is not None and (bad := invalid_ids(verdict)):
                # fail closed: ids end up in notes, annotations and reports (#13 item 5)
                failure = f"{INVALID_VERDICT}: {', '.join(bad)} must match {MODEL_ID_RULE}"
                verdict = None
        if verdict is not None and extra_findings:
            # rule findings are facts: the verifier can neither drop nor soften them
            forced = {f["id"] for f in extra_findings if f.get("rule")}
            mine = [f for f in verdict.model_dump()["findings"] if f["id"] not in forced]
            listed = {f["id"] for f in mine}
            merged = [*mine, *(f for f in extra_findings if f["id"] not in listed)]
            verdict = verdict.model_copy(
                update={"findings": Verdict.model_validate({**verdict.model_dump(), "findings": merged}).findings}
            )
        criteria_ids = [c.id for c in self.plan.criteria] if self.plan else []
        outcome, reasons = compute_outcome(verdict, checks, criteria_ids)
        if verdict is None and failure:
            reasons = [failure]
        verdict_data = verdict.model_dump(mode="json", exclude_none=True) if verdict else None
        key = signing_key()
        # the note carries facts only: no check output, no finding or criterion text (#13 item 5)
        _, fact_reasons = compute_outcome(verdict, checks, criteria_ids, text=False)
        if verdict is None and failure:
            # the validation message quotes what the model sent: the note says only that it was invalid
            invalid = failure.startswith(INVALID_VERDICT)
            fact_reasons = [f"{INVALID_VERDICT} (see `agentflow show`)" if invalid else note_summary(failure) or ""]
        recorded = datetime.now(UTC)  # one moment for the note and the ledger: metrics --from-git agrees with both
        self._append_note(
            commit,
            VerdictNote(
                plan=self.plan.id if self.plan else None,
                run=self.run_id,
                outcome=outcome,
                decision=verdict.decision if verdict else None,
                tree=self._trees(commit)[0],
                base=self.base_commit,
                patch_id=self.patch_id(commit),
                checks=note_checks([_check_dict(c) for c in checks]),
                models=self.models.describe(),
                prompts_sha=self.prompts_sha,
                findings=note_findings(verdict_data["findings"]) if verdict_data else [],
                reason=redact("; ".join(fact_reasons))[:1000] or None,
                ts=recorded.isoformat(timespec="seconds"),
                **self._note_facts(commit, cycle, verdict),
            ),
        )
        event = VerdictRecorded(
            ts=recorded,
            run_id=self.run_id,
            cycle=cycle,
            commit=commit,
            outcome=outcome,
            decision=verdict.decision if verdict else None,
            reason="; ".join(reasons) or None,
            verdict=verdict_data,
            signed=bool(key),
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
            "sandbox": self.sandbox_name,
            "run_started": start.ts.isoformat(timespec="seconds") if start else None,
            "estimate_hours": start.estimate_hours if start else None,
            "plan_title": start.plan_title if start else None,  # metrics --from-git names the plan as the ledger does
            **self._roles(cycle),
            "chain": self.ledger.head(self.run_id),  # the ledger chain head this verdict was computed from
        }

    def _roles(self, cycle: int) -> dict[str, Any]:
        """Separation of duties: who built and who verified this cycle (backend, model, session id)."""
        roles: dict[str, Any] = {"builder": None, "verifier": None}
        for event in self.ledger.events(run_id=self.run_id, kinds=["session_started"]):
            if isinstance(event, SessionStarted) and event.cycle == cycle and event.role in roles:
                roles[event.role] = {"backend": event.backend, "model": event.model, "session": event.session_id}
        return roles

    def _binding(self, commit: str) -> dict[str, Any]:
        """What the approval is bound to besides the tree (#13 item 3): the base's and the parent's tree."""
        _, base_tree, parent_tree = self._trees(commit)
        # commit: the line is this commit's only; copied onto another commit it decides nothing (agentflow.gate)
        return {"base_tree": base_tree, "parent_tree": parent_tree, "commit": commit}

    def diff(self, commit: str) -> str:
        """base..commit's diff, asked once per commit (``BuildDriver`` reads it while the checks run)."""
        return self._by_commit(self._diffs, commit, lambda: self.repo.diff(self.base_commit, commit))

    def patch_id(self, commit: str) -> str | None:
        """``git patch-id`` of base..commit (two git processes), asked once per commit."""
        return self._by_commit(self._patch_ids, commit, lambda: self.repo.patch_id(self.base_commit, commit))

    def note_facts_ahead(self, commit: str) -> None:
        """Read what the verdict note says of ``commit`` whatever the verdict (its trees, the base's
        and the parent's; the patch id) while the verifier's first request is on its way: at the end
        the four runs of ``-j 4`` asked for them at once, each then waiting for the others' notes
        under the git lock (#19 item 5). Objects named by their ids: the same answers as later."""
        self._trees(commit)
        self.patch_id(commit)

    def _trees(self, commit: str) -> tuple[str, str, str]:
        """The trees of ``commit``, of the base and of ``commit``'s first parent (the empty tree for a
        root commit), read in one ``git cat-file --batch-check`` (they were four git processes)."""
        return self._by_commit(self._tree_cache, commit, lambda: self._read_trees(commit))

    def _read_trees(self, commit: str) -> tuple[str, str, str]:
        parent = f"{commit}^1"
        found = self.repo.trees([commit, self.base_commit, parent]) if commit and self.base_commit else {}
        if commit in found and self.base_commit in found:
            return found[commit], found[self.base_commit], found.get(parent, EMPTY_TREE)
        # one is missing: ask as before, so that the error (or the empty base) is the same
        first = self.repo.change_base(commit, None)
        return self.repo.tree(commit), self.repo.base_tree(self.base_commit), self.repo.base_tree(first)

    def _note_facts(self, commit: str, cycle: int, verdict: Verdict | None) -> dict[str, Any]:
        """Binding and verdict facts beyond DESIGN.md's fields: the approved base tree (#13 item 3),
        criteria status and the redacted summary; plus ``_note_extensions``."""
        from agentflow.verdict import note_criteria, note_summary

        facts: dict[str, Any] = self._binding(commit)
        if verdict is not None:
            facts["criteria"] = note_criteria(verdict.criteria)
            facts["summary"] = note_summary(verdict.summary)
        return {**facts, **self._note_extensions(cycle)}

    def _append_note(self, commit: str, note: VerdictNote) -> None:
        """Sign (here only: the orchestrator) and append; written once per run, cycle and outcome,
        so a run resumed after the note but before its ledger event does not write it twice."""
        from agentflow.notes import parse_lines
        from agentflow.verdict import signing_key

        key = signing_key()
        if key:
            note = note.signed(key)
        line = note.to_line()
        cycle = (note.model_extra or {}).get("cycle")

        def present(lines: list[str]) -> bool:  # with a key, only a signed line: the gate counts no other
            return any(
                n.run == note.run
                and n.cycle == cycle
                and n.outcome == note.outcome
                and not n.override
                and (not key or n.signature_valid(key))
                for n in parse_lines(lines)[0]
            )

        _write_note(self.repo, commit, line, present)

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
        from agentflow.notes import parse_lines
        from agentflow.verdict import VerdictNote, note_checks, note_findings

        progress = self.progress()
        verdicts = progress.verdicts()
        if not verdicts or verdicts[-1].commit is None:
            return
        last, commit = verdicts[-1], verdicts[-1].commit
        if any(
            note.run == self.run_id and note.outcome == "capped" for note in parse_lines(self.repo.notes(commit))[0]
        ):
            return
        checked = progress.cycles[last.cycle].checks
        self._append_note(
            commit,
            VerdictNote(
                plan=self.plan.id if self.plan else None,
                run=self.run_id,
                outcome="capped",
                tree=self.repo.tree(commit),
                base=self.base_commit,
                patch_id=self.patch_id(commit),
                checks=note_checks([_check_dict(c) for c in checked.results]) if checked else [],
                models=self.models.describe(),
                prompts_sha=self.prompts_sha,
                findings=note_findings((last.verdict or {}).get("findings", [])),
                reason=(reason or "capped").split(": ", 1)[0][:300],  # agentflow's words, not the findings after them
                **self._binding(commit),
                **self._note_extensions(cycles),
            ),
        )


@dataclass
class _NoteLine:
    commit: str
    line: str
    present: Callable[[list[str]], bool]
    done: bool = False
    error: Exception | None = None


_NOTE_QUEUE: dict[Path, list[_NoteLine]] = {}  # repository root -> lines waiting for the git lock
_NOTE_QUEUE_LOCK = threading.Lock()


def _write_note(repo: Repo, commit: str, line: str, present: Callable[[list[str]], bool]) -> None:
    """Append ``line`` to ``commit``'s note under the git lock, together with the lines this
    process's other runs queued meanwhile (``Repo.append_notes``: one notes commit, one
    compare-and-swap). The four runs of ``-j 4`` end at the same moment and each held the lock for
    five git processes in turn (the last waited for the other three); now whoever gets the lock
    writes every line waiting, and the others find theirs written (#19 item 5). Each line is
    written once: a line already in its note, or one ``present`` finds equivalent, is skipped, so
    a batch interrupted after its write and written again adds nothing. A failed write fails
    every run whose line it held, as each run's own write failed before."""
    mine = _NoteLine(commit, line, present)
    with _NOTE_QUEUE_LOCK:
        _NOTE_QUEUE.setdefault(repo.root, []).append(mine)
    while not mine.done:
        with _GIT_LOCK(repo.root):
            if mine.done:  # written by the run that held the lock before this one
                break
            with _NOTE_QUEUE_LOCK:
                batch = _NOTE_QUEUE.pop(repo.root, [])
            if mine not in batch:  # taken by a writer that was interrupted: put back by it below
                batch.append(mine)
            try:
                written = repo.append_notes([(n.commit, n.line, n.present) for n in batch])
                # not tampering in a concurrent run's session (the value just written: no git process)
                integrity.record_own_write(repo, NOTES_REF, written)
            except Exception as exc:  # noqa: BLE001 - every waiting run gets it, as its own write's
                for n in batch:
                    n.error, n.done = exc, True
            else:
                for n in batch:
                    n.done = True
            finally:
                undone = [n for n in batch if not n.done and n is not mine]  # interrupted: the others retry
                if undone:
                    with _NOTE_QUEUE_LOCK:
                        _NOTE_QUEUE.setdefault(repo.root, [])[:0] = undone
    if mine.error is not None:
        raise mine.error


def start_confinement(config: Config, reporter: Reporter, label: str = "") -> Sandbox:
    """The run's sandbox (``SandboxUnavailable``, exit 2, when it cannot run); the orchestrator makes
    itself non-dumpable, and a run without the sandbox says so (on every run)."""
    sandbox = Sandbox.from_config(config.sandbox, where=config.source)
    make_non_dumpable()  # same-user processes cannot read this process's /proc/<pid>/environ
    if warning := sandbox.warning():
        reporter.on_message(f"{label}{warning}")
    return sandbox


def _discard_checkout(repo: Repo, path: Path) -> None:
    """Remove a throwaway checkout and its worktree registration, whatever its commands left in it."""
    if path.exists() or path.is_symlink():
        remove_worktree(repo, path)
    if path.exists() or path.is_symlink():
        remove_tree(path)
        remove_worktree(repo, path)


INVALID_VERDICT = "the submitted verdict is invalid"


def _tree_path(path: str, root: Path) -> str:
    """A ``read_file`` path (relative to the session's root, or absolute inside it) as the diff names it."""
    if os.path.isabs(path):
        path = os.path.relpath(path, root)
    return posixpath.normpath(path)


def _check_dict(check: CheckResult) -> dict[str, Any]:
    return {**check.model_dump(mode="json"), "passed": check.passed}


def _submitted_verdict(events: list[Event], session: SessionEnded) -> dict[str, Any] | None:
    """The verdict a finished verifier session submitted (its last successful submit_verdict call)."""
    found = None
    for event in events:
        if (
            isinstance(event, ToolCalled)
            and event.session_id == session.session_id
            and event.tool.endswith("submit_verdict")  # claude-code: mcp__..__submit_verdict
            and not event.is_error
        ):
            found = dict(event.input)
    return found
