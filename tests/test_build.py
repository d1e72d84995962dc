"""End-to-end build runs in temporary git repositories with the scripted backend."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from agentflow.events import BuilderCommitted, ChecksRan, RunEnded, RunStarted, SessionEnded, VerdictRecorded
from agentflow.ledger import Ledger
from agentflow.verdict import VerdictNote
from tests.build_helpers import (
    builder_session,
    finding,
    finish,
    first_prompt,
    git,
    notes,
    run_events,
    sessions,
    trailers,
    verifier_session,
    write_file,
    write_plan,
    write_script,
)


def test_approval_on_the_first_cycle(repo, cli):
    write_plan(repo)
    (repo / "README.md").write_text("# my local edit\n")  # the user's own uncommitted work
    main_head = git(repo, "rev-parse", "HEAD")
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})

    result = cli("build", ".plans/1-farewell.md", "--script", str(script))

    assert result.exit_code == 0, result.output
    assert "APPROVED after 1 cycle(s)" in result.output
    assert "next: agentflow merge 1" in result.output
    # the user's working tree and branch are untouched
    assert (repo / "README.md").read_text() == "# my local edit\n"
    assert not (repo / "src").exists()
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(repo, "rev-parse", "HEAD") == main_head
    assert git(repo, "status", "--porcelain") == "M README.md"  # .agentflow/ is excluded
    # the branch carries the builder's commit with trailers
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert git(repo, "rev-parse", "agentflow/1-farewell^") == main_head
    assert git(repo, "show", "agentflow/1-farewell:src/app.py") == "def farewell():\n    return 'bye'"
    run_id = run_events(repo, RunStarted)[0].run_id
    assert trailers(repo, head) == {"Agentflow-Plan": "1", "Agentflow-Run": run_id, "Agentflow-Cycle": "1"}
    assert (repo / ".agentflow/worktrees/1-farewell/src/app.py").is_file()
    # the verdict note is bound to the verified content
    [note] = notes(repo, head)
    assert note["outcome"] == "approved" and note["decision"] == "approve"
    assert note["plan"] == "1" and note["run"] == run_id
    assert note["tree"] == git(repo, "rev-parse", f"{head}^{{tree}}")
    assert note["base"] == main_head
    diff = git(repo, "diff", "--binary", "--full-index", f"{main_head}..{head}")
    patch_id = subprocess.run(
        ["git", "patch-id", "--verbatim"], cwd=repo, input=diff + "\n", text=True, capture_output=True
    ).stdout.split()[0]
    assert note["patch_id"] == patch_id
    assert note["models"] == {"builder": "scripted:script.yaml", "verifier": "scripted:script.yaml"}
    assert note["prompts_sha"] and note["sig"] is None
    # the ledger tells the story
    assert sessions(repo) == [("builder", 1, "completed"), ("verifier", 1, "completed")]
    [ended] = run_events(repo, RunEnded)
    assert (ended.outcome, ended.cycles, ended.commit) == ("approved", 1, head)


def test_verifier_context_is_fresh(repo, cli):
    write_plan(repo)
    script = write_script(
        repo,
        {"builder": [builder_session(summary="BUILDER-SELF-ASSESSMENT all perfect")], "verifier": [verifier_session()]},
    )
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    prompt = first_prompt(repo, "verifier", 1)
    assert "BUILDER-SELF-ASSESSMENT" not in prompt
    assert "+    return 'bye'" in prompt  # the diff
    assert "AC1" in prompt and "Add farewell" in prompt
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert "BUILDER-SELF-ASSESSMENT" not in git(repo, "log", "-1", "--format=%B", head)


def test_rework_turns_request_changes_into_approval(repo, cli):
    write_plan(repo)
    script = write_script(
        repo,
        {
            "builder": [
                builder_session(),
                [write_file("src/test_app.py", "from app import farewell\n"), finish("added the test")],
            ],
            "verifier": [
                verifier_session(
                    decision="request_changes",
                    criteria={"AC1": "met", "AC2": "unmet"},
                    findings=[finding("F1", "high", "MARKER-F1 farewell lacks a test")],
                ),
                verifier_session(),
            ],
        },
    )

    result = cli("build", "1", "--script", str(script))

    assert result.exit_code == 0, result.output
    assert "APPROVED after 2 cycle(s)" in result.output
    assert sessions(repo) == [
        ("builder", 1, "completed"),
        ("verifier", 1, "completed"),
        ("builder", 2, "completed"),
        ("verifier", 2, "completed"),
    ]
    outcomes = [(v.cycle, v.outcome) for v in run_events(repo, VerdictRecorded)]
    assert outcomes == [(1, "changes_requested"), (2, "approved")]
    # the rework builder got the finding and the unmet criterion with their ids
    rework = first_prompt(repo, "builder", 2)
    assert "**F1**" in rework and "MARKER-F1" in rework and "AC2" in rework
    assert "Rework" not in first_prompt(repo, "builder", 1)
    # the second verifier is told which finding was claimed fixed
    second = first_prompt(repo, "verifier", 2)
    assert "claimed fixed" in second and "MARKER-F1" in second
    # one commit per cycle, each with its cycle trailer; a note on each verified commit
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    first = git(repo, "rev-parse", f"{head}^")
    assert trailers(repo, first)["Agentflow-Cycle"] == "1" and trailers(repo, head)["Agentflow-Cycle"] == "2"
    assert [n["outcome"] for n in notes(repo, first)] == ["changes_requested"]
    assert [n["outcome"] for n in notes(repo, head)] == ["approved"]
    assert notes(repo, first)[0]["findings"][0]["id"] == "F1"


def test_cap_reached(repo, cli):
    write_plan(repo)
    script = write_script(
        repo,
        {
            "builder": [builder_session(content=f"x = {i}\n") for i in range(2)],
            "verifier": [verifier_session(decision="request_changes", findings=[finding(f"F{i}")]) for i in range(2)],
        },
    )

    result = cli("build", "1", "--script", str(script), "--max-cycles", "2")

    assert result.exit_code == 1, result.output
    assert "CAPPED after 2 cycle(s)" in result.output
    [ended] = run_events(repo, RunEnded)
    assert ended.outcome == "capped" and "cycle cap 2 reached" in (ended.reason or "")
    assert len(sessions(repo)) == 4


def test_plan_max_cycles_wins_over_the_option(repo, cli):
    write_plan(repo, extra="max_cycles: 1\n")
    script = write_script(
        repo,
        {
            "builder": [builder_session()],
            "verifier": [verifier_session(decision="request_changes", findings=[finding()])],
        },
    )
    result = cli("build", "1", "--script", str(script), "--max-cycles", "5")
    assert result.exit_code == 1
    assert run_events(repo, RunStarted)[0].max_cycles == 1
    assert run_events(repo, RunEnded)[0].outcome == "capped"


def test_finding_reopened_twice_stops_early(repo, cli):
    write_plan(repo)
    script = write_script(
        repo,
        {
            "builder": [builder_session(content=f"x = {i}\n") for i in range(3)],
            "verifier": [verifier_session(decision="request_changes", findings=[finding("F1")]) for _ in range(3)],
        },
    )
    result = cli("build", "1", "--script", str(script), "--max-cycles", "5")
    assert result.exit_code == 1
    [ended] = run_events(repo, RunEnded)
    assert ended.outcome == "capped" and ended.cycles == 3
    assert "F1 reopened 2 times" in (ended.reason or "")


def test_a_cycle_that_changes_nothing_stops_early(repo, cli):
    write_plan(repo)
    script = write_script(
        repo,
        {
            "builder": [builder_session(), [finish("nothing to do")]],
            "verifier": [verifier_session(decision="request_changes", findings=[finding()])],
        },
    )
    result = cli("build", "1", "--script", str(script), "--max-cycles", "4")
    assert result.exit_code == 1
    [ended] = run_events(repo, RunEnded)
    assert (ended.outcome, ended.reason) == ("capped", "cycle 2 changed nothing")
    assert sessions(repo)[-1] == ("builder", 2, "completed")  # no verifier for an empty cycle
    assert [c.commit is None for c in run_events(repo, BuilderCommitted)] == [False, True]


def test_failing_check_blocks_an_approve_decision(repo, cli):
    write_plan(repo, checks=["test -f src/app.py", "echo 'boom: 2 failed'; exit 3"])
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})

    result = cli("build", "1", "--script", str(script), "--max-cycles", "1")

    assert result.exit_code == 1, result.output
    [checks] = run_events(repo, ChecksRan)
    assert [(c.command, c.exit_code) for c in checks.results] == [
        ("test -f src/app.py", 0),
        ("echo 'boom: 2 failed'; exit 3", 3),
    ]
    assert "boom: 2 failed" in checks.results[1].output_tail
    [verdict] = run_events(repo, VerdictRecorded)
    assert verdict.decision == "approve" and verdict.outcome == "changes_requested"
    assert "check failed: echo 'boom: 2 failed'; exit 3" in (verdict.reason or "")
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    note, cap = notes(repo, head)  # the verdict, then the cap (one cycle allowed)
    assert (note["outcome"], cap["outcome"]) == ("changes_requested", "capped")
    assert [c["exit_code"] for c in note["checks"]] == [0, 3]
    # the verifier saw the failing check
    assert "FAILED (exit 3)" in first_prompt(repo, "verifier", 1)


def test_verifier_without_submit_verdict_is_no_verdict(repo, cli):
    write_plan(repo)
    script = write_script(
        repo,
        {
            "builder": [builder_session()],
            "verifier": [[{"text": "Looks fine to me."}, {"text": "Really, it is fine."}]],
        },
    )

    result = cli("build", "1", "--script", str(script))

    assert result.exit_code == 3, result.output
    assert "NO_VERDICT" in result.output
    [verdict] = run_events(repo, VerdictRecorded)
    assert verdict.outcome == "no_verdict" and verdict.verdict is None
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert notes(repo, head)[0]["outcome"] == "no_verdict"
    assert run_events(repo, RunEnded)[0].outcome == "no_verdict"


def test_backend_failure_of_the_builder_is_no_verdict(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [[{"error": "overloaded"}]], "verifier": []})
    result = cli("build", "1", "--script", str(script))
    assert result.exit_code == 3
    [ended] = run_events(repo, RunEnded)
    assert ended.outcome == "no_verdict" and "builder session failed" in (ended.reason or "")


def test_changes_outside_the_scope_are_findings(repo, cli):
    write_plan(repo, scope=["src/**"])
    script = write_script(
        repo,
        {
            "builder": [[write_file("src/app.py", "x = 1\n"), write_file("docs/notes.md", "hi\n"), finish()]],
            "verifier": [verifier_session()],
        },
    )
    result = cli("build", "1", "--script", str(script))
    assert result.exit_code == 0, result.output  # medium: reported, not blocking
    [committed] = run_events(repo, BuilderCommitted)
    assert committed.out_of_scope == ["docs/notes.md"]
    assert "scope:docs/notes.md" in first_prompt(repo, "verifier", 1)
    [verdict] = run_events(repo, VerdictRecorded)
    scope = [f for f in verdict.verdict["findings"] if f["pattern"] == "scope"]
    assert scope == [
        {
            "id": "scope:docs/notes.md",
            "severity": "medium",
            "file": "docs/notes.md",
            "pattern": "scope",
            "message": scope[0]["message"],
            "suggestion": scope[0]["suggestion"],
        }
    ]


def test_signed_notes_when_a_key_is_configured(repo, cli, monkeypatch):
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", "test-signing-key-123-0123456789abcdef0123456789")
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    [line] = subprocess.run(
        ["git", "notes", "--ref=refs/notes/agentflow", "show", head], cwd=repo, capture_output=True, text=True
    ).stdout.splitlines()
    note = VerdictNote.model_validate_json(line)
    assert note.signature_valid("test-signing-key-123-0123456789abcdef0123456789")
    assert not note.signature_valid("another-key-456")
    assert run_events(repo, VerdictRecorded)[0].signed


def test_two_plans_in_parallel(repo, cli):
    write_plan(repo, "1", "Add farewell", "farewell")
    write_plan(repo, "2", "Add greeting", "greeting")
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})

    result = cli("build", "1", "2", "-j", "2", "--script", str(script))

    assert result.exit_code == 0, result.output
    assert "2 of 2 plan(s) approved" in result.output
    started = run_events(repo, RunStarted)
    assert sorted(e.plan_id for e in started) == ["1", "2"]
    assert len({e.run_id for e in started}) == 2
    for branch, plan_id in (("agentflow/1-farewell", "1"), ("agentflow/2-greeting", "2")):
        head = git(repo, "rev-parse", branch)
        assert trailers(repo, head)["Agentflow-Plan"] == plan_id
        assert notes(repo, head)[0]["outcome"] == "approved"
    worktrees = git(repo, "worktree", "list")
    assert "1-farewell" in worktrees and "2-greeting" in worktrees


def test_rebuild_reuses_branch_and_worktree(repo, cli):
    write_plan(repo)
    first = write_script(
        repo,
        {
            "builder": [builder_session()],
            "verifier": [verifier_session(decision="request_changes", findings=[finding()])],
        },
    )
    assert cli("build", "1", "--script", str(first), "--max-cycles", "1").exit_code == 1
    second = write_script(
        repo,
        {"builder": [builder_session(path="src/test_app.py", content="ok\n")], "verifier": [verifier_session()]},
        name="second.yaml",
    )
    result = cli("build", "1", "--script", str(second))
    assert result.exit_code == 0, result.output
    assert git(repo, "rev-list", "--count", "main..agentflow/1-farewell") == "2"
    # the second run still verifies the whole change from the base
    assert "src/app.py" in first_prompt(repo, "verifier", 1)


def test_dry_run_prints_prompts_and_creates_nothing(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [], "verifier": []})
    result = cli("build", "1", "--dry-run", "--script", str(script))
    assert result.exit_code == 0, result.output
    assert "builder (scripted:script.yaml), cycle 1: first message" in result.output
    assert "verifier (scripted:script.yaml), cycle 1: system prompt" in result.output
    assert "# Plan 1: Add farewell" in result.output and "submit_verdict" in result.output
    assert not (repo / ".agentflow").exists()
    assert git(repo, "branch", "--list", "agentflow/*") == ""


def test_input_errors_exit_2_before_anything_starts(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [], "verifier": []})
    cases = [
        ("build", "404", "--script", str(script)),
        ("build", "1", "--backend", "scripted"),
        ("build", "1", "--script", str(repo / "missing.yaml")),
        ("build", "1", "1", "--script", str(script)),
        ("build", "1", "--backend", "command"),
        ("build", "1", "-j", "0", "--script", str(script)),
        ("build",),
    ]
    for args in cases:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
    (repo / "agentflow.yaml").write_text("checks: [true]\nunknown_key: 1\n")
    result = cli("build", "1", "--script", str(script))
    assert result.exit_code == 2 and "unknown_key" in result.output
    assert not (repo / ".agentflow").exists()


def test_config_checks_run_with_plan_checks(repo, cli):
    (repo / "agentflow.yaml").write_text(json.dumps({"checks": ["test -f README.md"]}))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "config")
    write_plan(repo, checks=["test -f src/app.py"])
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    [checks] = run_events(repo, ChecksRan)
    assert [c.command for c in checks.results] == ["test -f README.md", "test -f src/app.py"]
    assert all(c.passed for c in checks.results)


def test_open_evaluator_findings_that_concern_the_plan_reach_both_roles(repo, cli):
    from agentflow.events import FindingsRecorded

    write_plan(repo)
    relevant = {
        "id": "E1",
        "rule": "isolation",
        "severity": "high",
        "event_type": "FarewellCreated",
        "field": "capsule_id",
        "message": "MARKER-E1 FarewellCreated lacks capsule_id",
        "evidence": {},
    }
    unrelated = {
        "id": "E2",
        "rule": "isolation",
        "severity": "high",
        "event_type": "InvoicePaid",
        "field": "capsule_id",
        "message": "MARKER-E2 InvoicePaid lacks capsule_id",
        "evidence": {},
    }
    with Ledger.open(repo) as ledger:
        ledger.append(FindingsRecorded(findings=[relevant, unrelated]))
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    for role in ("builder", "verifier"):
        prompt = first_prompt(repo, role, 1)
        assert "MARKER-E1" in prompt and "MARKER-E2" not in prompt


def test_budget_exhausted_is_no_verdict(repo, cli):
    write_plan(repo)
    expensive = dict(builder_session()[0], cost_usd=0.5)
    script = write_script(repo, {"builder": [[expensive, finish()]], "verifier": [verifier_session()]})
    result = cli("build", "1", "--script", str(script), "--budget-usd", "0.4")
    # the builder stops at the budget (its work is committed); the verifier has no budget left
    assert result.exit_code == 3, result.output
    assert run_events(repo, RunEnded)[0].outcome == "no_verdict"
    assert [(s[0], s[2]) for s in sessions(repo)] == [("builder", "limits"), ("verifier", "limits")]
    assert run_events(repo, BuilderCommitted)[0].commit is not None


def test_scope_globs():
    from agentflow.orchestration import in_scope

    assert in_scope("src/a/b.py", ["src/**"]) and in_scope("src/b.py", ["src/**"])
    assert in_scope("src/b.py", ["src/"]) and in_scope("src/x/y.py", ["src"])
    assert in_scope("crates/m/src/lib.rs", ["crates/*/src/*.rs"])
    assert not in_scope("crates/m/src/a/lib.rs", ["crates/*/src/*.rs"])
    assert in_scope("a/b/test_x.py", ["**/test_*.py"]) and in_scope("test_x.py", ["**/test_*.py"])
    assert not in_scope("docs/x.md", ["src/**", "tests/**"])
    assert not in_scope("srcx/a.py", ["src"])
    assert in_scope("anything", [])


def test_build_help_has_examples(cli):
    result = cli("build", "--help")
    assert result.exit_code == 0
    assert "agentflow build --resume" in result.output and "--dry-run" in result.output
    result = cli("verify", "--help")
    assert "--format github" in result.output


def test_a_fresh_ledger_can_be_opened_by_parallel_runs_at_once(tmp_path):
    """-j N opens one ledger per thread at the same moment; SQLite's WAL switch must not fail."""
    import threading

    errors: list[Exception] = []
    for attempt in range(40):
        root = tmp_path / str(attempt)

        def open_it(root: Path = root) -> None:
            try:
                Ledger.open(root).close()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


def test_check_artifacts_do_not_slip_into_the_next_commit(repo, cli):
    write_plan(repo, checks=["mkdir -p build && echo artifact > build/out.txt && echo changed >> src/app.py"])
    script = write_script(
        repo,
        {
            "builder": [builder_session(), builder_session(path="src/test_app.py", content="ok\n")],
            "verifier": [verifier_session(decision="request_changes", findings=[finding()]), verifier_session()],
        },
    )
    result = cli("build", "1", "--script", str(script))
    assert result.exit_code == 0, result.output
    # checks run on a throwaway clean checkout, so the builder's worktree never sees their writes
    assert not (repo / ".agentflow" / "worktrees" / "1-farewell" / "build").exists()
    assert [p.name for p in (repo / ".agentflow" / "worktrees").iterdir()] == ["1-farewell"]  # checkouts removed
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert git(repo, "diff", "--name-only", f"{head}^", head) == "src/test_app.py"
    assert "changed" not in git(repo, "show", f"{head}:src/app.py")
