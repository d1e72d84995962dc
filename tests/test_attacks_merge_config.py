"""``agentflow merge`` judged the branch by the checkout's config, and the checkout holds whatever
is checked out: with a pull request's branch checked out to look at it, that branch's
``agentflow.yaml`` (``gate: {require_sandbox: false}``) let its unsandboxed approval merge into a
main that requires the sandbox (tested before the fix: merged), while ``agentflow gate`` refused
it. ``merge`` now judges by the target branch's config at its tip, as ``gate`` does."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.gate_helpers import add_verdict
from tests.helpers import git


def _commit_config(repo: Path, data: dict, message: str) -> str:
    (repo / "agentflow.yaml").write_text(yaml.safe_dump(data))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def _hostile_branch(repo: Path) -> str:
    _commit_config(repo, {"gate": {"require_sandbox": True}}, "sandboxed approvals only")
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "app.py").write_text("print('unsandboxed')\n")
    head = _commit_config(repo, {"gate": {"require_sandbox": False}}, "pr")
    add_verdict(repo, head, sandbox="off")
    return head


def test_merge_with_the_branch_checked_out_keeps_the_targets_rules(repo: Path, cli) -> None:
    _hostile_branch(repo)  # left checked out

    result = cli("merge", "pr", "--into", "main")

    assert result.exit_code == 1, result.output
    assert "require_sandbox" in result.output
    assert "pr" not in git(repo, "log", "--format=%s", "main").splitlines()


def test_merge_from_main_refuses_too(repo: Path, cli) -> None:
    _hostile_branch(repo)
    git(repo, "checkout", "-q", "main")

    result = cli("merge", "pr", "--into", "main")

    assert result.exit_code == 1, result.output
