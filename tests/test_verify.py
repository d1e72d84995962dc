"""``agentflow verify``: the CI step on base...head of the current repository."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from agentflow.events import ChecksRan, RunEnded, RunStarted, SessionEnded
from agentflow.ledger import Ledger
from tests.build_helpers import (
    feature,
    finding,
    first_prompt,
    git,
    notes,
    run_events,
    verdict,
    verifier_session,
    write_plan,
    write_script,
)
from tests.helpers import (
    HOSTILE_ESCAPED,
    HOSTILE_MARKDOWN,
    hostile_rows,
    markdown_cells,
    one_line_exit_2,
    validate_junit,
    validate_sarif,
)


def test_verify_takes_the_plan_from_the_trailer_and_records_a_note(repo, cli):
    write_plan(repo, checks=["test -f src/app.py"])
    main = git(repo, "rev-parse", "main")
    head = feature(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})

    result = cli("verify", "--script", str(script), "--format", "json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "approved" and data["plan_id"] == "1"
    assert data["head"] == head and data["base_commit"] == main
    assert [c["id"] for c in data["criteria"]] == ["AC1", "AC2"]
    assert data["checks"][0]["passed"] is True
    [note] = notes(repo, head)
    assert note["outcome"] == "approved" and note["plan"] == "1"
    assert note["tree"] == git(repo, "rev-parse", "HEAD^{tree}") and note["base"] == main
    [started] = run_events(repo, RunStarted)
    assert started.mode == "verify" and started.plan_id == "1"
    assert run_events(repo, RunEnded)[0].outcome == "approved"
    assert [(e.role, e.status) for e in run_events(repo, SessionEnded)] == [("verifier", "completed")]
    prompt = first_prompt(repo, "verifier", 1)
    assert "# Verify plan 1: Add farewell" in prompt and "+    return 'bye'" in prompt
    assert git(repo, "status", "--porcelain") == ""  # the verifier left the tree alone


def test_verify_without_a_plan_judges_against_patterns(repo, cli):
    (repo / "CLAUDE.md").write_text("# Project\n\n## Tested code\n\nEvery function has a test.\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "patterns")
    feature(repo, plan_id=None)
    script = write_script(repo, {"verifier": [verifier_session(criteria={})]})
    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["plan_id"] is None
    prompt = first_prompt(repo, "verifier", 1)
    assert "No plan names this change" in prompt and "Every function has a test." in prompt


def test_verify_plan_option_wins_and_unanswered_criteria_block(repo, cli):
    write_plan(repo)
    write_plan(repo, "2", "Other plan", "other")
    feature(repo, plan_id="1")
    script = write_script(repo, {"verifier": [verifier_session(criteria={"AC1": "met"})]})
    result = cli("verify", "--plan", "2", "--script", str(script), "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["plan_id"] == "2" and data["outcome"] == "changes_requested"
    assert "criterion AC2 not answered" in data["reasons"]
    assert {c["id"]: c["status"] for c in data["criteria"]} == {"AC1": "met", "AC2": "unanswered"}


def test_verify_exit_codes(repo, cli):
    write_plan(repo)
    feature(repo)
    changes = write_script(
        repo, {"verifier": [verifier_session(decision="request_changes", findings=[finding()])]}, name="c.yaml"
    )
    assert cli("verify", "--script", str(changes)).exit_code == 1
    silent = write_script(repo, {"verifier": [[{"text": "hmm"}, {"text": "hmm"}]]}, name="s.yaml")
    result = cli("verify", "--script", str(silent))
    assert result.exit_code == 3 and "no_verdict" in result.stdout
    assert cli("verify", "--script", str(silent), "--backend", "command").exit_code == 2
    assert cli("verify", "--script", str(silent), "--format", "yaml").exit_code == 2
    assert cli("verify", "--script", str(silent), "--base", "nope").exit_code == 2


def test_verify_another_head_uses_a_temporary_worktree(repo, cli):
    write_plan(repo, checks=["test -f src/app.py"])
    head = feature(repo)
    git(repo, "checkout", "-q", "main")
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--head", "feature", "--script", str(script), "--format", "json")
    assert result.exit_code == 0, result.output
    [checks] = run_events(repo, ChecksRan)
    assert checks.results[0].passed  # ran in a tree of the feature commit
    assert notes(repo, head)[0]["outcome"] == "approved"
    assert len(git(repo, "worktree", "list").splitlines()) == 1  # removed again
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"


def test_verify_formats_end_to_end(repo, cli, tmp_path, monkeypatch):
    write_plan(repo, checks=["echo 'E: 1 failed, 50%'; exit 1"])
    feature(repo)
    findings = [finding("F1", "high", "capsule_id missing: tenants a, b leak 100%")]
    sessions = [
        verifier_session(decision="request_changes", criteria={"AC1": "met", "AC2": "unmet"}, findings=findings)
        for _ in range(6)
    ]
    script = write_script(repo, {"verifier": sessions})
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    outputs = {}
    for fmt in ("text", "json", "md", "github", "sarif", "junit"):
        target = tmp_path / f"out.{fmt}"
        result = cli("verify", "--script", str(script), "--format", fmt, "--output", str(target))
        assert result.exit_code == 1, (fmt, result.output)
        outputs[fmt] = target.read_text()

    assert "F1 src/app.py:1 [tested-code]" in outputs["text"]
    assert json.loads(outputs["json"])["findings"][0]["id"] == "F1"
    assert "### Findings" in outputs["md"]
    github = outputs["github"].splitlines()
    f1 = next(line for line in github if "title=F1" in line)
    assert f1.startswith("::error file=src/app.py,line=1,title=F1 (high) [tested-code]::")
    assert "tenants a, b leak 100%25" in f1
    check_line = next(line for line in github if "title=check failed" in line)
    assert "check failed%3A echo 'E%3A 1 failed%2C 50%25'; exit 1::" in check_line
    assert "agentflow verify" in summary.read_text()
    sarif = json.loads(outputs["sarif"])
    validate_sarif(sarif)
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"pattern/tested-code", "agentflow/check", "agentflow/criterion"}
    plan_file = next((repo / ".plans").glob("*.md"))
    plan_lines = plan_file.read_text().splitlines()
    for result in results:  # every result points at a real line of a file in the repository
        location = result["locations"][0]["physicalLocation"]
        line = plan_lines if location["artifactLocation"]["uri"] == f".plans/{plan_file.name}" else None
        assert (repo / location["artifactLocation"]["uri"]).is_file()
        if result["ruleId"] == "agentflow/check":
            assert "exit 1" in line[location["region"]["startLine"] - 1]  # the line declaring the check
        if result["ruleId"] == "agentflow/criterion":
            assert line[location["region"]["startLine"] - 1].startswith("- AC2")
    validate_junit(outputs["junit"])
    junit = ET.fromstring(outputs["junit"].encode())
    cases = {c.get("name"): c for c in junit.iter("testcase")}
    assert cases["AC2: the tests pass"].find("failure") is not None
    assert cases['AC1: `farewell()` returns "bye"'].find("failure") is None
    assert cases["echo 'E: 1 failed, 50%'; exit 1"].find("failure") is not None
    with Ledger.open(repo) as ledger:
        assert len([r for r in ledger.runs() if r.mode == "verify"]) == 6


def test_verify_with_a_signing_key_signs_the_note(repo, cli, monkeypatch):
    from agentflow.verdict import VerdictNote

    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", "k" * 32)
    write_plan(repo)
    head = feature(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})
    assert cli("verify", "--script", str(script)).exit_code == 0
    note = VerdictNote.model_validate(notes(repo, head)[0])
    assert note.signature_valid("k" * 32)


def test_verify_programmatic_api(repo):
    """The library entry point the demo uses."""
    from agentflow.orchestration import BuildOptions, verify
    from agentflow.report.verify import render

    write_plan(repo)
    feature(repo)
    script = write_script(
        repo,
        {
            "verifier": [
                [
                    {
                        "tool_calls": [
                            {"name": "submit_verdict", "input": {"decision": "not-a-decision", "summary": "x"}}
                        ]
                    },
                    {"tool_calls": [{"name": "submit_verdict", "input": verdict()}]},
                ]
            ]
        },
    )
    report = verify(repo, base="main", options=BuildOptions(script=script))
    assert report.outcome == "approved"  # the invalid verdict was a tool error; the retry counted
    assert "approved" in render(report, "text")


def test_verify_without_a_git_identity_still_records_its_note(repo, cli, monkeypatch, tmp_path):
    """CI runners usually have no user.name/user.email: the note must not fail after the session ran."""
    write_plan(repo)
    head = feature(repo)
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-config"))
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.setenv(name, "")  # recorded, so the fallback agentflow sets is undone after the test
        monkeypatch.delenv(name)
    git(repo, "config", "user.useConfigOnly", "true")  # no guessing from the host name
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--script", str(script))
    assert result.exit_code == 0, result.output
    assert "agentflow <agentflow@localhost>" in result.output
    assert notes(repo, head)[0]["outcome"] == "approved"


def test_verify_refuses_an_empty_change(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--script", str(script))
    assert result.exit_code == 2 and "nothing to verify" in result.output
    assert not (repo / ".agentflow").exists()


def verify_runs(root: Path) -> int:
    if not (root / ".agentflow" / "ledger.db").exists():
        return 0
    with Ledger.open(root) as ledger:
        return len([r for r in ledger.runs() if r.mode == "verify"])


def test_one_verification_writes_every_report(repo, cli, tmp_path):
    write_plan(repo, checks=["echo broken; exit 1"])
    head = feature(repo)
    script = write_script(repo, {"verifier": [verifier_session(decision="request_changes", findings=[finding()])]})
    out = tmp_path / "reports"
    result = cli(
        "verify",
        "--script",
        str(script),
        "--format",
        "github",
        "--sarif",
        str(out / "a.sarif"),
        "--junit",
        str(out / "a.xml"),
        "--md",
        str(out / "a.md"),
        "--json",
        str(out / "a.json"),
    )

    assert result.exit_code == 1, result.output
    assert "::error file=src/app.py,line=1,title=F1 (high) [tested-code]::" in result.stdout  # the main report
    assert verify_runs(repo) == 1 and len(notes(repo, head)) == 1  # paid for and recorded once
    report = json.loads((out / "a.json").read_text())
    assert report["outcome"] == "changes_requested" and report["findings"][0]["id"] == "F1"
    sarif = json.loads((out / "a.sarif").read_text())
    validate_sarif(sarif)
    assert sarif["runs"][0]["invocations"][0]["properties"]["outcome"] == "changes_requested"
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} >= {"pattern/tested-code", "agentflow/check"}
    cases = {c.get("name") for c in ET.fromstring((out / "a.xml").read_bytes()).iter("testcase")}
    assert "echo broken; exit 1" in cases
    assert "### Findings" in (out / "a.md").read_text()
    for name in ("a.sarif", "a.xml", "a.md", "a.json"):
        assert f"wrote {out / name}" in result.stderr


def test_extra_reports_next_to_an_output_file(repo, cli, tmp_path):
    write_plan(repo)
    feature(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli(
        "verify",
        "--script",
        str(script),
        "--format",
        "junit",
        "--output",
        str(tmp_path / "j.xml"),
        "--sarif",
        str(tmp_path / "s.sarif"),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert ET.fromstring((tmp_path / "j.xml").read_bytes()).tag == "testsuites"
    assert json.loads((tmp_path / "s.sarif").read_text())["runs"][0]["results"] == []


def test_two_reports_to_one_file_are_refused_before_verifying(repo, cli, tmp_path):
    write_plan(repo)
    feature(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})
    target = tmp_path / "out.sarif"
    result = cli(
        "verify",
        "--script",
        str(script),
        "--format",
        "sarif",
        "--output",
        str(target),
        "--junit",
        str(tmp_path / "." / "out.sarif"),
    )
    assert result.exit_code == 2
    assert "the sarif and junit reports would both be written to" in result.stderr
    assert verify_runs(repo) == 0 and not target.exists()


def test_an_unwritable_report_is_refused_before_verifying(repo, cli, tmp_path):
    write_plan(repo)
    head = feature(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    for bad, problem in (
        (tmp_path / "a-file" / "x.sarif", f"{tmp_path / 'a-file'}: is not a folder"),
        (tmp_path / "a-folder", f"{tmp_path / 'a-folder'}: is a folder, not a file"),
    ):
        result = cli("verify", "--script", str(script), "--md", str(tmp_path / "ok.md"), "--sarif", str(bad))
        one_line_exit_2(result, problem)
        assert verify_runs(repo) == 0 and notes(repo, head) == [] and not (tmp_path / "ok.md").exists()


def test_an_unwritable_report_is_exit_2_after_the_others_are_written(repo, cli, tmp_path, monkeypatch):
    import agentflow.files

    monkeypatch.setattr(agentflow.files, "check_report_file", lambda path: None)  # became unwritable meanwhile
    write_plan(repo)
    head = feature(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})
    (tmp_path / "a-file").write_text("not a folder\n")
    result = cli(
        "verify",
        "--script",
        str(script),
        "--sarif",
        str(tmp_path / "a-file" / "x.sarif"),
        "--md",
        str(tmp_path / "ok.md"),
    )
    assert result.exit_code == 2
    assert "could not write the report(s)" in result.stderr and "x.sarif" in result.stderr
    assert "the verdict is recorded" in result.stderr
    assert f"make {tmp_path / 'a-file'} a writable folder" in result.stderr  # the folder's own fix, named
    assert sum("could not write" in line for line in result.stderr.splitlines()) == 1, result.stderr
    assert "APPROVED" in result.stdout.upper() and (tmp_path / "ok.md").is_file()
    assert notes(repo, head)[0]["outcome"] == "approved"


def test_verify_markdown_escapes_hostile_model_text(repo, cli):
    """A verdict whose summary, finding and evidence hold ``<script>``, a backslash-pipe and a newline: the
    step summary (a PR comment) gets no raw HTML and no broken row."""
    write_plan(repo)
    feature(repo)
    session = verifier_session(
        decision="request_changes", summary=HOSTILE_MARKDOWN, findings=[finding("F1", "high", HOSTILE_MARKDOWN)]
    )
    session[-1]["tool_calls"][0]["input"]["criteria"][0]["evidence"] = HOSTILE_MARKDOWN
    script = write_script(repo, {"verifier": [session] * 3})
    result = cli("verify", "--script", str(script), "--format", "md")
    assert result.exit_code == 1, result.output
    out = result.stdout
    rows = hostile_rows(out)
    assert [len(r) for r in rows] == [4, 5], out  # the criterion, the finding
    assert rows[0][3] == HOSTILE_ESCAPED and rows[1][4] == HOSTILE_ESCAPED
    assert f"> {HOSTILE_ESCAPED}" in out.splitlines()


def test_verify_markdown_shows_check_commands_as_written_in_code_spans(repo, cli):
    """A check command is a code span: ``2>&1`` stays readable (entities would show literally inside code),
    its pipe cannot split the row, and a backtick in it cannot close the span and let HTML out."""
    command = "echo '`<b>x</b>`' 2>&1 | cat"
    write_plan(repo, checks=[command])
    feature(repo)
    script = write_script(repo, {"verifier": [verifier_session()] * 3})
    result = cli("verify", "--script", str(script), "--format", "md")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("| ``echo"))
    cells = markdown_cells(row)
    assert len(cells) == 3 and cells[0] == "``echo '`<b>x</b>`' 2>&1 \\| cat``", row


def test_a_damaged_ledger_stops_verify_with_one_line_and_leaves_no_checkout(repo, cli):
    write_plan(repo, checks=["test -f src/app.py"])
    head = feature(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})
    with Ledger.open(repo) as ledger:  # enough events for their table to have pages of its own
        for number in range(200):
            ledger.append(RunStarted(run_id=f"r-{number}", plan_id="1", plan_title="x" * 200))
    path = repo / ".agentflow" / "ledger.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.execute("PRAGMA page_size").fetchone()[0]
    (page,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()
    db.close()
    data = bytearray(path.read_bytes())
    data[(page - 1) * size : page * size] = bytes(size)  # the events' table damaged, the schema intact
    path.write_bytes(bytes(data))

    result = cli("verify", "--plan", "1", "--script", str(script))

    one_line_exit_2(result, "ledger.db: the ledger is corrupt", "move the file aside")
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1  # the checkout alone
    assert not [p for p in (repo / ".agentflow" / "worktrees").glob("*")]
    assert notes(repo, head) == []
