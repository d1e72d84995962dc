"""Git for agentflow: repository discovery, refs, commits with trailers, notes, worktrees.

Two ways in, one policy. Reads of refs, commits, trees, note objects and identity go through
GitPython (``Repo.lib()``, imported on first use: it costs more than Python's own start-up, so
``--version``, ``gate`` and the git hooks never pay for it), whose persistent ``git cat-file
--batch`` serves many objects from one process. The plumbing GitPython has no API for (worktrees, ``merge-tree --write-tree``,
``patch-id``, note writes, commits with ``--trailer``) and the gate's fast path (``commit_info``,
``trees``, ``notes_map``: a handful of batched git processes) use the git command line through
``run_git``. Every failure becomes a ``GitError`` naming the command and the fix.

Repository config and hooks are content an agent could have written, so every git process agentflow
starts, GitPython's included, runs no hook and no fsmonitor (``SAFE_CONFIG``), shows diffs without
external diff drivers or textconv, reads objects as stored (no replace refs, no grafts:
``GIT_OBJECTS_AS_STORED``), and gets an environment without secrets (``git_env``; GitPython's
processes get the secret variables emptied, ``_secretless``).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from agentflow.errors import GitError
from agentflow.redact import is_secret_name


def absolute_path(value: str | None = None) -> str:
    """``PATH`` (this process's when None) without its relative entries (an empty one is the working
    directory, as are ``.`` and ``bin``), else the system's default: a program started by a bare name
    is looked up from the working directory of the process started, and agentflow starts ``git`` in a
    session's worktree and in a pull request's checkout, where the change decides what ``./git`` is
    (tests/test_attacks_path_entries.py)."""
    value = os.environ.get("PATH", os.defpath) if value is None else value
    return os.pathsep.join(entry for entry in value.split(os.pathsep) if os.path.isabs(entry)) or os.defpath


# once, when agentflow's git layer is imported (before GitPython's import runs `git version` in the
# working directory): no process agentflow starts finds a program through a relative entry
if "PATH" in os.environ and (_path := absolute_path()) != os.environ["PATH"]:
    os.environ["PATH"] = _path


def _work_tree_top(start: str) -> str | None:
    """The top of the git work tree holding ``start`` (the folder with a ``.git`` entry), or None."""
    folder = os.path.abspath(start)
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def trusted_path(value: str | None = None, cwd: str | None = None) -> str:
    """``absolute_path`` without the entries inside the work tree agentflow runs in (``cwd``'s, this
    process's working directory when None), for the programs agentflow itself starts (``git``,
    ``bwrap``): an absolute entry there (``$GITHUB_WORKSPACE/bin`` added to ``$GITHUB_PATH``, direnv's
    ``PATH_add bin``, ``$PWD/node_modules/.bin``) names a folder the checked-out change writes, and its
    ``bin/git`` ran outside the sandbox as agentflow's git, answering the gate's questions
    (tests/test_attacks_path_entries.py). Sandboxed commands keep ``PATH`` as it is."""
    try:
        top = _work_tree_top(os.getcwd() if cwd is None else cwd)
    except OSError:
        top = None  # no working directory: nothing to exclude
    entries = absolute_path(value).split(os.pathsep)
    if top is not None:
        inside = top.rstrip(os.sep) + os.sep
        entries = [e for e in entries if not (os.path.abspath(e) + os.sep).startswith(inside)]
    return os.pathsep.join(entries) or os.defpath


def _git_executable() -> str:
    import shutil

    return shutil.which("git", path=trusted_path(cwd=_STARTED_IN)) or "git"


try:
    _STARTED_IN: str | None = os.getcwd()  # the work tree agentflow runs in (every command's cwd)
except OSError:
    _STARTED_IN = None


# agentflow's own git, found once on the trusted entries; GitPython's too (its import-time `git version`
# included), unless the user named one
GIT = _git_executable()
os.environ.setdefault("GIT_PYTHON_GIT_EXECUTABLE", GIT)

if TYPE_CHECKING:
    import git as gitpython

NOTES_REF = "refs/notes/agentflow"
NOTE_WRITE_ATTEMPTS = 60
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
TRAILER_PLAN, TRAILER_RUN, TRAILER_CYCLE = "Agentflow-Plan", "Agentflow-Run", "Agentflow-Cycle"


STATE_DIR = Path(".agentflow")  # agentflow's local state in a checkout: ledger.db, worktrees/
WORKTREES_DIR = STATE_DIR / "worktrees"


# ``-c`` options on every git command agentflow runs: a planted hook or ``core.fsmonitor`` never runs
# inside agentflow's own git calls (where the orchestrator's environment would be theirs).
SAFE_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false")
# Diff output must not run commands either (``diff.external``, ``.gitattributes`` textconv drivers).
NO_DRIVERS = ("--no-ext-diff", "--no-textconv")
# Names that look secret to ``redact`` but that git needs: the identity (``GIT_AUTHOR_*`` matches
# "AUTH") and the ssh agent's socket for ``notes push``/``fetch``.
GIT_ENV_KEEP = frozenset(
    {
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
        "SSH_AUTH_SOCK",
    }
)


# What every git process agentflow starts reads objects and parents as they are stored: no replace
# ref (``refs/replace/<id>``, or wherever ``GIT_REPLACE_REF_BASE`` points) stands in for an object and
# no graft file gives a commit other parents. Object ids stay the same under both, so the verifier was
# shown a blob the tree does not hold, while the approval's tree matched every clone, where the real
# blob merges (tests/test_attacks_replace_refs.py). ``/dev/null/grafts`` can never exist.
GIT_OBJECTS_AS_STORED = {"GIT_NO_REPLACE_OBJECTS": "1", "GIT_GRAFT_FILE": "/dev/null/grafts"}

# Config that changes output agentflow parses, set to git's defaults whatever a config file says
# (the user's ``~/.gitconfig``, or a repository config written by a CI step before agentflow ran):
# ``color.ui=always`` put escapes before every ``diff --git`` header, so the diff budget saw one file
# and cut the verifier's diff as a prefix again, and ``diff.noprefix`` made it name no file
# (tests/test_attacks_git_output.py). Passed as ``GIT_CONFIG_COUNT`` entries after the caller's own.
FORCED_CONFIG = (
    ("color.ui", "never"),
    ("color.diff", "never"),
    ("diff.noprefix", "false"),
    ("diff.mnemonicPrefix", "false"),
    ("diff.srcPrefix", "a/"),
    ("diff.dstPrefix", "b/"),
    ("diff.relative", "false"),
    ("log.showSignature", "false"),
)


def forced_config_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``FORCED_CONFIG`` as ``GIT_CONFIG_*`` variables numbered after those ``environ`` holds
    (git's ``-c`` options reach a child that way too): later entries win, so these do."""
    try:
        count = max(0, int(environ.get("GIT_CONFIG_COUNT", "0") or 0))
    except ValueError:
        count = 0
    env = {"GIT_CONFIG_COUNT": str(count + len(FORCED_CONFIG))}
    for i, (key, value) in enumerate(FORCED_CONFIG, start=count):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


