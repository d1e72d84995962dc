"""One agent session: the tool loop, its limits, and its record in the ledger.

The loop is deliberately small (in the spirit of mini-swe-agent): ask the model, run the tools it
called, feed the results back, until a terminal tool is called. Control flow uses exceptions:
``Submitted`` (from the toolbox) ends a session as completed, ``LimitsExceeded`` as limits, a
``ModelError`` as failed. The session never raises for model failures; orchestration turns a
failed session into ``no_verdict`` (fail closed).

Every model call and tool call is an event; the transcript is appended after every turn (the new
messages only, one ledger row each), so a killed run leaves a complete record up to the last turn.
"""

from __future__ import annotations

import importlib
import threading
import time
from typing import Any

from agentflow import config
from agentflow.errors import BackendError
from agentflow.ledger import Ledger
from agentflow.models import BACKENDS
from agentflow.models.base import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
)
from agentflow.session_types import (
    TERMINAL_TOOLS,
    LimitsExceeded,
    ProgressFn,
    RunBudget,
    SessionLimits,
    SessionRecorder,
    SessionResult,
    SessionSpec,
    Status,
    submitted_summary,
)
from agentflow.tools import ROLE_TOOLS, SPECS, Submitted, Toolbox, ToolOutput, ToolProvider

__all__ = [  # the session contract lives in session_types; re-exported for callers of the runtime
    "EarlyCall",
    "LimitsExceeded",
    "ProgressFn",
    "RunBudget",
    "SessionLimits",
    "SessionResult",
    "SessionSpec",
    "run_role_session",
    "run_session",
    "send_first_call",
]

NUDGE = (
    "You replied without calling a tool. Continue the work with the tools; when you are done, "
    "call {terminal} (the session only ends through it)."
)
CUT_OFF = (
    "Not run: your reply hit the {max_tokens}-token output limit while writing this {tool} call, so its "
    "input may be incomplete. Make smaller calls (e.g. several edit_file calls instead of one big "
    "write_file)."
)
NO_TERMINAL_REASON = "ended without finish/submit_verdict"


