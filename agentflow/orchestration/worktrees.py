"""Git for runs: a commit identity when none is configured, ``.agentflow/`` kept out of
``git status``, and the worktrees build and verify runs work in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from agentflow import locks
from agentflow.errors import GitError
from agentflow.files import make_dir
from agentflow.git import TRAILER_PLAN, Repo, is_full_id, run_git
from agentflow.git import WORKTREES_DIR as WORKTREES_DIR  # re-exported: orchestration code imports it from here
from agentflow.locks import plan_lock as plan_lock  # re-exported: orchestration code imports it from here
from agentflow.orchestration.api import Reporter

# agentflow's git writes that an integrity snapshot compares (commits' refs, notes, info/exclude) and
# the snapshots and checks themselves: one at a time across -j threads and agentflow processes.
# Worktree adds and removes take locks.worktrees_lock instead, which lets them run at once.
_GIT_LOCK = locks.GIT_LOCK  # with _GIT_LOCK(root): one lock per repository


FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "agentflow",
    "GIT_AUTHOR_EMAIL": "agentflow@localhost",
    "GIT_COMMITTER_NAME": "agentflow",
    "GIT_COMMITTER_EMAIL": "agentflow@localhost",
}


def ensure_git_identity(repo: Repo, reporter: Reporter) -> None:
    """Commits and notes need an identity; CI runners often have none configured.

    Without one, agentflow commits as ``agentflow <agentflow@localhost>`` and says so, rather than
    failing after the sessions have been paid for.
    """
    found = repo.git("config", "--get-regexp", r"^user\.(name|email)$", check=False)  # both in one process
    values = {key: value for key, _, value in (line.partition(" ") for line in found.splitlines())}
    configured = bool(values.get("user.name") and values.get("user.email"))
    if configured or all(os.environ.get(name) for name in FALLBACK_IDENTITY):
        return
    for name, value in FALLBACK_IDENTITY.items():
        os.environ.setdefault(name, value)
    reporter.on_message(
        "git has no user.name/user.email here: commits and notes are made as "
        "agentflow <agentflow@localhost> (configure git to change that)"
    )


_EXCLUDED: set[Path] = set()  # repositories whose .agentflow/ this process has seen ignored


def _ensure_excluded(repo: Repo) -> None:
    """Keep ``.agentflow/`` out of ``git status`` without editing a tracked file (checked once per
    repository and process: each check is a git process, and the checkouts of every cycle asked).

    Under the git lock: ``info/exclude`` is part of every session's integrity snapshot."""
    if repo.root in _EXCLUDED:
        return
    with _GIT_LOCK(repo.root):
        if repo.root in _EXCLUDED:  # another -j run did it while this one waited
            return
        if repo.ok("check-ignore", "-q", ".agentflow/ledger.db"):
            _EXCLUDED.add(repo.root)
            return
        common = Path(repo.git("rev-parse", "--git-common-dir"))
        exclude = (common if common.is_absolute() else repo.root / common) / "info" / "exclude"
        exclude.parent.mkdir(parents=True, exist_ok=True)
        existing = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
        if ".agentflow/" not in existing.splitlines():
            exclude.write_text(
                existing + ("" if existing.endswith("\n") or not existing else "\n") + ".agentflow/\n",
                encoding="utf-8",
            )
        _EXCLUDED.add(repo.root)


def prepare_worktree(repo: Repo, branch: str, base_ref: str, path: Path) -> Path:
    """Create or reuse the plan's branch (from ``base_ref``) and its worktree at ``path``.

    A folder that does not exist is no worktree to reuse: it is added straight away (a registration
    left by a killed run is pruned by ``_add`` when git refuses), without listing the worktrees
    first. Not under the git lock: the runs of ``-j`` add their worktrees at once
    (``locks.worktrees_lock``); the caller holds the plan's lock, so nobody else adds this one.
    When the add fails, a branch it created is deleted again: nothing is left half made."""
    _ensure_excluded(repo)
    exists = path.exists()
    registered = {path.resolve(): ref for path, ref in repo.worktrees()} if exists else {}
    resolved = path.resolve()
    if resolved in registered:
        if registered[resolved] != f"refs/heads/{branch}":
            raise GitError(
                f"worktree {path} has {registered[resolved] or 'a detached HEAD'} checked out, not {branch}",
                fix=f"remove it with `git worktree remove {path}`",
            )
        return path
    if exists and any(path.iterdir()):
        raise GitError(
            f"{path} exists and is not a worktree of this repository",
            fix="move it away; agentflow creates the worktree itself",
        )
    make_dir(path.parent)
    if repo.branch_exists(branch):
        _add(repo, ["worktree", "add", "--quiet", str(path), branch])
        return path
    start = base_ref if is_full_id(base_ref) else repo.rev(base_ref)  # an id: nothing to ask
    _add(repo, ["worktree", "add", "--quiet", "-b", branch, str(path), start], made=(branch, start))
    return path