# ``git -c``'s variables: ``GIT_CONFIG_KEY_<n>`` names a setting, no secret, though "KEY" is in it (dropped,
# every git process failed with "missing config key" while ``GIT_CONFIG_COUNT`` was set)
_CONFIG_KEY = re.compile(r"GIT_CONFIG_KEY_\d+")


def _kept(name: str) -> bool:
    """Whether the variable ``name`` reaches agentflow's git processes (secret names do not)."""
    return name in GIT_ENV_KEEP or _CONFIG_KEY.fullmatch(name) is not None or not is_secret_name(name)


# the last environment ``git_env`` filtered: (a copy of os.environ's own mapping, the result)
_env_cache: list[tuple[dict[Any, Any], dict[str, str]]] = []


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of agentflow's git processes: this process's, without secrets.

    Filtered again only when the environment changed (a build starts hundreds of git processes, and
    matching every name against the secret patterns each time cost more than the compare)."""
    data = getattr(os.environ, "_data", None)  # os.environ's own mapping: equality is a cheap compare
    cached = _env_cache[-1] if _env_cache else None
    if data is not None and cached is not None and cached[0] == data:
        env = cached[1]
    else:
        env = {k: v for k, v in os.environ.items() if _kept(k)}
        env.update(GIT_OBJECTS_AS_STORED)
        env.update(forced_config_env(env))
        if "PATH" in env:  # what git itself starts by name (ssh for a fetch, a filter's program): not the change's
            env["PATH"] = trusted_path(env["PATH"], _STARTED_IN)
        if data is not None:
            _env_cache[:] = [(dict(data), env)]
    return {**env, **(extra or {})}


def git_argv(*args: str) -> list[str]:
    """``git`` with ``SAFE_CONFIG`` and ``args``: the argv of every git process agentflow starts."""
    return [GIT, *SAFE_CONFIG, *args]


def run_git(
    args: Sequence[str],
    cwd: Path | str,
    *,
    input: str | bytes | None = None,
    text: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``git args`` safely (no hooks, no fsmonitor, no secrets); never raises for git's exit code.

    Text is UTF-8, and bytes that are not (a Latin-1 file in a diff) become U+FFFD instead of an error."""
    if not text:
        return subprocess.run(git_argv(*args), cwd=cwd, capture_output=True, input=input, env=git_env(env), check=False)
    return subprocess.run(
        git_argv(*args),
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        input=input,
        env=git_env(env),
        check=False,
    )


_FULL_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def is_full_id(name: str) -> bool:
    """Whether ``name`` is a full object id (SHA-1 or SHA-256): it names immutable content, so
    what git answers about it can be kept; a name (HEAD, a branch) can move."""
    return _FULL_ID.fullmatch(name) is not None


_OBJECT_TYPES = frozenset({b"blob", b"tree", b"commit", b"tag"})


def cat_file_batch(root: Path | str, names: Sequence[str]) -> list[tuple[str, bytes] | None]:
    """Each of ``names``' object type and content, read in one ``git cat-file --batch``; None for a
    name that names no object (``<name> missing``), or when git's output ends early."""
    return [None if found is None else found[1:] for found in cat_file_objects(root, names)]


def cat_file_objects(root: Path | str, names: Sequence[str]) -> list[tuple[str, str, bytes] | None]:
    """``cat_file_batch`` with each object's id first: ``(id, type, content)``. A name holding a line
    break (git would read it as two names) names nothing."""
    if not names:
        return []
    asked = ["" if "\n" in name or "\0" in name else name for name in names]
    proc = run_git(["cat-file", "--batch"], root, input="".join(f"{name}\n" for name in asked).encode(), text=False)
    data, pos, found = proc.stdout, 0, []
    for _ in asked:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        header = data[pos:end].split()
        if len(header) != 3 or header[1] not in _OBJECT_TYPES or not header[2].isdigit():
            found.append(None)  # ``<name> missing`` or ``<name> ambiguous`` (the name may hold spaces)
            pos = end + 1
            continue
        size = int(header[2])
        found.append((header[0].decode(), header[1].decode(), data[end + 1 : end + 1 + size]))
        pos = end + 1 + size + 1
    return found + [None] * (len(names) - len(found))


