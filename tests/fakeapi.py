"""A fake Anthropic Messages API on 127.0.0.1 for tests that drive the real SDK (or a real CLI).

Usage (the fixture sets ``ANTHROPIC_BASE_URL`` and a dummy ``ANTHROPIC_API_KEY``)::

    from tests.fakeapi import fake_anthropic, message, text, tool_use, Error, Drop  # noqa: F401

    def test_x(fake_anthropic):
        fake_anthropic.add(
            message(text("looking"), tool_use("read_file", {"path": "a.py"})),
            Error(529),                                # overloaded, then...
            message(tool_use("finish", {"summary": "done"}), usage={"input_tokens": 50}),
        )
        ...
        assert fake_anthropic.requests[0]["system"][-1]["cache_control"] == {"type": "ephemeral"}

Replies are served in order (``add``), or computed by ``fake_anthropic.handler = fn(body) -> reply``
once the queue is empty; a queued item may itself be a callable ``fn(body) -> reply``. A reply is
a Messages API message dict (``message(...)``), ``Error``, ``Drop``, ``Raw`` or ``Delay``. Requests
with ``"stream": true`` get the same message as proper SSE events (message_start,
content_block_start/delta/stop with text_delta and input_json_delta, message_delta, message_stop).
With nothing queued and no handler the server answers 400 ``invalid_request_error`` (not retried)
so a test that under-scripts fails fast and clearly.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TEST_API_KEY = "sk-ant-test-0000000000000000"
_ids = itertools.count(1)


# -- building replies ----------------------------------------------------------------------------


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, input: dict[str, Any] | None = None, id: str | None = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": id or f"toolu_fake_{next(_ids):04d}", "name": name, "input": input or {}}


def message(
    *content: dict[str, Any],
    stop_reason: str | None = None,
    usage: dict[str, int] | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """A Messages API reply; ``stop_reason`` defaults to tool_use when a tool is called, else end_turn.

    ``model`` defaults to the model the request asked for.
    """
    full_usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    full_usage.update(usage or {})
    has_tool = any(block.get("type") == "tool_use" for block in content)
    return {
        "id": f"msg_fake_{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content),
        "stop_reason": stop_reason or ("tool_use" if has_tool else "end_turn"),
        "stop_sequence": None,
        "usage": full_usage,
    }


@dataclass
class Error:
    """An HTTP error with the API's error body; ``headers`` e.g. {"retry-after": "0"}."""

    status: int
    message: str = "fake error"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error_type(self) -> str:
        return {
            400: "invalid_request_error",
            401: "authentication_error",
            403: "permission_error",
            404: "not_found_error",
            413: "request_too_large",
            429: "rate_limit_error",
            529: "overloaded_error",
        }.get(self.status, "api_error")


@dataclass
class Drop:
    """Close the connection without answering (the SDK sees a connection error)."""


@dataclass
class Raw:
    """Send exactly this body (e.g. malformed JSON) with this status and content type."""

    body: bytes | str
    status: int = 200
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Delay:
    """Wait ``seconds`` before sending ``then`` (to provoke client timeouts)."""

    seconds: float
    then: Any = None


Reply = dict[str, Any] | Error | Drop | Raw | Delay
ReplyFn = Callable[[dict[str, Any]], Reply]


# -- SSE -----------------------------------------------------------------------------------------


def sse_events(msg: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The streaming events of a complete message, as the real API sends them."""
    usage = dict(msg.get("usage") or {})
    start = {**msg, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(msg.get("content") or []):
        kind = block.get("type")
        if kind == "text":
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            )
            value = block.get("text", "")
            for chunk in _chunks(value, 16) or [""]:
                yield (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": chunk}},
                )
        elif kind == "tool_use":
            yield (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}},
            )
            for chunk in _chunks(json.dumps(block.get("input") or {}), 12):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": chunk},
                    },
                )
        else:
            yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": msg.get("stop_reason"), "stop_sequence": None},
            "usage": {"output_tokens": usage.get("output_tokens", 0)},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def _chunks(value: str, size: int) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)]


def sse_body(msg: dict[str, Any]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in sse_events(msg)).encode()


# -- the server ----------------------------------------------------------------------------------


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeouts, dropped connections) is expected here, not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class FakeAnthropic:
    """The fake server's state: the reply queue and everything it received."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency  # seconds before every Messages reply
        self.times: list[float] = []  # time.monotonic() of each Messages request
        self._queue: deque[Reply | ReplyFn] = deque()
        self._lock = threading.Lock()
        self.handler: ReplyFn | None = None
        self.requests: list[dict[str, Any]] = []  # JSON bodies of POST /v1/messages, in order
        self.headers: list[dict[str, str]] = []  # their headers (lower-case names)
        self.paths: list[str] = []  # every path requested, any method
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeAnthropic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add(self, *replies: Reply | ReplyFn) -> FakeAnthropic:
        with self._lock:
            self._queue.extend(replies)
        return self

    @property
    def pending(self) -> int:
        return len(self._queue)

    def next_reply(self, body: dict[str, Any]) -> Reply | None:
        with self._lock:
            self.requests.append(body)
            self.times.append(time.monotonic())
            item = self._queue.popleft() if self._queue else self.handler
        if item is None:
            return None
        return item(body) if callable(item) else item


def _make_handler(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # a reply is two writes (headers, then body): with Nagle's algorithm the body waited for the
        # client's delayed ACK, about 40 ms on some replies, which no real API server adds
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802
            fake.paths.append(self.path)
            self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

        do_HEAD = do_GET  # noqa: N815

        def do_POST(self) -> None:  # noqa: N802
            fake.paths.append(self.path)
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {"_raw": raw.decode(errors="replace")}
            path = self.path.split("?")[0]
            if path.endswith("/v1/messages/count_tokens"):
                self._json(200, {"input_tokens": len(raw) // 4 + 1})
                return
            if not path.endswith("/v1/messages"):
                self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
                return
            fake.headers.append({k.lower(): v for k, v in self.headers.items()})
            reply = fake.next_reply(body)
            if fake.latency:
                time.sleep(fake.latency)
            self._reply(reply, body)

        def _reply(self, reply: Reply | None, body: dict[str, Any]) -> None:
            while isinstance(reply, Delay):
                time.sleep(reply.seconds)
                reply = reply.then
            if reply is None:
                self._json(
                    400,
                    {
                        "type": "error",
                        "error": {
                            "type": "invalid_request_error",
                            "message": f"fake anthropic: no reply queued for request {len(fake.requests)}",
                        },
                    },
                )
            elif isinstance(reply, Drop):
                self.close_connection = True
                self.connection.shutdown(2)
            elif isinstance(reply, Error):
                self._json(
                    reply.status,
                    {"type": "error", "error": {"type": reply.error_type, "message": reply.message}},
                    reply.headers,
                )
            elif isinstance(reply, Raw):
                data = reply.body.encode() if isinstance(reply.body, str) else reply.body
                self._send(reply.status, data, reply.content_type, reply.headers)
            else:
                msg = {**reply, "model": reply.get("model") or body.get("model", "claude-fake")}
                if body.get("stream"):
                    self._send(200, sse_body(msg), "text/event-stream", {"cache-control": "no-cache"})
                else:
                    self._json(200, msg)

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), "application/json", headers or {})

        def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", f"req_fake_{len(fake.requests)}")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler


@pytest.fixture
def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAnthropic]:
    """A running fake Messages API; ANTHROPIC_BASE_URL and a dummy ANTHROPIC_API_KEY point at it."""
    fake = FakeAnthropic().start()
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    try:
        yield fake
    finally:
        fake.stop()
