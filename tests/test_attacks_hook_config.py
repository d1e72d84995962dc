"""The installed git hooks read which branches are protected from the work tree's
``agentflow.yaml``, and the work tree holds whatever is checked out or being merged: a branch
whose ``agentflow.yaml`` said ``gate: {protected_branches: [nothing]}`` turned the pre-push hook off
for a push of it to main, and the pre-merge-commit hook off for its own merge into main (the merge
result is in the work tree when that hook runs). Tested before the fix: both went through
unapproved. A branch is now protected when the work tree's config or the config at the branch's
current tip (the remote's commit for a push, HEAD for a merge) says so."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.gate_helpers import git

UNPROTECT = "gate:\n  protected_branches: [nothing]\n"


def _hostile_commit(repo: Path) -> None:
    (repo / "agentflow.yaml").write_text(UNPROTECT)
    (repo / "app.py").write_text("print('unverified')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "feature")


def test_pre_push_keeps_the_remote_tips_protection(repo: Path, cli, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    cli("hooks", "install")
    _hostile_commit(repo)

    proc = subprocess.run(["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False)

    assert proc.returncode != 0 and "refusing" in proc.stderr, proc.stderr


def test_pre_merge_commit_keeps_heads_protection(repo: Path, cli) -> None:
    cli("hooks", "install")
    git(repo, "checkout", "-q", "-b", "feature")
    _hostile_commit(repo)
    git(repo, "checkout", "-q", "main")

    proc = subprocess.run(
        ["git", "merge", "--no-ff", "-m", "merge", "feature"], cwd=repo, capture_output=True, text=True, check=False
    )

    assert proc.returncode != 0 and "refusing" in proc.stderr, proc.stderr + proc.stdout


def test_an_unprotected_branch_stays_unprotected(repo: Path, cli, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    cli("hooks", "install")
    git(repo, "checkout", "-q", "-b", "topic")
    _hostile_commit(repo)

    proc = subprocess.run(["git", "push", "origin", "topic"], cwd=repo, capture_output=True, text=True, check=False)

    assert proc.returncode == 0, proc.stderr