def _add(repo: Repo, args: list[str], made: tuple[str, str] | None = None) -> None:
    """``git worktree add``, under the shared worktree lock; when git refuses, the registrations of
    worktrees whose folders are gone (a killed run's, one deleted by hand) are pruned, under the
    exclusive one, and it is tried once more (a prune before every add was a second git process).

    ``made``: the ``(branch, start)`` a ``-b`` add creates. git makes the branch before it checks the
    path, so a refused add leaves it behind (and the second try would fail on it): it is deleted
    after each failure, only while it still points at ``start`` (``update-ref -d`` compares)."""
    with locks.worktrees_lock(repo.root):
        if repo.ok(*args):
            return
    _drop_branch(repo, made)
    try:
        with locks.worktrees_lock(repo.root, exclusive=True):
            repo.git("worktree", "prune")
            repo.git(*args)
    except GitError:
        _drop_branch(repo, made)
        raise


def _drop_branch(repo: Repo, made: tuple[str, str] | None) -> None:
    if made is not None:
        branch, start = made
        repo.git("update-ref", "-d", f"refs/heads/{branch}", start, check=False)


def undo_worktree(repo: Repo, branch: str, path: Path, made_from: str | None) -> None:
    """Remove the worktree ``prepare_worktree`` just made at ``path`` and, when it also made the
    branch (``made_from``: the commit it started from), the branch, while it still points there (a
    run whose first event could not be recorded leaves nothing behind)."""
    remove_worktree(repo, path)
    _drop_branch(repo, (branch, made_from) if made_from else None)


def add_detached_worktree(repo: Repo, commit: str, path: Path) -> Path:
    """A detached worktree of ``commit`` at ``path`` (a throwaway checkout), added while other runs
    add and remove theirs (``locks.worktrees_lock``).

    Registered as ``git worktree add --detach`` registers it (``_register_checkout``) and checked out
    by the one ``git reset --hard`` that command runs: one git process instead of three (the add,
    its ``update-ref HEAD`` and its reset). Anything it cannot do that way (a name taken in
    ``.git/worktrees``, a folder already there, a name instead of an id) goes to ``git worktree add``."""
    _ensure_excluded(repo)
    make_dir(path.parent)
    if is_full_id(commit):
        with locks.worktrees_lock(repo.root):
            admin = _register_checkout(repo, commit, path)
        if admin is not None:
            _check_out(repo, path, admin)
            return path
    _add(repo, ["worktree", "add", "--quiet", "--detach", str(path), commit])
    return path


_COMMON: dict[Path, Path] = {}  # repository root -> its common git dir (one rev-parse per process)


def _common_dir(repo: Repo) -> Path:
    common = _COMMON.get(repo.root)
    if common is None:
        common = _COMMON[repo.root] = Path(repo.git("rev-parse", "--path-format=absolute", "--git-common-dir"))
    return common


def _admin_dir(repo: Repo, path: Path) -> Path:
    """Where git keeps the worktree at ``path``'s own files (HEAD, index), named after its folder."""
    return _common_dir(repo) / "worktrees" / path.name


