"""The sandboxed tools agents call (DESIGN.md "Roles, tools, verdict").

Every path an agent names is relative to the worktree. Anything that would leave it (``..``,
absolute paths, symlinks resolving outside) or touch ``.git`` is refused with a tool error: the
model sees why and can try again; the session does not crash. ``run_command`` runs in the
worktree with a timeout that kills the whole process group, truncated output and an environment
without secrets. The verifier's commands cannot change what is being verified: the worktree is
restored after each one.

Terminal tools (``finish``, ``submit_verdict``) raise ``Submitted`` once their input is valid;
the session loop treats that as the end of the session.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import ValidationError

from agentflow.git import run_git
from agentflow.models.base import ToolSpec
from agentflow.paths import PRIVATE, PathRefused, confine, glob_match
from agentflow.sandbox import Sandbox

ToolRole = Literal["builder", "verifier"]
MAX_READ_CHARS = 100_000
MAX_EDIT_BYTES = 64 << 20  # edit_file reads the whole file: not one a command made 50 GB
MAX_OUTPUT_CHARS = 30_000
MAX_LISTED = 1_000
MAX_MATCHES = 200
MAX_SEARCH_BYTES = 2_000_000
MAX_SEARCH_TOTAL = 64_000_000  # text one search looks through; beyond it the search says it stopped
SEARCH_TIMEOUT = 30.0  # seconds one search may take (less when the session's time limit is nearer)
SEARCH_MEMORY = 2 << 30  # bytes of address space the search process may use
# search_files matches the model's regular expression in a process of its own: a pattern that
# backtracks catastrophically (``(a+)+$`` on a long line) or fills memory costs a tool error when the
# process is killed, instead of a hung orchestrator, where no session time limit can interrupt
# Python's ``re`` (tests/test_attacks_search_regex.py). It gets no environment and reads only stdin.
SEARCH_WORKER = r"""
import json, re, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (__MEMORY__, __MEMORY__))
except (ImportError, ValueError, OSError):
    pass
job = json.loads(sys.stdin.buffer.readline())
data = sys.stdin.buffer.read()
try:
    regex = re.compile(job["pattern"])
