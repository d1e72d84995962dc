"""``agentflow gate`` output formats and exit codes, and ``agentflow approve --override``."""

from __future__ import annotations

import json

from agentflow.events import VerdictRecorded
from agentflow.git import Repo
from agentflow.ledger import Ledger
from agentflow.verdict import VerdictNote
from tests.gate_helpers import add_verdict, commit_file, git, plan_branch
from tests.helpers import HOSTILE_ESCAPED, HOSTILE_MARKDOWN, hostile_rows

BRANCH = "agentflow/348-capsule-isolation"
KEY = "team-secret-key-0123456789abcdef0123456789"


def test_gate_exit_codes(repo, cli, tmp_path, monkeypatch):
    plan_branch(repo)
    closed = cli("gate", BRANCH)
    assert closed.exit_code == 1 and closed.output.startswith("gate closed:")
    add_verdict(repo, BRANCH)
    opened = cli("gate", BRANCH)
    assert opened.exit_code == 0 and opened.output.startswith("gate open:")
    assert cli("gate", "no-such-ref").exit_code == 2
    elsewhere = tmp_path / "not-a-repo"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli("gate").exit_code == 2


def test_gate_defaults_to_head(repo, cli):
    add_verdict(repo, "HEAD")
    assert cli("gate").exit_code == 0
    commit_file(repo, "x.txt", "x\n")
    result = cli("gate")
    assert result.exit_code == 1 and "no verdict" in result.output


def test_gate_json(repo, cli):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    add_verdict(repo, BRANCH, "rejected")
    result = cli("gate", BRANCH, "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["open"] is False and data["status"] == "revoked"
    assert data["commit"] == Repo(repo).rev(BRANCH)
    assert data["note"]["outcome"] == "rejected" and data["reasons"]


def test_gate_github_annotations_and_step_summary(repo, cli, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    plan_branch(repo)
    result = cli("gate", BRANCH, "--format", "github")
    assert result.exit_code == 1
    assert result.output.startswith("::error title=agentflow gate (no_verdict)::gate closed")
    assert "❌ agentflow gate: closed" in summary.read_text()
    add_verdict(repo, BRANCH, key=None)
    result = cli("gate", BRANCH, "--format", "github")
    assert result.exit_code == 0 and result.output.startswith("::notice ")
    assert "✅ agentflow gate: open" in summary.read_text()


def test_require_signature_in_config_without_a_key_closes_the_gate(repo, cli):
    (repo / "agentflow.yaml").write_text("gate:\n  require_signature: true\n")
    add_verdict(repo, "HEAD", key=KEY)
    result = cli("gate")
    assert result.exit_code == 1 and "AGENTFLOW_SIGNING_KEY is not set" in result.output
    result = cli("gate", env={"AGENTFLOW_SIGNING_KEY": KEY})
    assert result.exit_code == 0, result.output


def test_approve_needs_override_and_a_reason(repo, cli):
    assert cli("approve").exit_code == 2
    assert cli("approve", "--override").exit_code == 2
    assert cli("approve", "--override", "--reason", "   ").exit_code == 2
    assert not Repo(repo).notes("HEAD")


def test_override_is_recorded_and_accepted_as_an_override(repo, cli):
    plan_branch(repo)
    result = cli("approve", "--override", "--reason", "hotfix INC-42, reviewed by Ana", BRANCH)
    assert result.exit_code == 0, result.output
    [line] = Repo(repo).notes(BRANCH)
    note = VerdictNote.model_validate_json(line)
    assert note.override and note.outcome == "approved" and note.by == "Dev <dev@example.com>"
    assert note.tree == Repo(repo).tree(BRANCH) and note.plan == "348"
    gate = cli("gate", BRANCH)
    assert gate.exit_code == 0 and "human override" in gate.output and "INC-42" in gate.output
    with Ledger.open(repo) as ledger:
        [event] = ledger.events(kinds=["verdict_recorded"])
    assert isinstance(event, VerdictRecorded) and event.override and event.reason == "hotfix INC-42, reviewed by Ana"


def test_signed_override_passes_a_keyed_gate(repo, cli):
    env = {"AGENTFLOW_SIGNING_KEY": KEY}
    result = cli("approve", "--override", "--reason", "ok", env=env)
    assert result.exit_code == 0 and "(signed)" in result.output
    assert cli("gate", env=env).exit_code == 0
    assert cli("gate", env={"AGENTFLOW_SIGNING_KEY": "another-key-of-32-characters-0123456789"}).exit_code == 1


def test_override_goes_stale_on_the_next_change(repo, cli):
    plan_branch(repo)
    cli("approve", "--override", "--reason", "ok", BRANCH)
    git(repo, "checkout", "-q", BRANCH)
    commit_file(repo, "src/app.py", "print('changed')\n")
    result = cli("gate")
    assert result.exit_code == 1 and "stale" in result.output


def test_approve_override_with_required_signature_and_no_key_is_a_usage_error(repo, cli):
    (repo / "agentflow.yaml").write_text("gate:\n  require_signature: true\n")
    result = cli("approve", "--override", "--reason", "ok")
    assert result.exit_code == 2 and "AGENTFLOW_SIGNING_KEY" in result.output


def test_gate_codequality_report_lists_the_closed_gate_and_findings(repo, cli):
    plan_branch(repo)
    finding = {
        "id": "F1",
        "severity": "high",
        "file": "src/app.py",
        "line": 3,
        "message": "capsule_id missing",
        "pattern": "capsule-isolation",
    }
    add_verdict(repo, BRANCH, "changes_requested", findings=[finding])
    result = cli("gate", BRANCH, "--format", "codequality")
    assert result.exit_code == 1
    issues = json.loads(result.output)
    assert issues[0]["severity"] == "blocker" and "not approved" in issues[0]["description"]
    assert issues[1]["location"] == {"path": "src/app.py", "lines": {"begin": 3}}
    assert issues[1]["severity"] == "major" and len({i["fingerprint"] for i in issues}) == 2
    add_verdict(repo, BRANCH)
    result = cli("gate", BRANCH, "--format", "codequality")
    assert result.exit_code == 0 and json.loads(result.output) == []


def test_gate_step_summary_escapes_a_hostile_override_reason(repo, cli, tmp_path, monkeypatch):
    """An override reason with ``<script>``, a backslash-pipe and a newline: the step summary gets no raw
    HTML and the note's table row keeps its six cells."""
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    plan_branch(repo)
    assert cli("approve", "--override", "--reason", HOSTILE_MARKDOWN, BRANCH).exit_code == 0
    assert cli("gate", BRANCH, "--format", "github").exit_code == 0
    rows = hostile_rows(summary.read_text())
    assert [len(r) for r in rows] == [6], summary.read_text()
    assert rows[0][5] == f"yes: {HOSTILE_ESCAPED}"
