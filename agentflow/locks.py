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

from agentflow.errors import UsageError
from agentflow.files import make_dir
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
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


class GitLock:
    """Held around agentflow's short git writes (worktrees, commits, notes, integrity snapshots):
    a thread lock for ``-j`` plus an ``flock`` that serialises separate agentflow processes."""

    def __init__(self) -> None:
        self._thread = threading.Lock()
        self._handle: object | None = None

    def __enter__(self) -> GitLock:
        self._thread.acquire()
        try:
            path = Path(tempfile.gettempdir()) / f"agentflow-git-{os.getuid()}.lock"
            handle = open(path, "a+")  # noqa: SIM115 - held until __exit__
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._handle = handle
        except BaseException:
            self._thread.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        handle, self._handle = self._handle, None
        try:
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)  # type: ignore[arg-type]
                handle.close()  # type: ignore[attr-defined]
        finally:
            self._thread.release()
