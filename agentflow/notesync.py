"""Sharing verdict notes: ``agentflow notes fetch | push``.

Git neither pushes nor fetches notes by default, and the obvious forced refspec
``+refs/notes/agentflow:refs/notes/agentflow`` silently throws away every local note that was not
pushed yet. So notes are fetched into a remote-tracking ref, ``refs/notes/remotes/<remote>/agentflow``
(forcing *that* ref is safe: it only ever mirrors the remote), and merged into the local notes with
``git notes merge -s cat_sort_uniq`` on a private ref, then every local line the merge dropped is put
back (``union_merge``): notes on the same commit become the union of both sides' lines, which is
exactly right for JSON Lines verdicts (the gate orders them by timestamp, not by line), and a remote
whose notes were rewritten can never remove a local line (a revocation, say).

A push that is rejected because someone else pushed first is fetched, merged and retried.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass

from agentflow.errors import GitError, UsageError
from agentflow.git import NOTES_REF, Repo, run_git

MAX_PUSH_ATTEMPTS = 5
MAX_MERGE_ATTEMPTS = 20
_REJECTED = ("rejected", "non-fast-forward", "fetch first", "stale info", "failed to update ref")


def tracking_ref(remote: str) -> str:
    return f"refs/notes/remotes/{remote}/agentflow"


@dataclass(frozen=True)
class FetchResult:
    remote: str
    found: bool  # the remote has agentflow notes
    merged: bool  # local notes changed


@dataclass(frozen=True)
class PushResult:
    remote: str
    attempts: int
    up_to_date: bool


def _check_remote(repo: Repo, remote: str) -> None:
    if remote not in repo.git("remote").splitlines():
        raise UsageError(f"no git remote named {remote!r}", fix="pass --remote with one of `git remote`")


def _local_notes(repo: Repo) -> str | None:
    out = repo.git("rev-parse", "--verify", "--quiet", NOTES_REF, check=False)
    return out or None


def fetch_notes(repo: Repo, remote: str = "origin") -> FetchResult:
    """Fetch the remote's verdict notes and merge them into the local ones as a union: no local line
    is ever lost, whatever the remote's notes look like (rewritten, with lines deleted)."""
    _check_remote(repo, remote)
    tracking = tracking_ref(remote)
    proc = _run(repo, "fetch", "--quiet", "--no-write-fetch-head", remote, f"+{NOTES_REF}:{tracking}")
    if proc.returncode != 0:
        if "couldn't find remote ref" in proc.stderr.lower():
            return FetchResult(remote, found=False, merged=False)
        raise GitError(f"`git fetch {remote}` of the notes failed: {_last_line(proc.stderr)}", where=repo.root)
    remote_head = repo.git("rev-parse", "--verify", "--quiet", tracking, check=False) or None
    if remote_head is None:
        return FetchResult(remote, found=False, merged=False)
    before = _local_notes(repo)
    merged = union_merge(repo, tracking)
    return FetchResult(remote, found=True, merged=merged and _local_notes(repo) != before)