def _register_checkout(repo: Repo, commit: str, path: Path) -> Path | None:
    """Write what ``git worktree add --detach`` writes before it checks out (gitrepository-layout:
    ``worktrees/<id>/gitdir``, ``commondir``, ``HEAD``, and the ``.git`` file naming them), ``locked``
    until the checkout is done, as git keeps it from a prune meanwhile; the admin folder, or None
    (nothing made) when its name or ``path`` is taken."""
    admin = _admin_dir(repo, path)
    try:
        path.mkdir()
    except FileExistsError:
        return None
    try:
        admin.parent.mkdir(exist_ok=True)
        if _own_checkout(repo, path) is not None:  # a killed run's, its folder gone: as a prune would
            shutil.rmtree(admin)
        admin.mkdir()
    except FileExistsError:
        path.rmdir()
        return None
    try:
        (admin / "locked").write_text("initializing\n", encoding="utf-8")
        (admin / "commondir").write_text("../..\n", encoding="utf-8")
        (admin / "HEAD").write_text(commit + "\n", encoding="utf-8")
        (admin / "gitdir").write_text(os.path.join(os.path.realpath(path), ".git") + "\n", encoding="utf-8")
        (path / ".git").write_text(f"gitdir: {os.path.realpath(admin)}\n", encoding="utf-8")
    except OSError:
        remove_tree(path)
        shutil.rmtree(admin, ignore_errors=True)
        raise
    return admin


def _check_out(repo: Repo, path: Path, admin: Path) -> None:
    """The index and files of the registered checkout, as ``git worktree add`` makes them; on failure
    (git refuses the commit's tree) nothing is left: no folder, no registration."""
    out = run_git(["reset", "--hard", "--quiet", "--no-recurse-submodules"], path)
    if out.returncode != 0:
        with locks.worktrees_lock(repo.root):
            remove_tree(path)
            shutil.rmtree(admin, ignore_errors=True)
        detail = (out.stderr or out.stdout).strip().splitlines()
        raise GitError(f"cannot check out {path.name}: {detail[-1] if detail else out.returncode}", where=repo.root)
    (admin / "locked").unlink(missing_ok=True)


def _own_checkout(repo: Repo, path: Path) -> Path | None:
    """The admin folder of the detached, unlocked worktree registered at ``path``, read from the git
    dir (never from ``path``, whose commands may have rewritten its ``.git`` file); None otherwise."""
    admin = _admin_dir(repo, path)
    try:
        gitdir = (admin / "gitdir").read_text(encoding="utf-8").strip()
        head = (admin / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    mine = gitdir == os.path.join(os.path.realpath(path), ".git")
    return admin if mine and is_full_id(head) and not (admin / "locked").exists() else None


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything in it, whatever its commands left (folders made read-only)."""

    def writable(function: Any, name: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            Path(name).parent.chmod(0o700)
            function(name)

    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=writable)


def remove_worktree(repo: Repo, path: Path) -> None:
    """Remove a worktree and its registration; prune (a second git process, under the exclusive
    worktree lock) only when the remove could not do it (the folder was already gone or half
    deleted). A detached checkout (``add_detached_worktree``'s) is deleted as ``git worktree remove
    --force`` deletes it, its folder then its admin folder, without a git process."""
    with locks.worktrees_lock(repo.root):
        admin = _own_checkout(repo, path)
        if admin is not None:
            remove_tree(path)
            if not path.exists():
                shutil.rmtree(admin, ignore_errors=True)
                return
        removed = repo.ok("worktree", "remove", "--force", str(path))
    if not removed:
        with locks.worktrees_lock(repo.root, exclusive=True):
            repo.git("worktree", "prune", check=False)


def foreign_commits(repo: Repo, base: str, branch: str, plan_id: str) -> list[str]:
    """Commits on ``branch`` since ``base`` that agentflow did not make for plan ``plan_id`` (no
    ``Agentflow-Plan: <id>`` trailer), as ``<short id> <subject>``; merge commits are not counted."""
    fmt = f"%h %s%x1f%(trailers:key={TRAILER_PLAN},valueonly,separator=%x2c)"
    out = repo.git("log", "--no-merges", f"--format={fmt}", f"{base}..{branch}", check=False)
    foreign = []
    for line in out.splitlines():
        commit, _, plans = line.partition("\x1f")
        if plan_id not in [p.strip() for p in plans.split(",")]:
            foreign.append(commit)
    return foreign
