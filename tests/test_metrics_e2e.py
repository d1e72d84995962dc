"""Metrics and show on real build runs (scripted backend): the events orchestration actually writes.

Two plans: plan 1 needs one rework cycle, then is approved and merged; plan 2 is capped after two
cycles. The report from the ledger and the one from a fresh clone must agree on what both know
(the cap included: orchestration notes it in git).
"""

from __future__ import annotations

import json
from pathlib import Path

from agentflow.ledger import Ledger
from tests.build_helpers import (
    builder_session,
    finding,
    finish,
    git,
    verifier_session,
    write_file,
    write_plan,
    write_script,
)


def build_two_plans(repo: Path, cli) -> None:
    write_plan(repo, "1", "Add farewell", "farewell")
    rework = write_script(
        repo,
        {
            "builder": [
                builder_session(summary="added farewell"),
                [write_file("src/test_app.py", "from app import farewell\n"), finish("added the test")],
            ],
            "verifier": [
                verifier_session(
                    decision="request_changes",
                    criteria={"AC1": "met", "AC2": "unmet"},
                    findings=[finding("F1", "high")],
                ),
                verifier_session(),
            ],
        },
        name="rework.yaml",
    )
    assert cli("build", "1", "--script", str(rework)).exit_code == 0
    merged = cli("merge", "1")
    assert merged.exit_code == 0, merged.output

    write_plan(repo, "2", "Add greeting", "greeting")
    capped = write_script(
        repo,
        {
            "builder": [builder_session(path="src/greet.py", content=f"x = {i}\n") for i in range(2)],
            "verifier": [
                verifier_session(decision="request_changes", findings=[finding(f"G{i}", "medium")]) for i in range(2)
            ],
        },
        name="capped.yaml",
    )
    assert cli("build", "2", "--script", str(capped), "--max-cycles", "2").exit_code == 1


def report(cli, *args: str) -> dict:
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_metrics_of_real_runs_from_the_ledger_and_from_a_fresh_clone(repo: Path, cli, tmp_path: Path) -> None:
    build_two_plans(repo, cli)
    ledger = report(cli, "metrics", "--since", "1d")
    assert ledger["plans"] == {"built": 2, "approved": 1, "merged": 1, "capped": 1, "rejected": 0}
    assert ledger["runs"] == 2
    assert ledger["sessions"] == {"builder": 4, "verifier": 4, "evaluator": 0}
    assert ledger["cycles"]["total"] == 4 and ledger["cycles"]["max"] == 2
    assert ledger["first_pass_approval_rate"] == 0.0
    assert ledger["outcomes"] == {"approved": 1, "changes_requested": 3, "rejected": 0, "no_verdict": 0, "capped": 1}
    assert ledger["findings"]["by_severity"]["high"] == 1 and ledger["findings"]["by_severity"]["medium"] == 2
    assert ledger["findings"]["by_pattern"] == {"tested-code": 3}
    assert ledger["commits"] == 4
    assert ledger["previous"]["empty"] is True

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), clone.name)
    git(clone, "fetch", "-q", "origin", "refs/notes/agentflow:refs/notes/agentflow")
    from_git = report(cli, "-C", str(clone), "metrics", "--since", "1d", "--from-git")
    for key in ("runs", "cycles", "first_pass_approval_rate", "findings", "commits"):
        assert from_git[key] == ledger[key], key
    # the cap travels as a final "capped" note line, so git knows it too
    assert from_git["plans"] == ledger["plans"]
    assert from_git["outcomes"] == ledger["outcomes"]


def test_show_of_a_real_rework_run(repo: Path, cli) -> None:
    build_two_plans(repo, cli)
    with Ledger.open(repo) as ledger:
        first = ledger.run_ids()[0]
    out = cli("show", first, "--transcripts").stdout
    assert "Plan:     1 Add farewell" in out and "Outcome:  approved" in out
    assert "added farewell" in out and "added the test" in out
    assert "verdict   changes_requested (decision: request_changes)" in out
    assert "verdict   approved (decision: approve)" in out
    assert "finding F1 high [tested-code] src/app.py:1: farewell lacks a test" in out
    assert "AC2: unmet" in out
    assert "[assistant → submit_verdict]" in out  # the verifier's transcript
