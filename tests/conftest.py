"""Shared fixtures: temporary git repositories, a CliRunner, and the network kill-switch."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentflow.cli import app
from tests.helpers import git


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``live`` call the real API: deselected (not skipped) unless
    ``AGENTFLOW_LIVE_TESTS=1``, so the suite's summary shows no skip."""
    if os.environ.get("AGENTFLOW_LIVE_TESTS") == "1":
        return
    live = [item for item in items if item.get_closest_marker("live")]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if not item.get_closest_marker("live")]


_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1") and self.family != socket.AF_UNIX:
        raise RuntimeError(f"tests must not touch the network (tried to connect to {address!r})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kill-switch: any connection outside loopback fails the test. Secrets are removed too."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "AGENTFLOW_SIGNING_KEY",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_ACTIONS",
        "AGENTFLOW_DEBUG",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def ctrl_c() -> Iterator[None]:
    """Ctrl-C acts as at a terminal, whatever the harness did: a shell's background job (`cmd &`
    without job control, nohup, some CI runners) starts with SIGINT ignored, which agentflow keeps
    ignored by design, and every test of what Ctrl-C does (a SIGINT sent to a child, to this process,
    or by a builder's `kill -INT $PPID`) failed there. The Python handler set here also makes a child
    start with SIGINT at its default. For every test: which of them send a SIGINT is not obvious."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty-ish git repository on branch main with one commit; the cwd for the test."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    git(root, "config", "commit.gpgsign", "false")
    (root / "README.md").write_text("# sample\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner):
    """``cli("plan", "check")`` -> Result; never catches exceptions silently."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    return invoke


os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")
