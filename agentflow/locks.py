"""Locks between agentflow processes: one build of a plan at a time.

A plan's lock is an exclusive ``flock`` on ``.agentflow/locks/<branch>.lock``. The kernel drops it
when the holder dies, so a killed build never blocks the next one; ``held`` lets the git integrity
check tell a concurrent build's branch moves from tampering.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from agentflow.errors import UsageError
from agentflow.files import check_state_dir, make_dir
from agentflow.git import STATE_DIR


def lock_path(root: Path, branch: str) -> Path:
    return root / STATE_DIR / "locks" / (branch.replace("/", "--") + ".lock")


@contextlib.contextmanager
def plan_lock(root: Path, branch: str) -> Iterator[None]:
    """One build of a plan at a time across processes: an exclusive ``flock`` on
    ``.agentflow/locks/<branch>.lock`` for as long as the run works in the plan's worktree.

    The kernel drops the lock when the holder dies, so a killed build never blocks the next one.
    """
    path = lock_path(root, branch)
    make_dir(path.parent)
    try:
        handle = open(path, "a+")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise UsageError(
            f"cannot create the plan's lock: {exc.strerror or exc}",
            where=path,
            fix=f"make {root / STATE_DIR} writable (chmod u+w), or run agentflow as its owner",
        ) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another agentflow process"
            raise UsageError(
                f"{branch} is being built right now ({holder}); a second build would share its worktree",
                fix="wait for it to end, or stop it (Ctrl-C) and `agentflow build --resume RUN`",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def held(root: Path, branch: str) -> bool:
    """True while some build (another process, or another run of this one) holds ``branch``'s lock."""
    path = lock_path(root, branch)
    if not path.exists():
        return False
    with open(path) as handle:  # read-only: flock needs no write access (`clean` in a read-only .agentflow/)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


class GitLock:
    """Held around agentflow's short git writes (worktrees, commits, notes, integrity snapshots) in
    one repository: ``with GIT_LOCK(root):``. A thread lock per repository for ``-j`` plus an
    ``flock`` on ``.agentflow/locks/git.lock`` that serialises the agentflow processes working on it.

    Per repository, not per machine: one lock in the temporary folder made every agentflow process
    of the user wait for every other's git writes, in unrelated repositories too (parallel CI jobs,
    test suites), and a ``-j 4`` build spent more time waiting for it than it held it (#19 item 5).
    The folder is invisible inside the sandbox, so no agent can take the lock. When it cannot be
    created (a read-only ``.agentflow/``), the lock falls back to the per-user one in the
    temporary folder: still exclusive, only shared more widely.
    """

    def __init__(self) -> None:
        self._threads: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextlib.contextmanager
    def __call__(self, root: Path) -> Iterator[None]:
        key = Path(root).resolve()
        with self._guard:
            thread_lock = self._threads.setdefault(key, threading.Lock())
        with thread_lock, _open_lock(key) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def git_lock_path(root: Path) -> Path:
    return root / STATE_DIR / "locks" / "git.lock"


def worktrees_lock_path(root: Path) -> Path:
    return root / STATE_DIR / "locks" / "worktrees.lock"


@contextlib.contextmanager
def worktrees_lock(root: Path, *, exclusive: bool = False) -> Iterator[None]:
    """Around agentflow's ``git worktree`` commands in one repository: shared for ``add`` and
    ``remove`` (any number at once, across threads and processes), exclusive for ``prune``.

    Adds and removes no longer wait for ``GIT_LOCK`` (#19 item 5: the four adds of ``-j 4`` took turns
    under it, about a quarter of a second before the last run's first model call): git serialises
    what they share itself (the branch a ``-b`` add creates is a locked ref update, each worktree's
    folder under ``.git/worktrees`` is made with an exclusive ``mkdir``), and they write no ref an
    integrity snapshot compares (a new plan branch is its run's, claimed before the add). A
    ``prune`` is the one that could hurt a concurrent add: it drops registrations whose folder is
    missing, and an add's folder exists only once its checkout has begun, so prunes wait until no
    add is under way. Each use opens its own descriptor: ``flock`` then excludes threads of one
    process as it does processes. Falls back to a per-user lock in the temporary folder, like
    ``GIT_LOCK``, when ``.agentflow/`` cannot be written."""
    with _open_lock(Path(root).resolve(), "worktrees") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _open_lock(root: Path, name: str = "git") -> IO[str]:
    path = root / STATE_DIR / "locks" / f"{name}.lock"
    check_state_dir(path.parent)  # a committed link there would be opened (and created) wherever it points
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a+")  # noqa: SIM115 - closed by the caller's with
    except OSError:
        return open(Path(tempfile.gettempdir()) / f"agentflow-{name}-{os.getuid()}.lock", "a+")  # noqa: SIM115


GIT_LOCK = GitLock()
