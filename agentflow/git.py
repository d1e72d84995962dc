"""Git plumbing agentflow needs: repository discovery, worktrees, commits with trailers, notes.

Everything goes through the git command line: the plumbing agentflow relies on (notes, worktrees,
``merge-tree --write-tree``, ``patch-id --verbatim``, trailers) has no richer API in a library, and
the CLI keeps start-up fast for hooks and CI gates. Every failure becomes a ``GitError`` naming the
command and the fix.

Repository config and hooks are content an agent could have written, so every git process agentflow
starts (``run_git``) runs no hook and no fsmonitor, shows diffs without external diff drivers or
textconv, and gets an environment without secrets (``git_env``).
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agentflow.errors import GitError
from agentflow.redact import is_secret_name

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


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of agentflow's git processes: this process's, without secrets."""
    env = {k: v for k, v in os.environ.items() if k in GIT_ENV_KEEP or not is_secret_name(k)}
    return {**env, **(extra or {})}


def git_argv(*args: str) -> list[str]:
    """``git`` with ``SAFE_CONFIG`` and ``args``: the argv of every git process agentflow starts."""
    return ["git", *SAFE_CONFIG, *args]


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


@dataclass(frozen=True)
class DiffStat:
    files: int = 0
    insertions: int = 0
    deletions: int = 0

    def __str__(self) -> str:
        return f"{self.files} files changed, +{self.insertions} -{self.deletions}"


@dataclass(frozen=True)
class TrailerCommit:
    """A commit with agentflow trailers (``Repo.log_trailers``)."""

    commit: str
    committed: datetime
    authored: datetime
    trailers: dict[str, str]


