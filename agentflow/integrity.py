"""Git integrity around agent sessions: what an agent may not change in the repository's git data.

Before every agent session (builder and verifier, every backend) the orchestrator takes a
``GitSnapshot``: every ref (one ``git for-each-ref``), the HEAD of the session's worktree and of the
user's checkout, the worktree's ``.git`` file, ``config`` (and ``config.worktree``), the hooks (the
hooks folder listing with content hashes, and the folder ``core.hooksPath`` names),
``info/exclude`` / ``info/attributes``, what rewrites the history git shows (``info/grafts``,
``shallow``, ``objects/info/alternates``) and the worktree's ``commondir`` and ``gitdir``. After the session, ``check`` compares: a difference is
tampering. ``restore`` puts refs, HEADs and files back as they were.

One change is not tampering: a builder that committed by itself on its own branch (HEAD still on
that branch, the old commit an ancestor of the new). ``check`` folds those commits back (``git reset
--soft`` to the recorded commit), so agentflow's own commit, with its trailers, carries the work.

Several runs of one process (``build -j``) share the repository: a ref another run of this process
owns (its plan branch, ``claim``) is that run's business, and a notes commit agentflow wrote itself
(``record_own_write``) is not a change. The caller holds the lock agentflow's git writes take
(``orchestration.worktrees._GIT_LOCK``) around ``snapshot`` and ``check``; where the git data lives
(``locate``: two git processes that no agentflow write can change the answer of) is asked before,
so that ``-j`` runs hold the lock for one git process each, not three (#19 item 5).

The snapshot lives in the orchestrator's memory, never in a file an agent can reach.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow import locks
from agentflow.errors import BackendError
from agentflow.git import NOTES_REF, Repo, cat_file_batch, run_git


class TamperingError(BackendError):
    """An agent session changed the repository's git data: the run ends ``no_verdict`` (exit 3)."""


@dataclass(frozen=True)
class FileState:
    """A file as it was: content and mode (``None`` content: it did not exist; a symlink keeps its
    target). ``recorded``: only its digest is known (a snapshot read back from the ledger)."""

    content: bytes | None
    mode: int = 0o644
    link: str | None = None
    recorded: str | None = None

    @property
    def digest(self) -> str | None:
        if self.recorded is not None:
            return self.recorded
        if self.content is None and self.link is None:
            return None
        h = hashlib.sha256(self.content or b"")
        h.update(f"\0{self.mode:o}\0{self.link or ''}".encode())
        return h.hexdigest()


@dataclass(frozen=True)
class GitSnapshot:
    """What a session must leave as it found it."""

    root: Path  # the repository (the user's checkout)
    workdir: Path  # the session's worktree
    refs: dict[str, str]  # refname -> "objectname symref"
    heads: dict[str, FileState]  # label -> HEAD file (session worktree, user's checkout)
    files: dict[str, FileState]  # label -> file (config, hooks, excludes, the worktree's .git file)
    paths: dict[str, Path] = field(default_factory=dict)  # label -> where it lives, for restore
    own_branch: str | None = None  # refs/heads/... the session's HEAD points at when it starts

    def record(self) -> dict[str, Any]:
        """What the ledger keeps (``git_snapshot``), so a run killed mid-session is checked on resume:
        refs and HEAD files whole, the other files as digests."""
        return {
            "workdir": str(self.workdir),
            "refs": dict(self.refs),
            "heads": {k: [(v.content or b"").decode("utf-8", "replace"), v.mode] for k, v in self.heads.items()},
            "files": {k: v.digest for k, v in self.files.items()},
            "paths": {k: str(v) for k, v in self.paths.items()},
            "own_branch": self.own_branch,
        }

    @classmethod
    def from_record(cls, root: Path, data: dict[str, Any]) -> GitSnapshot:
        return cls(
            root=root,
            workdir=Path(data["workdir"]),
            refs=dict(data.get("refs", {})),
            heads={k: FileState(text.encode("utf-8"), mode) for k, (text, mode) in data.get("heads", {}).items()},
            files={k: FileState(None, recorded=v) if v else FileState(None) for k, v in data.get("files", {}).items()},
            paths={k: Path(v) for k, v in data.get("paths", {}).items()},
            own_branch=data.get("own_branch"),
        )

    def commit_of(self, label: str) -> str | None:
        """The commit a HEAD file names, resolved through the snapshot's refs."""
        state = self.heads.get(label)
        text = (state.content or b"").decode("utf-8", "replace").strip() if state else ""
        if text.startswith("ref: "):
            return self.refs.get(text[5:], " ").split(" ")[0] or None
        return text or None


