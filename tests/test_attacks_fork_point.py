"""Attacks that choose which of the base's past configs judges a change.

``verify`` and ``gate`` read the config, checks, prompts, patterns and plan from the base, which the
change cannot edit. They read them at the change's merge base with the base branch, and the change
chooses its merge base: a branch forked before main added a check, or turned on
``gate.require_sandbox``, was judged by main's older, looser config, and approved; merged, it
lands on today's main, whose rules it never met (tested before the fix). The base's rules are
today's: its tip (what ``--base`` names), while the diff and the binding stay on the merge base.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.build_helpers import notes, verifier_session, write_script
from tests.gate_helpers import add_verdict
from tests.helpers import git

GUARD = "! grep -rq --include=*.py backdoor ."  # main's newer check: no backdoor in the tree


def _config(repo: Path, data: dict, message: str) -> str:
    (repo / "agentflow.yaml").write_text(yaml.safe_dump(data))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def _old_fork_pr(repo: Path, old: str) -> str:
    git(repo, "checkout", "-q", "-b", "pr", old)
    (repo / "app.py").write_text("def login(user):\n    return user == 'backdoor' or check(user)\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "login")
    return git(repo, "rev-parse", "HEAD")


def test_a_change_forked_before_main_added_a_check_is_judged_by_that_check(repo: Path, cli) -> None:
    old = _config(repo, {"checks": ["true"]}, "checks")
    git(repo, "checkout", "-q", "main")
    _config(repo, {"checks": ["true", GUARD]}, "guard against backdoors")
    head = _old_fork_pr(repo, old)
    script = write_script(repo, {"verifier": [verifier_session(criteria={})]})

    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json")

    data = json.loads(result.stdout)
    commands = [c["command"] for c in data["checks"]]
    assert GUARD in commands, commands
    assert data["outcome"] != "approved" and result.exit_code == 1, result.output
    assert all(n["outcome"] != "approved" for n in notes(repo, head))
    assert cli("gate", "pr", "--base", "main").exit_code == 1


def test_a_change_forked_before_main_required_the_sandbox_cannot_use_an_unsandboxed_approval(repo: Path, cli) -> None:
    old = _config(repo, {"sandbox": {"mode": "off"}}, "no sandbox yet")
    git(repo, "checkout", "-q", "main")
    _config(repo, {"gate": {"require_sandbox": True}}, "sandboxed approvals only")
    head = _old_fork_pr(repo, old)
    add_verdict(repo, head, sandbox="off")  # what verify wrote under the fork point's mode: off

    result = cli("gate", "pr", "--base", "main")

    assert result.exit_code == 1, result.output
    assert "require_sandbox" in result.output


def test_the_gate_without_a_merge_base_does_not_take_the_changes_config(repo: Path, cli) -> None:
    """A change with no history in common with the base (an orphan branch) was judged by the
    checkout's own config, which in CI is the change's."""
    _config(repo, {"gate": {"require_sandbox": True}}, "sandboxed approvals only")
    git(repo, "checkout", "-q", "--orphan", "pr")
    git(repo, "rm", "-rq", "--cached", ".")
    (repo / "agentflow.yaml").write_text(yaml.safe_dump({"gate": {"require_sandbox": False}}))
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", "agentflow.yaml", "app.py")
    git(repo, "commit", "-q", "-m", "orphan")
    add_verdict(repo, "HEAD", sandbox="off", base_tree="4b825dc642cb6eb9a060e54bf8d69288fbee4904")

    result = cli("gate", "HEAD", "--base", "main")

    assert result.exit_code == 1, result.output
