"""End to end: a scripted build writes the verdict note; the gate and merge act on it."""

from __future__ import annotations

from agentflow.events import Merged
from agentflow.ledger import Ledger
from tests.build_helpers import builder_session, finding, git, verifier_session, write_plan, write_script

BRANCH = "agentflow/1-farewell"


def test_build_then_gate_then_merge_by_plan_id(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    worktree = repo / ".agentflow" / "worktrees" / "1-farewell"
    assert worktree.is_dir()

    gate = cli("gate", BRANCH)
    assert gate.exit_code == 0, gate.output
    assert "plan 1" in gate.output

    merge = cli("merge", "1")
    assert merge.exit_code == 0, merge.output
    assert git(repo, "rev-parse", "main^2") == git(repo, "rev-parse", BRANCH)
    assert (repo / "src" / "app.py").read_text() == "def farewell():\n    return 'bye'\n"
    assert not worktree.exists()
    with Ledger.open(repo) as ledger:
        [merged] = [e for e in ledger.events(kinds=["merged"]) if isinstance(e, Merged)]
    assert merged.plan_id == "1" and merged.into == "main" and merged.run_id


def test_build_with_changes_requested_cannot_merge(repo, cli):
    write_plan(repo, extra="max_cycles: 1\n")
    script = write_script(
        repo,
        {
            "builder": [builder_session()],
            "verifier": [verifier_session(decision="request_changes", findings=[finding("F1", "high", "no test")])],
        },
    )
    assert cli("build", "1", "--script", str(script)).exit_code == 1
    before = git(repo, "rev-parse", "main")
    merge = cli("merge", "1")
    assert merge.exit_code == 1
    assert "not approved" in merge.output and "F1" in merge.output
    assert git(repo, "rev-parse", "main") == before
