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


def make_dir(path: Path) -> Path:
    """``path`` and its parents as folders (``mkdir -p``); a folder that cannot be made (read-only
    parent, a file in the way) is a ``UsageError`` naming it."""
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
