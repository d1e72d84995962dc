"""The anthropic backend: the Messages API through the official SDK (imported lazily, here only).

* Retries are ours, not the SDK's (``max_retries=0``): the SDK would obey any ``retry-after``
  without a cap. We retry 408, 429, 5xx (incl. 529 overloaded), connection errors and timeouts with
  bounded exponential backoff and jitter, honour ``retry-after``/``retry-after-ms`` up to a cap, and
  after the last attempt raise ``ModelError``: the session fails, nothing is approved.
* Prompt caching: ``cache_control`` on the last system block and on the first user message's
  cached block (the stable prefix: system prompt, patterns, plan), plus one on the latest turn so
  each turn reads the previous turns from the cache. At most 4 breakpoints, as the API allows.
* Usage includes cache reads and writes; cost comes from ``agentflow.models.pricing``.
* A reply that is not valid JSON or not a well-formed message is a ``ModelError``, never a verdict.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from agentflow.errors import UsageError
from agentflow.events import Usage
from agentflow.models import pricing
from agentflow.models.base import (
    ModelError,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
)

if TYPE_CHECKING:
    import anthropic
    import httpx2

log = logging.getLogger(__name__)
MAX_CACHE_BREAKPOINTS = 4
CACHE_CONTROL = {"type": "ephemeral"}
RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every 5xx (500, 502, 503, 504, 529 ...)
KEY_FIX = "set ANTHROPIC_API_KEY or use --backend scripted"
_prefetch: list[Any] = []


def prefetch_sdk() -> None:
    """Import the SDK (a second or more) and make the default client in a background thread, once
    per process, so that both overlap the checks and worktree preparation of a build instead of
    delaying its first model call (#19 item 5). The first call waits on Python's import lock, or on
    the client lock, if the thread is still at it."""
    if _prefetch:
        return
    import contextlib

    def load() -> None:
        with contextlib.suppress(Exception):  # the first model call makes (and reports) the real thing
            import anthropic

            key = os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")
            if key:  # the client an AnthropicModel with default settings uses (its transport, TLS context)
                shared_client(client_settings(key, None, _env_float("AGENTFLOW_REQUEST_TIMEOUT", 600.0), True))
            # what the SDK imports on the first request (every run's, at the same moment under -j):
            # the trace-context propagator (OpenTelemetry's, 10-20 ms) and the IDNA codec of the URL
            import encodings.idna  # noqa: F401

            import opentelemetry.propagate  # noqa: F401

            # the SDK builds its reply models' validators on the first reply: build them last (the
            # first request needs the client and the imports above; its reply comes a call later)
            anthropic.types.Message.model_validate(_SAMPLE_REPLY)

    thread = threading.Thread(target=load, name="agentflow-sdk-import", daemon=True)
    _prefetch.append(thread)
    thread.start()


_SAMPLE_REPLY = {
    "id": "msg_prefetch",
    "type": "message",
    "role": "assistant",
    "model": "prefetch",
    "content": [{"type": "text", "text": ""}, {"type": "tool_use", "id": "toolu_prefetch", "name": "x", "input": {}}],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 0, "output_tokens": 0},
}
_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def client_settings(api_key: str, base_url: str | None, timeout: float, strict: bool) -> tuple[Any, ...]:
    """What an SDK client is made of (besides a caller's own HTTP client): the key of ``shared_client``."""
    return (api_key, base_url or os.environ.get("ANTHROPIC_BASE_URL") or None, timeout, strict)


def shared_client(settings: tuple[Any, ...]) -> anthropic.Anthropic:
    """One SDK client per process and settings, shared by every model and thread (``-j``): the SDK's
    HTTP client is thread-safe, and each new one costs a TLS context (CA bundle) and a connection
    pool. Made under a lock, so concurrent first calls make it once."""
    with _clients_lock:
        client = _clients.get(settings)
        if client is None:
            import anthropic

            api_key, base_url, timeout, strict = settings
            client = anthropic.Anthropic(
                api_key=api_key,
                base_url=base_url,
                max_retries=0,  # retries are ours: bounded waits, see RetryPolicy
                timeout=timeout,
                _strict_response_validation=strict,
            )
            if len(_clients) >= 8:  # settings seldom change in a process; a model keeps its own reference
                _clients.pop(next(iter(_clients)))
            _clients[settings] = client
        return client


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        raise UsageError(f"{name}={value!r} is not a number", fix=f"unset {name} or set it to a number") from None


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with jitter; ``retry-after`` honoured up to ``max_delay``.

    ``attempts`` counts every request, the first included. Env overrides (for CI and tests that
    drive the CLI): ``AGENTFLOW_RETRY_ATTEMPTS``, ``AGENTFLOW_RETRY_BASE_DELAY``,
    ``AGENTFLOW_RETRY_MAX_DELAY``.
    """

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.25  # each computed wait is reduced by up to this fraction
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(
            attempts=max(1, int(_env_float("AGENTFLOW_RETRY_ATTEMPTS", 6))),
            base_delay=_env_float("AGENTFLOW_RETRY_BASE_DELAY", 1.0),
            max_delay=_env_float("AGENTFLOW_RETRY_MAX_DELAY", 30.0),
        )

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_delay))
        backoff = min(self.base_delay * 2 ** (attempt - 1), self.max_delay)
        return backoff * (1 - self.jitter * random.random())


def retry_after_seconds(headers: Any) -> float | None:
    """``retry-after-ms`` (precise) or ``retry-after`` (seconds or an HTTP date), else None."""
    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def api_key_from_env() -> str:
    key = os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")
    if not key:
        raise UsageError("ANTHROPIC_API_KEY is not set", fix=KEY_FIX)
    return key


class AnthropicModel:
    """``Model`` over the Messages API. Construction fails with ``UsageError`` when no key is set.

    Construction checks the settings (key, timeout, retries, price) without the SDK: the client,
    and with it the SDK import (about a second), comes with the first call, so ``build`` can check
    every run's models before anything starts while the import runs in the background
    (``prefetch_sdk``) instead of on the critical path (#19 item 5).
    """

    # a call waits for the network and the model: a session's first one may go out while the run
    # still prepares its worktree and snapshot (``agentflow.session.send_first_call``)
    early_calls = True

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx2.Client | None = None,
        strict: bool = True,
    ):
        self.name = model
        self.retry = retry or RetryPolicy.from_env()
        self.timeout = timeout if timeout is not None else _env_float("AGENTFLOW_REQUEST_TIMEOUT", 600.0)
        self._settings = client_settings(api_key or api_key_from_env(), base_url, self.timeout, strict)
        self._http_client = http_client
        pricing.price_for(model)  # warns once for a model without a known price
        self._client: anthropic.Anthropic | None = None
        self._client_lock = threading.Lock()

    @property
    def client(self) -> anthropic.Anthropic:
        """The SDK client, made on first use (waiting for ``prefetch_sdk`` if it is still at it):
        the process's shared one, or this model's own around a caller's ``http_client``."""
        with self._client_lock:
            if self._client is None:
                import anthropic

                self._anthropic = anthropic
                if self._http_client is None:
                    self._client = shared_client(self._settings)
                else:
                    api_key, base_url, timeout, strict = self._settings
                    self._client = anthropic.Anthropic(
                        api_key=api_key,
                        base_url=base_url,
                        max_retries=0,
                        timeout=timeout,
                        http_client=self._http_client,
                        _strict_response_validation=strict,
                    )
            return self._client

    def close(self) -> None:
        """Release this model's own HTTP client (the shared one lives as long as the process)."""
        if self._client is not None and self._http_client is not None:
            self._client.close()

    # -- the Model protocol ----------------------------------------------------------------------

    def ready(self) -> None:
        """Make (or wait for) the SDK client a request needs (``session.EarlyCall``)."""
        _ = self.client

    def complete(self, request: ModelRequest) -> ModelResponse:
        params = build_params(self.name, request)
        message, retries = self._create_with_retries(params)
        return to_response(message, self.name).model_copy(update={"retries": retries})

    def estimate_cost(self, request: ModelRequest) -> float:
        """A conservative cost of the call ``request`` would make, before making it."""
        chars = len(json.dumps(request.model_dump(mode="json"), separators=(",", ":")))
        return pricing.estimate_call_cost(self.name, chars, request.max_tokens)

    # -- retries ---------------------------------------------------------------------------------

    def _create_with_retries(self, params: dict[str, Any]) -> tuple[Any, int]:
        """(the SDK's Message, how many failed attempts were retried before it)."""
        client = self.client
        anthropic = self._anthropic
        policy = self.retry
        for attempt in range(1, policy.attempts + 1):
            try:
                return client.messages.create(**params), attempt - 1
            except anthropic.APIStatusError as exc:
                if not _retryable(exc.status_code, exc.response.headers):
                    raise ModelError(
                        f"the Messages API refused the request: {exc.status_code} {_error_message(exc)}",
                        fix=_fix_for(exc.status_code),
                    ) from None
                problem, wait_for = f"HTTP {exc.status_code}", retry_after_seconds(exc.response.headers)
            except anthropic.APITimeoutError:
                problem, wait_for = f"timed out after {self.timeout:g} s", None
            except anthropic.APIConnectionError as exc:
                problem, wait_for = f"connection error ({exc.__cause__ or exc})", None
            except (anthropic.APIResponseValidationError, ValueError) as exc:
                raise ModelError(f"malformed reply from the Messages API: {_short(exc)}") from None
            except anthropic.AnthropicError as exc:  # credentials, configuration: retrying cannot help
                raise ModelError(f"the anthropic SDK failed: {_short(exc)}") from None
            if attempt == policy.attempts:
                raise ModelError(
                    f"the Messages API failed {policy.attempts} times; last: {problem}",
                    fix="try again later or raise AGENTFLOW_RETRY_ATTEMPTS",
                )
            wait = policy.delay(attempt, wait_for)
            log.warning("Messages API %s; retry %d/%d in %.2f s", problem, attempt, policy.attempts - 1, wait)
            policy.sleep(wait)
        raise AssertionError("unreachable")


def _retryable(status: int, headers: Any) -> bool:
    should = headers.get("x-should-retry") if headers is not None else None
    if should in ("true", "false"):
        return should == "true"
    return status in RETRYABLE_STATUS or status >= 500


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return _short(exc)


def _fix_for(status: int) -> str | None:
    return {
        401: "check ANTHROPIC_API_KEY",
        403: "check the key's permissions",
        404: "check the model name and ANTHROPIC_BASE_URL",
        413: "the prompt is too large: narrow the plan or the patterns",
    }.get(status)


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


# -- request building ----------------------------------------------------------------------------


def build_params(model: str, request: ModelRequest) -> dict[str, Any]:
    """The ``messages.create`` keyword arguments, with at most 4 cache breakpoints.

    Breakpoints: the last cached system block, the first user message's cached block (the stable
    prefix), and the last block of the latest message (incremental caching of the conversation).
    """
    system = [_text_param(block) for block in request.system]
    messages = [{"role": m.role, "content": [_block_param(b) for b in m.content]} for m in request.messages]
    marks: list[dict[str, Any]] = []
    cached_system = [param for param, block in zip(system, request.system, strict=False) if block.cache]
    if cached_system:
        marks.append(cached_system[-1])
    if request.messages and request.messages[0].role == "user":
        cached_first = [
            p
            for p, b in zip(messages[0]["content"], request.messages[0].content, strict=False)
            if isinstance(b, TextBlock) and b.cache
        ]
        if cached_first:
            marks.append(cached_first[-1])
    if messages and messages[-1]["content"]:
        marks.append(messages[-1]["content"][-1])
    unique: list[dict[str, Any]] = []
    for param in marks:
        if not any(param is seen for seen in unique):
            unique.append(param)
    for param in unique[:MAX_CACHE_BREAKPOINTS]:
        param["cache_control"] = dict(CACHE_CONTROL)
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": messages,
    }
    if system:
        params["system"] = system
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in request.tools
        ]
    return params


def _text_param(block: TextBlock) -> dict[str, Any]:
    return {"type": "text", "text": block.text}


def _block_param(block: TextBlock | ToolUseBlock | ToolResultBlock) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return _text_param(block)
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.tool_use_id, "content": block.content}
    if block.is_error:
        result["is_error"] = True
    return result


