"""A hostile builder (scripted, through the CLI) against the sandbox: every escape of #12 is
refused or contained. The builder's commands write what they managed to see into the worktree,
which agentflow commits, so each assertion reads the committed result."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from agentflow.events import RunStarted
from agentflow.sandbox import is_dumpable
from tests.build_helpers import finish, git, notes, verdict, verifier_session, write_plan, write_script
from tests.fakeapi import FakeAnthropic, fake_anthropic, message, tool_use
from tests.helpers import need_tool

__all__ = ["fake_anthropic"]

API_KEY = "sk-ant-api03-orchestrator-key-000000000000"
SIGNING_KEY = "signing-key-of-the-orchestrator-42"
SSH_KEY = "-----PRIVATE KEY MATERIAL-----"


def run_command(command: str) -> dict:
    return {"tool_calls": [{"name": "run_command", "input": {"command": command}}]}


def write_file(path: str, content: str) -> dict:
    return {"tool_calls": [{"name": "write_file", "input": {"path": path, "content": content}}]}


@pytest.fixture
def hostile(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """bwrap required; a fake home with an SSH key; secrets in the orchestrator's environment."""
    need_tool("bwrap")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(SSH_KEY)
    (home / ".netrc").write_text("machine x password hunter2\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("DATABASE_URL", "postgres://admin:pw@db/prod")
    return repo


def build(cli, repo: Path, builder: list[dict], checks: list[str] | None = None, **kwargs):
    write_plan(repo, checks=checks or [], scope=["**"], **kwargs)
    script = write_script(repo, {"builder": [[*builder, finish()]], "verifier": [verifier_session()]})
    return cli("build", "1", "--script", str(script))


def committed(repo: Path, path: str) -> str:
    return git(repo, "show", f"agentflow/1-farewell:{path}")


def test_secrets_files_and_processes_outside_the_worktree_are_out_of_reach(hostile: Path, cli, tmp_path: Path):
    repo = hostile
    outside = tmp_path / "outside.txt"
    result = build(
        cli,
        repo,
        [
            run_command(
                "mkdir -p out; cat ~/.ssh/id_rsa > out/ssh.txt 2>&1; cat ~/.netrc >> out/ssh.txt 2>&1; "
                "ls -a ~ > out/home.txt; "
                "tr '\\0' '\\n' > out/parent-env.txt 2>&1 < /proc/$PPID/environ; "
                "grep -a -l -e sk-ant- -e signing-key /proc/*/environ > out/grep-env.txt 2>&1; "
                "env > out/env.txt; ls /proc | grep -c '^[0-9]' > out/pids.txt; "
                f"{{ echo pwned > {outside}; }} 2> out/outside.txt; "
                f"{{ echo pwned > {repo}/README.md; }} 2> out/checkout.txt; "
                f"{{ mkdir -p {repo}/prompts && echo pwned > {repo}/prompts/verifier.md; }} 2>> out/checkout.txt; "
                f"ls -a {repo}/.agentflow > out/agentflow.txt 2>&1; "
                f"git -C . update-ref refs/heads/main HEAD > out/git.txt 2>&1; true"
            )
        ],
    )
    assert result.exit_code == 0, result.output
    home_listing = committed(repo, "out/home.txt")
    assert ".ssh" in home_listing  # the home is readable ...
    assert SSH_KEY not in committed(repo, "out/ssh.txt") and "hunter2" not in committed(repo, "out/ssh.txt")
    for name in ("out/parent-env.txt", "out/grep-env.txt", "out/env.txt"):
        text = committed(repo, name)
        assert API_KEY not in text and SIGNING_KEY not in text and "sk-ant-" not in text, name
    assert "DATABASE_URL" not in committed(repo, "out/env.txt")  # an allowlist, not a denylist
    assert int(committed(repo, "out/pids.txt")) <= 4  # a PID namespace of its own: the sandbox's init, bash, ls
    assert not outside.exists()
    assert (repo / "README.md").read_text() == "# sample\n"
    assert not (repo / "prompts").exists()
    assert "Read-only file system" in committed(repo, "out/checkout.txt")
    assert committed(repo, "out/agentflow.txt").split() == [".", "..", "worktrees"]  # no ledger, no other runs
    assert "Read-only file system" in committed(repo, "out/git.txt")
    assert git(repo, "rev-parse", "main") != git(repo, "rev-parse", "agentflow/1-farewell")
    assert is_dumpable() is False  # the orchestrator made itself non-dumpable
    [started] = [e for e in _events(repo) if isinstance(e, RunStarted)]
    assert started.sandbox == "bwrap"
    assert notes(repo, git(repo, "rev-parse", "agentflow/1-farewell"))[0]["sandbox"] == "bwrap"


def test_no_connection_reaches_a_loopback_listener(hostile: Path, cli):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = build(
            cli,
            hostile,
            [run_command(f"(echo hi > /dev/tcp/127.0.0.1/{port}) 2> net.txt; echo rc=$? >> net.txt")],
        )
    finally:
        stop.set()
        thread.join()
        server.close()
    assert result.exit_code == 0, result.output
    assert not accepted
    assert "rc=1" in committed(hostile, "net.txt")


def test_no_process_survives_the_build(hostile: Path, cli):
    result = build(
        cli,
        hostile,
        [
            run_command("nohup sleep 3131 >/dev/null 2>&1 & setsid sleep 3132 >/dev/null 2>&1 & echo started"),
            run_command("(setsid bash -c 'sleep 3133' &) ; disown -a; echo again"),
            write_file("src/app.py", "x = 1\n"),
        ],
        checks=["(nohup sleep 3134 >/dev/null 2>&1 &); true"],
    )
    assert result.exit_code == 0, result.output
    ps = subprocess.run(["pgrep", "-f", "sleep 313[1-4]"], capture_output=True, text=True)
    assert ps.stdout.strip() == ""


def test_an_uncommitted_file_cannot_make_a_failing_check_pass(hostile: Path, cli):
    repo = hostile
    (repo / ".gitignore").write_text("*.local\n")  # the user's ignore rules: trusted, on the base
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "ignore local files")
    result = build(
        cli,
        repo,
        [write_file("override.local", "exit 0\n"), write_file("src/app.py", "x = 1\n")],
        checks=["if [ -f override.local ]; then . ./override.local; fi; echo 'no override'; exit 1"],
        extra="max_cycles: 1\n",
    )
    assert result.exit_code == 1, result.output  # the check failed: not approved
    assert (repo / ".agentflow" / "worktrees" / "1-farewell" / "override.local").exists()  # still there, uncommitted
    [note] = notes(repo, git(repo, "rev-parse", "agentflow/1-farewell"))[:1]
    assert note["checks"][0]["exit_code"] == 1


