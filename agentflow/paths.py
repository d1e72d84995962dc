"""The one path policy and the one glob dialect of agentflow's agent tools.

Both the built-in file tools (``agentflow.tools.Toolbox``) and the claude-code backend's tool guard
(``agentflow.models.claude_code.ToolPolicy``) decide with :func:`confine`; plan scope
(``orchestration.context.in_scope``), ``list_files``/``search_files`` globs and Claude Code's
Glob/Grep patterns all match with :func:`glob_match`. A path one of them refuses, the other refuses
too; a glob means the same thing everywhere.

These checks are a courtesy to the model (a clear tool error instead of a failure): the boundary is
the OS sandbox (``agentflow.sandbox``) and the descriptor-based opens of the file tools.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path, PurePosixPath

PRIVATE = frozenset({".git", ".agentflow"})  # git's data and agentflow's own state (ledger, worktrees)


class PathRefused(ValueError):
    """Why a path is refused (the message is shown to the model after ``refused path 'x':``)."""


def confine(root: Path, value: str, *, absolute: bool = False) -> Path:
    """The resolved path ``value`` names inside ``root``, or ``PathRefused``.

    Relative paths are relative to ``root``; absolute ones are accepted only with ``absolute``
    (Claude Code's tools use absolute paths) and only when they lie inside ``root``. Refused: NUL
    bytes, ``~``, ``..``, anything in ``.git`` or ``.agentflow``, and symlinks resolving outside
    ``root`` or into those folders.
    """
    given, root = Path(os.path.abspath(root)), Path(os.path.realpath(root))
    if value in ("", "."):
        return root
    if "\0" in value:
        raise PathRefused("NUL byte")
    if value.startswith("~"):
        raise PathRefused("home-relative paths are outside the worktree")
    pure = PurePosixPath(value.replace("\\", "/"))
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", value):
        if not absolute:
            raise PathRefused("absolute paths are not allowed; use a path relative to the repository root")
        normal = Path(os.path.normpath(value))
        base = next((r for r in (root, given) if normal.is_relative_to(r)), None)
        if base is None:
            raise PathRefused(f"it is outside the worktree {root}")
        pure = PurePosixPath(normal.relative_to(base).as_posix())
    if ".." in pure.parts:
        raise PathRefused("'..' is not allowed")
    if off_limits := PRIVATE.intersection(pure.parts):
        raise PathRefused(f"{min(off_limits)} is off limits")
    resolved = Path(os.path.realpath(root / pure))
    if not resolved.is_relative_to(root):
        raise PathRefused("it resolves outside the worktree (symlink)")
    if PRIVATE.intersection(resolved.relative_to(root).parts):
        raise PathRefused("it resolves into .git or .agentflow")
    return resolved


def pattern_problem(value: str) -> str | None:
    """Why a glob pattern is refused (absolute, ``~``, ``..``), or None."""
    pure = PurePosixPath(value.replace("\\", "/"))
    if pure.is_absolute() or value.startswith("~"):
        return "patterns must be relative to the worktree"
    if ".." in pure.parts:
        return "'..' is not allowed"
    return None


@functools.lru_cache(maxsize=512)
def glob_regex(glob: str) -> re.Pattern[str]:
    """``**`` crosses folders (``**/`` also matches none), ``*`` and ``?`` stay inside one folder, a
    trailing ``/`` means the whole folder. ``src/*.py`` matches ``src/a.py``, not ``src/a/b.py``."""
    glob = glob.strip().removeprefix("./")
    if glob.endswith("/"):
        glob += "**"
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out + r"\Z")


def glob_match(path: str, glob: str) -> bool:
    """True when the relative ``path`` matches ``glob`` (see :func:`glob_regex`)."""
    return bool(glob_regex(glob).match(path))
