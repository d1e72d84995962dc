"""The scripted backend: replays assistant turns from a YAML/JSON script (tests, dry runs, demo).

Script format (role -> list of sessions -> list of turns)::

    builder:
      - - text: "Reading the plan"
          tool_calls: [{name: read_file, input: {path: src/app.py}}]
        - tool_calls: [{name: finish, input: {summary: "done"}}]
    verifier:
      - - tool_calls: [{name: submit_verdict, input: {decision: approve, summary: ok, criteria: [], findings: []}}]

A turn may also carry ``stop_reason``, ``usage`` ({input_tokens, output_tokens, cache_read,
cache_write}), ``cost_usd``, or ``error`` (the call fails with a ModelError: simulates a backend
outage). Each session of a role consumes the next session script of that role; running out of
sessions or of turns is a ``ModelError``, never a silent stop.

The cursor is derived from the request: a request with no assistant message starts a new
session, and the number of assistant messages is the turn index. So one ``ScriptedModel`` can be
shared by all sessions of a run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from agentflow import yamlsrc
from agentflow.errors import UsageError
from agentflow.events import Usage
from agentflow.files import read_text_file
from agentflow.models.base import ModelError, ModelRequest, ModelResponse, TextBlock, ToolUseBlock


class ScriptToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    input: dict[str, Any] = {}
    id: str | None = None


class ScriptTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    tool_calls: list[ScriptToolCall] = []
    stop_reason: str | None = None
    usage: Usage = Usage()
    cost_usd: float = 0.0
    error: str | None = None

    def response(self, tool_id_prefix: str, model: str) -> ModelResponse:
        if self.error is not None:
            raise ModelError(f"scripted backend error: {self.error}")
        content: list[TextBlock | ToolUseBlock] = []
        if self.text:
            content.append(TextBlock(text=self.text))
        for index, call in enumerate(self.tool_calls):
            content.append(ToolUseBlock(id=call.id or f"{tool_id_prefix}_{index}", name=call.name, input=call.input))
        stop = self.stop_reason or ("tool_use" if self.tool_calls else "end_turn")
        return ModelResponse(content=content, stop_reason=stop, usage=self.usage, cost_usd=self.cost_usd, model=model)


Script = dict[str, list[list[ScriptTurn]]]


def parse_script(data: object, where: str = "<script>") -> Script:
    """Validate a script; problems are a ``UsageError`` naming the file and the entry."""
    if not isinstance(data, dict):
        raise UsageError(
            "a script must map roles to lists of sessions", where=where, fix="see docs/models.md, 'Scripted backend'"
        )
    script: Script = {}
    for role, sessions in data.items():
        if not isinstance(sessions, list) or not all(isinstance(s, list) for s in sessions):
            raise UsageError(f"{role}: must be a list of sessions, each a list of turns", where=where)
        script[str(role)] = []
        for s_index, session in enumerate(sessions, start=1):
            turns = []
            for t_index, turn in enumerate(session, start=1):
                try:
                    turns.append(ScriptTurn.model_validate(turn))
                except ValidationError as exc:
                    err = exc.errors()[0]
                    key = ".".join(str(p) for p in err["loc"])
                    raise UsageError(
                        f"{role} session {s_index} turn {t_index}: {key}: {err['msg']}", where=where
                    ) from None
            script[str(role)].append(turns)
    return script


def read_script(path: Path) -> Script:
    text = read_text_file(path, fix="set models.<role>.script to an existing file")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"invalid JSON: {exc.msg}", where=f"{path}:{exc.lineno}", fix="fix the JSON syntax") from None
    except yaml.YAMLError as exc:
        line, problem = yamlsrc.syntax_error(exc)
        where = f"{path}:{line}" if line else path
        raise UsageError(f"invalid YAML: {problem}", where=where, fix="fix the YAML syntax") from None
    return parse_script(data, str(path))


def _is_parsed(script: object) -> bool:
    """True for an already validated ``Script`` (role -> sessions -> ``ScriptTurn``)."""
    if not isinstance(script, dict):
        return False
    return all(
        isinstance(sessions, list)
        and all(isinstance(session, list) and all(isinstance(t, ScriptTurn) for t in session) for session in sessions)
        for sessions in script.values()
    )


class ScriptedModel:
    """All roles' scripts of one run; ``for_role`` gives the ``Model`` a role's sessions use."""

    def __init__(self, script: Script | dict[str, Any], source: str = "<script>"):
        self.script: Script = script if _is_parsed(script) else parse_script(script, source)  # type: ignore[assignment]
        self.source = source
        self._next_session: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> ScriptedModel:
        return cls(read_script(path), str(path))

    def for_role(self, role: str) -> ScriptedRoleModel:
        return ScriptedRoleModel(self, role)

    def skip(self, played: dict[str, int]) -> None:
        """Start each role after the sessions a resumed run already played from this script."""
        with self._lock:
            for role, count in played.items():
                self._next_session[role] = max(self._next_session.get(role, 0), count)

    def sessions_left(self, role: str) -> int:
        return len(self.script.get(role, [])) - self._next_session.get(role, 0)

    def _start_session(self, role: str) -> int:
        with self._lock:
            index = self._next_session.get(role, 0)
            sessions = self.script.get(role, [])
            if index >= len(sessions):
                raise ModelError(
                    f"out of script: {self.source} has {len(sessions)} {role} session(s) and session "
                    f"{index + 1} was started",
                    fix=f"add another session under '{role}:' in the script",
                )
            self._next_session[role] = index + 1
            return index


class ScriptedRoleModel:
    """The scripted ``Model`` of one role: each new session takes the role's next session script."""

    def __init__(self, scripted: ScriptedModel, role: str):
        self.scripted = scripted
        self.role = role
        self.name = "scripted"
        self._session: int | None = None

    def complete(self, request: ModelRequest) -> ModelResponse:
        turn = sum(1 for m in request.messages if m.role == "assistant")
        if turn == 0 or self._session is None:
            self._session = self.scripted._start_session(self.role)
        turns = self.scripted.script[self.role][self._session]
        if turn >= len(turns):
            raise ModelError(
                f"out of script: {self.role} session {self._session + 1} in {self.scripted.source} has "
                f"{len(turns)} turn(s) and turn {turn + 1} was requested (the session did not end)",
                fix="end the session with finish/submit_verdict or add turns",
            )
        return turns[turn].response(f"toolu_{self.role}_{self._session + 1}_{turn + 1}", self.name)


def load_script(path: Path, role: str) -> ScriptedRoleModel:
    """The scripted model of ``role`` from the script at ``path`` (a fresh cursor)."""
    return ScriptedModel.load(path).for_role(role)


class FunctionModel:
    """A model backed by a function (tests that react to the conversation).

    ``fn(request)`` returns a ``ModelResponse`` or a turn dict in the script format.
    """

    def __init__(self, fn: Callable[[ModelRequest], ModelResponse | dict[str, Any]], name: str = "function"):
        self.fn = fn
        self.name = name
        self.calls = 0

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        reply = self.fn(request)
        if isinstance(reply, ModelResponse):
            return reply
        try:
            turn = ScriptTurn.model_validate(reply)
        except ValidationError as exc:
            raise ModelError(f"FunctionModel returned an invalid turn: {exc.errors()[0]['msg']}") from None
        return turn.response(f"toolu_fn_{self.calls}", self.name)
