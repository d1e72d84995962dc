"""The scripted backend: scripts replayed per role and session; running out is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow.config import RoleModel
from agentflow.errors import UsageError
from agentflow.models.base import Message, ModelError, ModelRequest, ModelResponse, TextBlock
from agentflow.models.registry import get_model
from agentflow.models.scripted import FunctionModel, ScriptedModel, load_script

SCRIPT_YAML = """\
builder:
  - - text: "Reading the plan"
      tool_calls: [{name: read_file, input: {path: src/app.py}}]
    - tool_calls: [{name: finish, input: {summary: "done"}}]
  - - tool_calls: [{name: finish, input: {summary: "reworked"}}]
verifier:
  - - tool_calls: [{name: submit_verdict, input: {decision: approve, summary: ok, criteria: [], findings: []}}]
"""


def first_request() -> ModelRequest:
    return ModelRequest(system=[TextBlock(text="sys", cache=True)], messages=[Message.user("plan", cache=True)])


def follow_up(request: ModelRequest, reply: ModelResponse) -> ModelRequest:
    messages = [*request.messages, Message(role="assistant", content=list(reply.content)), Message.user("result")]
    return ModelRequest(system=request.system, messages=messages)


def test_sessions_replay_in_order(tmp_path: Path) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(SCRIPT_YAML)
    shared = ScriptedModel.load(path)
    builder = shared.for_role("builder")
    request = first_request()
    turn1 = builder.complete(request)
    assert turn1.text == "Reading the plan" and turn1.stop_reason == "tool_use"
    assert turn1.tool_calls[0].name == "read_file" and turn1.tool_calls[0].input == {"path": "src/app.py"}
    turn2 = builder.complete(follow_up(request, turn1))
    assert turn2.tool_calls[0].input == {"summary": "done"}
    # a new session (no assistant message yet) takes the next session script of the role
    assert builder.complete(first_request()).tool_calls[0].input == {"summary": "reworked"}
    assert shared.sessions_left("builder") == 0 and shared.sessions_left("verifier") == 1
    assert shared.for_role("verifier").complete(first_request()).tool_calls[0].name == "submit_verdict"


def test_tool_ids_are_unique_per_turn(tmp_path: Path) -> None:
    model = ScriptedModel({"builder": [[{"tool_calls": [{"name": "a"}, {"name": "b"}]}, {"text": "x"}]]})
    reply = model.for_role("builder").complete(first_request())
    ids = [call.id for call in reply.tool_calls]
    assert len(set(ids)) == 2


def test_running_out_of_sessions_is_an_error() -> None:
    model = ScriptedModel(
        {"builder": [[{"tool_calls": [{"name": "finish", "input": {"summary": "x"}}]}]]}, source="demo.yaml"
    ).for_role("builder")
    model.complete(first_request())
    with pytest.raises(ModelError, match="out of script: demo.yaml has 1 builder session"):
        model.complete(first_request())


def test_running_out_of_turns_is_an_error() -> None:
    model = ScriptedModel({"builder": [[{"text": "thinking"}]]}).for_role("builder")
    reply = model.complete(first_request())
    with pytest.raises(ModelError, match="has 1 turn\\(s\\) and turn 2 was requested"):
        model.complete(follow_up(first_request(), reply))


def test_a_role_without_script_is_an_error() -> None:
    with pytest.raises(ModelError, match="0 verifier session"):
        ScriptedModel({"builder": []}).for_role("verifier").complete(first_request())


def test_scripted_errors_and_usage() -> None:
    script = {
        "builder": [
            [{"text": "a", "usage": {"input_tokens": 10, "output_tokens": 2}, "cost_usd": 0.5}],
            [{"error": "overloaded"}],
        ]
    }
    model = ScriptedModel(script).for_role("builder")
    reply = model.complete(first_request())
    assert reply.usage.input_tokens == 10 and reply.cost_usd == 0.5 and reply.stop_reason == "end_turn"
    with pytest.raises(ModelError, match="overloaded"):
        model.complete(first_request())


@pytest.mark.parametrize("bad", [{"builder": 5}, {"builder": [5]}, ["builder"]])
def test_bad_in_memory_scripts_are_usage_errors(bad: object) -> None:
    with pytest.raises(UsageError):
        ScriptedModel(bad)  # type: ignore[arg-type]


def test_json_scripts_load(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"verifier": [[{"tool_calls": [{"name": "submit_verdict", "input": {}}]}]]}))
    assert load_script(path, "verifier").complete(first_request()).tool_calls[0].name == "submit_verdict"


@pytest.mark.parametrize(
    "content, problem",
    [
        ("builder: [[{txt: typo}]]", "builder session 1 turn 1: txt: Extra inputs"),
        ("builder: {a: 1}", "must be a list of sessions"),
        ("- just a list", "must map roles"),
        ("builder: [[{tool_calls: [{input: {}}]}]]", "tool_calls.0.name"),
        ("builder: [[{text: 'unterminated}]]", "bad.yaml:1: invalid YAML: found unexpected end of stream"),
    ],
)
def test_bad_scripts_are_usage_errors_naming_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(UsageError, match=problem) as err:
        load_script(path, "builder")
    assert str(path) in str(err.value)


def test_registry_loads_scripts_relative_to_root(tmp_path: Path) -> None:
    (tmp_path / "script.yaml").write_text(SCRIPT_YAML)
    model = get_model(RoleModel(backend="scripted", script="script.yaml"), root=tmp_path, role="verifier")
    assert model.complete(first_request()).tool_calls[0].name == "submit_verdict"
    with pytest.raises(UsageError, match="models.builder.script"):
        get_model(RoleModel(backend="scripted"), root=tmp_path, role="builder")
    with pytest.raises(UsageError, match="missing.yaml: no such file"):
        get_model(RoleModel(backend="scripted", script="missing.yaml"), root=tmp_path, role="builder")
    with pytest.raises(UsageError, match="external agent"):
        get_model(RoleModel(backend="command"), root=tmp_path, role="builder")


def test_function_model_reacts_to_the_conversation() -> None:
    def fn(request: ModelRequest) -> dict:
        last = request.messages[-1].content[-1]
        assert isinstance(last, TextBlock)
        return {"text": f"you said {last.text}"}

    model = FunctionModel(fn)
    assert model.complete(first_request()).text == "you said plan"
    assert model.calls == 1
    direct = FunctionModel(lambda r: ModelResponse(content=[TextBlock(text="raw")]))
    assert direct.complete(first_request()).text == "raw"
    with pytest.raises(ModelError, match="invalid turn"):
        FunctionModel(lambda r: {"tool_calls": "nope"}).complete(first_request())