except (re.error, OverflowError, RecursionError, ValueError, MemoryError) as exc:
    sys.stdout.write(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    sys.exit(0)
found, limit, start = [], job["limit"], 0
for rel, size in job["files"]:
    text, start = data[start : start + size].decode("utf-8", errors="replace"), start + size
    for number, line in enumerate(text.splitlines(), start=1):
        if regex.search(line):
            found.append([rel, number, line[:300]])
            if len(found) >= limit:
                sys.stdout.write(json.dumps({"matches": found, "stopped": True}))
                sys.exit(0)
sys.stdout.write(json.dumps({"matches": found, "stopped": False}))
"""


class ToolError(Exception):
    """A refused or failed tool call; its message is returned to the model as a tool error."""


class Submitted(Exception):
    """A terminal tool was called with valid input; ``payload`` is that (normalised) input."""

    def __init__(self, tool: str, payload: dict[str, Any]):
        super().__init__(f"{tool} submitted")
        self.tool = tool
        self.payload = payload


@dataclass(frozen=True)
class ToolOutput:
    content: str
    is_error: bool = False


Handler = Callable[[dict[str, Any]], str]


@runtime_checkable
class ToolProvider(Protocol):
    """What a session needs from a toolbox (``Toolbox``, or e.g. the evaluator's query tools)."""

    def specs(self) -> list[ToolSpec]: ...

    def call(self, name: str, input: dict[str, Any]) -> ToolOutput: ...


@dataclass
class Tool:
    spec: ToolSpec
    handler: Handler


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


_STR = {"type": "string"}
PATH_PROP = {"type": "string", "description": "path relative to the repository root"}
GLOB_PROP = {
    "type": "string",
    "description": "glob relative to the repository root, e.g. src/**/*.py (* stays inside one folder, ** crosses)",
}

VERDICT_INPUT_SCHEMA: dict[str, Any] = _schema(
    {
        "decision": {"type": "string", "enum": ["approve", "request_changes", "reject"]},
        "summary": {"type": "string", "description": "one paragraph"},
        "criteria": {
            "type": "array",
            "items": _schema(
                {
                    "id": {"type": "string", "description": "acceptance criterion id, e.g. AC1"},
                    "status": {"type": "string", "enum": ["met", "unmet", "unclear"]},
                    "evidence": {"type": "string", "description": "file:line or check"},
                },
                ["id", "status", "evidence"],
            ),
        },
        "findings": {
            "type": "array",
            "items": _schema(
                {
                    "id": {"type": "string", "description": "stable across cycles, e.g. F1"},
                    "severity": {"type": "string", "enum": ["critical", "high", "medium", "low", "info"]},
                    "file": _STR,
                    "line": {"type": "integer"},
                    "pattern": {"type": "string", "description": "id of the pattern it violates"},
                    "message": {"type": "string", "description": "what is wrong"},
                    "suggestion": {"type": "string", "description": "how to fix"},
                },
                ["id", "severity", "message"],
            ),
        },
    },
    ["decision", "summary", "criteria", "findings"],
)

SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in [
        ToolSpec(
            name="read_file",
            description="Read a UTF-8 text file of the repository.",
            input_schema=_schema({"path": PATH_PROP}, ["path"]),
        ),
        ToolSpec(
            name="list_files",
            description="List files (not directories) under a folder, optionally filtered by a glob. Skips .git.",
            input_schema=_schema({"path": PATH_PROP, "glob": GLOB_PROP}, []),
        ),
        ToolSpec(
            name="search_files",
            description="Search text files for a Python regular expression; returns path:line: text. "
            "Skips .git and binary files.",
            input_schema=_schema(
                {"pattern": {"type": "string", "description": "regular expression"}, "glob": GLOB_PROP}, ["pattern"]
            ),
        ),
        ToolSpec(
            name="write_file",
            description="Create or overwrite a file (parent folders are created).",
            input_schema=_schema({"path": PATH_PROP, "content": _STR}, ["path", "content"]),
        ),
        ToolSpec(
            name="edit_file",
            description="Replace old_text by new_text in a file; old_text must occur exactly once.",
            input_schema=_schema(
                {"path": PATH_PROP, "old_text": _STR, "new_text": _STR}, ["path", "old_text", "new_text"]
            ),
        ),
        ToolSpec(
            name="run_command",
            description="Run a shell command (bash) in the repository root; returns the exit code and "
            "the combined output (truncated when long). Secrets are not in its environment.",
            input_schema=_schema({"command": _STR}, ["command"]),
        ),
        ToolSpec(
            name="finish",
            description="End the session: call this once the plan is implemented (agentflow commits your changes).",
            input_schema=_schema(
                {"summary": {"type": "string", "description": "what you changed and why"}}, ["summary"]
            ),
        ),
        ToolSpec(
            name="submit_verdict",
            description="End the verification with a structured verdict. List every finding still open; "
            "reuse the ids of findings from earlier cycles.",
            input_schema=VERDICT_INPUT_SCHEMA,
        ),
    ]
}

ROLE_TOOLS: dict[str, tuple[str, ...]] = {
    "builder": ("read_file", "list_files", "search_files", "write_file", "edit_file", "run_command", "finish"),
    "verifier": ("read_file", "list_files", "search_files", "run_command", "submit_verdict"),
}


def _arg(data: dict[str, Any], key: str, tool: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ToolError(f"{tool} needs the string argument {key!r}")
        return None
    if not isinstance(value, str):
        raise ToolError(f"{tool}: {key!r} must be a string, got {type(value).__name__}")
    return value


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and the tail (errors are usually at the end) and say what was cut."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 5, limit * 3 // 5
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters truncated ...]\n{text[-tail:]}"


def _search(source: str, files: list[tuple[str, bytes]], timeout: float) -> dict[str, Any]:
    """Match ``source`` against the lines of ``files`` in a separate process killed after ``timeout``
    seconds: ``{"matches": [[path, line number, text]], "stopped": bool}`` or ``{"error": why}``."""
    header = {"pattern": source, "files": [(rel, len(raw)) for rel, raw in files], "limit": MAX_MATCHES}
    job = b"".join([json.dumps(header).encode(), b"\n", *(raw for _, raw in files)])
    code = SEARCH_WORKER.replace("__MEMORY__", str(SEARCH_MEMORY))
    try:
        proc = subprocess.run([sys.executable, "-I", "-S", "-c", code], input=job, capture_output=True,
                              timeout=max(timeout, 0.1), env={}, cwd="/", check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ToolError(
            f"search_files: the search took longer than {timeout:.3g} s and was stopped (a pattern that "
            "backtracks, such as nested repetition (a+)+; simplify the pattern or narrow with glob)"
        ) from None
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = None
    if proc.returncode != 0 or not isinstance(result, dict):
        last = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise ToolError(f"search_files: the search failed ({last[:200]}); simplify the pattern or narrow with glob")
    return result


def _is_binary(data: bytes) -> bool:
    return b"\0" in data[:8192]


@dataclass(frozen=True)
class _RestorePoint:
    commit: str
    branch: str  # "" when HEAD was detached
    dirty: str | None  # `git stash create` of uncommitted changes present at the start
    untracked: set[str]


def _remove_new_file(root: Path, rel: str) -> None:
    """Delete a file a verifier command created, and the folders that only it filled."""
    path = root / rel
    if path.is_file() or path.is_symlink():
        path.unlink(missing_ok=True)
    parent = path.parent
    while parent != root and parent.is_relative_to(root):
        try:
            parent.rmdir()  # only succeeds when empty
        except OSError:
            break
        parent = parent.parent


@dataclass
class Toolbox:
    """The tools of one role, confined to ``root`` (the worktree).

    ``extra`` adds tools (e.g. the evaluator's queries); a handler may raise ``ToolError`` or
    ``Submitted`` like the built-in ones.
    """

    root: Path
    role: ToolRole
    command_timeout: float = 600.0
    max_output_chars: int = MAX_OUTPUT_CHARS
    extra: dict[str, Tool] = field(default_factory=dict)
    deadline: float | None = None  # time.monotonic() by which commands must end (the session's time limit)
    sandbox: Sandbox | None = None  # where run_command runs; None: the default (mode auto, fails closed)
    fresh_commit: str | None = None  # root is a checkout of it just made: the verifier's restore point, known
    _tools: dict[str, Tool] = field(init=False, repr=False)
    _restore_point: _RestorePoint | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if self.role not in ROLE_TOOLS:
            raise ValueError(f"no toolbox for role {self.role!r}")
        handlers: dict[str, Handler] = {
            "read_file": self._read_file,
            "list_files": self._list_files,
            "search_files": self._search_files,
            "write_file": self._write_file,
            "edit_file": self._edit_file,
            "run_command": self._run_command,
            "finish": self._finish,
            "submit_verdict": self._submit_verdict,
        }
        self._tools = {name: Tool(SPECS[name], handlers[name]) for name in ROLE_TOOLS[self.role]}
        self._tools.update(self.extra)
        if self.role == "verifier":
            self._restore_point = (
                _RestorePoint(self.fresh_commit, "", None, set()) if self.fresh_commit else self._git_state()
            )
        if self.sandbox is None and "run_command" in self._tools:
            self.sandbox = Sandbox.from_config()

    def specs(self) -> list[ToolSpec]:
        return [tool.spec for tool in self._tools.values()]

    def call(self, name: str, input: dict[str, Any]) -> ToolOutput:
        """Run one tool call. Refusals come back as ``is_error`` output; ``Submitted`` propagates."""
        tool = self._tools.get(name)
        if tool is None:
            return ToolOutput(f"unknown tool {name!r}; available: {', '.join(self._tools)}", is_error=True)
        if not isinstance(input, dict):
            return ToolOutput(f"{name}: input must be a JSON object", is_error=True)
        try:
            return ToolOutput(tool.handler(input))
        except ToolError as exc:
            return ToolOutput(str(exc), is_error=True)
        except (OSError, UnicodeError) as exc:
            return ToolOutput(f"{name}: {exc}", is_error=True)

    # -- path confinement ------------------------------------------------------------------------

    def resolve(self, path: str, tool: str = "tool") -> Path:
        """The absolute path ``path`` names inside the worktree, or ``ToolError`` (``paths.confine``)."""
        try:
            return confine(self.root, path)
        except PathRefused as exc:
            raise ToolError(f"{tool}: refused path {path!r}: {exc}") from None

    def _inside(self, resolved: Path) -> bool:
        """True when an already resolved path is in the worktree and not under .git."""
        return resolved.is_relative_to(self.root) and not PRIVATE.intersection(resolved.relative_to(self.root).parts)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _open(self, resolved: Path, flags: int, *, make_parents: bool = False) -> int:
        """A descriptor of ``resolved`` (inside the worktree) opened component by component from a
        descriptor of the root, with ``O_NOFOLLOW`` on every one: a symlink or folder swapped in
        after ``resolve`` checked the path (a race) is refused, never followed."""
        parts = resolved.relative_to(self.root).parts
        if not parts:
            raise ToolError(f"{self._rel(resolved) or '.'} is a folder")
        nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
        dirfd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | nofollow)
        try:
            for part in parts[:-1]:
                try:
                    fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=dirfd)
                except FileNotFoundError:
                    if not make_parents:
                        raise
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=dirfd)
                    fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=dirfd)
                os.close(dirfd)
                dirfd = fd
            return os.open(parts[-1], flags | nofollow | os.O_NONBLOCK, 0o666, dir_fd=dirfd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ToolError(
                    f"refused path {self._rel(resolved)!r}: a part of it is (or became) a symbolic link"
                ) from None
            raise
        finally:
            os.close(dirfd)

    def _read_bytes(self, resolved: Path, limit: int | None = None, first: int | None = None) -> bytes | None:
        """The content of a regular file (None when it is not one, or larger than ``limit``), or only its
        ``first`` bytes: a file a command made (``truncate -s 50G f``) was read whole into the
        orchestrator's memory by ``read_file`` (tests/test_attacks_output_flood.py)."""
        fd = self._open(resolved, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or (limit is not None and info.st_size > limit):
                return None
            os.set_blocking(handle.fileno(), True)
            return handle.read() if first is None else handle.read(first)

    def _write_bytes(self, resolved: Path, data: bytes, shown: str) -> None:
        """Replace the content of a regular file with one link (created when missing)."""
        try:
            fd = self._open(resolved, os.O_WRONLY)
        except FileNotFoundError:
            fd = self._open(resolved, os.O_WRONLY | os.O_CREAT | os.O_EXCL, make_parents=True)
        with os.fdopen(fd, "wb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ToolError(f"refused path {shown!r}: not a regular file")
            if info.st_nlink > 1:
                raise ToolError(
                    f"refused path {shown!r}: it has {info.st_nlink} hard links; writing it would change "
                    "another file too"
                )
            os.set_blocking(handle.fileno(), True)
            handle.truncate(0)
            handle.write(data)

    def _walk(self, start: Path) -> Iterator[Path]:
        """Files under ``start`` (sorted), skipping .git and anything that resolves outside."""
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if d not in PRIVATE)
            for name in sorted(filenames):
                if name in PRIVATE:
                    continue
                path = Path(dirpath) / name
                if path.is_symlink() and not self._inside(path.resolve()):
                    continue
                yield path

    # -- file tools ------------------------------------------------------------------------------

    def _read_file(self, data: dict[str, Any]) -> str:
        path = self.resolve(_arg(data, "path", "read_file") or "", "read_file")
        if not path.is_file():
            raise ToolError(f"read_file: no such file: {data['path']}")
        try:
            raw = self._read_bytes(path, first=4 * MAX_READ_CHARS + 1)  # enough for MAX_READ_CHARS characters
        except ToolError as exc:
            raise ToolError(f"read_file: {exc}") from None
        if raw is None:
            raise ToolError(f"read_file: {data['path']} is not a regular file")
        if _is_binary(raw):
            raise ToolError(f"read_file: {data['path']} is a binary file")
        text = raw.decode("utf-8", errors="replace")
        if len(raw) > 4 * MAX_READ_CHARS:
            return text[:MAX_READ_CHARS] + f"\n[... truncated: the file has more than {len(raw)} bytes]"
        if len(text) > MAX_READ_CHARS:
            return text[:MAX_READ_CHARS] + f"\n[... truncated: the file has {len(text)} characters]"
        return text

    def _list_files(self, data: dict[str, Any]) -> str:
        start = self.resolve(_arg(data, "path", "list_files", required=False) or "", "list_files")
        pattern = _arg(data, "glob", "list_files", required=False)
        if not start.is_dir():
            raise ToolError(f"list_files: not a folder: {data.get('path')}")
        paths = list(self._walk(start))
        if pattern:  # relative to the root, or to the listed folder
            paths = [p for p in paths if glob_match(self._rel(p), pattern) or glob_match(_under(p, start), pattern)]
        files = [self._rel(p) for p in paths]
        if not files:
            return "(no files)"
        more = len(files) - MAX_LISTED
        listing = "\n".join(files[:MAX_LISTED])
        return listing + (f"\n[... {more} more files; narrow with path or glob]" if more > 0 else "")

    def _search_files(self, data: dict[str, Any]) -> str:
        source = _arg(data, "pattern", "search_files") or ""
        pattern = _arg(data, "glob", "search_files", required=False)
        timeout = SEARCH_TIMEOUT
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                raise ToolError("search_files: not run, the session's time limit is reached")
        files: list[tuple[str, bytes]] = []
        total, cut = 0, False
        for path in self._walk(self.root):
            rel = self._rel(path)
            if pattern and not glob_match(rel, pattern):
                continue
            try:
                raw = self._read_bytes(path.resolve(), MAX_SEARCH_BYTES)
            except (OSError, ToolError):
                continue
            if raw is None or _is_binary(raw):
                continue
            if total + len(raw) > MAX_SEARCH_TOTAL:
                cut = True
                break
            total += len(raw)
            files.append((rel, raw))
        result = _search(source, files, timeout)
        if "error" in result:
            raise ToolError(f"search_files: invalid regular expression {source!r}: {result['error']}")
        matches = [f"{rel}:{number}: {line}" for rel, number, line in result["matches"]]
        if result["stopped"]:
            return "\n".join(matches) + f"\n[... stopped after {MAX_MATCHES} matches; narrow the search]"
        if cut:
            matches.append(f"[... stopped after {MAX_SEARCH_TOTAL // 1_000_000} MB of text; narrow with glob]")
        return "\n".join(matches) if matches else "(no matches)"

    def _write_file(self, data: dict[str, Any]) -> str:
        path = self.resolve(_arg(data, "path", "write_file") or "", "write_file")
        content = _arg(data, "content", "write_file") or ""
        if path == self.root or path.is_dir():
            raise ToolError(f"write_file: {data['path']} is a folder")
        try:
            self._write_bytes(path, content.encode("utf-8"), data["path"])
        except ToolError as exc:
            raise ToolError(f"write_file: {exc}") from None
        return f"wrote {len(content.encode())} bytes to {self._rel(path)}"

    def _edit_file(self, data: dict[str, Any]) -> str:
        path = self.resolve(_arg(data, "path", "edit_file") or "", "edit_file")
        old = _arg(data, "old_text", "edit_file") or ""
        new = _arg(data, "new_text", "edit_file")
        if not path.is_file():
            raise ToolError(f"edit_file: no such file: {data['path']}")
        if not old:
            raise ToolError("edit_file: old_text must not be empty (use write_file to create a file)")
        try:
            raw = self._read_bytes(path, MAX_EDIT_BYTES)
        except ToolError as exc:
            raise ToolError(f"edit_file: {exc}") from None
        if raw is None:
            raise ToolError(f"edit_file: {data['path']} is not a regular file of at most {MAX_EDIT_BYTES >> 20} MiB")
        text = raw.decode("utf-8", errors="replace")
        count = text.count(old)
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            raise ToolError(
                f"edit_file: old_text {where} in {data['path']}; it must occur exactly once "
                "(include more surrounding lines)"
            )
        try:
            self._write_bytes(path, text.replace(old, new or "", 1).encode("utf-8"), data["path"])
        except ToolError as exc:
            raise ToolError(f"edit_file: {exc}") from None
        return f"edited {self._rel(path)}"

    # -- commands --------------------------------------------------------------------------------

    def _run_command(self, data: dict[str, Any]) -> str:
        command = _arg(data, "command", "run_command") or ""
        if not command.strip():
            raise ToolError("run_command: empty command")
        timeout = self.command_timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                raise ToolError("run_command: not run, the session's time limit is reached")
        try:
            code, output, seconds = run_shell(command, self.root, timeout, sandbox=self.sandbox)
        finally:
            if self._restore_point is not None:
                self._restore()
        output = truncate(output, self.max_output_chars)
        if code is None:
            raise ToolError(f"run_command: timed out after {timeout:.3g} s (process group killed)\n{output}")
        return f"exit code {code} ({seconds:.1f} s)\n{output}"

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_git(args, self.root)  # no hooks, no fsmonitor, no secrets

    def _git_state(self) -> _RestorePoint | None:
        """What to restore after verifier commands; None outside a git worktree."""
        head = self._git("rev-parse", "--verify", "--quiet", "HEAD")
        if head.returncode != 0:
            return None
        return _RestorePoint(
            commit=head.stdout.strip(),
            branch=self._git("symbolic-ref", "--quiet", "HEAD").stdout.strip(),
            dirty=self._git("stash", "create").stdout.strip() or None,
            untracked=set(self._untracked()),
        )

    def _untracked(self) -> list[str]:
        out = self._git("ls-files", "-z", "--others", "--exclude-standard")
        return [p for p in out.stdout.split("\0") if p]

    def _restore(self) -> None:
        """Discard whatever a verifier command changed: edits, commits, checkouts, new files.

        Uncommitted changes present before the session are put back; files that were already
        untracked and ignored files (build caches) are left alone, so nothing of the user's is lost.
        """
        point = self._restore_point
        assert point is not None
        if self._git("symbolic-ref", "--quiet", "HEAD").stdout.strip() != point.branch:
            self._git("checkout", "-q", "-f", point.branch.removeprefix("refs/heads/") or point.commit)
        # A mixed reset then a checkout (not reset --hard): files the command committed that were
        # untracked before become untracked again instead of being deleted.
        self._git("reset", "-q", point.commit)
        self._git("checkout", "-q", "-f", "--", ".")
        if point.dirty:
            self._git("checkout", "-q", point.dirty, "--", ".")
            self._git("reset", "-q")
        for rel in sorted(set(self._untracked()) - point.untracked):
            if not PRIVATE.intersection(PurePosixPath(rel).parts):  # never agentflow's own state
                _remove_new_file(self.root, rel)

    # -- terminal tools --------------------------------------------------------------------------

    def _finish(self, data: dict[str, Any]) -> str:
        summary = _arg(data, "summary", "finish") or ""
        if not summary.strip():
            raise ToolError("finish: summary must say what you changed")
        raise Submitted("finish", {"summary": summary})

    def _submit_verdict(self, data: dict[str, Any]) -> str:
        from agentflow.verdict import Verdict

        try:
            verdict = Verdict.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}" for err in exc.errors()[:10]
            )
            raise ToolError(
                f"submit_verdict: invalid verdict ({problems}); fix it and call submit_verdict again"
            ) from None
        raise Submitted("submit_verdict", verdict.model_dump(mode="json", exclude_none=True))


