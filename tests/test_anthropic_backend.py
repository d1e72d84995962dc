"""The anthropic backend end to end: the real SDK against the fake Messages API on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from agentflow.config import RoleModel
from agentflow.errors import UsageError
from agentflow.ledger import Ledger
from agentflow.models import pricing
from agentflow.models.anthropic import AnthropicModel, RetryPolicy, retry_after_seconds
from agentflow.models.base import Message, ModelError, ModelRequest, TextBlock, ToolSpec
from agentflow.models.registry import get_model
from agentflow.session import RunBudget, SessionLimits, SessionSpec, run_session
from agentflow.tools import Toolbox
from tests.fakeapi import TEST_API_KEY, Delay, Drop, Error, FakeAnthropic, Raw, fake_anthropic, message, text, tool_use

__all__ = ["fake_anthropic"]  # the fixture, imported for pytest

MODEL = "claude-sonnet-5-5"


class Sleeps(list[float]):
    """Records backoff waits instead of sleeping (keeps tests fast; no timing assertions)."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def model(fake_anthropic: FakeAnthropic, sleeps: Sleeps) -> AnthropicModel:
    return AnthropicModel(MODEL, retry=RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.5, sleep=sleeps), timeout=5)


def request(*messages: Message) -> ModelRequest:
    return ModelRequest(
        system=[TextBlock(text="You are the builder.", cache=True)],
        messages=list(messages) or [Message.user("## Plan\nAdd capsule_id", cache=True)],
        tools=[ToolSpec(name="finish", description="end", input_schema={"type": "object", "properties": {}})],
        max_tokens=1024,
    )


def spec(root: Path, **limits: float) -> SessionSpec:
    return SessionSpec(
        role="builder",
        cycle=1,
        run_id="r-test",
        root=root,
        system="You are the builder.",
        prompt="## Plan\nAdd capsule_id to every entity.",
        limits=SessionLimits(**limits),
        budget=RunBudget(limit_usd=10.0),
        backend="anthropic",
        model_name=MODEL,
    )


# -- a whole session -----------------------------------------------------------------------------


def test_multi_turn_tool_session_through_the_sdk(
    repo: Path, fake_anthropic: FakeAnthropic, model: AnthropicModel
) -> None:
    (repo / "app.py").write_text("ENTITY = {}\n")
    fake_anthropic.add(
        message(
            text("Reading"),
            tool_use("read_file", {"path": "app.py"}),
            usage={"input_tokens": 1000, "output_tokens": 100, "cache_creation_input_tokens": 2000},
        ),
        Error(529),
        message(
            tool_use("edit_file", {"path": "app.py", "old_text": "{}", "new_text": "{'capsule_id': 1}"}),
            usage={"input_tokens": 200, "output_tokens": 50, "cache_read_input_tokens": 3000},
        ),
        message(
            tool_use("finish", {"summary": "added capsule_id"}),
            usage={"input_tokens": 100, "output_tokens": 20, "cache_read_input_tokens": 3300},
        ),
    )
    with Ledger.open(repo) as ledger:
        result = run_session(spec(repo), model, Toolbox(repo, "builder"), ledger)
        events = [e.kind for e in ledger.events()]
        ledger_calls = ledger.events(kinds=["model_called"])
        transcript = ledger.transcript(result.session_id)
    assert result.status == "completed" and result.submitted == {"summary": "added capsule_id"}
    assert [e.retries for e in ledger_calls] == [0, 1, 0]
    assert (repo / "app.py").read_text() == "ENTITY = {'capsule_id': 1}\n"
    assert result.turns == 3
    assert result.usage.model_dump() == {
        "input_tokens": 1300,
        "output_tokens": 170,
        "cache_read": 6300,
        "cache_write": 2000,
    }
    # sonnet: $3/M input, $15/M output, $3.75/M cache write, $0.30/M cache read
    expected = (1300 * 3 + 170 * 15 + 2000 * 3.75 + 6300 * 0.30) / 1e6
    assert result.cost_usd == pytest.approx(expected)
    assert events.count("model_called") == 3 and events.count("tool_called") == 3
    assert events[0] == "session_started" and events[-1] == "session_ended"
    # the second request carries the tool result of the first call
    second = fake_anthropic.requests[2]["messages"]  # [1] was answered with 529
    assert second[1]["content"][1]["type"] == "tool_use"
    assert second[2]["content"][0]["type"] == "tool_result"
    assert "ENTITY = {}" in second[2]["content"][0]["content"]
    assert transcript is not None and transcript[0]["role"] == "system"
    assert fake_anthropic.headers[0]["authorization"] == f"Bearer {TEST_API_KEY}"
    assert "temperature" not in fake_anthropic.requests[0]


