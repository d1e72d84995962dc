"""Secrets in the user's checkout, outside the builder's worktree.

The sandbox keeps the user's checkout readable (read-only): the worktree's git data lives in it. Its
untracked files came along: a builder's command read the ``.env`` (or ``.envrc``, a project's
``.npmrc`` with a registry token) next to the user's code, which no worktree or check needs (they
are ignored, never committed), and could copy it into its commit (tested before the fix).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import git, need_tool

SECRET = "sk-live-0123456789abcdef"


@pytest.mark.parametrize("name", [".env", ".env.local", ".envrc", ".npmrc", ".pypirc", ".netrc", ".git-credentials"])
def test_a_builder_cannot_read_the_secrets_beside_the_users_checkout(repo: Path, name: str) -> None:
    need_tool("bwrap")
    (repo / name).write_text(f"TOKEN={SECRET}\n")
    worktree = repo / ".agentflow" / "worktrees" / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree))

    code, out, _ = run_shell(
        f"cat {repo / name} 2>&1; cat {repo / 'README.md'}; git log --oneline -1", worktree, 30,
        sandbox=Sandbox.from_config(),
    )  # fmt: skip

    assert SECRET not in out, out
    assert "# sample" in out and "initial" in out, out  # the rest of the checkout and git still work
    assert (repo / name).read_text() == f"TOKEN={SECRET}\n"


def test_a_tracked_env_file_stays_in_the_worktree(repo: Path) -> None:
    """A committed .env (an example, a test fixture) is the change's own file: readable where it is."""
    need_tool("bwrap")
    (repo / ".env").write_text("EXAMPLE=1\n")
    git(repo, "add", ".env")
    git(repo, "commit", "-qm", "example env")
    worktree = repo / ".agentflow" / "worktrees" / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree))

    code, out, _ = run_shell("cat .env", worktree, 30, sandbox=Sandbox.from_config())

    assert "EXAMPLE=1" in out, out


def test_a_linked_env_file_is_hidden_too(repo: Path, tmp_path: Path) -> None:
    need_tool("bwrap")
    real = tmp_path / "vault" / "app.env"
    real.parent.mkdir()
    real.write_text(f"TOKEN={SECRET}\n")
    (repo / ".env").symlink_to(real)
    worktree = repo / ".agentflow" / "worktrees" / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree))

    readable = [real.parent]  # where the link leads is in the sandbox's sight (as under a home)
    command = f"cat {repo / '.env'} {real} 2>&1; ls {real.parent}; echo done"
    code, out, _ = run_shell(command, worktree, 30, sandbox=Sandbox.from_config(), readable=readable)

    assert SECRET not in out and "app.env" in out and "done" in out, out