def test_file_tools_refuse_a_hard_link(hostile: Path, cli):
    repo = hostile
    result = build(
        cli,
        repo,
        [
            run_command("echo original > inner.txt && ln inner.txt linked.txt && echo linked"),
            write_file("linked.txt", "through the link\n"),
            write_file("src/app.py", "x = 1\n"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert committed(repo, "inner.txt") == "original"


def test_a_second_hostile_run_through_the_anthropic_backend(hostile: Path, cli, fake_anthropic: FakeAnthropic):
    repo = hostile
    write_plan(repo)
    fake_anthropic.add(
        message(
            tool_use(
                "run_command",
                {"command": "cat ~/.ssh/id_rsa; tr '\\0' '\\n' < /proc/$PPID/environ; cat /proc/*/environ; env"},
            )
        ),
        message(tool_use("write_file", {"path": "src/app.py", "content": "x = 1\n"})),
        message(tool_use("finish", {"summary": "done"})),
        message(tool_use("submit_verdict", verdict())),
    )
    result = cli("build", "1", "--backend", "anthropic", "--budget-usd", "1")
    assert result.exit_code == 0, result.output
    tool_result = json.dumps(fake_anthropic.requests[1]["messages"][-1])
    assert "exit code" in tool_result
    assert SSH_KEY not in tool_result and SIGNING_KEY not in tool_result
    assert os.environ["ANTHROPIC_API_KEY"] not in tool_result


def _events(repo: Path) -> list:
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        return ledger.events()