def note_paths(commit: str) -> list[str]:
    """Every path git may keep ``commit``'s note at in a notes tree: flat, then fanned out by two hex
    digits a level, as deep as git goes (it picks the fanout by how full its notes trie is, which
    whoever can push notes decides: not only 2/38 and 2/2/36)."""
    return [
        "/".join([*(commit[2 * i : 2 * i + 2] for i in range(depth)), commit[2 * depth :]])
        for depth in range(max(1, len(commit) // 2))
    ]


def note_lines(blob: bytes) -> list[str]:
    """A note blob's lines, blank ones left out (one verdict a line). Split at "\n" only, as git
    does: a verdict's JSON may hold U+2028 or \r raw, which ``splitlines`` would cut in two."""
    return [line for line in blob.decode("utf-8", "replace").split("\n") if line.strip()]


def _secretless() -> dict[str, str]:
    """Secret variables of this process, emptied: GitPython's processes start from ``os.environ``,
    and an empty value in its ``env`` overrides is how a name is kept from reaching them."""
    return {k: "" for k in os.environ if not _kept(k)}


_SHORT_HEX = re.compile(r"[0-9a-fA-F]{4,39}")
# git commands that can show a diff, so could run an external diff driver or a textconv filter
_DIFF_COMMANDS = frozenset({"diff", "diff-files", "diff-index", "diff-tree", "log", "show", "format-patch"})


def _without_drivers(args: list[str]) -> list[str]:
    """``args`` (global options, subcommand, its arguments) with ``NO_DRIVERS`` after a diff command."""
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] == "-c" else 1
    if i < len(args) and args[i] in _DIFF_COMMANDS:
        return [*args[: i + 1], *NO_DRIVERS, *args[i + 1 :]]
    return args


@functools.cache
def _gitpython_repo_class() -> type[gitpython.Repo]:
    """GitPython's ``Repo`` with every git process it starts hardened as ``run_git``'s are.

    ``Git.execute`` is where every one of them starts: the persistent ``cat-file`` processes,
    ``rev-list`` for ``iter_commits``, ``repo.git.*`` calls and the raw argv some GitPython methods
    build themselves. There the ``SAFE_CONFIG`` options are put after the executable, ``NO_DRIVERS``
    after a diff command, and the secret variables emptied. (Importing GitPython runs one
    ``git version`` with this process's environment; it reads no repository and starts nothing.)
    """
    import git as gitpython  # about 100 ms: only for commands that read through GitPython

    class HardenedGit(gitpython.Git):
        def execute(self, command: Any, **kwargs: Any) -> Any:
            if isinstance(command, list | tuple) and command and command[0] == self.GIT_PYTHON_GIT_EXECUTABLE:
                command = [command[0], *SAFE_CONFIG, *_without_drivers(list(command[1:]))]
            forced = {**GIT_OBJECTS_AS_STORED, **forced_config_env(os.environ)}
            kwargs["env"] = {**_secretless(), **forced, **(kwargs.get("env") or {})}
            return super().execute(command, **kwargs)

    class HardenedRepo(gitpython.Repo):
        GitCommandWrapperType = HardenedGit

    return HardenedRepo


def _when(timestamp: int, tz_offset: int) -> datetime:
    """A GitPython commit time as an aware datetime (GitPython's offsets are seconds west of UTC)."""
    return datetime.fromtimestamp(timestamp, timezone(timedelta(seconds=-tz_offset)))


def _max_age(since: datetime) -> int:
    """``since`` as git's ``--max-age`` (whole seconds, rounded down: that second's commits count)."""
    return int(since.timestamp() // 1)


def _close_handles(handles: dict[int, Any], lock: threading.Lock) -> None:
    with lock:
        open_handles = list(handles.values())
        handles.clear()
    for handle in open_handles:
        handle.close()  # stops its cat-file processes and closes their pipes


# The trailer block of a commit message as git finds it (trailer.c: the last paragraph, all trailers,
# or a quarter of them with one git generates), so ``log_trailers`` reads what ``%(trailers)`` reads.
_GIT_GENERATED_TRAILERS = ("Signed-off-by: ", "(cherry picked from commit ")
_TRAILER_TOKEN = re.compile(r"[A-Za-z0-9-]+[ \t]*:")


def _trailer_separator(line: str) -> int:
    """Where a ``Token: value`` line's colon is (git's ``find_separator`` for ``:``), else -1."""
    match = _TRAILER_TOKEN.match(line)
    return match.end() - 1 if match else -1


def parse_trailers(message: str) -> dict[str, str]:
    """``Token: value`` trailers of a commit message, continuation lines unfolded (the last value of
    a token wins), as ``git log --format=%(trailers:only,unfold)`` reports them."""
    lines = message.splitlines()
    while lines and (not lines[-1].strip() or lines[-1].startswith("#")):
        lines.pop()  # git ignores trailing blank and comment lines
    title_end = 0
    while title_end < len(lines) and (lines[title_end].startswith("#") or lines[title_end].strip()):
        title_end += 1  # the first paragraph is the title, never trailers
    start, trailers, non_trailers, continuations, recognized = None, 0, 0, 0, False
    for index in range(len(lines) - 1, title_end - 1, -1):
        line = lines[index]
        if line.startswith("#"):
            non_trailers, continuations = non_trailers + continuations, 0
            continue
        if not line.strip():
            non_trailers += continuations
            if (recognized and trailers * 3 >= non_trailers) or (trailers and not non_trailers):
                start = index + 1
            break
        if line.startswith(_GIT_GENERATED_TRAILERS):
            trailers, continuations, recognized = trailers + 1, 0, True
        elif _trailer_separator(line) >= 1:
            trailers, continuations = trailers + 1, 0
        elif line[0].isspace():
            continuations += 1
        else:
            non_trailers, continuations = non_trailers + 1 + continuations, 0
    result: dict[str, str] = {}
    last: str | None = None
    for line in lines[start:] if start is not None else []:
        if line.startswith("#"):
            continue
        if line[0].isspace() and last is not None:
            result[last] = f"{result[last]} {line.strip()}".strip()
            continue
        colon = _trailer_separator(line)
        last = line[:colon].strip() if colon >= 1 else None
        if last is not None:
            result[last] = line[colon + 1 :].strip()
    return result


class DiffStat(NamedTuple):  # NamedTuples, not frozen dataclasses: every command imports this module (#19)
    files: int = 0
    insertions: int = 0
    deletions: int = 0

    def __str__(self) -> str:
        return f"{self.files} files changed, +{self.insertions} -{self.deletions}"


class TrailerCommit(NamedTuple):
    """A commit with agentflow trailers (``Repo.log_trailers``)."""

    commit: str
    committed: datetime
    authored: datetime
    trailers: dict[str, str]


def _trailer_commits(out: str) -> list[TrailerCommit]:
    """The commits with agentflow trailers in ``Repo.start_log_trailers``'s ``git log`` output."""
    commits: list[TrailerCommit] = []
    for record in out.split("\0"):
        header, _, message = record.partition("\n")
        fields = header.split(" ")
        if len(fields) != 3 or not is_full_id(fields[0]):
            continue  # the empty string after the last record (or a message holding a NUL)
        try:
            committed, authored = datetime.fromisoformat(fields[1]), datetime.fromisoformat(fields[2])
        except ValueError:
            continue
        trailers = parse_trailers(message)
        if any(key.startswith("Agentflow-") for key in trailers):
            commits.append(TrailerCommit(fields[0], committed, authored, trailers))
    return commits


class Repo:
    """A git repository (or one of its worktrees) rooted at ``root``.

    ``lib()`` is this thread's GitPython repository, opened on first use; ``close()`` (or leaving a
    ``with Repo(...)`` block, or the object being collected) stops the ``cat-file`` processes of
    every thread's. GitPython's persistent processes are not thread-safe, so threads never share one.

    ``gitpython=False``: the reads of refs, trees and notes (``rev``, ``tree``, ``has_commits``,
    ``branch_exists``, ``base_tree``, ``notes``) ask the git command line instead, one process each.
    Build and verify runs read a handful of objects per step: for them GitPython's import (0.3-0.8 s
    of CPU before the first model call) and two ``cat-file`` processes per thread and repository
    cost far more than they save (#19 item 5).
    """

    def __init__(self, root: Path, *, gitpython: bool = True):
        self.root = root
        self.gitpython = gitpython
        self._handles: dict[int, Any] = {}
        self._handles_lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the GitPython processes of every thread (the next ``lib()`` opens a new one)."""
        _close_handles(self._handles, self._handles_lock)

    def lib(self) -> gitpython.Repo:
        """This thread's GitPython ``Repo`` (hardened: ``_gitpython_repo_class``), opened on first use."""
        ident = threading.get_ident()  # unique among live threads: a reused id means the old one ended
        handle = self._handles.get(ident)
        if handle is None:
            handle = _gitpython_repo_class()(self.root)
            with self._handles_lock:
                self._handles[ident] = handle
                if self._finalizer is None:  # closes whatever is open when this object goes, or at exit
                    self._finalizer = weakref.finalize(self, _close_handles, self._handles, self._handles_lock)
        return handle

    def _object(self, name: str, kind: str = "commit") -> Any | None:
        """The GitPython object ``name`` names, peeled to ``kind``; None when it names none (or only
        git's own parser understands it, or reads go by the command line: the callers then ask git)."""
        if not self.gitpython or not name or name.startswith("-") or _SHORT_HEX.fullmatch(name):
            return None  # an abbreviated id that is also a ref name: git prefers the ref, GitPython the id
        import git as gitpython
        from gitdb.exc import ODBError

        try:
            return self.lib().rev_parse(f"{name}^{{{kind}}}")
        except (ValueError, LookupError, TypeError, AttributeError, RuntimeError, gitpython.GitError, ODBError):
            return None  # RuntimeError: NotImplementedError for @{...} forms it lacks

    def _peeled(self, name: str, kind: str) -> str | None:
        """The id of the ``kind`` object ``name`` names, from ``git rev-parse``; None when none."""
        if not name or name.startswith("-"):
            return None
        out = run_git(["rev-parse", "--verify", "--quiet", f"{name}^{{{kind}}}"], self.root)
        return (out.stdout.strip() or None) if out.returncode == 0 else None

    @classmethod
    def find(cls, path: Path | str = ".") -> Repo:
        """The repository at ``path``. Inside one of agentflow's own plan worktrees
        (``.agentflow/worktrees/*``) that is the main checkout, whose ledger records the runs."""
        path = Path(path).resolve()
        try:
            out = run_git(["rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir"], path)
        except (FileNotFoundError, NotADirectoryError):
            raise GitError("git is not installed or the directory does not exist", where=path) from None
        if out.returncode != 0:
            raise GitError(
                "not a git repository", where=path, fix="run agentflow inside a git repository, or `git init` one"
            )
        top, common = (Path(line) for line in out.stdout.splitlines()[:2])
        main = common.parent if common.name == ".git" else None
        if main is not None and top != main and top.is_relative_to(main / WORKTREES_DIR):
            return cls(main)
        return cls(top)

    def git(self, *args: str, check: bool = True, input: str | None = None, env: dict[str, str] | None = None) -> str:
        """Run ``git args`` in this repository; returns stdout without the trailing newline."""
        proc = run_git(args, self.root, input=input, env=env)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise GitError(
                f"`git {' '.join(args)}` failed: {detail[-1] if detail else proc.returncode}", where=self.root
            )
        return proc.stdout.rstrip("\n")

    def ok(self, *args: str, input: str | None = None) -> bool:
        return run_git(args, self.root, input=input).returncode == 0

    # -- refs and objects ------------------------------------------------------------------------

    def rev(self, ref: str) -> str:
        """The commit id ``ref`` names; GitError (exit 2) when it names none.

        GitPython resolves names, ids and ``~``/``^`` suffixes from the refs and its ``cat-file``;
        what its parser does not know (``@{upstream}``, ``:/text``) goes to ``git rev-parse``."""
        found = self._object(ref)
        if found is not None:
            return found.hexsha
        out = run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], self.root)
        if out.returncode != 0 or ref.startswith("-"):
            raise GitError(f"unknown revision {ref!r}", where=self.root, fix="name an existing branch, tag or commit")
        return out.stdout.strip()

    def commit_info(self, ref: str) -> tuple[str, str, list[str]]:
        """``(commit, tree, parents)`` of the commit ``ref`` names, in one git process; GitError (exit 2) if none."""
        out = run_git(
            ["show", "-s", "--no-show-signature", "--format=%H%n%T%n%P", f"{ref}^{{commit}}", "--"], self.root
        )
        lines = out.stdout.splitlines()
        if out.returncode != 0 or len(lines) < 2 or ref.startswith("-"):
            raise GitError(f"unknown revision {ref!r}", where=self.root, fix="name an existing branch, tag or commit")
        return lines[0], lines[1], lines[2].split() if len(lines) > 2 else []

    def tree(self, ref: str) -> str:
        if not self.gitpython:
            return self._peeled(ref, "tree") or self.git("rev-parse", f"{self.rev(ref)}^{{tree}}")
        commit = self._object(ref)
        return commit.tree.hexsha if commit is not None else self.git("rev-parse", f"{self.rev(ref)}^{{tree}}")

    def has_commits(self) -> bool:
        if not self.gitpython:
            return self._peeled("HEAD", "commit") is not None
        return self._object("HEAD") is not None

    def current_branch(self) -> str | None:
        out = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return out or None

    def branch_exists(self, name: str) -> bool:
        if not self.gitpython:
            return self._peeled(f"refs/heads/{name}", "commit") is not None
        import git as gitpython

        try:
            return gitpython.Head(self.lib(), f"refs/heads/{name}").is_valid()
        except (ValueError, OSError):
            return False

    def is_dirty(self, untracked: bool = False) -> bool:
        # --ignore-submodules=all: git status would run `git status` in every submodule with a .git,
        # which runs that repository's own config's commands (a builder's filter.x.clean; docs/security.md)
        args = ["status", "--porcelain", "--ignore-submodules=all"] + ([] if untracked else ["--untracked-files=no"])
        return bool(self.git(*args))

    def merge_base(self, a: str, b: str) -> str:
        return self.git("merge-base", a, b)

    def change_base(self, commit: str, target: str | None) -> str | None:
        """Where ``commit``'s change starts (what an approval is bound to): its merge base with
        ``target``, or its first parent when it is already part of ``target`` (or there is no
        target). None for a root commit (its base is the empty tree)."""
        if target and self.ok("rev-parse", "--verify", "--quiet", f"{target}^{{commit}}"):
            fork = self.git("merge-base", commit, target, check=False)
            if fork and fork != commit:
                return fork
        parent = self.git("rev-parse", "--verify", "--quiet", f"{commit}^1", check=False)
        return parent or None

    def base_tree(self, base: str | None) -> str:
        """The tree a change based on ``base`` starts from (the empty tree for None)."""
        if not base:
            return EMPTY_TREE
        if not self.gitpython:
            return self._peeled(base, "tree") or self.git("rev-parse", f"{base}^{{tree}}")
        tree = self._object(base, "tree")
        return tree.hexsha if tree is not None else self.git("rev-parse", f"{base}^{{tree}}")

    # -- diffs -----------------------------------------------------------------------------------

    def diff(self, base: str, head: str, *paths: str) -> str:
        return self.git("diff", *NO_DRIVERS, f"{base}..{head}", "--", *paths)

    def changed_files(self, base: str, head: str) -> list[str]:
        out = self.git("diff", "--name-only", f"{base}..{head}")
        return [line for line in out.splitlines() if line]

    def diffstat(self, base: str, head: str) -> DiffStat:
        out = self.git("diff", *NO_DRIVERS, "--numstat", f"{base}..{head}")
        files = ins = dels = 0
        for line in out.splitlines():
            added, removed, _ = line.split("\t", 2)
            files += 1
            ins += int(added) if added.isdigit() else 0
            dels += int(removed) if removed.isdigit() else 0
        return DiffStat(files, ins, dels)

    def diff_summary(self, base: str, head: str) -> tuple[list[str], DiffStat]:
        """``changed_files`` and ``diffstat`` of base..head from one ``git diff --numstat -z``. The
        names are git's own bytes, not the quoted form ``--name-only`` prints for unusual ones
        (``"caf\\303\\251.py"``), and a renamed file is named by its new path, as there."""
        fields = self.git("diff", *NO_DRIVERS, "--numstat", "-z", f"{base}..{head}").split("\0")
        files: list[str] = []
        ins = dels = 0
        i = 0
        while i < len(fields):
            record, i = fields[i], i + 1
            if not record:
                continue
            added, removed, path = record.split("\t", 2)
            if not path:  # a rename or copy: its old path and its new one follow
                path, i = (fields[i + 1] if i + 1 < len(fields) else ""), i + 2
            files.append(path)
            ins += int(added) if added.isdigit() else 0
            dels += int(removed) if removed.isdigit() else 0
        return files, DiffStat(len(files), ins, dels)

    def patch_id(self, base: str, head: str) -> str | None:
        """``git patch-id --verbatim`` of the change base..head: survives a clean rebase."""
        diff = self.git("diff", *NO_DRIVERS, "--binary", "--full-index", f"{base}..{head}")
        if not diff:
            return None
        out = run_git(["patch-id", "--verbatim"], self.root, input=diff + "\n")
        return out.stdout.split()[0] if out.stdout.strip() else None

    # -- commits ---------------------------------------------------------------------------------

    def commit_all(self, message: str, trailers: dict[str, str]) -> str | None:
        """Stage everything in the worktree and commit with trailers; None when nothing changed
        (asked only when ``git commit`` refuses: one git process less for every commit made).

        The trailers are the message's own last paragraph, written here: ``--trailer`` ran
        ``git interpret-trailers`` as a child of every commit, and appended to a last paragraph
        that already looked like trailers (a title's ``X: y`` line) instead of starting one. The
        commit runs no auto-maintenance (its child ``git maintenance run --auto``): a build runs
        it once, at its end (``auto_maintenance``), not in each run's step (#19 item 5)."""
        self.git("add", "-A")
        lines = "\n".join(f"{key}: {value}" for key, value in trailers.items())
        body = f"{message.rstrip()}\n\n{lines}\n" if lines else message
        commit = ["-c", "maintenance.auto=false", "commit", "--no-verify", "-q", "-F", "-"]
        proc = run_git(commit, self.root, input=body)
        if proc.returncode != 0:
            if self.ok("diff", "--cached", "--quiet"):
                return None
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise GitError(f"`git commit` failed: {detail[-1] if detail else proc.returncode}", where=self.root)
        return self.rev("HEAD")

    def auto_maintenance(self) -> None:
        """``git maintenance run --auto`` (what ``git commit`` runs after each commit), once: a build's
        commits skip it. Best effort, as git's own is."""
        run_git(["maintenance", "run", "--auto", "--quiet"], self.root)

    def trailers(self, commit: str) -> dict[str, str]:
        out = self.git("show", "-s", "--format=%(trailers:only,unfold)", commit)
        result: dict[str, str] = {}
        for line in out.splitlines():
            if ": " in line:
                key, value = line.split(": ", 1)
                result[key.strip()] = value.strip()
        return result

    # -- notes -----------------------------------------------------------------------------------

    def notes(self, commit: str, ref: str = NOTES_REF) -> list[str]:
        """The note lines attached to ``commit`` under ``ref`` (empty when none).

        Read as objects: the notes commit's tree, the note's path in it (flat or fanned out), its
        blob, all through GitPython's persistent ``cat-file --batch`` (``gitpython=False``: one
        ``git cat-file --batch`` for the three places the note can be)."""
        notes_ref = ref if ref.startswith("refs/") else f"refs/notes/{ref}"
        notes_tree = self._object(notes_ref, "tree")
        if notes_tree is None and self.gitpython:
            return []
        try:
            target = commit if is_full_id(commit) else self.rev(commit)
        except GitError:
            return []
        paths = note_paths(target)
        if notes_tree is None:
            return self._note_by_cli(notes_ref, paths)
        for path in paths:
            try:
                blob = notes_tree / path
            except KeyError:
                continue
            return note_lines(blob.data_stream.read())
        return []

    def _note_by_cli(self, notes_ref: str, paths: Sequence[str]) -> list[str]:
        """The first of ``paths`` in ``notes_ref``'s tree that is a blob, as note lines."""
        if notes_ref.startswith("-"):
            return []
        for found in cat_file_batch(self.root, [f"{notes_ref}:{p}" for p in paths]):
            if found is not None and found[0] == "blob":
                return note_lines(found[1])
        return []

    def append_note(
        self,
        commit: str,
        line: str,
        ref: str = NOTES_REF,
        *,
        present: Callable[[list[str]], bool] | None = None,
    ) -> str | None:
        """Append one line to ``commit``'s note without ever losing a line another process writes;
        returns the new notes commit (``append_notes`` of one line).

        Compare-and-swap on the notes ref: the new notes commit is built on a private ref from the
        value ``OLD`` just read, then one ``git update-ref --stdin`` transaction moves the ref only if
        nobody moved it meanwhile (and deletes the private ref); otherwise it is rebuilt on the newer
        value (bounded retries). Nothing is written, and None returned, when the note already holds
        ``line`` or ``present(lines)`` says an equivalent line is there (a resumed run writing its
        verdict again). Five git processes (were eight with the writer's ``record_own_write``), all
        under the git lock the ``-j`` runs share, at the same moment at the end of their runs.
        """
        return self.append_notes([(commit, line, present)], ref)

    def append_notes(
        self,
        lines: Sequence[tuple[str, str, Callable[[list[str]], bool] | None]],
        ref: str = NOTES_REF,
    ) -> str | None:
        """``append_note`` for several ``(commit, line, present)`` at once, in one notes commit: the
        ref and every note read in one ``cat-file --batch``, one ``git notes add`` per commit (git
        lays out the notes tree), one compare-and-swap. The verdicts of ``-j`` runs that end at the
        same moment are written together (``orchestration.run``), where each held the git lock for
        five git processes in turn. Returns the new notes commit, None when every line was there."""
        import random  # imported here: only note writes need them (start-up of `gate` and the hooks)
        import secrets

        scratch = f"refs/notes/agentflow-tmp/{os.getpid()}-{secrets.token_hex(4)}"
        made = False  # whether ``scratch`` may exist (the transaction that moves ``ref`` deletes it)
        commits = list(dict.fromkeys(commit for commit, _, _ in lines))
        try:
            for attempt in range(NOTE_WRITE_ATTEMPTS):
                old, existing = self._notes_head(ref, commits)
                bodies: dict[str, list[str]] = {}
                for commit, line, present in lines:
                    now = bodies.get(commit, existing[commit])
                    if line in now or (present is not None and present(now)):
                        continue
                    bodies[commit] = [*now, line]
                if not bodies:
                    return None
                if old:
                    self.git("update-ref", scratch, old)
                elif made:  # a failed attempt's: the notes commit must start from nothing
                    self.git("update-ref", "-d", scratch, check=False)
                made = True
                for commit, body in bodies.items():
                    text = "\n".join(body) + "\n"
                    self.git("notes", f"--ref={scratch}", "add", "-f", "-F", "-", commit, input=text)
                new = self.git("rev-parse", scratch)
                # one transaction: the ref moves only if nobody moved it since ``old`` was read (create:
                # only if it still does not exist), and the scratch ref goes with it; all or nothing
                moved = f"update {ref} {new} {old}" if old else f"create {ref} {new}"
                if self.ok(
                    "update-ref", "-m", "agentflow: verdict note", "--stdin", input=f"{moved}\ndelete {scratch}\n"
                ):
                    made = False
                    return new
                time.sleep(random.uniform(0.005, 0.05) * min(attempt + 1, 8))
        finally:
            if made:
                self.git("update-ref", "-d", scratch, check=False)
        raise GitError(
            f"could not update {ref}: other processes kept writing notes ({NOTE_WRITE_ATTEMPTS} attempts)",
            where=self.root,
            fix="re-run the command (nothing was lost)",
        )

    def _notes_head(self, ref: str, commits: Sequence[str]) -> tuple[str | None, dict[str, list[str]]]:
        """The commit ``ref`` points at (None: no notes yet) and each of ``commits``' note lines there,
        read in one ``git cat-file --batch`` (the ref and every place each note can be, ``note_paths``).
        Should the ref move between the names, the compare-and-swap of ``append_notes`` fails and it
        reads again."""
        targets = {commit: commit if is_full_id(commit) else self.rev(commit) for commit in commits}
        empty: dict[str, list[str]] = {commit: [] for commit in commits}
        if ref.startswith("-"):
            return None, empty
        names = [ref]
        spans: dict[str, tuple[int, int]] = {}
        for commit, target in targets.items():
            paths = note_paths(target)
            spans[commit] = (len(names), len(names) + len(paths))
            names += [f"{ref}:{p}" for p in paths]
        found = cat_file_objects(self.root, names)
        head = found[0][0] if found[0] is not None and found[0][1] == "commit" else None
        if head is None:
            return None, empty
        lines = dict(empty)
        for commit, (first, last) in spans.items():
            for note in found[first:last]:
                if note is not None and note[1] == "blob":
                    lines[commit] = note_lines(note[2])
                    break
        return head, lines

    def notes_map(self, ref: str = NOTES_REF) -> dict[str, list[str]]:
        """Every noted commit and its note lines under ``ref``, read in one ``git cat-file --batch``."""
        pairs = [line.split() for line in self.git("notes", f"--ref={ref}", "list", check=False).splitlines()]
        pairs = [p for p in pairs if len(p) == 2]
        if not pairs:
            return {}
        result = {}
        for (_blob, commit), found in zip(pairs, cat_file_batch(self.root, [b for b, _ in pairs]), strict=True):
            if found is not None:
                result[commit] = note_lines(found[1])
        return result

    def log_trailers(self, *revs: str, since: datetime | None = None) -> list[TrailerCommit]:
        """Commits in ``revs`` (default: every ref) that carry an ``Agentflow-*`` trailer, newest first.

        GitPython's ``iter_commits``: one ``git rev-list --grep`` names them, its persistent
        ``cat-file --batch`` reads them, and ``parse_trailers`` reads their trailers as git does
        (``gitpython=False``: one ``git log`` prints them, ``_log_trailers_by_cli``).

        ``since``: only commits committed then or later, and git stops walking a history at the
        first older commit (``--max-age``): a commit behind one whose committer clock was earlier
        than its parent's is not found. What reports on a period want, at the period's cost.
        """
        if not self.gitpython:
            return self._log_trailers_by_cli(revs, since)
        import git as gitpython

        commits: list[TrailerCommit] = []
        options: dict[str, Any] = {} if since is None else {"max_age": _max_age(since)}
        try:
            for c in self.lib().iter_commits(list(revs) or "--all", grep="^Agentflow-", **options):
                trailers = parse_trailers(c.message if isinstance(c.message, str) else c.message.decode())
                if any(key.startswith("Agentflow-") for key in trailers):
                    committed = _when(c.committed_date, c.committer_tz_offset)
                    commits.append(
                        TrailerCommit(c.hexsha, committed, _when(c.authored_date, c.author_tz_offset), trailers)
                    )
        except gitpython.GitCommandError:  # an unknown revision or no commits yet: nothing to report
            pass
        return commits

    def _log_trailers_by_cli(self, revs: Sequence[str], since: datetime | None) -> list[TrailerCommit]:
        """``log_trailers`` through one ``git log``: each commit's id, committer and author times
        (strict ISO 8601, with their offsets) and raw message, NUL-terminated (``-z``)."""
        return self.start_log_trailers(*revs, since=since)()

    def start_log_trailers(self, *revs: str, since: datetime | None = None) -> Callable[[], list[TrailerCommit]]:
        """``log_trailers`` through the git CLI, its ``git log`` started now: the returned function
        waits for it and returns the commits. ``metrics`` starts it before it reads the ledger, so
        git runs alongside (a child process, no thread: nothing here competes for the GIL). Call the
        function once, also when the caller fails, so that the child is waited for."""
        if any(rev.startswith("-") for rev in revs):
            return list
        args = ["log", "-z", "--no-show-signature", "--no-notes", "--encoding=UTF-8", "--grep=^Agentflow-"]
        args += ["--format=%H %cI %aI%n%B", *([] if since is None else [f"--max-age={_max_age(since)}"])]
        # run_git's process, started now and read later: the same argv, environment and decoding
        proc = subprocess.Popen(
            git_argv(*args, *(revs or ["--all"]), "--"),
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            encoding="utf-8",
            errors="replace",
            env=git_env(),
        )

        def commits() -> list[TrailerCommit]:
            stdout, _ = proc.communicate()
            if proc.returncode != 0:  # an unknown revision: nothing to report (no commits yet is exit 0)
                return []
            return _trailer_commits(stdout)

        return commits

    def configured(self, key: str) -> str | None:
        """``key``'s value in the repository's and the user's config, ignoring the ``-c`` overrides
        agentflow runs git with (``SAFE_CONFIG``): ``core.hooksPath`` as the user's git sees it."""
        out = self.git("config", "--show-origin", "--get-all", key, check=False).splitlines()
        values = [line.split("\t", 1)[1] for line in out if "\t" in line and not line.startswith("command line:")]
        return values[-1] if values else None

    def user_identity(self) -> str:
        """``Name <email>`` from the config files git reads (GitPython's config reader), "unknown" if none."""
        from git.config import GitConfigParser

        with GitConfigParser(self._config_files(), read_only=True, repo=self.lib()) as config:
            found = {key: str(config.get_value("user", key, "")) for key in ("name", "email")}
        for i in range(int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)):  # `git -c`'s variables
            key = os.environ.get(f"GIT_CONFIG_KEY_{i}", "").lower()
            if key in ("user.name", "user.email"):
                found[key[5:]] = os.environ.get(f"GIT_CONFIG_VALUE_{i}", "")
        name, email = found["name"] or "unknown", found["email"]
        return f"{name} <{email}>" if email else name

    def _config_files(self) -> list[str]:
        """The config files git reads, lowest precedence first: system, global (both as the
        ``GIT_CONFIG_*`` variables say), the repository's, and its worktree's when enabled."""
        files = []
        if not os.environ.get("GIT_CONFIG_NOSYSTEM"):
            files.append(os.environ.get("GIT_CONFIG_SYSTEM", "/etc/gitconfig"))
        if "GIT_CONFIG_GLOBAL" in os.environ:
            files.append(os.environ["GIT_CONFIG_GLOBAL"])
        else:
            xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
            files += [os.path.join(xdg, "git", "config"), os.path.expanduser("~/.gitconfig")]
        lib = self.lib()
        files.append(os.path.join(lib.common_dir, "config"))
        if lib.config_reader("repository").get_value("extensions", "worktreeConfig", False):
            files.append(os.path.join(lib.git_dir, "config.worktree"))
        return [f for f in files if f and os.path.isfile(f)]

    # -- gate and merge helpers (gate helper) ----------------------------------------------------

    def trees(self, commits: list[str]) -> dict[str, str]:
        """The tree of each commit that exists locally, read in one ``git cat-file --batch-check``."""
        if not commits:
            return {}
        proc = run_git(
            ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
            self.root,
            input="".join(f"{c}^{{tree}}\n" for c in commits),
        )
        result = {}
        for commit, line in zip(commits, proc.stdout.splitlines(), strict=False):
            parts = line.split()
            if len(parts) == 2 and parts[1] == "tree":
                result[commit] = parts[0]
        return result

    def commits(self, names: Sequence[str]) -> dict[str, str]:
        """The commit each of ``names`` names (as ``rev-parse --verify NAME^{commit}`` answers), read
        in one ``git cat-file --batch-check``; a name that names no commit is left out."""
        asked = [n for n in names if n and not n.startswith("-") and "\n" not in n and "\0" not in n]
        if not asked:
            return {}
        proc = run_git(
            ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
            self.root,
            input="".join(f"{name}^{{commit}}\n" for name in asked),
        )
        result = {}
        for name, line in zip(asked, proc.stdout.splitlines(), strict=False):
            parts = line.split()
            if len(parts) == 2 and parts[1] == "commit" and is_full_id(parts[0]):
                result[name] = parts[0]
        return result

    def merge_tree(self, ours: str, theirs: str) -> str | None:
        """The tree of a clean merge of two commits (``git merge-tree --write-tree``); None on conflict."""
        tree, _ = self.merge_tree_conflicts(ours, theirs)
        return tree

    def merge_tree_conflicts(self, ours: str, theirs: str) -> tuple[str | None, list[str]]:
        """``(tree, [])`` for a clean merge, ``(None, conflicted paths)`` otherwise; touches no worktree."""
        proc = run_git(["merge-tree", "--write-tree", "--name-only", "--no-messages", ours, theirs], self.root)
        lines = [line for line in proc.stdout.splitlines() if line]
        if proc.returncode == 0 and lines:
            return lines[0], []
        if proc.returncode == 1:
            return None, sorted(set(lines[1:]))
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"`git merge-tree` failed: {detail[-1] if detail else proc.returncode}", where=self.root)

    def worktrees(self) -> list[tuple[Path, str | None]]:
        """Every worktree of this repository and the branch (``refs/heads/...``) checked out in it."""
        out = self.git("worktree", "list", "--porcelain")
        result: list[tuple[Path, str | None]] = []
        for block in out.split("\n\n"):
            fields = dict(line.split(" ", 1) for line in block.splitlines() if " " in line)
            if "worktree" in fields:
                result.append((Path(fields["worktree"]), fields.get("branch")))
        return result
