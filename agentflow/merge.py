"""``agentflow merge``: merge an approved plan branch, and nothing else.

The gate runs on the branch head first; a closed gate refuses with the gate's reasons. The merge is
computed with ``git merge-tree --write-tree`` before anything is touched, so a conflict leaves the
target branch, HEAD, index and working tree exactly as they were. Then:

* if the target branch is checked out in a worktree, that worktree must be clean and the merge is a
  real ``git merge --no-ff`` there (so the files follow the branch);
* otherwise the merge commit is written with ``commit-tree`` and the branch moved with
  ``update-ref`` guarded by its old value, so a concurrent update is never overwritten.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from agentflow.config import Config
from agentflow.errors import AgentflowError, ExitCode, GitError, UsageError
from agentflow.events import Merged
from agentflow.gate import SHORT, GateResult, evaluate_gate
from agentflow.git import TRAILER_PLAN, TRAILER_RUN, WORKTREES_DIR, Repo
from agentflow.ledger import Ledger


class MergeRefused(AgentflowError):
    """The gate is closed for the branch head, or the merge conflicts: exit 1, nothing changed."""

    exit_code = ExitCode.NOT_APPROVED


@dataclass
class MergeResult:
    branch: str
    into: str
    commit: str
    plan_id: str | None
    run_id: str | None
    gate: GateResult
    method: str  # "git merge" in a checked-out worktree, or "update-ref"
    removed_worktree: Path | None = None
    warnings: list[str] = field(default_factory=list)


def resolve_branch(repo: Repo, target: str) -> str:
    """The branch ``target`` names: a branch name, or a plan (path or id) via its ``agentflow/<id>-*`` branch."""
    name = target.removeprefix("refs/heads/")
    if repo.branch_exists(name):
        return name
    plan_id: str | None = None
    expected: str | None = None
    try:
        from agentflow import plans

        plan = plans.resolve_plan(repo.root, target)
        expected = plans.branch_name(plan)
        if repo.branch_exists(expected):
            return expected
        plan_id = str(plan.id)
    except (ImportError, UsageError):
        pass
    ids = {plan_id, Path(target).stem.split("-", 1)[0], target} - {None, ""}
    matches = sorted(
        branch
        for branch in repo.git("for-each-ref", "--format=%(refname:short)", "refs/heads/agentflow/").splitlines()
        if any(fnmatch.fnmatch(branch, f"agentflow/{i}-*") or branch == f"agentflow/{i}" for i in ids)
    )
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(f"{target!r} matches several branches: {', '.join(matches)}", fix="name the branch")
    if expected is not None:
        raise UsageError(
            f"plan {plan_id} has no branch {expected} yet", fix=f"build it first: agentflow build {plan_id}"
        )
    raise UsageError(f"no branch or plan branch for {target!r}", fix="name a branch, or a plan that has been built")


def merge_branch(
    repo: Repo, target: str, *, into: str | None = None, config: Config, ledger: Ledger | None = None
) -> MergeResult:
    """Gate, then merge ``target`` (plan or branch) into ``into`` (default: the configured base).

    The ledger (default: the repository's) is opened only once the merge is done, so a refused
    merge leaves no trace, not even a new ``.agentflow/ledger.db``.
    """
    branch = resolve_branch(repo, target)
    into = (into or _default_target(repo, config.base)).removeprefix("refs/heads/")
    if not repo.branch_exists(into):
        raise UsageError(f"no branch {into!r} to merge into", fix="pass --into with an existing local branch")
    if branch == into:
        raise UsageError(f"cannot merge {branch} into itself", fix="pass --into with the target branch")
    head, old = repo.rev(f"refs/heads/{branch}"), repo.rev(f"refs/heads/{into}")
    # judged by the target's config at its tip, as `agentflow gate` judges (the checkout's may only
    # make it stricter): the checkout may have the branch being merged checked out, and its config
    from agentflow.inputs import gate_inputs

    judged, target = gate_inputs(repo, head, base=into)
    result = evaluate_gate(repo, head, base=into, config=judged, target=target)
    if not result.open:
        raise MergeRefused("\n".join([f"refusing to merge {branch}: {result.headline()}", *result.reasons]))
    if repo.ok("merge-base", "--is-ancestor", head, old):
        raise UsageError(f"{branch} is already merged into {into}", fix="nothing to do")
    tree, conflicts = repo.merge_tree_conflicts(old, head)
    if tree is None:
        where = _checked_out_in(repo, branch)  # a plan branch is checked out in its build worktree
        rebase = f"git -C {_shown(repo, where)} rebase {into}" if where else f"git rebase {into} {branch}"
        raise MergeRefused(
            f"merging {branch} into {into} conflicts in {', '.join(conflicts) or 'some files'}; nothing was changed "
            f"(`{rebase}`, resolve the conflicts, re-verify with `agentflow verify`, then merge again)"
        )
    trailers = repo.trailers(head)
    plan_id = (result.note.plan if result.note and result.note.plan else None) or trailers.get(TRAILER_PLAN)
    run_id = (result.note.run if result.note and result.note.run else None) or trailers.get(TRAILER_RUN)
    message = merge_message(branch, into, plan_id, run_id, result)
    checked_out = _checked_out_in(repo, into)
    if checked_out is not None:
        commit = _merge_in_worktree(Repo(checked_out), branch, head, message)
        method = "git merge"
    else:
        commit = _merge_by_ref(repo, into, old, head, tree, message)
        method = "update-ref"
    event = Merged(run_id=run_id, plan_id=plan_id, branch=branch, into=into, commit=commit)
    if ledger is not None:
        ledger.append(event)
    else:
        with Ledger.open(repo.root) as own:
            own.append(event)
    merged = MergeResult(branch, into, commit, plan_id, run_id, result, method)
    _remove_plan_worktree(repo, branch, merged)
    return merged


def _default_target(repo: Repo, base: str) -> str:
    """``--into`` omitted: the checkout's ``base:``, which a checked-out branch writes, only when the
    base branch's own config at its tip names the same base (``agentflow.inputs.default_base``, the
    gate's policy too, without following: a pull request's ``base: release`` merged it into release,
    not into main; tests/test_attacks_checkout_defaults.py)."""
    from agentflow.inputs import config_at, default_base

    def own_base(name: str) -> str | None:
        if not repo.branch_exists(name):
            return None  # the caller says there is no such branch
        return config_at(repo, f"refs/heads/{name}", invalid="defaults").base

    return default_base(base, own_base, follow=False, option="--into")


def merge_message(branch: str, into: str, plan: str | None, run: str | None, result: GateResult) -> str:
    """The merge commit message: names the plan, the run and the verdict that opened the gate."""
    note = result.note
    verdict = "human override" if result.override else "approved"
    if note is not None:
        verdict += f" at {note.ts} on {(result.note_commit or result.commit)[:SHORT]} (tree {note.tree[:SHORT]}"
        verdict += ", signed)" if result.signed else ")"
        if result.override and note.reason:
            verdict += f"; reason: {note.reason}; by {note.by or 'unknown'}"
    # No Agentflow-* trailers here: those mark builder commits (metrics count them).
    subject = f"Merge {branch} into {into}" + (f" (plan {plan})" if plan else "")
    body = [f"Plan: {plan or 'unknown'}", f"Run: {run or 'unknown'}", f"Verdict: {verdict}"]
    return "\n".join([subject, "", *body]) + "\n"


def _shown(repo: Repo, path: Path) -> str:
    """``path`` relative to the repository when it is inside it (how a user would type it)."""
    try:
        return str(path.resolve().relative_to(repo.root.resolve()))
    except ValueError:
        return str(path)


def _checked_out_in(repo: Repo, branch: str) -> Path | None:
    for path, ref in repo.worktrees():
        if ref == f"refs/heads/{branch}":
            return path
    return None


def _merge_in_worktree(wt: Repo, branch: str, head: str, message: str) -> str:
    """A real ``git merge --no-ff`` in the worktree that has the target checked out (must be clean)."""
    if wt.is_dirty() or wt.ok("rev-parse", "--verify", "--quiet", "MERGE_HEAD"):
        raise UsageError(  # the user's input (their checkout) is not ready: exit 2, not "not approved"
            "has uncommitted changes (or a merge in progress); nothing was changed",
            where=wt.root,
            fix="commit or stash them, then merge again",
        )
    before = wt.rev("HEAD")
    try:
        wt.git("merge", "--no-ff", "--no-edit", "-q", "-m", message, head)
    except GitError as exc:
        if wt.ok("rev-parse", "--verify", "--quiet", "MERGE_HEAD"):
            wt.git("merge", "--abort", check=False)
        if wt.rev("HEAD") != before:
            raise
        raise MergeRefused(
            f"`git merge` of {branch} refused and was rolled back, nothing was changed: {exc.problem} "
            "(an untracked file in the way, or a hook said no)"
        ) from None
    return wt.rev("HEAD")


def _merge_by_ref(repo: Repo, into: str, old: str, head: str, tree: str, message: str) -> str:
    """Write the merge commit without a worktree and move ``into`` only if it still points at ``old``."""
    commit = repo.git("commit-tree", tree, "-p", old, "-p", head, "-F", "-", input=message)
    reflog = f"agentflow merge: {message.splitlines()[0]}"
    if not repo.ok("update-ref", "-m", reflog, f"refs/heads/{into}", commit, old):
        raise MergeRefused(f"{into} moved while merging; nothing was changed (run `agentflow merge` again)")
    return commit


def _remove_plan_worktree(repo: Repo, branch: str, result: MergeResult) -> None:
    """Remove the plan's build worktree under ``.agentflow/worktrees``; a dirty one is kept, with a warning."""
    managed = (repo.root / WORKTREES_DIR).resolve()
    for path, ref in repo.worktrees():
        if ref != f"refs/heads/{branch}" or not path.resolve().is_relative_to(managed):
            continue
        from agentflow.integrity import embedded_repositories

        # `git worktree remove` runs `git status` there, which enters a nested repository and runs its
        # config's commands (tests/test_attacks_nested_repo_config.py): such a worktree is kept
        if nested := embedded_repositories(repo.root, path) or []:
            result.warnings.append(
                f"kept the worktree {path}: it holds a git repository at {nested[0]} that agentflow's git does not "
                f"enter (remove the folder by hand)"
            )
            continue
        if repo.ok("worktree", "remove", str(path)):
            result.removed_worktree = path
        else:
            result.warnings.append(
                f"kept the worktree {path}: it has uncommitted changes "
                f"(`git worktree remove --force {path}` drops them)"
            )