class _Session:
    """The state of one running session; ``run`` is the loop, ``recorder`` its bookkeeping."""

    def __init__(
        self,
        spec: SessionSpec,
        model: Model,
        toolbox: ToolProvider,
        ledger: Ledger,
        on_progress: ProgressFn | None,
        early: EarlyCall | None = None,
    ):
        self.spec, self.model, self.toolbox = spec, model, toolbox
        self.recorder = SessionRecorder(spec, ledger, on_progress)
        self.system = [TextBlock(text=spec.system, cache=True)]
        self.messages: list[Message] = [Message.user(spec.prompt, cache=True)]
        self.tools = toolbox.specs()
        self.early = early  # the first request, already on its way (``send_first_call``)
        self.terminal = " or ".join(t.name for t in self.tools if t.name in TERMINAL_TOOLS) or "your final tool"
        self.nudged = False
        self._dumped: list[dict[str, Any]] = []  # transcript() entries so far (system first)
        if hasattr(toolbox, "deadline"):  # commands must not outlive the session's time limit
            toolbox.deadline = self.recorder.started + spec.limits.max_seconds

    def run(self) -> SessionResult:
        self.recorder.start(self.spec.backend, self.model_name)
        status: Status
        submitted: dict[str, Any] | None = None
        try:
            while True:
                self.step()
        except Submitted as done:
            status, reason, submitted = "completed", None, done.payload
        except LimitsExceeded as exc:
            status, reason = "limits", str(exc)
        except BackendError as exc:
            status, reason = "failed", str(exc)
        except KeyboardInterrupt:
            self.finish("interrupted", "interrupted by the user", None)
            raise
        except Exception as exc:  # a bug, not a model failure: record it, then let it surface
            self.finish("failed", f"internal error: {exc!r}", None)
            raise
        return self.finish(status, reason, submitted)

    @property
    def model_name(self) -> str:
        return self.spec.model_name or getattr(self.model, "name", "?")

    def step(self) -> None:
        """One turn: check limits, call the model, run its tool calls (may raise ``Submitted``)."""
        request = ModelRequest(
            system=self.system, messages=self.messages, tools=self.tools, max_tokens=self.spec.limits.output_tokens
        )
        early, self.early = self.early, None
        if early is not None and not early.answers(request, self.model):
            early.drop()
            early = None
        if early is None:
            self.check_limits(request)  # an early call was checked when it was sent, with the same counts
        self.recorder.turns += 1
        began = time.monotonic()
        self.recorder.progress(activity="waiting for the model")
        if early is not None:
            response, seconds = early.result()
        else:
            response = self.model.complete(request)
            seconds = time.monotonic() - began
        self.record_call(response, seconds)
        # The API rejects an empty assistant message in the history, so an empty reply keeps a marker.
        content = list(response.content) or [TextBlock(text="(empty reply)")]
        self.messages.append(Message(role="assistant", content=content))
        if response.tool_calls:
            self.nudged = False
            self.run_tools(response)
        elif self.nudged:
            raise BackendError(NO_TERMINAL_REASON)
        else:
            self.nudged = True
            self.messages.append(Message.user(NUDGE.format(terminal=self.terminal)))
        self.recorder.save_transcript(self.transcript())

    def check_limits(self, request: ModelRequest) -> None:
        recorder = self.recorder
        estimate_fn = getattr(self.model, "estimate_cost", None)
        estimate = float(estimate_fn(request)) if callable(estimate_fn) else 0.0
        self.spec.limits.check(
            turns=recorder.turns,
            tokens=recorder.usage.total,
            seconds=time.monotonic() - recorder.started,
            cost_usd=recorder.cost,
            next_call_usd=estimate,
        )
        self.spec.budget.check(estimate)

    def record_call(self, response: ModelResponse, seconds: float) -> None:
        self.recorder.record_model_call(
            response.model or self.model_name,
            response.usage,
            cost_usd=response.cost_usd,
            stop_reason=response.stop_reason,
            duration_s=seconds,
            retries=response.retries,
        )
        self.recorder.progress()

    def run_tools(self, response: ModelResponse) -> None:
        """Run the calls in order; a terminal call ends the batch. A call cut off by max_tokens
        is not run (its input may be incomplete: think of a half-written file)."""
        results: list[ToolResultBlock] = []
        calls = response.tool_calls
        cut_off = calls[-1] if response.stop_reason == "max_tokens" else None
        try:
            for call in calls:
                began = time.monotonic()
                if call is cut_off:
                    output = ToolOutput(
                        CUT_OFF.format(tool=call.name, max_tokens=self.spec.limits.output_tokens), is_error=True
                    )
                else:
                    try:
                        self.recorder.progress(activity=f"running {call.name}")
                        output = self.toolbox.call(call.name, call.input)
                    except Submitted:
                        self.record_tool(call.name, call.input, False, 0, time.monotonic() - began)
                        raise
                self.record_tool(call.name, call.input, output.is_error, len(output.content), time.monotonic() - began)
                results.append(
                    ToolResultBlock(
                        tool_use_id=call.id, content=output.content or "(no output)", is_error=output.is_error
                    )
                )
        finally:
            if results:
                self.messages.append(Message(role="user", content=list(results)))

    def record_tool(self, tool: str, input: dict[str, Any], is_error: bool, chars: int, seconds: float) -> None:
        self.recorder.record_tool_call(tool, input, is_error=is_error, output_chars=chars, duration_s=seconds)
        self.recorder.progress(tool=tool)

    def transcript(self) -> list[dict[str, Any]]:
        """The system prompt and the messages, dumped once each: messages are only ever appended, so
        a turn dumps only its own (and the ledger appends only those rows): linear in the turns."""
        if not self._dumped:
            self._dumped.append({"role": "system", "content": [b.model_dump() for b in self.system]})
        for message in self.messages[len(self._dumped) - 1 :]:
            self._dumped.append(message.model_dump())
        return list(self._dumped)

    def finish(self, status: Status, reason: str | None, submitted: dict[str, Any] | None) -> SessionResult:
        return self.recorder.finish(
            status, reason, submitted, summary=submitted_summary(submitted), transcript=self.transcript()
        )


def run_session(
    spec: SessionSpec,
    model: Model,
    toolbox: ToolProvider,
    ledger: Ledger,
    on_progress: ProgressFn | None = None,
    early: EarlyCall | None = None,
) -> SessionResult:
    """Run one session to its end; never raises for model failures (see ``SessionResult.status``)."""
    return _Session(spec, model, toolbox, ledger, on_progress, early).run()


