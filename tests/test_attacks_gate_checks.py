"""An approval verified under the base's older checks, taken by the gate after the base added one.

``verify`` reads the config and its checks at the base's tip, and the gate reads the gate settings
there too (tests/test_attacks_fork_point.py), but the gate never asked whether the approval it
takes passed the checks the base names *now*. The approval stays bound while the change's merge base
stays where it was, so a change verified on Monday opened the gate on Friday although main had added
a check in between (a secret scanner, a test the change fails), and the same held for an approval of
the same change in another repository whose main checks less (a fork, with the same signing key)
and for a check main turned into a JUnit check (``{run, junit: true}``: a run that collects no test
passes the plain command). Tested before the fix: exit 0. Now such an approval is
``needs_reverification`` naming the check; a human override still opens the gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.build_helpers import verifier_session, write_script
from tests.gate_helpers import add_verdict
from tests.helpers import git

GUARD = "! grep -rq --include=*.py backdoor ."


def _config(repo: Path, data: dict, message: str) -> None:
    (repo / "agentflow.yaml").write_text(yaml.safe_dump(data))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def _verified_pr(repo: Path, cli) -> None:
    """A pull request verified (approved, its note written) while main checks ``true`` only."""
    _config(repo, {"checks": ["true"]}, "checks")
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "app.py").write_text("def login(user):\n    return check(user)\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "login")
    script = write_script(repo, {"verifier": [verifier_session(criteria={})]})
    verified = cli("verify", "--base", "main", "--script", str(script), "--format", "json")
    assert json.loads(verified.stdout)["outcome"] == "approved", verified.output
    assert cli("gate", "pr", "--base", "main").exit_code == 0
    git(repo, "checkout", "-q", "main")


def test_an_approval_from_before_main_added_a_check_does_not_open_the_gate(repo: Path, cli) -> None:
    _verified_pr(repo, cli)
    _config(repo, {"checks": ["true", GUARD]}, "guard against backdoors")

    result = cli("gate", "pr", "--base", "main")

    assert result.exit_code == 1, result.output
    assert "needs_reverification" in result.output or "re-run `agentflow verify`" in result.output, result.output
    assert GUARD in result.output


def test_a_check_main_made_a_junit_check_needs_a_junit_run(repo: Path, cli) -> None:
    _verified_pr(repo, cli)
    _config(repo, {"checks": [{"run": "true", "junit": True}]}, "true must report its tests")

    result = cli("gate", "pr", "--base", "main")

    assert result.exit_code == 1, result.output
    assert "'true'" in result.output


def test_an_approval_that_passed_todays_checks_still_opens_it(repo: Path, cli) -> None:
    _verified_pr(repo, cli)
    _config(repo, {"checks": ["true"], "gate": {"override_not_by_author": False}}, "unrelated config change")

    assert cli("gate", "pr", "--base", "main").exit_code == 0


def test_a_human_override_still_opens_it(repo: Path, cli) -> None:
    _config(repo, {"checks": ["true", GUARD]}, "checks")
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "x")
    add_verdict(repo, "HEAD", override=True, reason="reviewed by hand", by="Reviewer <r@example.com>")

    assert cli("gate", "pr", "--base", "main").exit_code == 0
