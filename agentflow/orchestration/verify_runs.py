"""Verify runs (CI): one verification of ``base...head`` of the repository itself: checks and a
verifier session, no builder. Records a run (mode ``verify``), its verdict event and the verdict
note on ``head``.

(Named ``verify_runs``, not ``verify``, so the package's ``verify`` stays the function.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentflow.checks import check_specs, declared_at, run_checks
from agentflow.config import load_config
from agentflow.errors import GitError, UsageError
from agentflow.events import CheckResult, RunStarted, VerdictRecorded, new_id
from agentflow.files import read_text_file
from agentflow.git import TRAILER_PLAN, Repo
from agentflow.inputs import from_revision, plan_path_of, protected_findings, trailer_plan
from agentflow.integrity import TamperingError
from agentflow.keys import signing_key
from agentflow.ledger import Ledger
from agentflow.orchestration.api import BuildOptions, NullReporter, Reporter, RunInterrupted
from agentflow.orchestration.context import ModelPool, _display, choose_patterns_text, scope_findings, validate_backends
from agentflow.orchestration.run import Run, _check_dict, start_confinement
from agentflow.orchestration.worktrees import (
    WORKTREES_DIR,
    _ensure_excluded,
    add_detached_worktree,
    ensure_git_identity,
    remove_worktree,
)
from agentflow.plans import Plan, resolve_plan
from agentflow.report.verify import VerifyReport
from agentflow.session import RunBudget


def plan_from_trailers(repo: Repo, base: str, head: str) -> str | None:
    """The ``Agentflow-Plan`` trailer of the newest commit in base..head that has one."""
    out = repo.git("log", f"--format=%(trailers:key={TRAILER_PLAN},valueonly,separator=%x2C)%x00", f"{base}..{head}")
    for entry in out.split("\x00"):
        value = entry.strip().split(",")[0].strip()
        if value:
            return value
    return None


def verify(
    root: Path,
    *,
    base: str | None = None,
    head: str = "HEAD",
    plan_ref: str | None = None,
    options: BuildOptions | None = None,
    reporter: Reporter | None = None,
    context: Path | None = None,
    compare_base: bool = False,
) -> VerifyReport:
    """Checks and one verifier session on base...head of the repository at ``root`` (no builder).

    Records a run (mode ``verify``), its verdict event and the verdict note on ``head``. ``context``
    is a file with the pull-request text: shown to the verifier as untrusted content and scanned for
    injection. ``compare_base`` runs the same checks on the base too and compares their evidence.
    """
    signing_key()  # read once, before anything runs: bad key input is exit 2, and redact knows the key
    options = options or BuildOptions()
    context_fix = "pass a readable UTF-8 file with the pull-request text to --context"
    pr_text = read_text_file(context, fix=context_fix) if context is not None else None
    reporter = reporter or NullReporter()
    repo = Repo(root, gitpython=False)
    if not repo.has_commits():
        raise GitError("the repository has no commits yet", where=root, fix="commit something first")
    head_commit = repo.rev(head)
    base_ref, base_commit = _base(repo, base, head_commit)
    if base_commit == head_commit:
        raise UsageError(
            f"nothing to verify: {head} has no commits that {base_ref} lacks",
            fix="pass the branch the change will merge into as --base",
        )
    plan_path: str | None = None
    named_by_trailer = False
    if plan_ref:
        plan_path = plan_path_of(root, resolve_plan(root, plan_ref))
    elif (trailer := plan_from_trailers(repo, base_commit, head_commit)) is not None:
        try:
            plan_path = plan_path_of(root, resolve_plan(root, trailer))
            named_by_trailer = True
        except UsageError:
            reporter.on_message(
                f"the Agentflow-Plan trailer names plan {trailer!r}, which is not in this "
                "repository; judging against the patterns alone"
            )
    # The change is judged by the base's config, checks, prompts, patterns and plan, never its own, as
    # the base's tip has them: not at the merge base, which the change chooses (test_attacks_fork_point.py)
    inputs = from_revision(repo, _tip(repo, base_ref), plan_path, head_commit)
    if named_by_trailer and (inputs := trailer_plan(repo, inputs, head_commit)).plan_from_change:
        # the trailer is the change's text: the plan's scope counts only for agentflow's own build of head
        reporter.on_message(
            f"plan {trailer!r} is named by an Agentflow-Plan trailer that agentflow's build did not record on "
            f"{head_commit[:12]}: its scope softens no rule (pass --plan to judge the change as that plan's)"
        )
    config, plan = inputs.config, inputs.plan
    roles = validate_backends(config, options, root, ("verifier",))
    models = ModelPool(roles, options.models, root)
    models.check()
    ensure_git_identity(repo, reporter)
    sandbox = start_confinement(config, reporter)
    _ensure_excluded(repo)
    with Ledger.open(root) as ledger:
        ledger.require_writable()
        run_id = new_id("r")
        # never the user's checkout: the verifier gets a throwaway clean checkout of head (and the
        # checks another one), so nothing uncommitted or ignored in the checkout can influence them
        workdir = add_detached_worktree(repo, head_commit, root / WORKTREES_DIR / f"verify-{run_id}")
        try:
            run = Run(
                root=root,
                repo=repo,
                config=config,
                plan=plan,
                options=options,
                reporter=reporter,
                ledger=ledger,
                run_id=run_id,
                workdir=workdir,
                base_commit=base_commit,
                max_cycles=1,
                models=models,
                budget=RunBudget(limit_usd=options.budget_usd or config.limits.run_cost_usd),
                # a plan new in the change (its text is the change's) does not choose the patterns: all that fit
                patterns_text=choose_patterns_text(
                    list(inputs.patterns), None if inputs.plan_from_change else plan, config.patterns.token_budget
                ),
                context=(f"context:{context.name}", pr_text) if context is not None and pr_text is not None else None,
                inputs=inputs,
                sandbox=sandbox,
            )
            run.emit(
                RunStarted(
                    run_id=run_id,
                    mode="verify",
                    plan_id=plan.id if plan else None,
                    plan_path=_display(plan.path, root) if plan else None,
                    plan_title=plan.title if plan else None,
                    estimate_hours=plan.estimate_hours if plan else None,
                    branch=repo.current_branch(),
                    base=base_ref,
                    base_commit=base_commit,
                    max_cycles=1,
                    **inputs.record(),
                    sandbox=sandbox.name,
                )
            )
            try:
                checks = run.run_checks(1, head_commit)
                if compare_base:
                    run.base_checks = _base_checks(run, base_commit)
                # base..head's files asked once (the verifier's context reads them too), unquoted
                extra = scope_findings(run.changed_files(head_commit), plan.scope) if plan else []
                extra += run.rule_findings(head_commit) + run.evidence_findings(checks.results)
                extra += protected_findings(repo, base_commit, head_commit, config)
                context = run.verifier_context(1, head_commit, checks.results, extra, None, "verify")
                try:
                    result = run.session("verifier", 1, context, fresh_commit=head_commit)
                except TamperingError as exc:  # recorded; no verdict, no note
                    recorded = VerdictRecorded(
                        run_id=run_id, cycle=1, commit=head_commit, outcome="no_verdict", reason=exc.problem
                    )
                    reasons = [exc.problem]
                else:
                    failure = None if result.status == "completed" else (result.reason or result.status)
                    extra = run.judge_cut(head_commit, extra, result.session_id, run.workdir)
                    recorded, reasons = run.record_verdict(
                        1, head_commit, checks.results, result.submitted, failure, extra
                    )
            except KeyboardInterrupt:
                raise RunInterrupted(f"verify run {run_id} interrupted", fix="run `agentflow verify` again") from None
            run.end(recorded.outcome, 1, recorded.reason, head_commit)
            cost = run.progress().cost_usd
        finally:
            remove_worktree(repo, workdir)
    return _verify_report(run, recorded, reasons, checks.results, head_commit, base_ref, cost, extra)


def _base_checks(run: Run, base_commit: str) -> list[CheckResult]:
    """The run's checks on a clean detached checkout of the base (``verify --compare-base``)."""
    specs = check_specs(run.config.checks, run.plan.checks if run.plan else ())
    if not any(spec.junit for spec in specs):
        return []
    run.say(f"verify: running {len(specs)} check(s) on the base {base_commit[:12]} to compare")
    workdir = add_detached_worktree(run.repo, base_commit, run.root / WORKTREES_DIR / f"base-{run.run_id}")
    try:
        return run_checks(specs, workdir, run.config.limits.command_timeout, sandbox=run.sandbox)
    finally:
        remove_worktree(run.repo, workdir)


