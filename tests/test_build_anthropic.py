"""A build through the real anthropic SDK against the fake Messages API on 127.0.0.1."""

from __future__ import annotations

import json

from agentflow.events import ModelCalled, RunEnded, SessionEnded
from tests.build_helpers import git, notes, run_events, verdict, write_plan
from tests.fakeapi import FakeAnthropic, fake_anthropic, message, text, tool_use

__all__ = ["fake_anthropic"]  # the fixture, imported for pytest


def test_build_with_the_anthropic_backend(repo, cli, fake_anthropic: FakeAnthropic):
    write_plan(repo)
    fake_anthropic.add(
        message(
            text("Writing it."),
            tool_use("write_file", {"path": "src/app.py", "content": "def farewell():\n    return 'bye'\n"}),
            usage={"input_tokens": 1200, "output_tokens": 80},
        ),
        message(tool_use("finish", {"summary": "BUILDER-SUMMARY-XYZ"}), usage={"input_tokens": 1300}),
        message(tool_use("read_file", {"path": "src/app.py"})),
        message(tool_use("submit_verdict", verdict())),
    )

    result = cli("build", "1", "--backend", "anthropic", "--budget-usd", "1")

    assert result.exit_code == 0, result.output
    bodies = fake_anthropic.requests
    assert len(bodies) == 4
    assert {b["model"] for b in bodies} == {"claude-sonnet-5-5"}
    builder_first, verifier_first = bodies[0], bodies[2]
    assert "agentflow:task" not in json.dumps(builder_first["system"])
    assert "builder" in builder_first["system"][0]["text"]
    assert "verifier" in verifier_first["system"][0]["text"]
    # fresh context: the verifier's conversation starts over, without the builder's words
    assert len(verifier_first["messages"]) == 1
    assert "BUILDER-SUMMARY-XYZ" not in json.dumps(verifier_first)
    assert {t["name"] for t in verifier_first["tools"]} >= {"submit_verdict", "read_file"}
    assert "write_file" not in {t["name"] for t in verifier_first["tools"]}
    # usage and cost are recorded per call and per session
    calls = run_events(repo, ModelCalled)
    assert [c.usage.input_tokens for c in calls][:2] == [1200, 1300]
    builder_end = run_events(repo, SessionEnded)[0]
    assert builder_end.usage.input_tokens == 2500 and builder_end.cost_usd > 0
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert notes(repo, head)[0]["models"]["verifier"] == "anthropic:claude-sonnet-5-5"
    assert run_events(repo, RunEnded)[0].outcome == "approved"


def test_anthropic_outage_is_no_verdict(repo, cli, fake_anthropic: FakeAnthropic):
    from tests.fakeapi import Error

    write_plan(repo)
    fake_anthropic.add(*[Error(400, "bad request") for _ in range(3)])
    result = cli("build", "1", "--backend", "anthropic")
    assert result.exit_code == 3, result.output
    assert run_events(repo, RunEnded)[0].outcome == "no_verdict"


def test_missing_api_key_is_an_input_error_before_anything_starts(repo, cli):
    write_plan(repo)
    result = cli("build", "1", "--backend", "anthropic")
    assert result.exit_code == 2 and "ANTHROPIC_API_KEY is not set" in result.output
    assert not (repo / ".agentflow").exists()
    assert git(repo, "branch", "--list", "agentflow/*") == ""
    verify = cli("verify", "--backend", "anthropic")
    assert verify.exit_code == 2 and not (repo / ".agentflow").exists()