# -- response parsing ----------------------------------------------------------------------------


def to_response(message: Any, model: str) -> ModelResponse:
    """Our ``ModelResponse`` from the SDK's ``Message``; an unexpected shape is a ``ModelError``."""
    try:
        content: list[TextBlock | ToolUseBlock] = []
        for block in message.content:
            kind = getattr(block, "type", None)
            if kind == "text":
                content.append(TextBlock(text=block.text))
            elif kind == "tool_use":
                content.append(ToolUseBlock(id=block.id, name=block.name, input=block.input))
            # thinking and server-tool blocks carry nothing the session acts on
        raw = message.usage
        usage = Usage(
            input_tokens=raw.input_tokens,
            output_tokens=raw.output_tokens,
            cache_read=raw.cache_read_input_tokens or 0,
            cache_write=raw.cache_creation_input_tokens or 0,
        )
        served_by = message.model if isinstance(message.model, str) and message.model else model
        stop_reason = message.stop_reason
    except (AttributeError, TypeError, ValidationError) as exc:
        raise ModelError(f"malformed reply from the Messages API: {_short(exc)}") from None
    # Price by the model we asked for: the reply may name a dated snapshot of it.
    return ModelResponse(
        content=content, stop_reason=stop_reason, usage=usage, cost_usd=pricing.cost_usd(model, usage), model=served_by
    )


__all__ = ["AnthropicModel", "RetryPolicy", "build_params", "to_response", "retry_after_seconds"]
