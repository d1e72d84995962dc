"""The ``command`` backend: an external coding agent CLI as the builder."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from agentflow.errors import UsageError
from agentflow.events import RunEnded, SessionEnded, ToolCalled
from agentflow.models.command import build_command, command_env
from tests.build_helpers import (
    first_prompt,
    git,
    notes,
    run_events,
    trailers,
    verifier_session,
    write_plan,
    write_script,
)

AGENT = """
import os, pathlib, sys
prompt = pathlib.Path(sys.argv[1]).read_text()
pathlib.Path("src").mkdir(exist_ok=True)
pathlib.Path("src/app.py").write_text("def farewell():\\n    return 'bye'\\n")
pathlib.Path("src/seen.txt").write_text(
    f"plan={'# Plan 1: Add farewell' in prompt} system={'builder' in prompt.splitlines()[0]} "
    f"key={os.environ.get('ANTHROPIC_API_KEY', '-')} token={os.environ.get('MY_AGENT_TOKEN', '-')}\\n")
print("agent: wrote src/app.py")
"""


def configure(root: Path, command: str, **limits: float) -> None:
    # in the repository: the agent runs in the sandbox, where only the worktree (and not the test's
    # temporary folder) is visible
    agent = root / "tools" / "agent.py"
    agent.parent.mkdir(exist_ok=True)
    agent.write_text(AGENT)
    script = write_script(root, {"verifier": [verifier_session()]})
    config = {
        "models": {
            "builder": {"backend": "command", "command": command.replace("{agent}", "tools/agent.py")},
            "verifier": {"backend": "scripted", "script": str(script)},
        }
    }
    if limits:
        config["limits"] = limits
    (root / "agentflow.yaml").write_text(json.dumps(config))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "config")


def test_an_external_agent_builds_and_agentflow_commits_and_verifies(repo, cli, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-should-not-leak-000000")
    monkeypatch.setenv("MY_AGENT_TOKEN", "agent-token-1234567")
    monkeypatch.setenv("AGENTFLOW_COMMAND_PASS_ENV", "MY_AGENT_TOKEN")
    configure(repo, f"{shlex.quote(sys.executable)} {{agent}} {{prompt_file}}")
    write_plan(repo)

    result = cli("build", "1")

    assert result.exit_code == 0, result.output
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert trailers(repo, head)["Agentflow-Cycle"] == "1"
    seen = git(repo, "show", f"{head}:src/seen.txt")
    assert seen == "plan=True system=True key=- token=agent-token-1234567"
    assert notes(repo, head)[0]["models"]["builder"].startswith("command:")
    [builder, verifier] = run_events(repo, SessionEnded)
    assert builder.status == "completed" and "agent: wrote src/app.py" in (builder.summary or "")
    assert [e.tool for e in run_events(repo, ToolCalled) if e.session_id == builder.session_id] == ["command"]
    assert "+    return 'bye'" in first_prompt(repo, "verifier", 1)


def test_a_failing_agent_is_no_verdict(repo, cli):
    configure(repo, "echo 'agent crashed' {prompt_file}; exit 4")
    write_plan(repo)
    result = cli("build", "1")
    assert result.exit_code == 3, result.output
    [ended] = run_events(repo, RunEnded)
    assert ended.outcome == "no_verdict" and "exited with 4" in (ended.reason or "")


def test_a_slow_agent_hits_the_session_time_limit_and_its_work_is_still_verified(repo, cli):
    configure(repo, "mkdir -p src && echo 'x = 1' > src/app.py && sleep 20 # {prompt_file}", session_seconds=1)
    write_plan(repo)
    result = cli("build", "1")
    assert result.exit_code == 0, result.output
    assert run_events(repo, SessionEnded)[0].status == "limits"
    assert git(repo, "show", "agentflow/1-farewell:src/app.py") == "x = 1"


def test_command_needs_the_placeholder_and_the_builder_role():
    with pytest.raises(UsageError):
        build_command("my-agent --go", Path("/tmp/p.md"))
    assert build_command("a --prompt-file {prompt_file}", Path("/tmp/a b.md")) == "a --prompt-file '/tmp/a b.md'"
    env = command_env({"PATH": "/bin", "GITHUB_TOKEN": "ghp_x", "AGENTFLOW_COMMAND_PASS_ENV": "GITHUB_TOKEN"})
    assert env["GITHUB_TOKEN"] == "ghp_x"
    assert "GITHUB_TOKEN" not in command_env({"PATH": "/bin", "GITHUB_TOKEN": "ghp_x"})


def test_command_backend_cannot_verify(repo, cli):
    (repo / "agentflow.yaml").write_text(
        json.dumps({"models": {"verifier": {"backend": "command", "command": "x {prompt_file}"}}})
    )
    write_plan(repo)
    result = cli("build", "1")
    assert result.exit_code == 2 and "can only be the builder" in result.output
