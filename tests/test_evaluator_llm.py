"""The --llm Evaluator session, driven by the scripted backend (no network)."""

from __future__ import annotations

import json

import yaml

from tests.evaluator_helpers import LEAKY, demo_config, demo_events, write_jsonl

SUBMIT = {
    "name": "submit_findings",
    "input": {
        "summary": "Role assignments and security groups are not isolated by capsule.",
        "findings": [
            {
                "event_type": "UserInvited",
                "field": "payload.name",
                "severity": "high",
                "message": "payload.name holds personal data in every UserInvited event",
            }
        ],
    },
}


def _setup(repo, tmp_path, turns):
    script = repo / "script.yaml"
    script.write_text(yaml.safe_dump({"evaluator": [turns]}))
    demo_config(repo, "models:\n  evaluator:\n    backend: scripted\n    script: script.yaml\n")
    return write_jsonl(tmp_path / "e.jsonl", demo_events(70))


def test_llm_session_reads_schemas_and_adds_findings(repo, tmp_path, cli):
    log = _setup(
        repo,
        tmp_path,
        [
            {"text": "Looking at the types", "tool_calls": [{"name": "list_types", "input": {}}]},
            {
                "tool_calls": [
                    {"name": "describe_type", "input": {"event_type": "UserInvited"}},
                    {"name": "compare_field", "input": {"field": "capsule_id"}},
                ]
            },
            {"tool_calls": [SUBMIT]},
        ],
    )
    result = cli("evaluate", str(log), "--llm", "--format", "json")
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["review"].startswith("Role assignments")
    llm = [f for f in data["findings"] if f["rule"] == "llm"]
    assert [(f["event_type"], f["field"], f["severity"]) for f in llm] == [("UserInvited", "payload.name", "high")]
    assert sorted(
        f["event_type"]
        for f in data["findings"]
        if f["rule"] == "missing_sibling_field" and f["severity"] == "critical"
    ) == sorted(LEAKY)

    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        kinds = [e.kind for e in ledger.events()]
        tools = [e.tool for e in ledger.events(kinds=["tool_called"])]
        assert any(f["rule"] == "llm" for f in ledger.open_findings())
    assert kinds.count("session_started") == 1 and "session_ended" in kinds
    assert tools == ["list_types", "describe_type", "compare_field", "submit_findings"]


def test_llm_session_failure_still_prints_the_report_and_exits_3(repo, tmp_path, cli):
    log = _setup(repo, tmp_path, [{"tool_calls": [{"name": "list_types", "input": {}}]}])  # never submits
    result = cli("evaluate", str(log), "--llm", "--format", "json", "--no-record")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["events"] == 70
    assert "evaluator session ended without findings" in result.stderr


def test_llm_needs_an_api_backend(repo, tmp_path, cli):
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(7))
    (repo / "agentflow.yaml").write_text("models:\n  evaluator:\n    backend: command\n    command: echo\n")
    result = cli("evaluate", str(log), "--llm")
    assert result.exit_code == 2 and "--llm needs an API backend" in result.stderr


def test_bad_submission_is_a_tool_error_the_model_can_fix(repo, tmp_path, cli):
    bad = {
        "name": "submit_findings",
        "input": {"summary": "x", "findings": [{"event_type": "A", "severity": "huge", "message": "m"}]},
    }
    log = _setup(repo, tmp_path, [{"tool_calls": [bad]}, {"tool_calls": [SUBMIT]}])
    result = cli("evaluate", str(log), "--llm", "--format", "json", "--no-record")
    assert result.exit_code == 1
    assert any(f["rule"] == "llm" for f in json.loads(result.stdout)["findings"])
