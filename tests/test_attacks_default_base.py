"""``agentflow gate`` without ``--base``: which base the checkout's ``base:`` may choose.

The checkout's config is the checked-out branch's (a pull request's, when someone looks at one), so
its ``base:`` counts only if the base's own config agrees (``agentflow.inputs.default_base``, the
one policy of ``gate`` and ``merge``). The gate followed the base's config once, but where that
led to no commit, or where the checkout's ``base:`` itself named no commit, it judged the change
by the checkout's own config, bound to its own first parent: a pull request whose config said
``base: side``, with a branch ``side`` whose config said ``base: nowhere`` (or whose config said
``base: nowhere`` itself), dropped main's ``gate.require_sandbox`` and an unsandboxed approval opened
the gate (tested before the fix: exit 0). Now each is exit 2 asking for ``--base``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.errors import ConfigError, UsageError
from agentflow.inputs import committed_config
from tests.gate_helpers import add_verdict, commit_file
from tests.helpers import git

SANDBOXED = "gate:\n  require_sandbox: true\n"


def _pr(repo: Path, config: str) -> None:
    """A one-commit pull request on main that rewrites the config, with an unsandboxed approval."""
    git(repo, "checkout", "-q", "-b", "pr", "main")
    (repo / "agentflow.yaml").write_text(config)
    (repo / "app.py").write_text("print('unsandboxed')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pr")
    add_verdict(repo, "HEAD", sandbox="off")


def test_a_base_whose_config_points_at_no_commit_does_not_hand_the_gate_to_the_checkout(repo: Path, cli) -> None:
    commit_file(repo, "agentflow.yaml", SANDBOXED, "main: sandboxed approvals only")
    git(repo, "checkout", "-q", "-b", "side")
    commit_file(repo, "agentflow.yaml", "base: nowhere\n", "side: points nowhere")
    _pr(repo, "base: side\n")

    result = cli("gate")

    assert result.exit_code == 2, result.output
    assert "'side'" in result.stderr and "nowhere" in result.stderr and "--base" in result.stderr, result.stderr
    assert cli("gate", "--base", "main").exit_code == 1  # judged by main's config: sandboxed only


def test_a_checkout_base_that_names_no_commit_is_refused(repo: Path, cli) -> None:
    commit_file(repo, "agentflow.yaml", SANDBOXED, "main: sandboxed approvals only")
    _pr(repo, "base: nowhere\n")

    result = cli("gate")

    assert result.exit_code == 2, result.output
    assert "nowhere" in result.stderr and "--base" in result.stderr, result.stderr


def test_a_clone_without_the_default_base_is_still_judged_by_its_checkout(repo: Path, cli) -> None:
    """No base revision at all (a repository whose branch is not main, no config naming one): the
    checkout's config is the only one there is, as before."""
    git(repo, "branch", "-m", "main", "trunk")
    commit_file(repo, "app.py", "print('x')\n")
    add_verdict(repo, "HEAD", base_tree=None, base="HEAD~1")

    result = cli("gate")

    assert result.exit_code in (0, 1), result.output  # judged, not refused as a usage error
    assert "names no commit" not in result.output


def test_a_following_base_that_agrees_is_taken(repo: Path, cli) -> None:
    commit_file(repo, "agentflow.yaml", SANDBOXED, "main: sandboxed approvals only")
    git(repo, "checkout", "-q", "-b", "side")
    commit_file(repo, "agentflow.yaml", "base: main\n", "side: names main")
    _pr(repo, "base: side\n")

    result = cli("gate")

    assert result.exit_code == 1, result.output  # judged by main's config, bound to main
    assert "sandbox" in result.output


def test_the_committed_config_reader_says_which_policy_each_caller_has() -> None:
    """One reader of a committed config (the gate's batched blobs, the hooks' two files), and the
    caller names its policy for one that cannot be read: the gate and merge refuse (exit 2), the hooks
    take the defaults (main and master protected)."""
    bad = {"agentflow.yaml": b"gate:\n  protected_branches: 7\n", "pyproject.toml": None}
    latin1 = {"agentflow.yaml": b"# caf\xe9\ngate:\n  protected_branches: [release]\n", "pyproject.toml": None}

    with pytest.raises(ConfigError):
        committed_config(bad, "0" * 40, invalid="refuse")
    with pytest.raises(UsageError, match="not UTF-8"):
        committed_config(latin1, "0" * 40, invalid="refuse")
    assert committed_config(bad, "0" * 40, invalid="defaults").gate.protected_branches == ["main", "master"]
    assert committed_config(latin1, "0" * 40, invalid="defaults").gate.protected_branches == ["release"]
