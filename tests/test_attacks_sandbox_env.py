"""The signing key never reaches a sandboxed process, whatever the allowlist's patterns say.

``sandbox.env`` and ``AGENTFLOW_COMMAND_PASS_ENV`` take glob patterns (``LC_*`` style). A config that
lets ``AGENTFLOW_*`` through (for an agent's own ``AGENTFLOW_DEBUG``, say) handed every check and
builder command ``AGENTFLOW_SIGNING_KEY`` (tested before the fix): the change's code could sign its
own approval. Only the orchestrator signs: the key's names, and any variable holding the key's value
under another name, are never passed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow import keys
from agentflow.models.command import command_env
from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

KEY = "team-secret-signing-key-0123-0123456789abcdef0123456789"


@pytest.fixture
def signing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    monkeypatch.setenv("AGENTFLOW_DEBUG", "1")
    monkeypatch.setenv("SIGNER", KEY)  # the same key under a name nobody calls secret
    keys._cache.clear()
    assert keys.signing_key() == KEY


@pytest.mark.parametrize("patterns", [("AGENTFLOW_*",), ("*",), ("AGENTFLOW_SIGNING_KEY", "SIGNER")])
def test_no_allowlist_pattern_passes_the_signing_key(signing: None, patterns: tuple[str, ...]) -> None:
    env = Sandbox(mode="off", env_names=patterns).environment()
    assert "AGENTFLOW_SIGNING_KEY" not in env and KEY not in env.values(), sorted(env)
    assert env.get("AGENTFLOW_DEBUG") == "1" or "AGENTFLOW_*" not in patterns and "*" not in patterns


def test_the_key_file_variable_is_not_passed_either(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    monkeypatch.delenv("AGENTFLOW_SIGNING_KEY", raising=False)
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY_FILE", str(key_file))
    keys._cache.clear()
    assert keys.signing_key() == KEY
    env = Sandbox(mode="off", env_names=("AGENTFLOW_*",)).environment()
    assert "AGENTFLOW_SIGNING_KEY_FILE" not in env, sorted(env)


def test_the_command_backend_pass_list_cannot_pass_the_signing_key(signing: None, monkeypatch) -> None:
    monkeypatch.setenv("AGENTFLOW_COMMAND_PASS_ENV", "AGENTFLOW_SIGNING_KEY,AGENTFLOW_DEBUG")
    env = command_env(sandbox=Sandbox(mode="off"))
    assert "AGENTFLOW_SIGNING_KEY" not in env and env["AGENTFLOW_DEBUG"] == "1"


def test_a_sandboxed_command_does_not_see_the_signing_key(signing: None, tmp_path: Path) -> None:
    need_tool("bwrap")
    sandbox = Sandbox.from_config()
    sandbox = Sandbox(mode=sandbox.mode, bwrap=sandbox.bwrap, env_names=("AGENTFLOW_*", "SIGNER"))
    code, out, _ = run_shell("env; echo done", tmp_path, 30, sandbox=sandbox)
    assert code == 0 and "done" in out, out
    assert KEY not in out and "AGENTFLOW_SIGNING_KEY" not in out, out
    assert "AGENTFLOW_DEBUG=1" in out
