"""Worktrees added and removed at once by the runs of ``build -j`` (outside agentflow's git lock).

git serialises what concurrent ``git worktree add`` share itself; agentflow only keeps a prune from
running while an add is under way (``locks.worktrees_lock``). These tests add and remove worktrees
from many threads at once, with a prune in the middle, and check that a refused add leaves no
branch, folder or registration behind.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from agentflow import locks
from agentflow.errors import GitError
from agentflow.git import WORKTREES_DIR, Repo
from agentflow.orchestration.worktrees import add_detached_worktree, prepare_worktree, remove_worktree
from tests.helpers import git

THREADS = 8


def _at_once(jobs: list[Callable[[], object]]) -> list[BaseException]:
    """Run every job in its own thread, all released together; the errors they raised."""
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _registered(root: Path) -> set[Path]:
    return {path.resolve() for path, _ in Repo(root, gitpython=False).worktrees()} - {root.resolve()}


def _plan_path(root: Path, i: int) -> Path:
    return root / WORKTREES_DIR / f"{i}-p{i}"


def _stale_registration(root: Path, path: Path, branch: str) -> None:
    """A worktree whose folder was deleted (a killed run's, one removed by hand): still registered."""
    git(root, "worktree", "add", "--quiet", "-b", branch, str(path))
    git(root, "worktree", "lock", "--reason", "test", str(path))  # kept from other prunes until it is ours
    for child in sorted(path.rglob("*"), reverse=True):
        child.unlink() if child.is_file() or child.is_symlink() else child.rmdir()
    path.rmdir()
    git(root, "worktree", "unlock", str(path))


def test_plan_worktrees_and_checkouts_added_and_removed_from_threads_at_once(repo):
    base = git(repo, "rev-parse", "HEAD")
    r = Repo(repo, gitpython=False)
    plans = [_plan_path(repo, i) for i in range(THREADS // 2)]
    checkouts = [repo / WORKTREES_DIR / f"checks-c1-r{i}" for i in range(THREADS // 2)]
    jobs: list[Callable[[], object]] = [
        *(lambda i=i, p=p: prepare_worktree(r, f"agentflow/{i}-p{i}", base, p) for i, p in enumerate(plans)),
        *(lambda p=p: add_detached_worktree(r, base, p) for p in checkouts),
    ]
    assert _at_once(jobs) == []
    assert _registered(repo) == {p.resolve() for p in plans + checkouts}
    for path in plans + checkouts:
        assert (path / "README.md").read_text() == "# sample\n"
    for i, path in enumerate(plans):
        assert git(path, "symbolic-ref", "HEAD") == f"refs/heads/agentflow/{i}-p{i}"
        assert git(repo, "rev-parse", f"agentflow/{i}-p{i}") == base
    assert git(repo, "status", "--porcelain") == ""  # .agentflow/ kept out of git status

    assert _at_once([lambda p=p: remove_worktree(r, p) for p in plans + checkouts]) == []
    assert _registered(repo) == set()
    assert not any(p.exists() for p in plans + checkouts)


def test_a_prune_for_a_stale_registration_never_drops_a_worktree_being_added(repo):
    """One run's add is refused (its folder was deleted but is still registered), so it prunes and
    adds again, while seven others add theirs: every one of them ends registered and checked out."""
    base = git(repo, "rev-parse", "HEAD")
    r = Repo(repo, gitpython=False)
    stale = _plan_path(repo, 0)
    _stale_registration(repo, stale, "agentflow/0-p0")
    others = [repo / WORKTREES_DIR / f"verifier-c1-r{i}" for i in range(THREADS - 1)]
    jobs: list[Callable[[], object]] = [
        lambda: prepare_worktree(r, "agentflow/0-p0", base, stale),
        *(lambda p=p: add_detached_worktree(r, base, p) for p in others),
    ]
    assert _at_once(jobs) == []
    assert _registered(repo) == {p.resolve() for p in [stale, *others]}
    assert all((p / "README.md").is_file() for p in [stale, *others])


def test_a_new_branch_added_where_a_stale_registration_was(repo):
    """git creates a ``-b`` add's branch before it checks the path: refused for the stale
    registration, the branch must not be left behind, or the second try fails on it."""
    base = git(repo, "rev-parse", "HEAD")
    path = _plan_path(repo, 1)
    _stale_registration(repo, path, "agentflow/old-name")
    prepare_worktree(Repo(repo, gitpython=False), "agentflow/1-p1", base, path)
    assert git(path, "symbolic-ref", "HEAD") == "refs/heads/agentflow/1-p1"
    assert _registered(repo) == {path.resolve()}


def _uncheckoutable_commit(root: Path) -> str:
    """A commit git refuses to check out (a tree entry named ``.git``): the add fails half-way,
    after its folder and registration were made."""
    blob = git(root, "hash-object", "-w", "README.md")
    entries = f"100644 blob {blob}\t.git\n100644 blob {blob}\tREADME.md\n"
    tree = subprocess.run(["git", "mktree"], cwd=root, input=entries, capture_output=True, text=True, check=True)
    tree = tree.stdout.strip()
    return git(root, "commit-tree", tree, "-p", "HEAD", "-m", "bad")


@pytest.mark.parametrize("kind", ["plan", "checkout"])
def test_a_failed_add_leaves_no_branch_folder_or_registration(repo, kind):
    bad = _uncheckoutable_commit(repo)
    r = Repo(repo, gitpython=False)
    path = _plan_path(repo, 2) if kind == "plan" else repo / WORKTREES_DIR / "checks-c1-rbad"
    ok = repo / WORKTREES_DIR / "checks-c1-rok"
    good = git(repo, "rev-parse", "HEAD")

    def add() -> None:
        if kind == "plan":
            prepare_worktree(r, "agentflow/2-p2", bad, path)
        else:
            add_detached_worktree(r, bad, path)

    errors = _at_once([add, lambda: add_detached_worktree(r, good, ok)])  # another run's add meanwhile
    assert len(errors) == 1 and isinstance(errors[0], GitError), errors
    assert not path.exists()
    assert _registered(repo) == {ok.resolve()}  # the concurrent add is untouched
    assert git(repo, "branch", "--list", "agentflow/*") == ""
    # nothing in the way of the next try
    if kind == "plan":
        prepare_worktree(r, "agentflow/2-p2", good, path)
    else:
        add_detached_worktree(r, good, path)
    assert (path / "README.md").is_file()


def test_a_prune_waits_for_the_adds_under_way_and_adds_wait_for_a_prune(repo):
    """Shared for adds and removes, exclusive for prunes, between threads (each use opens its own
    descriptor) as between processes."""
    order: list[str] = []
    pruning, done = threading.Event(), threading.Event()

    def prune() -> None:
        with locks.worktrees_lock(repo, exclusive=True):
            order.append("prune")
            pruning.set()
            done.wait(30)

    thread = threading.Thread(target=prune)
    with locks.worktrees_lock(repo):
        with locks.worktrees_lock(repo):  # a second add at the same time: both hold it
            order.append("two adds")
        thread.start()
        pruning.wait(0.3)  # (the prune must not get in while an add holds the lock)
        order.append("adds done")
    assert pruning.wait(30)
    # an add meanwhile, as another process would take it: refused while the prune holds the lock
    with open(locks.worktrees_lock_path(repo), "a+") as handle, pytest.raises(BlockingIOError):
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    done.set()
    thread.join()
    assert order == ["two adds", "adds done", "prune"]


def _git_processes(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of every git process agentflow starts from now on."""
    import agentflow.git as agentflow_git

    started: list[list[str]] = []
    real = agentflow_git.subprocess.run

    def run(args, *rest, **kwargs):  # type: ignore[no-untyped-def]
        if args and os.path.basename(args[0]) == "git":  # agentflow runs git by its absolute path (git.GIT)
            started.append(list(args))
        return real(args, *rest, **kwargs)

    monkeypatch.setattr(agentflow_git.subprocess, "run", run)
    return started


def test_a_throwaway_checkout_is_the_worktree_git_worktree_add_makes_in_one_git_process(repo, monkeypatch):
    (repo / "src").mkdir()
    (repo / "src" / "run.sh").write_text("echo hi\n")
    (repo / "src" / "run.sh").chmod(0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a script")
    commit = git(repo, "rev-parse", "HEAD")
    r = Repo(repo, gitpython=False)
    add_detached_worktree(r, commit, repo / WORKTREES_DIR / "warm-up")  # the per-process lookups, once
    remove_worktree(r, repo / WORKTREES_DIR / "warm-up")
    ours, theirs = repo / WORKTREES_DIR / "checks-c1-rnew", repo / WORKTREES_DIR / "checks-c1-rgit"
    started = _git_processes(monkeypatch)
    add_detached_worktree(r, commit, ours)
    assert [argv[argv.index("reset") :] for argv in started] == [
        ["reset", "--hard", "--quiet", "--no-recurse-submodules"]
    ]
    git(repo, "worktree", "add", "--quiet", "--detach", str(theirs), commit)

    listed = git(repo, "worktree", "list", "--porcelain").split("\n\n")
    assert f"worktree {ours.resolve()}\nHEAD {commit}\ndetached" in listed
    for path in (ours, theirs):
        assert git(path, "rev-parse", "HEAD") == commit
        assert git(path, "status", "--porcelain", "--ignored") == ""
        assert git(path, "rev-parse", "--path-format=absolute", "--git-common-dir") == str((repo / ".git").resolve())
        assert (path / "src" / "run.sh").stat().st_mode & 0o111  # modes as committed
    assert sorted(p.relative_to(ours).as_posix() for p in ours.rglob("*") if p.is_file()) == sorted(
        p.relative_to(theirs).as_posix() for p in theirs.rglob("*") if p.is_file()
    )
    assert (ours / ".git").read_text() == f"gitdir: {(repo / '.git' / 'worktrees' / ours.name).resolve()}\n"

    started.clear()
    remove_worktree(r, ours)
    assert started == []  # deleted as `git worktree remove --force` deletes it, without a git process
    assert not ours.exists() and not (repo / ".git" / "worktrees" / ours.name).exists()
    assert _registered(repo) == {theirs.resolve()}


def test_removing_a_checkout_never_follows_what_its_commands_wrote_in_it(repo, tmp_path):
    """A check may rewrite the checkout's ``.git`` file to name another folder, or make its own
    folders read-only: the removal reads the registration from the git dir and deletes only the checkout."""
    r = Repo(repo, gitpython=False)
    path = add_detached_worktree(r, git(repo, "rev-parse", "HEAD"), repo / WORKTREES_DIR / "checks-c1-rx")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("the user's\n")
    (path / ".git").write_text(f"gitdir: {elsewhere}\n")
    (path / "locked-up").mkdir()
    (path / "locked-up" / "f").write_text("x")
    (path / "locked-up").chmod(0o500)
    remove_worktree(r, path)
    assert not path.exists()
    assert (elsewhere / "keep.txt").read_text() == "the user's\n"
    assert _registered(repo) == set()


def test_a_checkout_added_where_a_killed_run_left_its_registration(repo):
    """Its folder deleted, its registration left in .git/worktrees: the next add at that path
    replaces it, as a prune would, and one registration remains."""
    base = git(repo, "rev-parse", "HEAD")
    r = Repo(repo, gitpython=False)
    path = add_detached_worktree(r, base, repo / WORKTREES_DIR / "verifier-c1-rk")
    for child in sorted(path.rglob("*"), reverse=True):
        child.unlink() if child.is_file() else child.rmdir()
    path.rmdir()
    add_detached_worktree(r, base, path)
    assert (path / "README.md").read_text() == "# sample\n"
    assert _registered(repo) == {path.resolve()}
    assert sorted(p.name for p in (repo / ".git" / "worktrees").iterdir()) == [path.name]
