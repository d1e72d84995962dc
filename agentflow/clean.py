"""``agentflow clean``: remove plan worktrees and branches nobody will build or merge again.

What counts as abandoned, in order of safety:

* a worktree under ``.agentflow/worktrees/`` with a detached HEAD (a verify or check checkout left
  by a killed run) or one git no longer knows (a leftover directory);
* a plan worktree and its ``agentflow/*`` branch once the branch is merged into the base;
* the same for a branch whose plan file is gone from ``.plans/``;
* with ``unmerged=True``, every other plan worktree and branch too (their runs ended; the work is
  dropped, which is why it takes the option).

Never touched: a plan being built right now (its lock is held), and a worktree with uncommitted
changes unless ``force``. Verdict notes stay: they belong to commits, not to branches.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from agentflow import locks
from agentflow.config import Config
from agentflow.errors import UsageError
from agentflow.git import WORKTREES_DIR, Repo
from agentflow.plans import find_plans

BRANCH_PREFIX = "agentflow/"


@dataclass
class CleanItem:
    """One worktree and/or branch, what happens to it and why."""

    worktree: Path | None
    branch: str | None
    reason: str
    remove: bool  # False: kept, ``reason`` says why

    def describe(self, root: Path, dry_run: bool) -> str:
        parts = []
        if self.worktree is not None:
            parts.append(f"worktree {_shown(root, self.worktree)}")
        if self.branch is not None:
            parts.append(f"branch {self.branch}")
        what = " and ".join(parts)
        verb = ("would remove" if dry_run else "removed") if self.remove else "kept"
        return f"{verb} {what} ({self.reason})"


def _shown(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _plan_ids(root: Path) -> set[str]:
    """Plan ids named by the files under .plans/ (``<id>-<slug>.md``), valid or not."""
    return {path.stem.split("-", 1)[0] for path in find_plans(root)}


def survey(repo: Repo, config: Config, *, unmerged: bool = False, force: bool = False) -> list[CleanItem]:
    """What ``clean`` would do, without changing anything."""
    root = repo.root
    managed = (root / WORKTREES_DIR).resolve()
    base = config.base
    if not repo.branch_exists(base):
        raise UsageError(f"no branch {base!r} to compare plan branches with", fix="set `base:` in agentflow.yaml")
    repo.git("worktree", "prune")
    plans = _plan_ids(root)
    by_branch: dict[str, Path] = {}
    items: list[CleanItem] = []
    registered: set[Path] = set()
    for path, ref in repo.worktrees():
        resolved = path.resolve()
        if not resolved.is_relative_to(managed):
            continue
        registered.add(resolved)
        if ref is None:
            items.append(_guarded(repo, CleanItem(path, None, "a detached checkout left by a run", True), force))
        elif ref.startswith(f"refs/heads/{BRANCH_PREFIX}"):
            by_branch[ref.removeprefix("refs/heads/")] = path
    if managed.is_dir():
        for leftover in sorted(managed.iterdir()):
            if leftover.resolve() not in registered:
                items.append(CleanItem(leftover, None, "not a worktree git knows", True))
    branches = repo.git("for-each-ref", "--format=%(refname:short)", f"refs/heads/{BRANCH_PREFIX}").split()
    for branch in branches:
        worktree = by_branch.get(branch)
        plan_id = branch.removeprefix(BRANCH_PREFIX).split("-", 1)[0]
        if repo.ok("merge-base", "--is-ancestor", branch, base):
            item = CleanItem(worktree, branch, f"merged into {base}", True)
        elif plan_id not in plans:
            item = CleanItem(worktree, branch, f"plan {plan_id} is gone from .plans/", True)
        elif unmerged:
            item = CleanItem(worktree, branch, f"not merged into {base}: its work is dropped (--unmerged)", True)
        else:
            item = CleanItem(worktree, branch, f"not merged into {base}; `--unmerged` removes it", False)
        if item.remove and locks.held(root, branch):
            item = CleanItem(worktree, branch, "a build of it is running", False)
        items.append(_guarded(repo, item, force))
    return items


def _guarded(repo: Repo, item: CleanItem, force: bool) -> CleanItem:
    """Keep a worktree with uncommitted changes unless ``force``."""
    if item.remove and item.worktree is not None and not force and Repo(item.worktree).is_dirty(untracked=True):
        return CleanItem(item.worktree, item.branch, "it has uncommitted changes; `--force` drops them", False)
    return item


def clean(repo: Repo, items: list[CleanItem]) -> None:
    """Remove what ``survey`` marked for removal: worktrees first, then their branches."""
    for item in items:
        if not item.remove:
            continue
        removed = item.worktree is None or repo.ok("worktree", "remove", "--force", str(item.worktree))
        if not removed and item.worktree is not None and item.worktree.exists():
            try:
                shutil.rmtree(item.worktree)  # a directory git does not know as a worktree
            except OSError as exc:  # the branch stays too: it is what the worktree has checked out
                repo.git("worktree", "prune")
                raise UsageError(
                    f"cannot remove the worktree: {exc.strerror or exc}",
                    where=_shown(repo.root, item.worktree),
                    fix=f"make {_shown(repo.root, item.worktree.parent)} writable (chmod -R u+w), or run agentflow "
                    "as its owner, then `agentflow clean` again",
                ) from None
        if item.branch is not None:
            repo.git("branch", "-D", item.branch)
    repo.git("worktree", "prune")