def _base(repo: Repo, base: str | None, head_commit: str) -> tuple[str, str]:
    """The base branch and the merge base ``base...head`` is verified from.

    Without ``--base`` the branch comes from the config, which the change itself may have edited:
    the base revision's own config has the last word, and it must name a branch (never a
    revision like ``HEAD~1`` that would hide the change's earlier commits).
    """
    from agentflow.gate import resolve_base  # a branch before a tag of the same name (a PR can push tags)

    if base is not None:
        return base, repo.merge_base(repo.rev(resolve_base(repo, base)), head_commit)
    base_ref = load_config(repo.root).base
    base_commit = repo.merge_base(repo.rev(resolve_base(repo, base_ref)), head_commit)
    trusted = from_revision(repo, _tip(repo, base_ref)).config.base
    if trusted != base_ref:
        base_ref, base_commit = trusted, repo.merge_base(repo.rev(resolve_base(repo, trusted)), head_commit)
    if not any(repo.ok("show-ref", "--verify", "--quiet", ref) for ref in _branch_refs(repo, base_ref)):
        raise UsageError(
            f"base {base_ref!r} is not a branch",
            where="agentflow.yaml",
            fix="set `base:` to the branch changes merge into, or pass --base",
        )
    return base_ref, base_commit


def _tip(repo: Repo, base_ref: str) -> str:
    """The commit the base names (its tip): where its config, checks, prompts, patterns and plans are read."""
    from agentflow.gate import resolve_base

    return repo.rev(resolve_base(repo, base_ref))


