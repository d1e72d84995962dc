"""Sharing verdict notes: ``agentflow notes fetch | push``.

Git neither pushes nor fetches notes by default, and the obvious forced refspec
``+refs/notes/agentflow:refs/notes/agentflow`` silently throws away every local note that was not
pushed yet. So notes are fetched into a remote-tracking ref, ``refs/notes/remotes/<remote>/agentflow``
(forcing *that* ref is safe: it only ever mirrors the remote), and merged into the local notes with
``git notes merge -s cat_sort_uniq``: notes on the same commit are concatenated line by line, which
is exactly right for JSON Lines verdicts (the gate orders them by timestamp, not by line).

A push that is rejected because someone else pushed first is fetched, merged and retried.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from agentflow.errors import GitError, UsageError
from agentflow.git import NOTES_REF, Repo, run_git

MAX_PUSH_ATTEMPTS = 5
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
    """Fetch the remote's verdict notes and merge them into the local ones; no local note is lost."""
    _check_remote(repo, remote)
    tracking = tracking_ref(remote)
    proc = _run(repo, "fetch", "--quiet", "--no-write-fetch-head", remote, f"+{NOTES_REF}:{tracking}")
    if proc.returncode != 0:
        if "couldn't find remote ref" in proc.stderr.lower():
            return FetchResult(remote, found=False, merged=False)
        raise GitError(f"`git fetch {remote}` of the notes failed: {_last_line(proc.stderr)}", where=repo.root)
    before = _local_notes(repo)
    remote_head = repo.git("rev-parse", "--verify", "--quiet", tracking, check=False) or None
    if remote_head is None or before == remote_head:
        return FetchResult(remote, found=remote_head is not None, merged=False)
    if before is None:
        repo.git("update-ref", NOTES_REF, remote_head, "")  # "" = only if it still does not exist
    else:
        merge = _run(
            repo, *_identity(repo), "notes", f"--ref={NOTES_REF}", "merge", "-q", "-s", "cat_sort_uniq", tracking
        )
        if merge.returncode != 0:
            raise GitError(
                f"`git notes merge` failed: {_last_line(merge.stderr or merge.stdout)}",
                where=repo.root,
                fix="check `git notes --ref=agentflow merge --abort`, then fetch again",
            )
    return FetchResult(remote, found=True, merged=_local_notes(repo) != before)


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


def _run(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    """``git args`` whose failure the caller interprets (rejected push, missing remote ref)."""
    return run_git(args, repo.root)  # no hooks, no fsmonitor, no secrets


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"
