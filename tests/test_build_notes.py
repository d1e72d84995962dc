"""What build runs write into git notes for a fresh clone: cycle, run start and estimate on every
verdict line, and a final ``capped`` line when a run is capped (the gate stays closed on it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow.events import RunStarted
from agentflow.ledger import Ledger
from agentflow.verdict import VerdictNote
from tests.build_helpers import (
    builder_session,
    finding,
    finish,
    git,
    notes,
    verifier_session,
    write_plan,
    write_script,
)


def run_started(root: Path) -> list[RunStarted]:
    with Ledger.open(root) as ledger:
        return [e for e in ledger.events(kinds=["run_started"]) if isinstance(e, RunStarted)]


def capped_script(repo: Path, cycles: int = 2) -> Path:
    return write_script(
        repo,
        {
            "builder": [builder_session(path="src/greet.py", content=f"x = {i}\n") for i in range(cycles)],
            "verifier": [
                verifier_session(decision="request_changes", findings=[finding(f"G{i}", "medium")])
                for i in range(cycles)
            ],
        },
        name="capped.yaml",
    )


def test_verdict_notes_carry_cycle_run_start_and_estimate(repo: Path, cli) -> None:
    write_plan(repo, extra="estimate: 2d\n")
    script = write_script(
        repo,
        {
            "builder": [builder_session(), builder_session(content="def farewell():\n    return 'bye!'\n")],
            "verifier": [verifier_session(decision="request_changes", findings=[finding()]), verifier_session()],
        },
    )
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    [start] = run_started(repo)
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    first = git(repo, "rev-parse", "agentflow/1-farewell^")
    [rework], [approved] = notes(repo, first), notes(repo, head)
    assert (rework["cycle"], approved["cycle"]) == (1, 2)
    for note in (rework, approved):
        assert note["run_started"] == start.ts.isoformat(timespec="seconds")
        assert note["estimate_hours"] == 16.0
        assert note["run_started"] <= note["ts"]


def test_a_plan_without_estimate_notes_null(repo: Path, cli) -> None:
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    [note] = notes(repo, git(repo, "rev-parse", "agentflow/1-farewell"))
    assert "estimate_hours" in note and note["estimate_hours"] is None


def test_a_capped_run_appends_a_capped_line_and_the_gate_stays_closed(repo: Path, cli) -> None:
    write_plan(repo, "2", "Add greeting", "greeting", extra="estimate: 4h\n")
    result = cli("build", "2", "--script", str(capped_script(repo)), "--max-cycles", "2")
    assert result.exit_code == 1, result.output
    head = git(repo, "rev-parse", "agentflow/2-greeting")
    verdict, cap = notes(repo, head)
    assert (verdict["outcome"], cap["outcome"]) == ("changes_requested", "capped")
    assert cap["run"] == verdict["run"] and cap["plan"] == "2" and cap["decision"] is None
    assert cap["cycle"] == 2 and cap["estimate_hours"] == 4.0 and cap["run_started"] == verdict["run_started"]
    assert "cycle cap 2 reached" in cap["reason"]
    assert cap["tree"] == git(repo, "rev-parse", f"{head}^{{tree}}")
    assert [f["id"] for f in cap["findings"]] == ["G1"]  # the gate lists what blocks
    assert cap["ts"] >= verdict["ts"]

    gate = cli("gate", "agentflow/2-greeting", "--format", "json")
    assert gate.exit_code == 1, gate.output
    decided = json.loads(gate.stdout)
    assert decided["open"] is False and decided["status"] == "not_approved"
    assert decided["note"]["outcome"] == "capped"


def test_a_cap_after_an_empty_rework_is_noted_on_the_last_verified_commit(repo: Path, cli) -> None:
    write_plan(repo)
    script = write_script(
        repo,
        {
            "builder": [builder_session(), [finish("nothing to do")]],
            "verifier": [verifier_session(decision="request_changes", findings=[finding()])],
        },
    )
    assert cli("build", "1", "--script", str(script), "--max-cycles", "4").exit_code == 1
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert [(n["outcome"], n["cycle"]) for n in notes(repo, head)] == [("changes_requested", 1), ("capped", 2)]
    assert notes(repo, head)[-1]["reason"] == "cycle 2 changed nothing"


def test_a_cap_before_any_verification_writes_no_note(repo: Path, cli) -> None:
    write_plan(repo)
    main_head = git(repo, "rev-parse", "main")
    script = write_script(repo, {"builder": [[finish("nothing to do")]], "verifier": []})
    assert cli("build", "1", "--script", str(script)).exit_code == 1
    assert notes(repo, main_head) == []  # never a note on a commit nobody verified
    assert git(repo, "notes", "--ref=refs/notes/agentflow", "list") == ""


def test_the_capped_line_is_signed_with_the_key(repo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", "k3y-0123456789abcdef0123456789-capped")
    write_plan(repo)
    assert cli("build", "1", "--script", str(capped_script(repo, 1)), "--max-cycles", "1").exit_code == 1
    lines = notes(repo, git(repo, "rev-parse", "agentflow/1-farewell"))
    assert [n["outcome"] for n in lines] == ["changes_requested", "capped"]
    assert all(VerdictNote.model_validate(n).signature_valid("k3y-0123456789abcdef0123456789-capped") for n in lines)
    gate = cli("gate", "agentflow/1-farewell", "--format", "json")
    assert gate.exit_code == 1 and json.loads(gate.stdout)["status"] == "not_approved"


def test_metrics_from_a_fresh_clone_report_caps_time_to_approval_and_estimate(repo: Path, cli, tmp_path: Path) -> None:
    write_plan(repo, extra="estimate: 2d\n")
    rework = write_script(
        repo,
        {
            "builder": [builder_session(), builder_session(content="def farewell():\n    return 'bye!'\n")],
            "verifier": [verifier_session(decision="request_changes", findings=[finding()]), verifier_session()],
        },
    )
    assert cli("build", "1", "--script", str(rework)).exit_code == 0
    write_plan(repo, "2", "Add greeting", "greeting")
    assert cli("build", "2", "--script", str(capped_script(repo)), "--max-cycles", "2").exit_code == 1

    ledger = json.loads(cli("metrics", "--since", "1d", "--format", "json").stdout)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), clone.name)
    git(clone, "fetch", "-q", "origin", "refs/notes/agentflow:refs/notes/agentflow")
    result = cli("-C", str(clone), "metrics", "--since", "1d", "--from-git", "--format", "json")
    assert result.exit_code == 0, result.output
    from_git = json.loads(result.stdout)

    assert from_git["plans"]["capped"] == ledger["plans"]["capped"] == 1
    assert from_git["outcomes"] == ledger["outcomes"]
    assert from_git["outcomes"]["capped"] == 1 and from_git["outcomes"]["changes_requested"] == 3
    assert from_git["cycles"] == ledger["cycles"]
    assert from_git["estimate"]["estimated_hours"] == ledger["estimate"]["estimated_hours"] == 16.0
    assert from_git["estimate"]["plans"] == ledger["estimate"]["plans"] == 1
    # notes have whole seconds: the clone's hours can differ from the ledger's by under a second
    for key in ("mean", "max"):
        hours = from_git["time_to_approval_hours"][key]
        assert hours is not None and 0 <= hours <= ledger["time_to_approval_hours"][key] + 0.01
    assert from_git["estimate"]["actual_hours"] is not None


def test_a_run_killed_after_its_cap_note_does_not_note_the_cap_twice(
    repo: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentflow.events import RunEnded
    from agentflow.orchestration.run import Run

    write_plan(repo)
    real_emit = Run.emit

    def emit(self, event):  # type: ignore[no-untyped-def]
        if isinstance(event, RunEnded):
            raise KeyboardInterrupt  # the cap is in git, its RunEnded never reached the ledger
        real_emit(self, event)

    monkeypatch.setattr(Run, "emit", emit)
    script = capped_script(repo, 1)
    assert cli("build", "1", "--script", str(script), "--max-cycles", "1").exit_code == 130
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert [n["outcome"] for n in notes(repo, head)] == ["changes_requested", "capped"]
    monkeypatch.setattr(Run, "emit", real_emit)
    [start] = run_started(repo)

    resumed = cli("build", "--resume", start.run_id, "--script", str(script))

    assert resumed.exit_code == 1, resumed.output
    assert [n["outcome"] for n in notes(repo, head)] == ["changes_requested", "capped"]