class Repo:
    """A git repository (or one of its worktrees) rooted at ``root``."""

    def __init__(self, root: Path):
        self.root = root

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

    def ok(self, *args: str) -> bool:
        return run_git(args, self.root).returncode == 0

    # -- refs and objects ------------------------------------------------------------------------

    def rev(self, ref: str) -> str:
        """The commit id ``ref`` names; GitError (exit 2) when it names none."""
        out = run_git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], self.root)
        if out.returncode != 0:
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
        return self.git("rev-parse", f"{self.rev(ref)}^{{tree}}")

    def has_commits(self) -> bool:
        return self.ok("rev-parse", "--verify", "--quiet", "HEAD^{commit}")

    def current_branch(self) -> str | None:
        out = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return out or None

    def branch_exists(self, name: str) -> bool:
        return self.ok("show-ref", "--verify", "--quiet", f"refs/heads/{name}")

    def is_dirty(self, untracked: bool = False) -> bool:
        args = ["status", "--porcelain"] + ([] if untracked else ["--untracked-files=no"])
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
        return self.git("rev-parse", f"{base}^{{tree}}") if base else EMPTY_TREE

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

    def patch_id(self, base: str, head: str) -> str | None:
        """``git patch-id --verbatim`` of the change base..head: survives a clean rebase."""
        diff = self.git("diff", *NO_DRIVERS, "--binary", "--full-index", f"{base}..{head}")
        if not diff:
            return None
        out = run_git(["patch-id", "--verbatim"], self.root, input=diff + "\n")
        return out.stdout.split()[0] if out.stdout.strip() else None

    # -- commits ---------------------------------------------------------------------------------

    def commit_all(self, message: str, trailers: dict[str, str]) -> str | None:
        """Stage everything in the worktree and commit with trailers; None when nothing changed."""
        self.git("add", "-A")
        if self.ok("diff", "--cached", "--quiet"):
            return None
        args = ["commit", "--no-verify", "-q", "-m", message]
        for key, value in trailers.items():
            args += ["--trailer", f"{key}: {value}"]
        self.git(*args)
        return self.rev("HEAD")

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
        """The note lines attached to ``commit`` under ``ref`` (empty when none)."""
        out = run_git(["notes", f"--ref={ref}", "show", commit], self.root)
        return [line for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []

    def append_note(
        self,
        commit: str,
        line: str,
        ref: str = NOTES_REF,
        *,
        present: Callable[[list[str]], bool] | None = None,
    ) -> bool:
        """Append one line to ``commit``'s note without ever losing a line another process writes.

        Compare-and-swap on the notes ref: the new notes commit is built on a private ref from the
        value ``OLD`` just read, then ``git update-ref REF NEW OLD`` moves the ref only if nobody
        moved it meanwhile; otherwise it is rebuilt on the newer value (bounded retries). Nothing is
        written, and False returned, when the note already holds ``line`` or ``present(lines)`` says
        an equivalent line is there (a resumed run writing its verdict again).
        """
        scratch = f"refs/notes/agentflow-tmp/{os.getpid()}-{secrets.token_hex(4)}"
        try:
            for attempt in range(NOTE_WRITE_ATTEMPTS):
                old = self.git("rev-parse", "--verify", "--quiet", ref, check=False) or None
                if old:
                    self.git("update-ref", scratch, old)
                else:
                    self.git("update-ref", "-d", scratch, check=False)
                existing = self.notes(commit, scratch) if old else []
                if line in existing or (present is not None and present(existing)):
                    return False
                body = "\n".join([*existing, line]) + "\n"
                self.git("notes", f"--ref={scratch}", "add", "-f", "-F", "-", commit, input=body)
                new = self.git("rev-parse", scratch)
                if self.ok("update-ref", "-m", "agentflow: verdict note", ref, new, old or ""):
                    return True
                time.sleep(random.uniform(0.005, 0.05) * min(attempt + 1, 8))
        finally:
            self.git("update-ref", "-d", scratch, check=False)
        raise GitError(
            f"could not update {ref}: other processes kept writing notes ({NOTE_WRITE_ATTEMPTS} attempts)",
            where=self.root,
            fix="re-run the command (nothing was lost)",
        )

    def notes_map(self, ref: str = NOTES_REF) -> dict[str, list[str]]:
        """Every noted commit and its note lines under ``ref``, read in one ``git cat-file --batch``."""
        pairs = [line.split() for line in self.git("notes", f"--ref={ref}", "list", check=False).splitlines()]
        pairs = [p for p in pairs if len(p) == 2]
        if not pairs:
            return {}
        proc = run_git(
            ["cat-file", "--batch"], self.root, input=("\n".join(b for b, _ in pairs) + "\n").encode(), text=False
        )
        data, pos, result = proc.stdout, 0, {}
        for _blob, commit in pairs:
            header_end = data.index(b"\n", pos)
            header = data[pos:header_end].split()
            if len(header) < 3 or header[1] == b"missing":
                pos = header_end + 1
                continue
            size = int(header[2])
            body = data[header_end + 1 : header_end + 1 + size].decode("utf-8", "replace")
            pos = header_end + 1 + size + 1
            result[commit] = [line for line in body.splitlines() if line.strip()]
        return result

    def log_trailers(self, *revs: str) -> list[TrailerCommit]:
        """Commits in ``revs`` (default: every ref) that carry an ``Agentflow-*`` trailer, newest first.

        One ``git log`` for the lot, so reports over long histories stay fast.
        """
        fmt = "%H%x1f%cI%x1f%aI%x1f%(trailers:only,unfold)%x1e"
        out = self.git("log", *(revs or ("--all",)), "--grep=^Agentflow-", f"--format={fmt}", check=False)
        commits: list[TrailerCommit] = []
        for record in out.split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) != 4:
                continue
            trailers = {}
            for line in fields[3].splitlines():
                if ": " in line:
                    key, value = line.split(": ", 1)
                    trailers[key.strip()] = value.strip()
            if any(key.startswith("Agentflow-") for key in trailers):
                commits.append(
                    TrailerCommit(
                        fields[0], datetime.fromisoformat(fields[1]), datetime.fromisoformat(fields[2]), trailers
                    )
                )
        return commits

    def configured(self, key: str) -> str | None:
        """``key``'s value in the repository's and the user's config, ignoring the ``-c`` overrides
        agentflow runs git with (``SAFE_CONFIG``): ``core.hooksPath`` as the user's git sees it."""
        out = self.git("config", "--show-origin", "--get-all", key, check=False).splitlines()
        values = [line.split("\t", 1)[1] for line in out if "\t" in line and not line.startswith("command line:")]
        return values[-1] if values else None

    def user_identity(self) -> str:
        name = self.git("config", "user.name", check=False) or "unknown"
        email = self.git("config", "user.email", check=False)
        return f"{name} <{email}>" if email else name

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
