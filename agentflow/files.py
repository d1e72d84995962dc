"""Reading the files a user gave and making the folders agentflow keeps its state in: every
problem is one line (exit 2) naming the path and the fix, never a traceback (light imports: gate start-up)."""

from __future__ import annotations

import os
from pathlib import Path

from agentflow.errors import AgentflowError, UsageError


def lstat_entries(folder: str | Path) -> list[tuple[os.DirEntry[str], os.stat_result]]:
    """The entries of ``folder`` with their own status (links not followed), for the walks that look
    for what to hide or clear; an entry gone meanwhile is left out. ``OSError`` (``PermissionError``
    for a folder that may not be listed) when ``folder`` cannot be read."""
    found = []
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                found.append((entry, entry.stat(follow_symlinks=False)))
            except OSError:
                continue
    return found


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


def check_report_file(path: Path) -> None:
    """``UsageError`` (exit 2) now, creating nothing, for what ``write_report_file`` would refuse:
    ``agentflow verify`` checks its report paths before the verifier runs (found after it, the
    verification was paid for and its reports lost). A folder at ``path``, a file where a folder
    must be, a folder that cannot be written, and inside the checkout a link or a FIFO or device.
    ``write_report_file`` checks again when it writes (the paths may change meanwhile)."""
    import stat

    absolute = Path(os.path.abspath(path))
    root = checkout_root(Path.cwd())
    folder = UsageError("is a folder, not a file", where=path, fix=f"name a file, e.g. {Path(path) / 'report.md'}")
    if absolute == root:
        raise folder
    inside = absolute.is_relative_to(root)
    link_fix = "write the report elsewhere or remove the link; a change cannot decide where agentflow writes"
    current = root if inside else Path(absolute.anchor)
    for part in absolute.relative_to(current).parts:
        parent, current = current, current / part
        shown = current.relative_to(root) if inside else current
        try:
            info = os.lstat(current) if inside else os.stat(current)
        except FileNotFoundError:  # made when written: the last folder there must take it
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UsageError(
                    "cannot write into the folder: permission denied",
                    where=parent,
                    fix=f"make {parent} a writable folder (chmod u+w), or write the report elsewhere",
                ) from None
            return
        except OSError as exc:
            raise UsageError(f"cannot open: {exc.strerror or exc}", where=shown) from None
        if inside and stat.S_ISLNK(info.st_mode):
            raise UsageError("is a symbolic link: refused", where=shown, fix=link_fix)
        if current != absolute:
            if not stat.S_ISDIR(info.st_mode):
                raise UsageError(
                    "is not a folder", where=shown, fix=f"name a report path whose folders are folders, not {shown}"
                )
            continue
        if stat.S_ISDIR(info.st_mode):
            raise folder
        if inside and not stat.S_ISREG(info.st_mode):
            raise UsageError("is not a regular file: refused", where=path, fix=link_fix)
        if not os.access(current, os.W_OK):
            raise UsageError(
                "cannot write: permission denied", where=path, fix="make the file writable or name another"
            )


def write_report_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (folders made as needed) as a regular file, never through a symbolic
    link, into a FIFO or over a device: CI writes reports into the change's checkout, where a committed
    ``agentflow.sarif -> /any/host/file`` (or a linked folder ``reports/``) made agentflow write its report
    wherever the link pointed. Inside the checkout agentflow runs in (the nearest folder above the
    working directory that holds ``.git``, else the working directory), every component of ``path`` is
    opened without following a link and only a regular file is written; a path elsewhere (``/tmp/...``,
    ``/dev/stdout``) is the user's and written as it is. ``UsageError`` (exit 2) names the path."""
    import errno
    import os
    import stat

    absolute = Path(os.path.abspath(path))  # ``..`` resolved by name: what is opened below is never a link
    root = checkout_root(Path.cwd())
    folder = UsageError("is a folder, not a file", where=path, fix=f"name a file, e.g. {Path(path) / 'report.md'}")
    if absolute == root:  # `-o .`: the file opened below would have been the folder's own name inside it
        raise folder
    if not absolute.is_relative_to(root):
        make_dir(absolute.parent)
        try:
            absolute.write_text(text, encoding="utf-8")
        except IsADirectoryError:
            raise folder from None
        except OSError as exc:
            raise UsageError(f"cannot write: {exc.strerror or exc}", where=path) from None
        return
    fix = "write the report elsewhere or remove the link; a change cannot decide where agentflow writes"
    folders = absolute.relative_to(root).parts[:-1]
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for index, part in enumerate(folders):
            shown = Path(*folders[: index + 1])
            try:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fds[-1]))
                continue
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UsageError("is a symbolic link or not a folder: refused", where=shown, fix=fix) from None
                raise UsageError(f"cannot open: {exc.strerror or exc}", where=shown) from None
            try:
                os.mkdir(part, dir_fd=fds[-1])
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=fds[-1]))
            except OSError as exc:
                raise UsageError(f"cannot make the folder: {exc.strerror or exc}", where=shown) from None
        try:
            fd = os.open(absolute.name, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | nofollow, 0o666, dir_fd=fds[-1])
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UsageError("is a symbolic link: refused", where=path, fix=fix) from None
            if exc.errno == errno.EISDIR:
                raise folder from None
            if exc.errno == errno.ENXIO:
                raise UsageError("is not a regular file: refused", where=path, fix=fix) from None
            raise UsageError(f"cannot write: {exc.strerror or exc}", where=path) from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UsageError("is not a regular file: refused", where=path, fix=fix)
            os.set_blocking(fd, True)
            handle.truncate(0)
            handle.write(text)
    finally:
        for descriptor in fds:
            os.close(descriptor)


def checkout_root(start: Path) -> Path:
    """The nearest folder from ``start`` up that holds ``.git`` (the checkout), else ``start``."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start
