"""Attacks through a plan that the change itself brings.

``verify`` reads the plan from the base; a plan that is new in the change has no other source and is
read from the head, so its text is the change's. A plan's ``scope`` that names test paths turns the
``test_deleted`` and ``assertion_removed`` rules (high: they block an approval whatever the verifier
says) into medium findings, which do not block: a pull request that deleted a test file and added a
plan whose scope named it was approved by a verifier that approved (tested before the fix).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.build_helpers import verifier_session, write_plan, write_script
from tests.helpers import git

TEST = "def test_farewell():\n    assert farewell() == 'bye'\n\n\ndef test_greet():\n    assert greet() == 'hi'\n"


def _project(repo: Path) -> None:
    (repo / "tests").mkdir()
    (repo / "tests" / "test_app.py").write_text(TEST)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tests")


def _verify(repo: Path, cli, *args: str) -> dict:
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json", *args)
    return json.loads(result.stdout) | {"exit_code": result.exit_code}


def _rule(data: dict, rule: str) -> list[dict]:
    return [f for f in data["findings"] if f.get("rule") == rule or f.get("pattern") == rule]


def test_a_plan_new_in_the_change_cannot_soften_the_test_rules_with_its_scope(repo: Path, cli) -> None:
    _project(repo)
    git(repo, "checkout", "-q", "-b", "pr")
    write_plan(repo, plan_id="9", slug="cleanup", scope=["tests/**", "src/**"], commit=False)
    (repo / "tests" / "test_app.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "clean up", "--trailer", "Agentflow-Plan: 9")

    data = _verify(repo, cli)

    [deleted] = _rule(data, "test_deleted")
    assert deleted["severity"] == "high", deleted
    assert data["outcome"] != "approved" and data["exit_code"] == 1


def test_a_plan_new_in_the_change_cannot_soften_a_removed_assertion(repo: Path, cli) -> None:
    _project(repo)
    git(repo, "checkout", "-q", "-b", "pr")
    write_plan(repo, plan_id="9", slug="cleanup", scope=["tests/test_app.py"], commit=False)
    (repo / "tests" / "test_app.py").write_text(TEST.replace("assert greet() == 'hi'", "greet()"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "loosen", "--trailer", "Agentflow-Plan: 9")

    data = _verify(repo, cli)

    [removed] = _rule(data, "assertion_removed")
    assert removed["severity"] == "high", removed
    assert data["outcome"] != "approved"


def test_the_base_plan_scope_still_softens_the_test_rules(repo: Path, cli) -> None:
    """What keeps working: a plan on the base (the trusted side wrote it) that names the tests, chosen
    by the user (``--plan``; a trailer alone chooses it only for agentflow's own build of the head,
    tests/test_attacks_trailer_plan.py)."""
    _project(repo)
    write_plan(repo, plan_id="9", slug="cleanup", scope=["tests/**"])
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "tests" / "test_app.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "clean up", "--trailer", "Agentflow-Plan: 9")

    data = _verify(repo, cli, "--plan", "9")

    [deleted] = _rule(data, "test_deleted")
    assert deleted["severity"] == "medium", deleted


PATTERNS = """# Project

## Capsule isolation

Every query filters by capsule_id; no tenant reads another tenant's rows.

## Logging style

Log lines are lowercase and end without a period.
"""


def test_a_plan_new_in_the_change_cannot_choose_which_patterns_the_verifier_sees(repo: Path, cli) -> None:
    """The base's patterns (CLAUDE.md) are chosen for the plan: the ones it names, else the ones that
    share words with it. A plan the change brings named only a harmless pattern, and the verifier never
    read the project rule the change broke (a change with no plan at all shows them all)."""
    from tests.build_helpers import first_prompt

    (repo / "CLAUDE.md").write_text(PATTERNS)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "patterns")
    git(repo, "checkout", "-q", "-b", "pr")
    write_plan(repo, plan_id="9", slug="query", extra="patterns: [logging-style]\n", commit=False)
    (repo / "query.py").write_text("def rows(db):\n    return db.all()\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "query", "--trailer", "Agentflow-Plan: 9")

    _verify(repo, cli)

    prompt = first_prompt(repo, "verifier", 1)
    assert "capsule_id" in prompt and "Log lines are lowercase" in prompt, prompt[:3000]