def _branch_refs(repo: Repo, name: str) -> list[str]:
    remotes = repo.git("remote", check=False).split()
    return [f"refs/heads/{name}", f"refs/remotes/{name}", *(f"refs/remotes/{r}/{name}" for r in remotes)]


def _verify_report(
    run: Run,
    recorded: VerdictRecorded,
    reasons: list[str],
    checks: list[CheckResult],
    head: str,
    base_ref: str,
    cost: float,
    extra: list[dict[str, Any]] | None = None,
) -> VerifyReport:
    data = recorded.verdict or {}
    findings = list(data.get("findings", [])) if recorded.verdict else list(extra or [])
    answered = {c["id"]: c for c in data.get("criteria", [])}
    criteria = []
    for criterion in run.plan.criteria if run.plan else []:
        answer = answered.pop(criterion.id, {})
        criteria.append(
            {
                "id": criterion.id,
                "text": criterion.text,
                "status": answer.get("status", "unanswered"),
                "evidence": answer.get("evidence", ""),
                "line": criterion.line or None,
            }
        )
    criteria += [
        {"id": cid, "text": "", "status": c.get("status", "unclear"), "evidence": c.get("evidence", "")}
        for cid, c in answered.items()
    ]
    plan_path = _display(run.plan.path, run.root) if run.plan else None
    declaring = [name for name in (plan_path, "agentflow.yaml", "pyproject.toml") if name]
    check_dicts = []
    for check in checks:
        data_check = _check_dict(check)
        where = declared_at(check.command, run.root, declaring)
        if where is not None:
            data_check["file"], data_check["line"] = where
        check_dicts.append(data_check)
    return VerifyReport(
        run_id=run.run_id,
        outcome=recorded.outcome,
        decision=recorded.decision,
        reasons=reasons,
        summary=data.get("summary", ""),
        base=base_ref,
        base_commit=run.base_commit,
        head=head,
        plan_id=run.plan.id if run.plan else None,
        plan_title=run.plan.title if run.plan else None,
        criteria=criteria,
        findings=findings,
        checks=check_dicts,
        cost_usd=round(cost, 6),
        models=run.models.describe(),
        signed=recorded.signed,
        plan_path=plan_path,
        patterns_path=run.config.patterns.file,
    )


