"""Reading the files a user gave and making the folders agentflow keeps its state in: every
problem is one line (exit 2) naming the path and the fix, never a traceback (light imports: gate start-up)."""

from __future__ import annotations

from pathlib import Path

from agentflow.errors import AgentflowError, UsageError


def read_text_file(
    path: Path, *, where: str | Path | None = None, error: type[AgentflowError] = UsageError, fix: str | None = None
) -> str:
    """The UTF-8 text of ``path``; any problem is ``error`` naming ``where``: not UTF-8, a directory,
    missing (``fix`` then says what to do), unreadable."""
    where = where if where is not None else path
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error("not UTF-8 text", where=where, fix="save the file as UTF-8") from None
    except IsADirectoryError:
        raise error("is a directory, not a file", where=where, fix=fix or "name a file") from None
    except FileNotFoundError:
        raise error("no such file", where=where, fix=fix) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", where=where, fix=fix) from None


STATE_FOLDER = ".agentflow"


def check_state_dir(path: Path) -> None:
    """``UsageError`` when the state folder ``path`` lies in (``.agentflow`` or below), or what
    agentflow opens in it, is a symbolic link: ``.agentflow/`` is git-ignored, but a change can commit
    it, and a checkout of that change (CI's, a developer's) then has it before agentflow runs. Linked,
    agentflow put its ledger, locks and checkouts wherever the link pointed, and rewrote a lock file
    linked to a host file. Checked: the folder itself, its entries and their entries (the ledger and
    SQLite's -wal/-shm, ``locks/*``, ``worktrees/*``, ``cache/*``)."""
    parts = path.parts
    if STATE_FOLDER not in parts:
        return
    state = Path(*parts[: parts.index(STATE_FOLDER) + 1])
    suspects = [Path(*parts[:n]) for n in range(len(state.parts), len(parts) + 1)]
    if state.is_dir() and not state.is_symlink():
        for entry in state.iterdir():
            suspects.append(entry)
            if entry.is_dir() and not entry.is_symlink():
                suspects += list(entry.iterdir())
    for suspect in suspects:
        if suspect.is_symlink():
            raise UsageError(
                "is a symbolic link in agentflow's state folder (committed by a change?)",
                where=suspect,
                fix=f"remove it (`git rm -r --cached {STATE_FOLDER}` if it is tracked): {STATE_FOLDER}/ is local "
                "state, never a link and never committed",
            )


def make_dir(path: Path) -> Path:
    """``path`` and its parents as folders (``mkdir -p``); a folder that cannot be made (read-only
    parent, a file in the way) is a ``UsageError`` naming it. A state folder is checked first
    (``check_state_dir``)."""
    check_state_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (path, *path.parents) if p.exists()), path)
        raise UsageError(
            f"cannot create the folder: {exc.strerror or exc}",
            where=path,
            fix=f"make {blocker} a writable folder (chmod u+w), or run agentflow as its owner",
        ) from None
    return path