@dataclass
class CheckResult:
    """What ``check`` found: tampering (``changes``, one phrase each) and folded builder commits."""

    changes: list[str] = field(default_factory=list)
    folded: list[str] = field(default_factory=list)  # the builder's own commits, oldest first
    onto: str | None = None

    def reason(self, role: str, cycle: int) -> str:
        shown = self.changes[:4] + ([f"{len(self.changes) - 4} more"] if len(self.changes) > 4 else [])
        return f"tampering: {', '.join(shown)} during the {role} session (cycle {cycle})"


# -- refs owned by other runs of this process, and notes commits agentflow wrote ---------------------

_STATE_LOCK = threading.Lock()
_CLAIMED: dict[tuple[str, str], int] = {}  # (repository, ref) -> claim count
_OWN_WRITES: dict[tuple[str, str], set[str]] = {}  # (repository, ref) -> values agentflow wrote


def _key(root: Path, ref: str) -> tuple[str, str]:
    return (str(root.resolve()), ref)


def claim(root: Path, ref: str) -> None:
    """A run of this process works on ``ref`` (its plan branch): other runs' checks leave it alone."""
    with _STATE_LOCK:
        _CLAIMED[_key(root, ref)] = _CLAIMED.get(_key(root, ref), 0) + 1


def release(root: Path, ref: str) -> None:
    with _STATE_LOCK:
        count = _CLAIMED.get(_key(root, ref), 0) - 1
        if count > 0:
            _CLAIMED[_key(root, ref)] = count
        else:
            _CLAIMED.pop(_key(root, ref), None)


def record_own_write(repo: Repo, ref: str, value: str | None = None) -> None:
    """Remember ``ref``'s current value (``value``: the one the writer just set, under the same lock)
    as agentflow's own write (a verdict note, say)."""
    value = value or repo.git("rev-parse", "--verify", "--quiet", ref, check=False)
    if value:
        with _STATE_LOCK:
            _OWN_WRITES.setdefault(_key(repo.root, ref), set()).add(value)


# Private refs agentflow's note writes use for compare-and-swap (``Repo.append_note``); they come and go.
SCRATCH_PREFIX = "refs/notes/agentflow-tmp/"


def _ignored(root: Path, ref: str, own: str | None) -> bool:
    return ref.startswith(SCRATCH_PREFIX) or _claimed_elsewhere(root, ref, own)


def _claimed_elsewhere(root: Path, ref: str, own: str | None) -> bool:
    with _STATE_LOCK:
        count = _CLAIMED.get(_key(root, ref), 0)
    if count > (1 if ref == own else 0):
        return True
    # another agentflow process building that plan holds its lock (agentflow.locks)
    return ref != own and ref.startswith("refs/heads/agentflow/") and locks.held(root, ref.removeprefix("refs/heads/"))


def _own_writes(root: Path, ref: str) -> set[str]:
    with _STATE_LOCK:
        return set(_OWN_WRITES.get(_key(root, ref), set()))


# -- snapshot ------------------------------------------------------------------------------------------