def verify_checks(
    root: Path,
    *,
    base: str | None = None,
    head: str = "HEAD",
    plan_ref: str | None = None,
    reporter: Reporter | None = None,
) -> VerifyReport:
    """The checks alone (no verifier, no note) on ``head`` in a clean detached checkout: what a merge
    queue re-runs on the merge result it will land. The checks are the config's plus those of
    ``plan_ref``, or of every plan an ``Agentflow-Plan`` trailer in base..head names (a merge-group
    commit merges several pull requests). Outcome ``checks_passed`` only when at least one check ran
    and every one passed: nothing is green because nothing ran. ``reporter`` hears what every run
    says (``sandbox.mode: off`` warns)."""
    from agentflow.report.verify import CHECKS_FAILED, CHECKS_PASSED

    repo = Repo(root, gitpython=False)
    if not repo.has_commits():
        raise GitError("the repository has no commits yet", where=root, fix="commit something first")
    head_commit = repo.rev(head)
    base_ref, base_commit = _base(repo, base, head_commit)
    tip = _tip(repo, base_ref)
    config = from_revision(repo, tip).config  # the base's checks (at its tip), never the change's own

    def trusted(plan: Plan) -> Plan:
        return from_revision(repo, tip, plan_path_of(root, plan), head_commit).plan or plan

    plans: list[Plan] = []
    if plan_ref:
        plans.append(trusted(resolve_plan(root, plan_ref)))
    else:
        out = repo.git(
            "log",
            f"--format=%(trailers:key={TRAILER_PLAN},valueonly,separator=%x2C)%x00",
            f"{base_commit}..{head_commit}",
        )
        named = dict.fromkeys(v.strip() for entry in out.split("\x00") for v in entry.split(",") if v.strip())
        for plan_id in named:
            try:
                plans.append(trusted(resolve_plan(root, plan_id)))
            except UsageError:
                continue  # a plan not in this tree: its checks cannot be known, the config's still run
    commands = check_specs(config.checks, [c for plan in plans for c in plan.checks])
    run_id = new_id("c")
    results: list[CheckResult] = []
    if commands:
        workdir = add_detached_worktree(repo, head_commit, root / WORKTREES_DIR / f"checks-{run_id}")
        try:
            sandbox = start_confinement(config, reporter or NullReporter())
            results = run_checks(commands, workdir, config.limits.command_timeout, sandbox=sandbox)
        finally:
            remove_worktree(repo, workdir)
    failed = [r.command for r in results if not r.passed]
    reasons = [
        f"check failed: {r.command}" + (f" ({r.evidence})" if r.evidence else "") for r in results if not r.passed
    ]
    if not commands:
        reasons = ["no checks are configured: add `checks:` to agentflow.yaml or the plan"]
    plan = plans[0] if len(plans) == 1 else None
    plan_path = _display(plan.path, root) if plan else None
    declaring = [name for name in (*(_display(p.path, root) for p in plans), "agentflow.yaml", "pyproject.toml")]
    check_dicts = []
    for result in results:
        data = _check_dict(result)
        where = declared_at(result.command, root, declaring)
        if where is not None:
            data["file"], data["line"] = where
        check_dicts.append(data)
    outcome = CHECKS_PASSED if results and not failed else CHECKS_FAILED
    return VerifyReport(
        run_id=run_id,
        outcome=outcome,
        decision=None,
        reasons=reasons,
        summary=f"{len(results) - len(failed)} of {len(results)} check(s) passed on {head_commit[:12]}",
        base=base_ref,
        base_commit=base_commit,
        head=head_commit,
        plan_id=plan.id if plan else (",".join(p.id for p in plans) or None),
        plan_title=plan.title if plan else None,
        checks=check_dicts,
        plan_path=plan_path,
        patterns_path=config.patterns.file,
    )
