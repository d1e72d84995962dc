"""The demo's and the eval's own child processes get agentflow's environment without secrets.

``agentflow demo`` ran its ``git`` and ``python`` steps (the sample project's code), the sample's
set-up ``git`` and ``app.simulate``, and ``agentflow eval`` its case repositories' ``git`` with the
whole environment: ``ANTHROPIC_API_KEY``, ``AGENTFLOW_SIGNING_KEY`` and tokens reached every hook,
filter or alias git runs and the sample's code (tested before the fix: a ``post-commit`` hook, which
``--no-verify`` does not skip, wrote them out). They now get ``agentflow.git.git_env`` (git) and
``agentflow.redact.scrubbed_env`` (python), as every other git process agentflow starts; the demo's
``agentflow`` steps keep the environment (agentflow needs the keys and keeps them from its children).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.demo import DemoResult, _Runner
from agentflow.demo.sample import create_project
from agentflow.eval import builtin, runner
from tests.gate_helpers import git

SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-api03-demo-secret-0123456789",
    "AGENTFLOW_SIGNING_KEY": "signing-key-demo-0123456789-0123456789abcdef0123456789",
    "GITHUB_TOKEN": "ghp_demoSecret0123456789abcdefghijklmn",
}


@pytest.fixture
def spy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Secrets in the environment and a global git config whose post-commit hook writes git's environment."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    out = tmp_path / "seen-env"
    hook = hooks / "post-commit"
    hook.write_text(f"#!/bin/sh\nenv >> {out}\n")
    hook.chmod(0o755)
    config = tmp_path / "gitconfig"
    config.write_text(
        f"[core]\n\thooksPath = {hooks}\n[user]\n\tname = T\n\temail = t@example.com\n"
        "[alias]\n\tshowenv = !env\n[commit]\n\tgpgsign = false\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    return out


def leaked(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text]


def test_the_demo_samples_git_set_up_sees_no_secret(tmp_path: Path, spy: Path) -> None:
    create_project(tmp_path / "sample", "base: main\n")

    assert spy.exists(), "the post-commit hook did not run"
    assert leaked(spy.read_text()) == [], spy.read_text()


def test_the_demos_git_and_python_steps_see_no_secret(tmp_path: Path, spy: Path) -> None:
    root = tmp_path / "sample"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    steps = _Runner(root, lambda line: None, DemoResult(root))

    shown = steps.git("showenv").output
    code = "import os; print(sorted(v for v in os.environ.values()))"
    printed = steps.python("-c", code).output

    assert "PATH=" in shown and leaked(shown) == [], shown
    assert leaked(printed) == [], printed


def test_the_demos_agentflow_steps_keep_the_environment(tmp_path: Path, spy: Path, monkeypatch) -> None:
    root = tmp_path / "sample"
    root.mkdir()
    steps = _Runner(root, lambda line: None, DemoResult(root))
    seen = {}

    def fake_run(shown, argv, expect, env):
        seen["env"] = env

    monkeypatch.setattr(steps, "run", fake_run)
    steps.agentflow("--version")

    assert seen["env"] is None  # inherited: agentflow needs its keys, and scrubs its own children


def test_the_evals_git_sees_no_secret(tmp_path: Path, spy: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    builtin.create_base(base)
    shown = runner._git(base, "showenv")

    assert spy.exists(), "the post-commit hook did not run"
    assert leaked(spy.read_text()) == [], spy.read_text()
    assert "GIT_AUTHOR_NAME=agentflow eval" in shown and leaked(shown) == [], shown
