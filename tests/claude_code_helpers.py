"""Helpers for tests that run the real Claude Code CLI (from claude-agent-sdk) against tests.fakeapi.

* ``claude_code_env``: the fake Messages API plus an isolated Claude Code config folder, and every
  other outbound HTTP(S) request routed to a ``TrapProxy`` on 127.0.0.1 that records it. The
  pytest network kill-switch covers only this process; the CLI is a subprocess, so the proxy is
  what proves it talked to nothing but the fake.
* ``make_spec``: a ``SessionSpec`` for the claude-code backend with small, bounded limits.
* ``tool_named``: the name under which a request offers a tool (MCP tools get a prefix).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agentflow.session import RunBudget, SessionLimits, SessionSpec
from tests.fakeapi import FakeAnthropic

MODEL = "claude-sonnet-5-5"


class TrapProxy:
    """An HTTP proxy that answers 403 to everything and remembers what was asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _refuse(self) -> None:
                trap.requests.append(f"{self.command} {self.path}")
                self.send_response(403)
                self.send_header("content-length", "0")
                self.end_headers()

            do_CONNECT = do_GET = do_POST = do_HEAD = do_PUT = _refuse  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def claude_code_env(
    fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[FakeAnthropic, TrapProxy]]:
    """The fake API for the CLI, its own config folder, and a trap for any other traffic."""
    proxy = TrapProxy()
    config_dir = tmp_path / "claude-config"
    config_dir.mkdir()
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config_dir))
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in ("CLAUDECODE", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield fake_anthropic, proxy
    finally:
        proxy.stop()


def make_spec(
    role: str,
    root: Path,
    *,
    system: str = "",
    prompt: str = "Do the task.",
    max_turns: int = 8,
    max_seconds: float = 90,
    max_tokens: int = 4_000_000,
    budget: RunBudget | None = None,
    run_id: str = "r-test-cc",
) -> SessionSpec:
    return SessionSpec(
        role=role,
        cycle=1,
        run_id=run_id,
        root=root,
        system=system or f"You are agentflow's {role}.",
        prompt=prompt,
        limits=SessionLimits(max_turns=max_turns, max_seconds=max_seconds, max_tokens=max_tokens, max_cost_usd=2.0),
        budget=budget or RunBudget(limit_usd=10.0),
        backend="claude-code",
        model_name=MODEL,
    )


def tool_named(body: dict[str, Any], suffix: str) -> str:
    """The offered tool whose name is ``suffix`` or ends with ``__suffix`` (MCP tools)."""
    names = [t.get("name", "") for t in body.get("tools", [])]
    matches = [n for n in names if n == suffix or n.endswith(f"__{suffix}")]
    assert matches, f"no tool {suffix!r} offered; tools were {names}"
    return matches[0]


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message of a request (Claude Code may append
    ``system`` role messages, such as budget reminders, after it)."""
    for msg in reversed(body["messages"]):
        if msg.get("role") == "user" and isinstance(msg.get("content"), list):
            return [c for c in msg["content"] if isinstance(c, dict) and c.get("type") == "tool_result"]
    return []


def result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict))
    return str(content or "")
