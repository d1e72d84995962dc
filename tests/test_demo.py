"""The offline demo: the whole story through the real command line, asserted step by step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agentflow.demo import SCRIPT, run_demo
from agentflow.ledger import Ledger
from tests.fakeapi import fake_anthropic  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    lines: list[str] = []
    root = tmp_path_factory.mktemp("demo") / "capsulary"
    result = run_demo(root, live=False, say=lines.append)
    return result, "\n".join(lines)


def _metrics(root: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "agentflow", "metrics", "--format", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_every_step_behaves_as_expected(demo):
    result, _ = demo
    assert result.ok
    assert [s.exit_code for s in result.steps if s.command[0] == "agentflow"] == [0, 1, 0, 0, 1, 0, 0, 0]


def test_evaluator_finds_the_two_isolation_leaks_and_not_the_tenant_events(demo):
    result, _ = demo
    evaluate = next(s for s in result.steps if s.command[:2] == ["agentflow", "evaluate"])
    assert "2 findings (2 critical)" in evaluate.output
    findings = [line for line in evaluate.output.splitlines() if "[critical]" in line]
    assert len(findings) == 2
    assert "RoleAssignmentCreated lacks capsule_id" in findings[0]
    assert "SecurityGroupUpdated lacks capsule_id" in findings[1]
    assert not any("TenantCreated" in f for f in findings)
    plans = list((result.root / ".plans").glob("1-*.md"))
    assert len(plans) == 1
    assert "AC2" in plans[0].read_text()


def test_build_takes_two_cycles_with_a_real_rework(demo):
    result, _ = demo
    build = next(s for s in result.steps if s.command[:2] == ["agentflow", "build"])
    assert "APPROVED after 2 cycle(s)" in build.output
    assert "cycle 1: changes_requested" in build.output
    assert build.output.count("checks 1 passed") == 2
    with Ledger.open(result.root) as ledger:
        (run,) = ledger.runs()
        assert run.outcome == "approved"
        assert [v.outcome for v in run.verdicts] == ["changes_requested", "approved"]
        first = run.verdicts[0].verdict
        assert first is not None
        assert [f["id"] for f in first["findings"]] == ["F1"]
        assert "SecurityGroup" in first["findings"][0]["message"]
        assert [s.role for s in run.sessions] == ["builder", "verifier", "builder", "verifier"]


def test_gate_open_for_the_approved_commit_closed_for_the_edit(demo):
    result, _ = demo
    gates = [s for s in result.steps if s.command[:2] == ["agentflow", "gate"]]
    assert [g.exit_code for g in gates] == [0, 1]
    assert gates[0].output.startswith("gate open")
    assert "stale" in gates[1].output and "app/keys.py" in gates[1].output


def test_merge_lands_the_fix_and_the_new_events_are_clean(demo):
    result, _ = demo
    merge = next(s for s in result.steps if s.command[:2] == ["agentflow", "merge"])
    assert merge.output.startswith("merged agentflow/1-")
    entities = (result.root / "app" / "entities.py").read_text()
    assert entities.count("capsule_id: str") == 5
    assert "DEBUG_KEYS" not in (result.root / "app" / "keys.py").read_text()
    final = [s for s in result.steps if s.command[:2] == ["agentflow", "evaluate"]][-1]
    assert final.exit_code == 0 and "0 findings" in final.output


def test_metrics_report_the_story(demo):
    result, output = demo
    assert "First-pass approval rate" in output
    report = _metrics(result.root)
    assert report["plans"]["built"] == 1
    assert report["plans"]["approved"] == 1
    assert report["plans"]["merged"] == 1
    assert report["cycles"]["total"] == 2
    assert report["first_pass_approval_rate"] == 0.0
    assert report["outcomes"]["changes_requested"] == 1
    assert report["outcomes"]["approved"] == 1
    assert report["findings"]["by_pattern"] == {"capsule-isolation": 1}
    script = yaml.safe_load(SCRIPT.read_text())
    scripted_cost = sum(turn.get("cost_usd", 0) for role in script.values() for session in role for turn in session)
    assert report["cost_usd"]["total"] == pytest.approx(scripted_cost)
    assert report["cost_usd"]["per_approved_plan"] == pytest.approx(scripted_cost)
    assert report["commits"] == 2


def test_demo_refuses_a_non_empty_directory(cli, tmp_path):
    (tmp_path / "x").write_text("keep me")
    result = cli("demo", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "not empty" in result.output
    assert (tmp_path / "x").read_text() == "keep me"


def test_demo_live_needs_a_key(cli):
    result = cli("demo", "--live")
    assert result.exit_code == 2
    assert "ANTHROPIC_API_KEY" in result.output


def test_live_demo_runs_the_same_story_on_the_messages_api(tmp_path, fake_anthropic):
    """--live wiring: the same steps on the anthropic backend (here the fake API on 127.0.0.1).

    The fake builder edits one entity and finishes; the fake verifier rejects. A live run that is
    not approved ends the story after the build: nothing is gated or merged.
    """
    from tests.fakeapi import message, text, tool_use

    def reply(body: dict) -> dict:
        tools = {t["name"] for t in body.get("tools", [])}
        if "finish" in tools:
            if len(body["messages"]) == 1:
                return message(
                    tool_use(
                        "edit_file",
                        {
                            "path": "app/keys.py",
                            "old_text": "Storage keys.",
                            "new_text": "Storage keys (capsule-scoped).",
                        },
                    )
                )
            return message(tool_use("finish", {"summary": "documented the key format"}))
        return message(
            text("This does not add capsule_id."),
            tool_use(
                "submit_verdict",
                {
                    "decision": "reject",
                    "summary": "No entity gained capsule_id.",
                    "criteria": [{"id": "AC1", "status": "unmet"}, {"id": "AC2", "status": "unmet"}],
                    "findings": [],
                },
            ),
        )

    fake_anthropic.handler = reply
    lines: list[str] = []
    result = run_demo(tmp_path / "live", live=True, say=lines.append)
    assert result.ok
    build = next(s for s in result.steps if s.command[:2] == ["agentflow", "build"])
    assert build.exit_code == 1 and "REJECTED" in build.output
    assert not any(s.command[:2] in (["agentflow", "gate"], ["agentflow", "merge"]) for s in result.steps)
    assert "not approved, so there is nothing to gate or merge" in "\n".join(lines)
    models = {body["model"] for body in fake_anthropic.requests}
    assert models == {"claude-sonnet-5-5"}


def test_the_offline_demo_runs_where_bubblewrap_cannot_and_says_so(tmp_path: Path, monkeypatch) -> None:
    # The Quickstart's first line works on a fresh machine without bubblewrap: offline, the only
    # agent is the demo's own script, so its project runs unconfined (and says so on every build).
    import agentflow.sandbox
    from agentflow.sandbox import SandboxUnavailable

    def missing(where: str = "agentflow.yaml") -> str:
        raise SandboxUnavailable("sandbox: bwrap (bubblewrap) is not installed", where=where)

    monkeypatch.setattr(agentflow.sandbox, "require_bwrap", missing)
    lines: list[str] = []
    result = run_demo(tmp_path / "capsulary", live=False, say=lines.append)
    out = "\n".join(lines)
    assert result.ok, out
    assert "Sandbox: off for this demo (bwrap (bubblewrap) is not installed)" in out
    assert "apt-get install bubblewrap" in out
    from agentflow.config import load_config

    assert load_config(tmp_path / "capsulary").sandbox.mode == "off"
    assert "warning: sandbox.mode is off" in out  # the build itself still warns


def test_the_live_demo_keeps_the_sandbox() -> None:
    from agentflow.demo import demo_config

    assert "sandbox" not in yaml.safe_load(demo_config(live=True))
    assert yaml.safe_load(demo_config(live=False, sandbox_off=True))["sandbox"] == {"mode": False}  # YAML 1.1 off