def test_cache_breakpoints_on_the_stable_prefix_and_latest_turn(
    fake_anthropic: FakeAnthropic, model: AnthropicModel
) -> None:
    fake_anthropic.add(message(text("ok")), message(text("ok")))
    model.complete(request())
    first = fake_anthropic.requests[0]
    assert first["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert first["messages"][0]["content"][-1]["cache_control"] == {"type": "ephemeral"}

    conversation = [
        Message(role="user", content=[TextBlock(text="patterns"), TextBlock(text="plan", cache=True)]),
        Message(role="assistant", content=[TextBlock(text="working")]),
        Message.user("tool output"),
    ]
    model.complete(request(*conversation))
    body = fake_anthropic.requests[1]
    marked = [(where, block) for where, block in _blocks(body) if "cache_control" in block]
    assert [where for where, _ in marked] == ["system[0]", "messages[0][1]", "messages[2][0]"]
    assert len(marked) <= 4
    assert "cache_control" not in body["messages"][0]["content"][0]  # only the cached block's end
    assert "cache_control" not in body["messages"][1]["content"][0]


def _blocks(body: dict) -> list[tuple[str, dict]]:
    found = [(f"system[{i}]", b) for i, b in enumerate(body.get("system", []))]
    for m, msg in enumerate(body["messages"]):
        found += [(f"messages[{m}][{i}]", b) for i, b in enumerate(msg["content"])]
    found += [(f"tools[{i}]", t) for i, t in enumerate(body.get("tools", []))]
    return found


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        Error(429, headers={"retry-after": "0.2"}),
        Error(429, headers={"retry-after-ms": "150"}),
        Error(529),
        Error(500),
        Error(503),
        Drop(),
    ],
    ids=["429-retry-after", "429-retry-after-ms", "529", "500", "503", "dropped"],
)
def test_transient_failures_are_retried_then_succeed(
    fake_anthropic: FakeAnthropic, model: AnthropicModel, sleeps: Sleeps, failure: object
) -> None:
    fake_anthropic.add(failure, failure, message(text("finally")))
    response = model.complete(request())
    assert response.text == "finally" and response.retries == 2
    assert len(fake_anthropic.requests) == 3 and len(sleeps) == 2


def test_retry_after_is_honoured_up_to_the_cap(
    fake_anthropic: FakeAnthropic, model: AnthropicModel, sleeps: Sleeps
) -> None:
    fake_anthropic.add(
        Error(429, headers={"retry-after": "0.2"}), Error(429, headers={"retry-after": "3600"}), message(text("ok"))
    )
    model.complete(request())
    assert sleeps == [0.2, 0.5]  # the server's wait, then capped at max_delay


def test_backoff_is_exponential_bounded_and_jittered() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0, jitter=0.25)
    waits = [policy.delay(attempt, None) for attempt in range(1, 6)]
    for attempt, wait in enumerate(waits, start=1):
        ceiling = min(2 ** (attempt - 1), 5.0)
        assert ceiling * 0.75 <= wait <= ceiling
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) < 0
    assert retry_after_seconds({}) is None


def test_persistent_failure_is_a_model_error(
    fake_anthropic: FakeAnthropic, model: AnthropicModel, sleeps: Sleeps
) -> None:
    fake_anthropic.add(*[Error(529)] * 4)
    with pytest.raises(ModelError, match="failed 4 times; last: HTTP 529"):
        model.complete(request())
    assert len(fake_anthropic.requests) == 4 and len(sleeps) == 3