def _under(path: Path, start: Path) -> str:
    return path.relative_to(start).as_posix()


def run_shell(
    command: str,
    cwd: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    sandbox: Sandbox | None = None,
    *,
    readable: Sequence[Path] = (),
    extra_env: Sequence[str] = (),
) -> tuple[int | None, str, float]:
    """Run ``command`` with bash inside ``sandbox``; (exit code or None on timeout, output, seconds).

    ``sandbox`` None is the default sandbox (mode auto: bwrap, or ``SandboxUnavailable``). Only
    ``cwd`` is writable, ``readable`` paths are bound in read-only. The environment is the
    sandbox's allowlist (plus the ``extra_env`` names) unless ``env`` is given. bwrap (or bash,
    with mode off) leads its own process group; on timeout the group is killed, and with bwrap
    the whole PID namespace dies with it, so no grandchild outlives the call.
    """
    sandbox = Sandbox.from_config() if sandbox is None else sandbox
    argv = sandbox.wrap(["bash", "-c", command], cwd, readable=readable)
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=sandbox.environment(extra=extra_env) if env is None else env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    kept = KeptOutput()
    try:
        code: int | None = proc.returncode if kept.read(proc, started + timeout) else None
        if code is None:
            _kill_group(proc)
            if not kept.read(proc, time.monotonic() + 5):  # a grandchild left the group and holds the pipe
                if proc.stdout:
                    proc.stdout.close()
                proc.wait()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        if proc.stdout and not proc.stdout.closed:
            proc.stdout.close()
    return code, kept.text(), time.monotonic() - started