class EarlyCall:
    """A session's first model request, sent before the session starts (``send_first_call``): while
    the run still prepares what only the session's tools need (its worktree or checkout, the git
    snapshot, the ledger's events), the model is already thinking (#19 item 5). The session takes
    its reply as its first turn's, only for the very request it would send itself on the same
    model (``answers``); otherwise, or when the run fails before its session starts, the reply is
    dropped and nothing of it is recorded. The model's reply is only data until the session runs
    its tool calls, after the snapshot: nothing an agent asks for happens earlier."""

    def __init__(self, request: ModelRequest, model: Model):
        self.request, self.model = request, model
        self.dropped = False
        self._reply: tuple[ModelResponse, float] | None = None
        self._error: BaseException | None = None
        self._sending = threading.Event()  # what the request waited for is ready, or the call is over
        self._thread = threading.Thread(target=self._call, name="agentflow-first-call", daemon=True)
        self._thread.start()

    def _call(self) -> None:
        began = time.monotonic()
        try:
            ready = getattr(self.model, "ready", None)
            if callable(ready):
                ready()  # the SDK's client (its TLS context): made or waited for, before the request
            self._sending.set()
            response = self.model.complete(self.request)
        except BaseException as exc:  # noqa: BLE001 - handed to the session, which treats it as its own call's
            self._error = exc
        else:
            self._reply = (response, time.monotonic() - began)
        finally:
            self._sending.set()

    def wait_sending(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until the request is being sent (or the call is over);
        whether it is. What the run does next (its worktree, its checkout) is only needed once the
        reply is in, and under ``-j`` it took the CPU and the GIL the first request waited for (#19
        item 5)."""
        return self._sending.wait(timeout)

    def answers(self, request: ModelRequest, model: Model) -> bool:
        return not self.dropped and model is self.model and request == self.request

    def result(self) -> tuple[ModelResponse, float]:
        """The reply and the call's seconds (as ``model.complete`` would return or raise them)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._reply is not None
        return self._reply

    def drop(self) -> None:
        """Never used: the run failed, or the session's first request differs (its reply is ignored)."""
        self.dropped = True


def first_request(spec: SessionSpec) -> ModelRequest:
    """The first request of a session of ``spec`` in the tool loop (``_Session.step``'s first)."""
    return ModelRequest(
        system=[TextBlock(text=spec.system, cache=True)],
        messages=[Message.user(spec.prompt, cache=True)],
        tools=[SPECS[name] for name in ROLE_TOOLS[spec.role]],  # type: ignore[index]
        max_tokens=spec.limits.output_tokens,
    )


def send_first_call(spec: SessionSpec, model: Model | None) -> EarlyCall | None:
    """Send the first request of ``spec``'s session now, on a thread (``EarlyCall``), when its model
    asks for it (``early_calls``: an API with network latency) and the session's limits and the
    run's budget allow that call, checked as the session's first turn checks them; else None (the
    session sends it itself, and reports a limit itself)."""
    if model is None or not getattr(model, "early_calls", False) or spec.role not in ROLE_TOOLS:
        return None
    request = first_request(spec)
    estimate_fn = getattr(model, "estimate_cost", None)
    estimate = float(estimate_fn(request)) if callable(estimate_fn) else 0.0
    try:
        spec.limits.check(turns=0, tokens=0, seconds=0.0, cost_usd=0.0, next_call_usd=estimate)
        spec.budget.check(estimate)
    except LimitsExceeded:
        return None
    return EarlyCall(request, model)


# Scripted models shared by the sessions of one run, so each session takes the next script entry.
_scripted_by_run: dict[tuple[str, str, str], Model] = {}


def _model_for(spec: SessionSpec) -> Model:
    from agentflow.models.registry import get_model

    role_cfg = spec.role_cfg or config.RoleModel(backend=spec.backend, model=spec.model_name)  # type: ignore[arg-type]
    if spec.backend != "scripted":
        return get_model(
            role_cfg, root=spec.root, role=spec.role, override_backend=spec.backend, override_model=spec.model_name
        )
    key = (spec.run_id, spec.role, str(role_cfg.script))
    if key not in _scripted_by_run:
        _scripted_by_run[key] = get_model(role_cfg, root=spec.root, role=spec.role, override_backend="scripted")
    return _scripted_by_run[key]


def run_role_session(
    spec: SessionSpec,
    ledger: Ledger,
    *,
    model: Model | None = None,
    on_progress: ProgressFn | None = None,
    early: EarlyCall | None = None,
) -> SessionResult:
    """Run a session with the backend ``spec.backend`` names.

    API-style backends (anthropic, scripted) run the tool loop here; external agents (command,
    claude-code) run in their own module, imported only when used.
    """
    external = BACKENDS[spec.backend].session if spec.backend in BACKENDS else None
    if model is None and external is not None:
        module_name, function = external
        runner = getattr(importlib.import_module(module_name), function)
        return runner(spec, ledger, on_progress)
    owned = model is None
    model = model or _model_for(spec)
    toolbox = Toolbox(
        spec.root,
        spec.role,  # type: ignore[arg-type]
        command_timeout=spec.limits.command_timeout,
        sandbox=spec.sandbox,
        fresh_commit=spec.fresh_commit,
    )
    try:
        return run_session(spec, model, toolbox, ledger, on_progress, early)
    finally:
        close = getattr(model, "close", None)
        if owned and spec.backend != "scripted" and callable(close):
            close()