def test_persistent_failure_ends_the_session_as_failed(
    repo: Path, fake_anthropic: FakeAnthropic, model: AnthropicModel
) -> None:
    fake_anthropic.add(*[Error(500)] * 4)
    with Ledger.open(repo) as ledger:
        result = run_session(spec(repo), model, Toolbox(repo, "builder"), ledger)
        ended = ledger.events(kinds=["session_ended"])[-1]
    assert result.status == "failed" and result.submitted is None
    assert "HTTP 500" in (result.reason or "")
    assert ended.status == "failed"


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_are_not_retried(fake_anthropic: FakeAnthropic, model: AnthropicModel, status: int) -> None:
    fake_anthropic.add(Error(status, message="nope"), message(text("never")))
    with pytest.raises(ModelError, match=f"refused the request: {status} nope"):
        model.complete(request())
    assert len(fake_anthropic.requests) == 1


def test_x_should_retry_false_stops_retries(fake_anthropic: FakeAnthropic, model: AnthropicModel) -> None:
    fake_anthropic.add(Error(500, headers={"x-should-retry": "false"}), message(text("never")))
    with pytest.raises(ModelError):
        model.complete(request())
    assert len(fake_anthropic.requests) == 1


def test_timeouts_are_retried(fake_anthropic: FakeAnthropic, sleeps: Sleeps) -> None:
    model = AnthropicModel(MODEL, retry=RetryPolicy(attempts=2, base_delay=0.01, sleep=sleeps), timeout=0.3)
    fake_anthropic.add(Delay(1.0, message(text("late"))), message(text("in time")))
    assert model.complete(request()).text == "in time"
    fake_anthropic.add(Delay(1.0, message(text("late"))), Delay(1.0, message(text("late"))))
    with pytest.raises(ModelError, match="timed out"):
        model.complete(request())


# -- malformed replies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        '{"id": "msg_1", "type": "message", "content": "oops"}',
        json.dumps({**message(text("x")), "usage": None}),
        json.dumps(
            {
                **message(tool_use("finish", {"summary": "x"})),
                "content": [{"type": "tool_use", "name": "finish", "input": "not an object"}],
            }
        ),
    ],
    ids=["not-json", "content-not-a-list", "no-usage", "bad-tool-use"],
)
def test_malformed_reply_is_a_model_error_never_an_approval(
    fake_anthropic: FakeAnthropic, model: AnthropicModel, body: str
) -> None:
    fake_anthropic.add(Raw(body))
    with pytest.raises(ModelError, match="malformed reply"):
        model.complete(request())
    assert len(fake_anthropic.requests) == 1


def test_malformed_verdict_reply_fails_the_verifier_session(
    repo: Path, fake_anthropic: FakeAnthropic, model: AnthropicModel
) -> None:
    fake_anthropic.add(
        Raw('{"content": [{"type": "tool_use", "name": "submit_verdict", "input": {"decision": "approve"}}]}')
    )
    verifier = spec(repo)
    verifier.role = "verifier"
    with Ledger.open(repo) as ledger:
        result = run_session(verifier, model, Toolbox(repo, "verifier"), ledger)
    assert result.status == "failed" and result.submitted is None


# -- configuration -------------------------------------------------------------------------------


def test_missing_key_is_a_usage_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="set ANTHROPIC_API_KEY or use --backend scripted") as err:
        get_model(RoleModel(), root=Path("."), role="builder")
    assert err.value.exit_code == 2


def test_registry_builds_the_anthropic_model(fake_anthropic: FakeAnthropic) -> None:
    model = get_model(RoleModel(model="claude-haiku-5-5"), root=Path("."), role="evaluator")
    assert isinstance(model, AnthropicModel) and model.name == "claude-haiku-5-5"
    assert str(model.client.base_url).startswith(fake_anthropic.url)
    assert model.client.max_retries == 0


