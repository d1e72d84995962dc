"""The session loop: limits, events, transcripts, nudges, failures and backend dispatch."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from agentflow.config import Limits, RoleModel
from agentflow.events import ModelCalled, SessionEnded, SessionStarted, ToolCalled, Usage
from agentflow.ledger import Ledger
from agentflow.models.base import ModelError, ModelRequest, ModelResponse, TextBlock, ToolUseBlock
from agentflow.models.scripted import FunctionModel, ScriptedModel
from agentflow.session import (
    NO_TERMINAL_REASON,
    RunBudget,
    SessionLimits,
    SessionResult,
    SessionSpec,
    run_role_session,
    run_session,
)
from agentflow.tools import Toolbox

FINISH = {"tool_calls": [{"name": "finish", "input": {"summary": "done"}}]}
READ = {"tool_calls": [{"name": "read_file", "input": {"path": "README.md"}}]}
VERDICT = {"decision": "approve", "summary": "ok", "criteria": [], "findings": []}


def make_spec(root: Path, role: str = "builder", budget: RunBudget | None = None, **limits: Any) -> SessionSpec:
    return SessionSpec(
        role=role,
        cycle=2,
        run_id="r-1",
        root=root,
        system="SYSTEM",
        prompt="PLAN",
        limits=SessionLimits(**limits),
        budget=budget or RunBudget(limit_usd=100.0),
        backend="scripted",
        model_name="scripted",
    )


def run(repo: Path, turns: list[dict], role: str = "builder", **kwargs: Any) -> tuple[SessionResult, list[Any]]:
    spec = make_spec(repo, role, **kwargs)
    model = ScriptedModel({role: [turns]}).for_role(role)
    with Ledger.open(repo) as ledger:
        result = run_session(spec, model, Toolbox(repo, role), ledger)  # type: ignore[arg-type]
        return result, ledger.events()


def test_completed_session_records_everything(repo: Path) -> None:
    progress: list[dict] = []
    spec = make_spec(repo)
    model = ScriptedModel({"builder": [[READ, FINISH]]}).for_role("builder")
    with Ledger.open(repo) as ledger:
        result = run_session(spec, model, Toolbox(repo, "builder"), ledger, on_progress=progress.append)
        events = ledger.events()
        transcript = ledger.transcript(result.session_id)
    assert result.status == "completed" and result.turns == 2 and result.submitted == {"summary": "done"}
    assert [type(e) for e in events] == [SessionStarted, ModelCalled, ToolCalled, ModelCalled, ToolCalled, SessionEnded]
    assert all(e.run_id == "r-1" for e in events)
    started, ended = events[0], events[-1]
    assert isinstance(started, SessionStarted) and started.cycle == 2 and started.backend == "scripted"
    assert isinstance(ended, SessionEnded) and ended.summary == "done" and ended.turns == 2
    tool = events[2]
    assert isinstance(tool, ToolCalled) and tool.tool == "read_file" and tool.output_chars == len("# sample\n")
    assert transcript is not None
    assert [m["role"] for m in transcript] == ["system", "user", "assistant", "user", "assistant"]
    assert transcript[1]["content"][0]["cache"] is True  # the stable prefix is marked for caching
    assert transcript[3]["content"][0]["content"] == "# sample\n"
    assert progress[0]["turn"] == 1 and {"role", "cycle", "tokens", "cost_usd", "elapsed_s"} <= progress[0].keys()
    assert any(p.get("tool") == "read_file" for p in progress)


def test_verifier_session_returns_the_verdict(repo: Path) -> None:
    result, _ = run(repo, [{"tool_calls": [{"name": "submit_verdict", "input": VERDICT}]}], role="verifier")
    assert result.status == "completed" and result.submitted == VERDICT


def test_refused_tool_call_does_not_end_the_session(repo: Path) -> None:
    escape = {"tool_calls": [{"name": "read_file", "input": {"path": "../../etc/passwd"}}]}
    result, events = run(repo, [escape, FINISH])
    assert result.status == "completed"
    refused = [e for e in events if isinstance(e, ToolCalled)][0]
    assert refused.is_error


def test_bad_verdict_lets_the_model_retry(repo: Path) -> None:
    bad = {"tool_calls": [{"name": "submit_verdict", "input": {"decision": "maybe"}}]}
    good = {"tool_calls": [{"name": "submit_verdict", "input": VERDICT}]}
    result, _ = run(repo, [bad, good], role="verifier")
    assert result.status == "completed" and result.turns == 2


def test_text_only_reply_is_nudged_once_then_fails(repo: Path) -> None:
    seen: list[ModelRequest] = []

    def chatty(request: ModelRequest) -> dict:
        seen.append(request)
        return {"text": "I think it looks fine."}

    with Ledger.open(repo) as ledger:
        result = run_session(make_spec(repo, "verifier"), FunctionModel(chatty), Toolbox(repo, "verifier"), ledger)
    assert result.status == "failed" and result.reason == NO_TERMINAL_REASON and result.submitted is None
    assert result.turns == 2
    nudge = seen[1].messages[-1].content[0]
    assert isinstance(nudge, TextBlock) and "submit_verdict" in nudge.text


def test_nudge_names_the_terminal_tool_of_any_toolbox(repo: Path) -> None:
    from agentflow.models.base import ToolSpec
    from agentflow.tools import ToolOutput, ToolProvider

    class Queries:
        def specs(self) -> list[ToolSpec]:
            return [ToolSpec(name="submit_findings", description="end", input_schema={"type": "object"})]

        def call(self, name: str, input: dict) -> ToolOutput:
            return ToolOutput("ok")

    seen: list[ModelRequest] = []
    assert isinstance(Queries(), ToolProvider)
    with Ledger.open(repo) as ledger:
        run_session(
            make_spec(repo, "evaluator"), FunctionModel(lambda r: seen.append(r) or {"text": "hi"}), Queries(), ledger
        )
    nudge = seen[1].messages[-1].content[0]
    assert isinstance(nudge, TextBlock) and "call submit_findings" in nudge.text


def test_empty_reply_is_nudged_with_a_valid_history(repo: Path) -> None:
    seen: list[ModelRequest] = []

    def fn(request: ModelRequest) -> ModelResponse | dict:
        seen.append(request)
        return ModelResponse(content=[], stop_reason="end_turn") if len(seen) == 1 else FINISH

    with Ledger.open(repo) as ledger:
        result = run_session(make_spec(repo), FunctionModel(fn), Toolbox(repo, "builder"), ledger)
    assert result.status == "completed"
    assert all(message.content for message in seen[1].messages)


def test_nudge_can_recover(repo: Path) -> None:
    result, _ = run(repo, [{"text": "hmm"}, FINISH])
    assert result.status == "completed"


def test_model_error_ends_the_session_as_failed(repo: Path) -> None:
    result, events = run(repo, [READ, {"error": "529 overloaded"}])
    assert result.status == "failed" and "529 overloaded" in (result.reason or "")
    assert isinstance(events[-1], SessionEnded) and events[-1].status == "failed"


def test_out_of_script_ends_the_session_as_failed(repo: Path) -> None:
    result, _ = run(repo, [READ])
    assert result.status == "failed" and "out of script" in (result.reason or "")


def test_turn_limit(repo: Path) -> None:
    result, _ = run(repo, [READ] * 5 + [FINISH], max_turns=3)
    assert result.status == "limits" and "turn limit" in (result.reason or "") and result.turns == 3


def test_token_limit(repo: Path) -> None:
    heavy = {**READ, "usage": {"input_tokens": 600, "output_tokens": 100}}
    result, _ = run(repo, [heavy, heavy, FINISH], max_tokens=1000)
    assert result.status == "limits" and "token limit" in (result.reason or "")
    assert result.usage.total == 1400 and result.turns == 2


def test_session_cost_limit(repo: Path) -> None:
    pricey = {**READ, "cost_usd": 0.75}
    result, _ = run(repo, [pricey, pricey, FINISH], max_cost_usd=1.0)
    assert result.status == "limits" and "session cost limit" in (result.reason or "")
    assert result.cost_usd == pytest.approx(1.5)


def test_time_limit(repo: Path) -> None:
    result, _ = run(repo, [READ, FINISH], max_seconds=0.0)
    assert result.status == "limits" and "time limit" in (result.reason or "") and result.turns == 0


def test_run_budget_is_shared_and_estimated_before_the_call(repo: Path) -> None:
    budget = RunBudget(limit_usd=1.0)
    calls: list[int] = []

    class Pricey(FunctionModel):
        def estimate_cost(self, request: ModelRequest) -> float:
            return 0.4

    def reply(request: ModelRequest) -> dict:
        calls.append(1)
        return {**READ, "cost_usd": 0.3}

    with Ledger.open(repo) as ledger:
        first = run_session(make_spec(repo, budget=budget), Pricey(reply), Toolbox(repo, "builder"), ledger)
    # 0.3 + 0.3 + 0.3 spent; a fourth call estimated at 0.4 would exceed 1.0, so it is not made
    assert first.status == "limits" and "run budget" in (first.reason or "") and len(calls) == 3
    assert budget.spent_usd == pytest.approx(0.9)
    with Ledger.open(repo) as ledger:
        second = run_session(make_spec(repo, budget=budget), Pricey(reply), Toolbox(repo, "builder"), ledger)
    assert second.status == "limits" and second.turns == 0 and len(calls) == 3


def test_keyboard_interrupt_is_recorded_then_reraised(repo: Path) -> None:
    def interrupted(request: ModelRequest) -> dict:
        raise KeyboardInterrupt

    with Ledger.open(repo) as ledger:
        with pytest.raises(KeyboardInterrupt):
            run_session(make_spec(repo), FunctionModel(interrupted), Toolbox(repo, "builder"), ledger)
        ended = ledger.events()[-1]
    assert isinstance(ended, SessionEnded) and ended.status == "interrupted"


def test_secrets_never_reach_the_ledger(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-ant-api03-" + "x" * 40
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    (repo / "leak.txt").write_text(f"key={secret}\n")
    echo = {
        "tool_calls": [
            {"name": "read_file", "input": {"path": "leak.txt"}},
            {"name": "run_command", "input": {"command": f"echo {secret}"}},
        ]
    }
    result, _ = run(repo, [echo, FINISH])
    db = (repo / ".agentflow" / "ledger.db").read_bytes()
    wal = repo / ".agentflow" / "ledger.db-wal"
    assert secret.encode() not in db + (wal.read_bytes() if wal.exists() else b"")
    with Ledger.open(repo) as ledger:
        transcript = str(ledger.transcript(result.session_id))
    assert secret not in transcript and "[REDACTED]" in transcript


def test_long_tool_inputs_are_shortened_in_events(repo: Path) -> None:
    big = {"tool_calls": [{"name": "write_file", "input": {"path": "big.txt", "content": "a" * 10_000}}]}
    result, events = run(repo, [big, FINISH])
    call = [e for e in events if isinstance(e, ToolCalled)][0]
    assert len(call.input["content"]) < 2_100 and "more characters" in call.input["content"]
    assert (repo / "big.txt").read_text() == "a" * 10_000


def test_terminal_tool_input_is_recorded_whole(repo: Path) -> None:
    verdict = {**VERDICT, "summary": "long " * 1000}
    _, events = run(repo, [{"tool_calls": [{"name": "submit_verdict", "input": verdict}]}], role="verifier")
    call = [e for e in events if isinstance(e, ToolCalled)][-1]
    assert call.input == verdict and not call.is_error


def test_a_call_cut_off_by_max_tokens_is_not_run(repo: Path) -> None:
    cut = {
        "tool_calls": [
            {"name": "write_file", "input": {"path": "ok.txt", "content": "whole"}},
            {"name": "write_file", "input": {"path": "half.txt", "content": "def f(:"}},
        ],
        "stop_reason": "max_tokens",
    }
    result, events = run(repo, [cut, FINISH])
    assert result.status == "completed"
    assert (repo / "ok.txt").exists() and not (repo / "half.txt").exists()
    refused = [e for e in events if isinstance(e, ToolCalled)][1]
    assert refused.tool == "write_file" and refused.is_error


def test_terminal_tool_stops_the_batch(repo: Path) -> None:
    batch = {
        "tool_calls": [
            {"name": "finish", "input": {"summary": "early"}},
            {"name": "write_file", "input": {"path": "after.txt", "content": "x"}},
        ]
    }
    result, _ = run(repo, [batch])
    assert result.status == "completed" and not (repo / "after.txt").exists()


def test_limits_from_config() -> None:
    limits = SessionLimits.from_config(Limits(max_turns=7, session_cost_usd=2.5, command_timeout=30))
    assert (limits.max_turns, limits.max_cost_usd, limits.command_timeout) == (7, 2.5, 30)


def test_usage_is_summed_and_reported(repo: Path) -> None:
    t1 = {**READ, "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read": 100, "cache_write": 50}}
    t2 = {**FINISH, "usage": {"input_tokens": 1, "output_tokens": 2, "cache_read": 3, "cache_write": 4}}
    result, events = run(repo, [t1, t2])
    assert result.usage == Usage(input_tokens=11, output_tokens=7, cache_read=103, cache_write=54)
    assert isinstance(events[-1], SessionEnded) and events[-1].usage == result.usage


# -- dispatch ------------------------------------------------------------------------------------


def test_run_role_session_shares_a_scripted_model_across_a_runs_sessions(repo: Path) -> None:
    (repo / "script.yaml").write_text(
        "builder:\n"
        "  - - tool_calls: [{name: finish, input: {summary: first}}]\n"
        "  - - tool_calls: [{name: finish, input: {summary: second}}]\n"
    )
    spec = make_spec(repo)
    spec.role_cfg = RoleModel(backend="scripted", script="script.yaml")
    with Ledger.open(repo) as ledger:
        first = run_role_session(spec, ledger)
        second = run_role_session(spec, ledger)
        spec.run_id = "r-2"
        third = run_role_session(spec, ledger)
    assert [r.submitted for r in (first, second, third)] == [
        {"summary": "first"},
        {"summary": "second"},
        {"summary": "first"},
    ]


def test_run_role_session_uses_a_given_model(repo: Path) -> None:
    with Ledger.open(repo) as ledger:
        result = run_role_session(make_spec(repo), ledger, model=FunctionModel(lambda r: FINISH))
    assert result.status == "completed"


def test_run_role_session_dispatches_external_backends(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[tuple] = []

    def fake_runner(spec: SessionSpec, ledger: Ledger, on_progress: Any) -> SessionResult:
        received.append((spec.backend, on_progress))
        return SessionResult(
            "s-x", spec.role, "completed", None, 1, Usage(), 0.0, {"summary": "external"}, external_id="ext-1"
        )

    monkeypatch.setitem(sys.modules, "agentflow.models.command", types.SimpleNamespace(run_command_session=fake_runner))
    monkeypatch.setitem(
        sys.modules, "agentflow.models.claude_code", types.SimpleNamespace(run_claude_code_session=fake_runner)
    )
    with Ledger.open(repo) as ledger:
        for backend in ("command", "claude-code"):
            spec = make_spec(repo)
            spec.backend = backend
            assert run_role_session(spec, ledger, on_progress=print).external_id == "ext-1"
    assert received == [("command", print), ("claude-code", print)]


def test_function_model_sees_tools_and_cached_prefix(repo: Path) -> None:
    seen: list[ModelRequest] = []

    def fn(request: ModelRequest) -> ModelResponse:
        seen.append(request)
        return ModelResponse(
            content=[ToolUseBlock(id="t1", name="finish", input={"summary": "s"})], stop_reason="tool_use"
        )

    with Ledger.open(repo) as ledger:
        run_session(make_spec(repo, output_tokens=1234), FunctionModel(fn), Toolbox(repo, "builder"), ledger)
    request = seen[0]
    assert request.system[-1].cache and request.messages[0].content[0].cache  # type: ignore[union-attr]
    assert request.max_tokens == 1234
    assert {t.name for t in request.tools} >= {"read_file", "write_file", "finish"}


def test_model_error_class_is_a_backend_failure() -> None:
    assert ModelError("x").exit_code == 3