KEPT_OUTPUT = 4 << 20  # bytes of a command's output kept at its start, and as many at its end


class KeptOutput:
    """A command's output as ``run_shell`` keeps it: the first and the last ``KEPT_OUTPUT`` bytes, and
    how many between them were dropped. Every caller reads only a tail (a check's report, the
    ``command`` backend's summary) or a truncated head and tail (``run_command``), but the whole output
    was held in memory: a check or a builder's command printing without end (``yes``) grew the
    orchestrator by gigabytes until the timeout, and the kernel's OOM killer picked it (or the
    developer's other processes; tests/test_attacks_output_flood.py)."""

    def __init__(self, limit: int = KEPT_OUTPUT):
        self.limit, self.head, self.tail, self.dropped = limit, bytearray(), bytearray(), 0

    def add(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > 2 * self.limit:  # trimmed now and then, not at every chunk
            cut = len(self.tail) - self.limit
            del self.tail[:cut]
            self.dropped += cut

    def read(self, proc: subprocess.Popen[bytes], deadline: float) -> bool:
        """Read ``proc``'s output until it ends and ``proc`` has exited (True), or until ``deadline`` (False)."""
        import selectors

        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if not selector.select(left):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                self.add(chunk)
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            return False
        return True

    def text(self) -> str:
        if len(self.tail) > self.limit:
            self.dropped += len(self.tail) - self.limit
            del self.tail[: len(self.tail) - self.limit]
        middle = f"\n[agentflow: {self.dropped} bytes of output not kept]\n".encode() if self.dropped else b""
        return bytes(self.head + middle + self.tail).decode("utf-8", errors="replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