def union_merge(repo: Repo, other: str, attempts: int = MAX_MERGE_ATTEMPTS) -> bool:
    """Merge the notes at ``other`` into ``refs/notes/agentflow`` as a union of lines; True if it moved.

    ``git notes merge -s cat_sort_uniq`` alone is not enough: it fast-forwards to a remote that
    descends from the local notes, and in a three-way merge takes the remote's version of a note only
    the remote changed, so a line the remote deleted disappears locally. Here the merge is made on a
    private ref, every local line missing from the result is put back, and the notes ref moves by
    compare-and-swap (retried when another process wrote a note meanwhile). Both histories stay
    reachable, so the gate still sees every line ever recorded on either side.
    """
    scratch = f"refs/notes/agentflow-tmp/merge-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        for _ in range(attempts):
            local = _local_notes(repo)
            theirs = repo.git("rev-parse", "--verify", "--quiet", other, check=False) or None
            if theirs is None or local == theirs:
                return False
            if local is None:
                if repo.ok("update-ref", NOTES_REF, theirs, ""):  # "" = only if it still does not exist
                    return True
                continue
            if repo.ok("merge-base", "--is-ancestor", theirs, local):
                return False  # everything the other side has is in our history already
            repo.git("update-ref", scratch, local)
            merge = _run(
                repo, *_identity(repo), "notes", f"--ref={scratch}", "merge", "-q", "-s", "cat_sort_uniq", other
            )
            if merge.returncode != 0:
                raise GitError(
                    f"`git notes merge` failed: {_last_line(merge.stderr or merge.stdout)}",
                    where=repo.root,
                    fix="check `git notes --ref=agentflow merge --abort`, then fetch again",
                )
            mine, result = repo.notes_map(NOTES_REF), repo.notes_map(scratch)
            for commit, lines in mine.items():
                have = result.get(commit, [])
                missing = [line for line in lines if line not in have]
                if missing:
                    body = "\n".join([*have, *missing]) + "\n"
                    _git(
                        repo, *_identity(repo), "notes", f"--ref={scratch}", "add", "-f", "-F", "-", commit, input=body
                    )
            new = repo.git("rev-parse", scratch)
            if not repo.ok("merge-base", "--is-ancestor", local, new):
                # a fast-forward with lines put back: make the local history a parent as well
                tree = repo.git("rev-parse", f"{new}^{{tree}}")
                new = _git(repo, *_identity(repo), "commit-tree", tree, "-p", new, "-p", local, "-m", "Notes union")
            if repo.ok("update-ref", "-m", "agentflow: notes union", NOTES_REF, new, local):
                return True
        raise GitError(
            f"could not merge the notes into {NOTES_REF}: other processes kept writing notes",
            where=repo.root,
            fix="run `agentflow notes fetch` again (nothing was lost)",
        )
    finally:
        repo.git("update-ref", "-d", scratch, check=False)


def push_notes(repo: Repo, remote: str = "origin", attempts: int = MAX_PUSH_ATTEMPTS) -> PushResult:
    """Push the local verdict notes; a rejected push is fetched, merged and retried (bounded)."""
    _check_remote(repo, remote)
    if _local_notes(repo) is None:
        raise UsageError("there are no verdict notes to push", fix="verify something first (`agentflow verify`)")
    for attempt in range(1, attempts + 1):
        proc = _run(repo, "push", "--quiet", "--porcelain", remote, f"{NOTES_REF}:{NOTES_REF}")
        if proc.returncode == 0:
            return PushResult(remote, attempt, up_to_date="[up to date]" in proc.stdout)
        output = (proc.stdout + proc.stderr).lower()
        if not any(marker in output for marker in _REJECTED):
            raise GitError(f"`git push {remote}` of the notes failed: {_last_line(proc.stderr)}", where=repo.root)
        fetch_notes(repo, remote)
    raise GitError(
        f"`git push {remote}` of the notes was rejected {attempts} times (others keep pushing)",
        where=repo.root,
        fix="run `agentflow notes push` again",
    )


def _identity(repo: Repo) -> list[str]:
    """``-c user.*`` for the notes merge commit when git cannot determine an identity (bare CI runners)."""
    if repo.ok("var", "GIT_COMMITTER_IDENT"):
        return []
    return ["-c", "user.name=agentflow", "-c", "user.email=agentflow@localhost"]


def _git(repo: Repo, *args: str, input: str | None = None) -> str:
    """``git args`` that must succeed (GitError otherwise); stdout stripped."""
    proc = run_git(args, repo.root, input=input)  # no hooks, no fsmonitor, no secrets
    if proc.returncode != 0:
        raise GitError(
            f"`git {args[0] if args[0] != '-c' else 'notes'}` failed: {_last_line(proc.stderr)}", where=repo.root
        )
    return proc.stdout.strip()


def _run(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    """``git args`` whose failure the caller interprets (rejected push, missing remote ref)."""
    return run_git(args, repo.root)  # no hooks, no fsmonitor, no secrets


def _last_line(text: str) -> str:
    """What git said went wrong: its first ``fatal:``/``error:`` line (the cause; the last line of
    "Please make sure you have the correct access rights / and the repository exists." said
    nothing), else its last line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line.removeprefix(prefix)
    return lines[-1] if lines else "unknown error"
