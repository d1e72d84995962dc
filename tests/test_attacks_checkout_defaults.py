"""What the checkout's config still decided by default, with a pull request's branch checked out.

* ``agentflow merge BRANCH`` without ``--into`` merged into the checkout's ``base:``: a branch whose
  ``agentflow.yaml`` said ``base: release`` had its merge land on ``release`` (judged by release's
  config), not on main where the user meant it to go (tested before the fix: merged into release).
  The default target is now taken only when the base branch's own config, at its tip, names the same
  base; otherwise exit 2, asking for ``--into``.
* The pre-push hook judged a push whose remote commit the clone does not have (the remote moved
  since the last fetch) by the work tree's config alone: a branch's ``protected_branches:
  [nothing]`` let its forced push over main through unapproved (tested before the fix). It is now
  judged by the config of the remote-tracking branch (``refs/remotes/<remote>/<branch>``, the last
  state of the remote the clone saw) as well, else by agentflow's defaults (main, master protected).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.gate_helpers import add_verdict, commit_file
from tests.helpers import git

UNPROTECT = "gate:\n  protected_branches: [nothing]\n"


def test_merge_without_into_does_not_follow_the_checked_out_branchs_base(repo: Path, cli) -> None:
    git(repo, "branch", "release")
    git(repo, "checkout", "-q", "-b", "pr")
    commit_file(repo, "agentflow.yaml", "base: release\n", "pr: config")
    commit_file(repo, "app.py", "print('pr')\n", "pr: code")
    add_verdict(repo, "HEAD")  # an approval bound to main's tip (the same commit as release's)
    release = git(repo, "rev-parse", "release")

    result = cli("merge", "pr")

    assert result.exit_code == 2, result.output
    assert "--into" in result.stderr and "release" in result.stderr, result.stderr
    assert git(repo, "rev-parse", "release") == release


def test_merge_without_into_takes_a_base_its_own_config_names(repo: Path, cli) -> None:
    commit_file(repo, "agentflow.yaml", "base: main\n", "config")
    git(repo, "checkout", "-q", "-b", "pr")
    commit_file(repo, "app.py", "print('pr')\n", "pr: code")
    add_verdict(repo, "HEAD")
    git(repo, "checkout", "-q", "main")

    result = cli("merge", "pr")

    assert result.exit_code == 0, result.output
    assert "merged pr into main" in result.output


def _clone_behind(repo: Path, tmp_path: Path) -> Path:
    """A clone whose origin/main is behind the remote (someone else pushed since its last fetch)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    git(other, "config", "user.email", "o@example.com")
    git(other, "config", "user.name", "O")
    commit_file(other, "notes.txt", "someone else's commit\n")
    git(other, "push", "-q", "origin", "main")
    return remote


def test_pre_push_over_an_unknown_remote_tip_keeps_the_branchs_protection(repo: Path, cli, tmp_path: Path) -> None:
    _clone_behind(repo, tmp_path)
    cli("hooks", "install")
    (repo / "agentflow.yaml").write_text(UNPROTECT)
    (repo / "app.py").write_text("print('unverified')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "feature")

    proc = subprocess.run(
        ["git", "push", "--force", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False
    )

    assert proc.returncode != 0 and "refusing" in proc.stderr, proc.stderr


def test_pre_push_over_an_unknown_tip_of_an_unprotected_branch_goes_through(repo: Path, cli, tmp_path: Path) -> None:
    remote = _clone_behind(repo, tmp_path)
    git(repo, "checkout", "-q", "-b", "topic")
    git(repo, "push", "-q", "origin", "topic")
    other = tmp_path / "other"
    git(other, "fetch", "-q", "origin")
    git(other, "checkout", "-q", "-b", "topic", "origin/topic")
    commit_file(other, "t.txt", "theirs\n")
    git(other, "push", "-q", "origin", "topic")
    cli("hooks", "install")
    commit_file(repo, "app.py", "print('topic')\n")

    proc = subprocess.run(
        ["git", "push", "--force", "origin", "topic"], cwd=repo, capture_output=True, text=True, check=False
    )

    assert proc.returncode == 0, proc.stderr
    assert git(remote, "rev-parse", "topic") == git(repo, "rev-parse", "topic")


def test_gate_without_base_is_judged_by_the_config_of_the_base_it_binds_to(repo: Path, cli) -> None:
    """``agentflow gate`` without ``--base`` read the checkout's ``base:`` (a pull request's ``base:
    side``) and judged by the config at that branch's tip, while binding the approval to the base that
    config names (main): a side branch the pull request's author pushed, whose config dropped main's
    ``require_sandbox``, let an unsandboxed approval open the gate (tested before the fix)."""
    commit_file(repo, "agentflow.yaml", "gate:\n  require_sandbox: true\n", "main: sandboxed approvals only")
    git(repo, "checkout", "-q", "-b", "side")
    commit_file(repo, "agentflow.yaml", "base: main\ngate:\n  require_sandbox: false\n", "side: looser")
    git(repo, "checkout", "-q", "-b", "pr", "main")
    commit_file(repo, "agentflow.yaml", "base: side\ngate:\n  require_sandbox: true\n", "pr: config")
    commit_file(repo, "app.py", "print('unsandboxed')\n", "pr: code")
    add_verdict(repo, "HEAD", sandbox="off")

    result = cli("gate")

    assert result.exit_code == 1, result.output
    assert "sandbox" in result.output, result.output