def test_registry_overrides_win_over_config(fake_anthropic: FakeAnthropic) -> None:
    cfg = RoleModel(backend="scripted", script="missing.yaml")
    model = get_model(
        cfg, root=Path("."), role="builder", override_backend="anthropic", override_model="claude-opus-4-5"
    )
    assert isinstance(model, AnthropicModel) and model.name == "claude-opus-4-5"
    with pytest.raises(UsageError, match="unknown backend 'gpt'"):
        get_model(RoleModel(), root=Path("."), role="builder", override_backend="gpt")


def test_unknown_model_is_priced_conservatively(caplog: pytest.LogCaptureFixture) -> None:
    price, known = pricing.price_for("claude-mystery-9")
    assert not known and price == pricing.CONSERVATIVE
    assert "no price known for model 'claude-mystery-9'" in caplog.text
    assert pricing.price_for("claude-sonnet-5-5-20261001") == (pricing.PRICES["claude-sonnet-5-5"], True)
    assert pricing.price_for("claude-haiku-5-5")[0].input < pricing.price_for("claude-sonnet-5-5")[0].input


def test_run_budget_stops_a_call_that_could_exceed_it(
    repo: Path, fake_anthropic: FakeAnthropic, model: AnthropicModel
) -> None:
    fake_anthropic.add(message(tool_use("finish", {"summary": "x"})))
    tight = spec(repo)
    tight.budget = RunBudget(limit_usd=0.001)  # less than one call's output allowance
    with Ledger.open(repo) as ledger:
        result = run_session(tight, model, Toolbox(repo, "builder"), ledger)
    assert result.status == "limits" and "run budget" in (result.reason or "")
    assert fake_anthropic.requests == []  # the call was never made


def test_streaming_requests_get_sse_events(fake_anthropic: FakeAnthropic) -> None:
    """The fake serves ``stream: true`` (for agents like Claude Code); the SDK assembles it."""
    import anthropic

    client = anthropic.Anthropic(max_retries=0, _strict_response_validation=True)
    fake_anthropic.add(
        message(
            text("Let me look"),
            tool_use("read_file", {"path": "src/a.py", "n": [1, 2]}),
            usage={"input_tokens": 7, "output_tokens": 9},
        )
    )
    with client.messages.stream(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert fake_anthropic.requests[0]["stream"] is True
    assert kinds[0] == "message_start" and "message_stop" in kinds
    assert final.content[0].text == "Let me look"
    assert final.content[1].input == {"path": "src/a.py", "n": [1, 2]}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 9


def test_unscripted_request_fails_fast(fake_anthropic: FakeAnthropic, model: AnthropicModel) -> None:
    with pytest.raises(ModelError, match="no reply queued"):
        model.complete(request())
    assert fake_anthropic.pending == 0


# -- opt-in live check ---------------------------------------------------------------------------

_LIVE_KEY = os.environ.get("ANTHROPIC_API_KEY")  # read at import: the autouse fixture removes it
_REAL_CONNECT = socket.socket.connect  # likewise: the fixture confines tests to 127.0.0.1


@pytest.mark.live
def test_live_tool_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """One real call: the model calls a tool, usage and cost come back (AGENTFLOW_LIVE_MODEL picks it).

    Deselected unless AGENTFLOW_LIVE_TESTS=1 (conftest.py); opted in without a key, it fails."""
    assert _LIVE_KEY, "AGENTFLOW_LIVE_TESTS=1 needs ANTHROPIC_API_KEY for the live API test"
    monkeypatch.setattr(socket.socket, "connect", _REAL_CONNECT)
    model = AnthropicModel(
        os.environ.get("AGENTFLOW_LIVE_MODEL", "claude-haiku-5-5"), api_key=_LIVE_KEY, retry=RetryPolicy(attempts=3)
    )
    tool = ToolSpec(
        name="finish",
        description="Call this with a one-word summary.",
        input_schema={"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]},
    )
    reply = model.complete(
        ModelRequest(
            system=[TextBlock(text="Always call the finish tool.", cache=True)],
            messages=[Message.user("Say hi via finish.", cache=True)],
            tools=[tool],
            max_tokens=200,
        )
    )
    assert reply.tool_calls and reply.tool_calls[0].name == "finish"
    assert reply.usage.input_tokens + reply.usage.cache_write > 0 and reply.cost_usd > 0
