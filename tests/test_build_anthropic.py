"""A build through the real anthropic SDK against the fake Messages API on 127.0.0.1."""

from __future__ import annotations

import json
import re

from agentflow.events import (
    BuilderCommitted,
    ChecksRan,
    ModelCalled,
    RunEnded,
    RunStarted,
    SessionEnded,
    ToolCalled,
    VerdictRecorded,
)
from agentflow.ledger import Ledger
from tests.build_helpers import git, notes, run_events, verdict, write_plan
from tests.fakeapi import FakeAnthropic, fake_anthropic, message, text, tool_use
from tests.helpers import need_tool

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


def _plan_reply(body: dict) -> dict:
    """Each plan's builder writes its own file and finishes; its verifier runs ``cat`` on it
    (a sandboxed command) and approves. Answered per request, so concurrent sessions may interleave."""
    first = json.dumps(body["messages"][0]["content"])
    plan = re.search(r"src/p(\d)\.py", first).group(1)  # type: ignore[union-attr]
    turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
    if "submit_verdict" not in {t["name"] for t in body["tools"]}:
        if turn == 0:
            return message(tool_use("write_file", {"path": f"src/p{plan}.py", "content": f"VALUE = {plan}\n"}))
        return message(tool_use("finish", {"summary": f"plan {plan} done"}))
    if turn == 0:
        return message(tool_use("run_command", {"command": f"cat src/p{plan}.py"}))
    return message(tool_use("submit_verdict", verdict(criteria={"AC1": "met", "AC2": "met"}, summary=f"p{plan} ok")))


def test_four_plans_in_parallel_through_the_sdk(repo, cli, fake_anthropic: FakeAnthropic):
    """``-j 4`` over four plans against the fake API (with latency, so the sessions overlap): four
    approved runs, each with its own complete, chained record, commit and note (#19 item 5)."""
    need_tool("bwrap")
    for i in "1234":
        write_plan(repo, i, f"Add p{i}", f"p{i}", scope=[f"src/p{i}.py"], checks=["true"])
    for path in (repo / ".plans").glob("*.md"):  # each plan names its own file, for the fake model
        path.write_text(path.read_text().replace("src/app.py", f"src/p{path.name[0]}.py"))
    git(repo, "commit", "-qam", "plans name their files")
    fake_anthropic.latency = 0.2
    fake_anthropic.handler = _plan_reply

    result = cli("build", "1", "2", "3", "4", "-j", "4", "--backend", "anthropic")

    assert result.exit_code == 0, result.output
    assert "4 of 4 plan(s) approved" in result.output
    assert len(fake_anthropic.requests) == 16
    started = run_events(repo, RunStarted)
    assert sorted(e.plan_id for e in started) == ["1", "2", "3", "4"]
    assert len({e.run_id for e in started}) == 4 and {e.sandbox for e in started} == {"bwrap"}
    with Ledger.open(repo) as ledger:
        for start in started:
            ledger.verify_run(start.run_id)  # each run's hash chain holds
            events = ledger.events(run_id=start.run_id)
            kinds = [e.kind for e in events]
            assert kinds[0] == "run_started" and kinds[-1] == "run_ended", kinds
            assert [(e.role, e.status) for e in events if isinstance(e, SessionEnded)] == [
                ("builder", "completed"),
                ("verifier", "completed"),
            ]
            assert sum(isinstance(e, ModelCalled) for e in events) == 4
            [tool] = [e for e in events if isinstance(e, ToolCalled) and e.tool == "run_command"]
            assert tool.input == {"command": f"cat src/p{start.plan_id}.py"} and not tool.is_error
            [committed] = [e for e in events if isinstance(e, BuilderCommitted)]
            [checks] = [e for e in events if isinstance(e, ChecksRan)]
            [recorded] = [e for e in events if isinstance(e, VerdictRecorded)]
            assert checks.commit == recorded.commit == committed.commit and checks.results[0].passed
            assert recorded.outcome == "approved" and events[-1].outcome == "approved"
            head = git(repo, "rev-parse", start.branch)
            assert head == committed.commit
            assert git(repo, "show", f"{head}:src/p{start.plan_id}.py") == f"VALUE = {start.plan_id}"
            assert [n["outcome"] for n in notes(repo, head)] == ["approved"]
            assert notes(repo, head)[0]["run"] == start.run_id
    assert git(repo, "status", "--porcelain") == ""  # the main checkout is untouched
    # each verifier's sandboxed `cat` read its own plan's committed file (the tool result it was sent)
    verifiers = [
        json.dumps(b["messages"][-1])
        for b in fake_anthropic.requests
        if "submit_verdict" in {t["name"] for t in b["tools"]} and len(b["messages"]) == 3
    ]
    assert sorted(i for i in "1234" for text in verifiers if f"VALUE = {i}" in text) == ["1", "2", "3", "4"]