def _read(path: Path) -> FileState:
    try:
        st = path.lstat()
    except OSError:
        return FileState(None)
    if stat.S_ISLNK(st.st_mode):
        return FileState(None, 0o777, os.readlink(path))
    if not stat.S_ISREG(st.st_mode):
        return FileState(b"", stat.S_IMODE(st.st_mode) | 0o40000)  # a folder where a file was: a change
    try:
        return FileState(path.read_bytes(), stat.S_IMODE(st.st_mode))
    except OSError:
        return FileState(None)


def _listing(folder: Path, prefix: str) -> dict[str, Path]:
    """Every entry of a hooks folder (one level: git runs only hooks named at its top)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return {}
    return {f"{prefix}/{name}": folder / name for name in names}


def _git_dirs(workdir: Path) -> tuple[Path, Path]:
    out = run_git(["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir"], workdir)
    lines = out.stdout.splitlines()
    if out.returncode != 0 or len(lines) < 2:
        raise BackendError(f"cannot read the git data of {workdir}: {out.stderr.strip()}", where=workdir)
    return Path(lines[0]), Path(lines[1])


def _refs(root: Path) -> dict[str, str]:
    out = run_git(["for-each-ref", "--format=%(refname) %(objectname) %(symref)"], root)
    if out.returncode != 0:
        raise BackendError(f"`git for-each-ref` failed: {out.stderr.strip()}", where=root)
    refs = {}
    for line in out.stdout.splitlines():
        name, _, value = line.partition(" ")
        refs[name] = value.strip()
    return refs


@dataclass(frozen=True)
class Location:
    """Where the git data a session in ``workdir`` could change lives (``locate``)."""

    workdir: Path
    gitdir: Path
    common: Path
    hooks_path: str | None  # core.hooksPath as the user's git sees it


def locate(root: Path, workdir: Path) -> Location:
    """The session's git folders and ``core.hooksPath``. Asked outside the git lock: agentflow never
    writes either, and what an agent changes there is in the files ``snapshot`` reads under it (the
    worktree's ``.git`` file, ``config``)."""
    gitdir, common = _git_dirs(workdir)
    return Location(workdir, gitdir, common, Repo(root).configured("core.hooksPath"))


def snapshot(root: Path, workdir: Path, where: Location | None = None) -> GitSnapshot:
    """The git data of the repository at ``root`` as a session in ``workdir`` finds it (``where``:
    ``locate(root, workdir)`` asked beforehand, else now)."""
    if where is None or where.workdir != workdir:
        where = locate(root, workdir)
    gitdir, common = where.gitdir, where.common
    paths: dict[str, Path] = {
        ".git/config": common / "config",
        ".git/config.worktree": common / "config.worktree",
        ".git/info/exclude": common / "info" / "exclude",
        ".git/info/attributes": common / "info" / "attributes",
        # what rewrites the history every later git command sees, the gate's merge bases included: a
        # graft gives a commit other parents, ``shallow`` cuts them off, an alternate object folder
        # (the worktree's, a /tmp one) supplies objects the repository then lacks once it is gone
        # (tests/test_attacks_history_files.py)
        ".git/info/grafts": common / "info" / "grafts",
        ".git/shallow": common / "shallow",
        ".git/objects/info/alternates": common / "objects" / "info" / "alternates",
    }
    label = _label(gitdir, common)
    if gitdir != common:
        paths[f"{label}/config.worktree"] = gitdir / "config.worktree"
        paths[f"{label}/commondir"] = gitdir / "commondir"  # which repository the worktree's git writes to
        paths[f"{label}/gitdir"] = gitdir / "gitdir"
    if (workdir / ".git").is_file() or gitdir != common:
        paths["the worktree's .git file"] = workdir / ".git"
    paths.update(_listing(common / "hooks", ".git/hooks"))
    hooks_path = where.hooks_path
    if hooks_path:
        folder = Path(os.path.expanduser(hooks_path))
        folder = folder if folder.is_absolute() else root / folder
        if folder.resolve() != (common / "hooks").resolve():
            paths.update(_listing(folder, f"core.hooksPath {hooks_path}"))
    heads = {"HEAD of the user's checkout": _read(common / "HEAD")}
    head_paths = {"HEAD of the user's checkout": common / "HEAD"}
    if gitdir != common:
        heads["HEAD of the session's worktree"] = _read(gitdir / "HEAD")
        head_paths["HEAD of the session's worktree"] = gitdir / "HEAD"
    session_head = heads.get("HEAD of the session's worktree", heads["HEAD of the user's checkout"])
    text = (session_head.content or b"").decode("utf-8", "replace").strip()
    own = text[5:] if text.startswith("ref: ") else None
    return GitSnapshot(
        root=root,
        workdir=workdir,
        refs=_refs(root),
        heads=heads,
        files={name: _read(path) for name, path in paths.items()},
        paths={**paths, **head_paths},
        own_branch=own,
    )


def _label(gitdir: Path, common: Path) -> str:
    try:
        return ".git/" + str(gitdir.relative_to(common))
    except ValueError:
        return str(gitdir)


# -- check and restore -------------------------------------------------------------------------------


def check(
    before: GitSnapshot,
    *,
    allow_commits: bool = False,
    other_runs: Callable[[], Container[str]] | None = None,
    where: Location | None = None,
    others: Container[str] = (),
    scanned: WorktreeScan | None = None,
) -> CheckResult:
    """Compare the repository with ``before``. ``allow_commits`` (builder sessions): commits on the
    session's own branch are folded back (soft reset) instead of being tampering. ``other_runs``:
    the ids of runs other agentflow processes may be writing verdict notes for meanwhile.
    ``where``: ``locate`` of the session's worktree, asked after the session. ``others``: refs that
    are other runs' business (``Run.check_pending``: the branches of the ledger's other runs, which
    may have been made or moved by those runs since a killed session's snapshot). ``scanned``: ``scan``
    of the worktree made after the session (outside the git lock: the worktree is the session's own),
    else made here."""
    after = snapshot(before.root, before.workdir, where)
    result = CheckResult()
    own = before.own_branch
    for name in sorted(set(before.refs) | set(after.refs)):
        old, new = before.refs.get(name), after.refs.get(name)
        if old == new or name in others or _ignored(before.root, name, own):
            continue
        if new is not None and _only_own_writes(before.root, name, old, new):
            continue
        if (
            name == NOTES_REF
            and new is not None
            and other_runs is not None
            and _only_verdict_appends(before.root, old, new, other_runs)
        ):
            continue
        if (
            allow_commits
            and name == own
            and old is not None
            and new is not None
            and after.heads == before.heads
            and _is_ancestor(before.root, old.split(" ")[0], new.split(" ")[0])
        ):
            result.folded = _commits(before.root, old.split(" ")[0], new.split(" ")[0])
            result.onto = old.split(" ")[0]
            continue
        verb = "created" if old is None else "deleted" if new is None else "moved"
        result.changes.append(f"{name} {verb}")
    for name, state in before.heads.items():
        if after.heads.get(name, FileState(None)).digest != state.digest:
            result.changes.append(f"{name} changed")
    for name in sorted(set(before.files) | set(after.files)):
        old_state = before.files.get(name, FileState(None))
        new_state = after.files.get(name, FileState(None))
        if old_state.digest == new_state.digest:
            continue
        verb = "added" if old_state.digest is None else "removed" if new_state.digest is None else "changed"
        result.changes.append(f"{name} {verb}")
    walked = scanned if scanned is not None and scanned.workdir == before.workdir else scan(before)
    result.changes += [f"a set-user-ID or set-group-ID file {path} added" for path in walked.setid]
    # only a `.git` below the worktree's top makes a repository git would enter: without one, the two
    # `git ls-files` would find nothing (#19 item 5)
    embedded = embedded_repositories(before.root, before.workdir) if walked.dotgit else []
    if embedded is None:  # fail closed: no git command runs in the worktree after this
        result.changes.append("the worktree's files could not be listed (git ls-files failed)")
    result.changes += [f"a git repository at {path} added" for path in embedded or []]
    if result.changes:
        result.folded, result.onto = [], None
    elif result.folded and result.onto:
        # the builder's commits become part of agentflow's own commit (trailers and all)
        out = run_git(["reset", "--soft", "-q", result.onto], before.workdir)
        if out.returncode != 0:
            raise BackendError(f"could not fold the builder's own commits: {out.stderr.strip()}", where=before.workdir)
    return result


def embedded_repositories(root: Path, workdir: Path) -> list[str] | None:
    """The git repositories below a session's ``workdir`` that agentflow's git would enter: the nested
    ones it does not ignore (``git ls-files -o --exclude-standard`` lists each as ``path/``, and runs
    nothing in it) and tracked gitlinks whose folder holds a ``.git``. git asks such a repository
    whether it is modified (``git status`` in it, from agentflow's ``git add -A``), and that runs its
    own config's commands (``filter.<x>.clean``), outside the sandbox: a builder wrote that config
    (tests/test_attacks_nested_repo_config.py). The user's own checkout is theirs: not looked at.
    None when git cannot list the worktree."""
    if not workdir.is_dir() or workdir.resolve() == root.resolve():
        return []
    untracked = run_git(["ls-files", "-o", "--exclude-standard", "-z"], workdir, text=False)
    staged = run_git(["ls-files", "-s", "-z"], workdir, text=False)
    if untracked.returncode != 0 or staged.returncode != 0:
        return None
    found = [name[:-1] for name in untracked.stdout.split(b"\0") if name.endswith(b"/")]
    for entry in staged.stdout.split(b"\0"):
        mode, _, path = entry.partition(b"\t")
        if mode.startswith(b"160000 ") and os.path.lexists(workdir / os.fsdecode(path) / ".git"):
            found.append(path)
    return sorted({os.fsdecode(name) for name in found})


SETID = stat.S_ISUID | stat.S_ISGID


@dataclass(frozen=True)
class WorktreeScan:
    """One walk of a session's worktree after the session (``scan``): the set-ID files it cleared and
    whether git could find a repository below the worktree's top there."""

    workdir: Path
    setid: list[str] = field(default_factory=list)  # cleared set-ID files, folders that could not be listed
    dotgit: bool = False  # an entry named like ``.git`` below the top, or a folder not read in full


def _git_like(name: str) -> bool:
    """``.git`` as git may find it on this file system: any case (a case-folding folder), with trailing
    dots or spaces, or an NTFS short name (``GIT~1``). Wider than git's own test, never narrower."""
    folded = name.casefold()
    return folded.rstrip(". ") == ".git" or folded.startswith("git~")


def scan(before: GitSnapshot) -> WorktreeScan:
    """Walk the session's worktree once (not the user's own checkout: ``strip_setid``'s rule): clear
    every set-user-ID or set-group-ID bit (``strip_setid``) and note whether any entry below the top
    is named like ``.git``. git enters a nested repository (``embedded_repositories``) only through
    its ``.git`` (a folder or a ``gitdir:`` file, ``is_nonbare_repository_dir``), so without one
    ``check`` needs no ``git ls-files``; with one, or with a folder the walk could not read, it asks
    git exactly as before. The names are read before any entry's status (an entry whose ``lstat``
    fails still counts). One walk instead of a walk and two git processes per session, and outside
    the git lock (#19 item 5)."""
    workdir = before.workdir
    if not workdir.is_dir() or workdir.resolve() == before.root.resolve():
        return WorktreeScan(workdir)
    found: list[str] = []
    dotgit = False
    todo = [workdir]
    while todo:
        folder = todo.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except PermissionError:  # a folder the command made unreadable (mode 311): a file in it is still run
            found.append(f"{os.path.relpath(folder, workdir)}/ (unreadable)")
            dotgit = True
            continue
        except OSError:
            dotgit = True  # not read: git is asked
            continue
        for entry in entries:
            if _git_like(entry.name) and not (folder == workdir and entry.name == ".git"):  # not its own
                dotgit = True
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                if info.st_mode & 0o500 != 0o500:
                    with contextlib.suppress(OSError):  # ours: listed and entered again
                        os.chmod(entry.path, stat.S_IMODE(info.st_mode) | 0o700)
                todo.append(Path(entry.path))
            elif stat.S_ISREG(info.st_mode) and info.st_mode & SETID:
                _clear_setid(entry.path, stat.S_IMODE(info.st_mode) & ~SETID)
                found.append(os.path.relpath(entry.path, workdir))
    return WorktreeScan(workdir, sorted(found), dotgit)


def strip_setid(before: GitSnapshot) -> list[str]:
    """The regular files below the session's worktree with a set-user-ID or set-group-ID bit, which
    are cleared (at once: the file is not left executable with them). In its user namespace the
    sandboxed command owns what it writes, so a ``chmod 4755`` of its own file is allowed; as root the
    file is root's on the host, where the worktree's file system honours the bit: any local user who
    could reach the worktree ran it as root (tested before the fix: ``euid=0``;
    tests/test_attacks_setid_files.py). Not the user's own checkout. ``scan`` makes the same walk."""
    return scan(before).setid


def _clear_setid(path: str, mode: int) -> None:
    """``chmod`` the regular file at ``path`` (never through a link) to ``mode``; a failure is left
    to the tampering it is reported as."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.fchmod(descriptor, mode)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _remove_embedded(before: GitSnapshot, problems: list[str]) -> None:
    """Remove the ``.git`` of every repository ``embedded_repositories`` finds (again, until none is
    left: removing one may uncover another inside it); its files stay, plain files of the worktree."""
    import shutil

    for _ in range(20):
        found = embedded_repositories(before.root, before.workdir)
        if not found:
            return
        for name in found:
            dotgit = before.workdir / name / ".git"
            try:
                if dotgit.is_dir() and not dotgit.is_symlink():
                    shutil.rmtree(dotgit)
                else:
                    dotgit.unlink()
            except OSError as exc:
                problems.append(f"{dotgit}: {exc.strerror or exc}")
                return
    problems.append(f"{before.workdir}: git repositories nested too deep to remove")


def restore(before: GitSnapshot, others: Container[str] = ()) -> list[str]:
    """Put refs, HEADs and files back as ``before`` has them, but for the refs in ``others`` (as
    ``check``), and remove the repositories a session made below its worktree; returns what could not
    be restored."""
    problems: list[str] = []
    _remove_embedded(before, problems)
    for name, state in before.files.items():
        _put(before.paths[name], state, problems)
    for path in _added_files(before):
        try:
            path.unlink()
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    for name, state in before.heads.items():
        _put(before.paths[name], state, problems)
    current = _refs(before.root)
    own = before.own_branch
    lines = []
    for name in sorted(set(before.refs) | set(current)):
        old, new = before.refs.get(name), current.get(name)
        if old == new or name in others or _ignored(before.root, name, own):
            continue
        if new is not None and _only_own_writes(before.root, name, old, new):
            continue
        if old is None:
            lines.append(f"delete {name}")
            continue
        target, _, symref = old.partition(" ")
        if symref.strip():
            out = run_git(["symbolic-ref", name, symref.strip()], before.root)
            if out.returncode != 0:
                problems.append(f"{name}: {out.stderr.strip()}")
            continue
        lines.append(f"update {name} {target}")
    if lines:
        out = run_git(["update-ref", "--no-deref", "--stdin"], before.root, input="\n".join(lines) + "\n")
        if out.returncode != 0:
            problems.append(f"refs: {out.stderr.strip()}")
    return problems


def _added_files(before: GitSnapshot) -> list[Path]:
    """Files that appeared in a snapshotted folder (a planted hook)."""
    folders = {before.paths[name].parent: name.rsplit("/", 1)[0] for name in before.files if "hooks" in name}
    _gitdir, common = _git_dirs(before.workdir)
    folders.setdefault(common / "hooks", ".git/hooks")
    known = {before.paths[name] for name in before.files}
    added = []
    for folder, prefix in folders.items():
        added += [path for path in _listing(folder, prefix).values() if path not in known]
    return added


def _put(path: Path, state: FileState, problems: list[str]) -> None:
    current = _read(path)
    if current.digest == state.digest:
        return
    if state.recorded is not None:
        problems.append(f"{path}: not restored (only its digest was recorded)")
        return
    try:
        if current.content is not None or current.link is not None:
            if path.is_dir() and not path.is_symlink():
                import shutil

                shutil.rmtree(path)
            else:
                path.unlink()
        if state.link is not None:
            os.symlink(state.link, path)
        elif state.content is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(state.content)
            os.chmod(path, state.mode & 0o7777)
    except OSError as exc:
        problems.append(f"{path}: {exc.strerror or exc}")


def _only_own_writes(root: Path, ref: str, old: str | None, new: str) -> bool:
    """True when every commit between ``old`` (None: the ref was created) and ``new`` of ``ref`` is
    one agentflow wrote itself."""
    own = _own_writes(root, ref)
    new_id = new.split(" ")[0]
    if not own or new_id not in own:
        return False
    if old is None:
        return all(commit in own for commit in _commits(root, None, new_id))
    old_id = old.split(" ")[0]
    return _is_ancestor(root, old_id, new_id) and all(commit in own for commit in _commits(root, old_id, new_id))


def _only_verdict_appends(root: Path, old: str | None, new: str, other_runs: Callable[[], Container[str]]) -> bool:
    """True when the notes commits between ``old`` and ``new`` only append verdict lines of runs
    in ``other_runs()`` (concurrent agentflow processes): nothing removed, no foreign line."""
    old_id, new_id = (old.split(" ")[0] if old else None), new.split(" ")[0]
    if old_id is not None and not _is_ancestor(root, old_id, new_id):
        return False
    span = f"{old_id}..{new_id}" if old_id else new_id
    out = run_git(["log", "--first-parent", "--raw", "--no-abbrev", "--no-renames", "--format=%x00%H", span], root)
    if out.returncode != 0:
        return False
    pairs: list[tuple[str | None, str]] = []
    for line in out.stdout.splitlines():
        if not line.startswith(":"):
            continue
        fields = line[1:].split("\t", 1)[0].split()
        if len(fields) < 5 or fields[4] not in ("A", "M"):
            return False  # a deleted note is never agentflow's
        pairs.append((None if set(fields[2]) == {"0"} else fields[2], fields[3]))
    if not pairs:
        return False
    blobs = _blobs(root, {b for pair in pairs for b in pair if b})
    runs = other_runs()
    for old_blob, new_blob in pairs:
        before_lines = blobs.get(old_blob, "").splitlines() if old_blob else []
        after_lines = blobs.get(new_blob, "").splitlines()
        if after_lines[: len(before_lines)] != before_lines:
            return False
        for line in after_lines[len(before_lines) :]:
            try:
                data = json.loads(line)
            except ValueError:
                return False
            if not isinstance(data, dict) or data.get("run") not in runs or data.get("override"):
                return False
    return True


def _blobs(root: Path, ids: set[str]) -> dict[str, str]:
    order = sorted(ids)
    found = cat_file_batch(root, order) if order else []
    return {blob: item[1].decode("utf-8", "replace") for blob, item in zip(order, found, strict=True) if item}


def _is_ancestor(root: Path, old: str, new: str) -> bool:
    return run_git(["merge-base", "--is-ancestor", old, new], root).returncode == 0


def _commits(root: Path, old: str | None, new: str) -> list[str]:
    out = run_git(["rev-list", "--reverse", f"{old}..{new}" if old else new], root)
    return [line for line in out.stdout.split() if line]
