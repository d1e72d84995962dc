"""The claude-code backend, driving the real claude-agent-sdk and the Claude Code CLI it carries.

The CLI talks to the fake Messages API of tests.fakeapi on 127.0.0.1 with streaming (SSE)
replies; every other outbound request would land in a trap proxy, which must stay empty.
Each session is bounded by ``max_seconds`` (the backend's own time limit).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow.errors import UsageError
from agentflow.events import ModelCalled, SessionEnded, SessionStarted, ToolCalled
from agentflow.ledger import Ledger
from agentflow.models import claude_code
from agentflow.models.claude_code import VERDICT_TOOL, ToolPolicy, run_claude_code_session, session_env
from agentflow.sandbox import Sandbox, holds_nothing
from agentflow.session import RunBudget
from tests.claude_code_helpers import claude_code_env, make_spec, result_text, tool_named, tool_results  # noqa: F401
from tests.fakeapi import TEST_API_KEY, Error, fake_anthropic, message, text, tool_use  # noqa: F401
from tests.helpers import need_tool

pytest.importorskip("claude_agent_sdk", reason="the claude-code extra is not installed")

VERDICT = {
    "decision": "approve",
    "summary": "The change does what the plan asks.",
    "criteria": [{"id": "AC1", "status": "met", "evidence": "src/app.py:1"}],
    "findings": [],
}


@pytest.fixture
def ledger(repo: Path):
    with Ledger.open(repo) as opened:
        yield opened


def _events(ledger: Ledger, kind: type) -> list:
    return [e for e in ledger.events() if isinstance(e, kind)]


# -- builder --------------------------------------------------------------------------------------


def test_builder_edits_files_in_the_worktree_and_is_recorded(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, proxy = claude_code_env
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("def greet():\n    return 'hello'\n")
    fake.add(
        message(text("Reading the code."), tool_use("Read", {"file_path": str(repo / "src" / "app.py")})),
        message(
            tool_use(
                "Edit",
                {"file_path": str(repo / "src" / "app.py"), "old_string": "'hello'", "new_string": "'hello, capsule'"},
            )
        ),
        message(tool_use("Write", {"file_path": "src/new_module.py", "content": "VALUE = 1\n"})),
        message(text("Changed greet() and added src/new_module.py.")),
    )
    progress: list[dict] = []

    result = run_claude_code_session(make_spec("builder", repo, system="BUILDER-ROLE-PROMPT"), ledger, progress.append)

    assert result.status == "completed", result.reason
    assert result.submitted == {"summary": "Changed greet() and added src/new_module.py."}
    assert (repo / "src" / "app.py").read_text() == "def greet():\n    return 'hello, capsule'\n"
    assert (repo / "src" / "new_module.py").read_text() == "VALUE = 1\n"
    assert result.turns == 4 and result.external_id
    assert result.cost_usd > 0 and result.usage.input_tokens >= 40
    # what the CLI sent: our role prompt on top of Claude Code's, streaming, our key, no network tools
    first = fake.requests[0]
    assert first["stream"] is True
    assert "BUILDER-ROLE-PROMPT" in str(first["system"])
    assert fake.headers[0]["x-api-key"] == TEST_API_KEY
    offered = {t["name"] for t in first["tools"]}
    assert {"Read", "Write", "Edit", "Bash"} <= offered
    assert not offered & {"WebFetch", "WebSearch", "Agent", "Task"}
    assert len(fake.requests) == 4 and not proxy.requests
    # the ledger: one session, four model calls, three tool calls, the SDK's cost and session id
    (started,) = _events(ledger, SessionStarted)
    assert (started.backend, started.model, started.role) == ("claude-code", "claude-sonnet-5-5", "builder")
    assert len(_events(ledger, ModelCalled)) == 4
    assert [(t.tool, t.is_error) for t in _events(ledger, ToolCalled)] == [
        ("Read", False),
        ("Edit", False),
        ("Write", False),
    ]
    (ended,) = _events(ledger, SessionEnded)
    assert ended.status == "completed" and ended.session_id == started.session_id == result.session_id
    assert ended.external_id == result.external_id and ended.cost_usd == pytest.approx(result.cost_usd)
    assert ended.turns == 4 and ended.usage == result.usage
    transcript = ledger.transcript(result.session_id)
    assert transcript and all("role" in entry for entry in transcript)
    assert any(
        block.get("type") == "tool_use" and block.get("name") == "Edit"
        for entry in transcript
        for block in entry.get("content") or []
    )
    assert "Changed greet()" in str(transcript)
    assert any(p.get("tool") == "Edit" for p in progress)


def test_builder_is_confined_to_the_worktree(repo: Path, ledger: Ledger, claude_code_env, tmp_path: Path) -> None:
    fake, proxy = claude_code_env
    outside = tmp_path / "outside.txt"
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    (repo / "link").symlink_to(tmp_path)
    calls = [
        tool_use("Write", {"file_path": str(outside), "content": "escaped\n"}),
        tool_use("Write", {"file_path": "link/outside.txt", "content": "escaped via symlink\n"}),
        tool_use("Read", {"file_path": str(secret)}),
        tool_use("Edit", {"file_path": ".git/config", "old_string": "[core]", "new_string": "[core]\n\tx = 1"}),
        tool_use("Bash", {"command": "git commit -am sneaky", "description": "commit"}),
        tool_use("WebFetch", {"url": "https://example.com", "prompt": "read it"}),
        tool_use("Glob", {"pattern": "/etc/*"}),
    ]
    fake.add(*(message(call) for call in calls), message(text("Tried everything.")))

    result = run_claude_code_session(make_spec("builder", repo, max_turns=12), ledger)

    assert result.status == "completed", result.reason
    assert not outside.exists()
    refusals = [tool_results(body)[0] for body in fake.requests[1 : len(calls) + 1]]
    assert all(block.get("is_error") for block in refusals), refusals
    texts = [result_text(block) for block in refusals]
    assert "top secret" not in "".join(texts)
    assert "outside the worktree" in texts[0] and "outside the worktree" in texts[1]
    assert ".git is off limits" in texts[3] and "git commit" in texts[4]
    assert "[core]\n\tx = 1" not in (repo / ".git" / "config").read_text()
    assert len(fake.requests) == len(calls) + 1 and not proxy.requests


def test_builder_bash_children_do_not_see_the_signing_key(
    repo: Path, ledger: Ledger, claude_code_env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = claude_code_env
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", "signing-key-that-must-not-leak-0123456789abcdef0123456789")
    monkeypatch.setenv("GITHUB_TOKEN", "github-token-that-must-not-leak")
    fake.add(
        message(tool_use("Bash", {"command": "env > env.txt", "description": "dump env"})),
        message(text("Dumped the environment.")),
    )

    result = run_claude_code_session(make_spec("builder", repo), ledger)

    assert result.status == "completed", result.reason
    dumped = (repo / "env.txt").read_text()
    assert "PATH=" in dumped  # the command did run
    assert "signing-key-that-must-not-leak-0123456789abcdef0123456789" not in dumped
    assert "github-token-that-must-not-leak" not in dumped


class Listener:
    """A TCP listener on the host's loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]

    def accepted(self) -> int:
        """How many connections reached it; closes it."""
        count = 0
        with self.sock:
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return count
                conn.close()
                count += 1


# What a builder's Bash reports about its own confinement, into files the test reads.
PROBE_BASH = (
    "env > env.txt; "
    "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 3)\" > net.txt 2>&1; "
    "echo exit=$? >> net.txt; "
    "{{ echo escaped > {outside}; }} 2> outside.txt; "
    "grep -a -l -e {key} /proc/*/environ > proc.txt 2>/dev/null; "
    "cat {login} > login.txt 2>&1; "
    "unshare -Ur true > userns.txt 2>&1; echo exit=$? >> userns.txt; "
    "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done > procs.txt 2>/dev/null; true"
)


def _probe_bash(fake, port: int, outside: Path) -> None:
    login = outside.parent / ".credentials.json"  # Claude Code's login, beside the outside file
    command = PROBE_BASH.format(port=port, outside=outside, key=TEST_API_KEY, login=login)
    fake.add(
        message(tool_use("Bash", {"command": command, "description": "probe the sandbox"})),
        message(text("Probed.")),
    )


def _assert_bash_was_sandboxed(repo: Path, listener: Listener, outside: Path) -> None:
    """Claude Code's Bash sandbox held: no model key in the environment (the scrub), no network
    (not even the host's loopback), no write outside the worktree, no other process's environ."""
    env = (repo / "env.txt").read_text()
    assert "PATH=" in env  # the command did run
    assert TEST_API_KEY not in env
    assert "exit=0" not in (repo / "net.txt").read_text()
    assert listener.accepted() == 0
    assert not outside.exists()
    assert (repo / "outside.txt").read_text().strip()  # the shell said why
    assert (repo / "proc.txt").read_text() == ""  # no environ it can read holds the key
    assert "must-not-leak" not in (repo / "login.txt").read_text()  # nor Claude Code's login
    assert "exit=0" not in (repo / "userns.txt").read_text()  # no user namespace of its own
    processes = (repo / "procs.txt").read_text()
    assert "/bin/bash" in processes  # its own shell is listed...
    assert "_bundled/claude" not in processes  # ...but not the CLI (nor agentflow): a fresh /proc of its own


def test_builder_bash_runs_in_claude_codes_own_sandbox_inside_agentflows(
    repo: Path, ledger: Ledger, claude_code_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("bwrap")
    need_tool("socat")
    fake, proxy = claude_code_env
    # a recording stand-in for the CLI: notes the arguments and environment it gets, then runs it
    real = claude_code.bundled_cli()
    assert real
    config_dir = Path(os.environ["CLAUDE_CONFIG_DIR"])  # bound into the sandbox, where /tmp is private
    record, recorder = config_dir / "cli-call.json", config_dir / "claude-recorder"
    (config_dir / ".credentials.json").write_text("claude-login-that-must-not-leak")
    recorder.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps({{'argv': sys.argv[1:], 'env': dict(os.environ)}}))\n"
        f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n"
    )
    recorder.chmod(0o755)
    monkeypatch.setattr(claude_code, "bundled_cli", lambda: str(recorder))
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", "signing-key-that-must-not-leak-0123456789abcdef0123456789")
    listener = Listener()
    outside = config_dir / "outside.txt"  # writable for the CLI, not for its Bash
    _probe_bash(fake, listener.port, outside)

    result = run_claude_code_session(make_spec("builder", repo), ledger)

    assert result.status == "completed", result.reason
    call = json.loads(record.read_text())
    settings = json.loads(call["argv"][call["argv"].index("--settings") + 1])
    sandbox = settings["sandbox"]
    assert {k: v for k, v in sandbox.items() if k != "filesystem"} == {
        "enabled": True,
        "failIfUnavailable": True,
        "autoAllowBashIfSandboxed": True,
        "allowUnsandboxedCommands": False,
        "network": {"allowedDomains": []},
    }
    assert str(config_dir / ".credentials.json") in sandbox["filesystem"]["denyRead"]
    assert call["env"]["CLAUDE_CODE_SUBPROCESS_ENV_SCRUB"] == "1"
    assert call["env"]["ANTHROPIC_API_KEY"] == TEST_API_KEY  # the CLI itself keeps its key...
    assert "AGENTFLOW_SIGNING_KEY" not in call["env"]  # ...and gets nothing outside the allowlist
    _assert_bash_was_sandboxed(repo, listener, outside)
    assert not proxy.requests


def test_with_sandbox_off_claude_codes_bash_sandbox_still_confines_bash(
    repo: Path, ledger: Ledger, claude_code_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("bwrap")
    need_tool("socat")  # mode off: Claude Code's own sandbox is the only one, and it needs both
    fake, proxy = claude_code_env
    listener = Listener()
    config_dir = Path(os.environ["CLAUDE_CONFIG_DIR"])
    (config_dir / ".credentials.json").write_text("claude-login-that-must-not-leak")
    outside = config_dir / "outside.txt"  # writable for the CLI, not for its Bash
    _probe_bash(fake, listener.port, outside)
    spec = make_spec("builder", repo)
    spec.sandbox = Sandbox.off()
    # on the host, Claude Code's sandbox makes its mount points in the home (~/.ssh, ~/.mcp.json, ...) while
    # the command runs: in a home of the test's, not the machine's, where other runs' sandboxes look
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    result = run_claude_code_session(spec, ledger)

    assert result.status == "completed", result.reason
    _assert_bash_was_sandboxed(repo, listener, outside)
    assert not proxy.requests


# What Claude Code's Bash sandbox, run on the host (sandbox.mode off, or a developer's own Claude Code
# beside agentflow), makes in the home while each of its commands runs (about 0.2 s) and removes after:
# empty read-only files as bwrap's mount points (~/.ssh among them), folders for deeper ones.
def _mount_points(home: Path) -> list[Path]:
    (home / ".ssh").touch(mode=0o444)
    (home / ".local" / "share").mkdir(parents=True)
    (home / ".local" / "share" / "keyrings").touch(mode=0o444)
    (home / ".kube").mkdir()
    return [home / ".ssh", home / ".local" / "share" / "keyrings", home / ".kube"]


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            path.rmdir()
        elif path.exists():
            path.unlink()


def test_another_sandboxs_mount_points_gone_before_bwrap_starts_fail_no_sandbox(tmp_path: Path) -> None:
    """Seen while agentflow built its sandbox, gone when bwrap started: bwrap could not make them again in
    the read-only home ("bwrap: Can't create file at /root/.ssh: Read-only file system"), which failed a
    claude-code session once in a full run. A credential with content beside them stays hidden."""
    home = tmp_path / "home"
    home.mkdir()
    placeholders = _mount_points(home)
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("aws-key-that-must-not-leak\n")
    (home / ".netrc").write_text("machine example.com password netrc-password-that-must-not-leak\n")
    work = tmp_path / "work"
    work.mkdir()
    need_tool("bwrap")
    box = dataclasses.replace(Sandbox.from_config(), home=str(home))
    argv = box.wrap(["sh", "-c", f"cat {home}/.aws/credentials {home}/.netrc 2>&1; echo done"], work)
    _remove(placeholders)  # the other sandbox's command ended

    done = subprocess.run(argv, capture_output=True, text=True, env=box.environment(), timeout=30, check=False)

    assert done.returncode == 0 and "done" in done.stdout, done.stderr
    assert "must-not-leak" not in done.stdout
    assert not holds_nothing("/proc/self/status")  # a file that says size 0 and has content is hidden


def test_a_session_starts_when_another_sandboxs_mount_points_are_gone(
    repo: Path, ledger: Ledger, claude_code_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("bwrap")
    need_tool("socat")
    fake, proxy = claude_code_env
    home = tmp_path / "home"
    home.mkdir()
    placeholders = _mount_points(home)
    (home / ".claude.json").touch(mode=0o444)  # Claude Code's account file, when its config is elsewhere
    placeholders.append(home / ".claude.json")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")  # this CLI's config is the home's: ~/.claude, ~/.claude.json
    wrap = Sandbox.wrap

    def wrap_then_end_the_other_command(self: Sandbox, *args, **kwargs) -> list[str]:
        argv = wrap(self, *args, **kwargs)
        _remove(placeholders)  # between agentflow's look at the home and bwrap's start
        return argv

    monkeypatch.setattr(Sandbox, "wrap", wrap_then_end_the_other_command)
    fake.add(
        message(tool_use("Bash", {"command": "echo ran > ran.txt", "description": "run a command"})),
        message(text("Done.")),
    )

    result = run_claude_code_session(make_spec("builder", repo), ledger)

    assert result.status == "completed", result.reason
    assert (repo / "ran.txt").read_text() == "ran\n"
    assert not proxy.requests


def test_without_socat_the_backend_stops_before_a_session(
    repo: Path, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bwrap").symlink_to(need_tool("bwrap"))
    monkeypatch.setenv("PATH", str(bin_dir))

    with pytest.raises(UsageError) as caught:
        run_claude_code_session(make_spec("builder", repo), ledger)

    assert "needs socat for Claude Code's Bash sandbox" in str(caught.value)
    assert "apt-get install bubblewrap socat" in (caught.value.fix or "")
    assert list(ledger.events()) == []


def test_where_no_sandbox_can_nest_in_agentflows_the_backend_stops_before_a_session(
    repo: Path, ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = need_tool("bwrap")
    need_tool("socat")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # a bwrap that cannot create the nested shape's namespaces (a kernel or AppArmor policy that forbids them)
    (bin_dir / "bwrap").write_text(
        f'#!/bin/sh\ncase " $* " in *" --tmpfs /dev "*) echo "bwrap: No permissions to create a new namespace" >&2; '
        f'exit 1;; esac\nexec {real} "$@"\n'
    )
    (bin_dir / "bwrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    with pytest.raises(UsageError) as caught:
        run_claude_code_session(make_spec("builder", repo), ledger)

    assert "a sandbox cannot start inside agentflow's here (bwrap: No permissions" in str(caught.value)
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in (caught.value.fix or "")
    assert list(ledger.events()) == []


# -- verifier -------------------------------------------------------------------------------------


def test_verifier_returns_a_validated_verdict_through_the_mcp_tool(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, proxy = claude_code_env
    fake.add(
        message(tool_use("Glob", {"pattern": "*.md"})),
        lambda body: message(tool_use(tool_named(body, "submit_verdict"), {"decision": "approve"})),  # invalid
        lambda body: message(text("Submitting."), tool_use(tool_named(body, "submit_verdict"), VERDICT)),
        message(text("Verdict submitted.")),
    )

    result = run_claude_code_session(make_spec("verifier", repo, system="VERIFIER-ROLE-PROMPT"), ledger)

    assert result.status == "completed", result.reason
    assert result.submitted == VERDICT
    offered = {t["name"] for t in fake.requests[0]["tools"]}
    assert VERDICT_TOOL in offered and {"Read", "Glob", "Grep"} <= offered
    assert not offered & {"Write", "Edit", "Bash", "NotebookEdit", "WebFetch", "WebSearch"}
    assert "VERIFIER-ROLE-PROMPT" in str(fake.requests[0]["system"])
    (invalid,) = tool_results(fake.requests[2])
    assert invalid.get("is_error") and "summary" in result_text(invalid)
    (accepted,) = tool_results(fake.requests[3])
    assert not accepted.get("is_error") and "Verdict recorded" in result_text(accepted)
    assert [t.tool for t in _events(ledger, ToolCalled)] == ["Glob", VERDICT_TOOL, VERDICT_TOOL]
    (ended,) = _events(ledger, SessionEnded)
    assert ended.role == "verifier" and ended.status == "completed" and ended.external_id
    assert not proxy.requests


def test_verifier_cannot_write_even_if_the_model_tries(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    fake.add(
        message(tool_use("Write", {"file_path": str(repo / "README.md"), "content": "defaced\n"})),
        message(tool_use("Bash", {"command": "echo defaced > README.md", "description": "x"})),
        lambda body: message(tool_use(tool_named(body, "submit_verdict"), VERDICT)),
        message(text("Done.")),
    )

    result = run_claude_code_session(make_spec("verifier", repo), ledger)

    assert (repo / "README.md").read_text() == "# sample\n"
    assert all(tool_results(body)[0].get("is_error") for body in fake.requests[1:3])
    assert result.status == "completed" and result.submitted == VERDICT


def test_verifier_without_a_verdict_fails(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    fake.add(message(text("Looks good to me, approve!")))

    result = run_claude_code_session(make_spec("verifier", repo), ledger)

    assert result.status == "failed" and result.submitted is None
    assert "without submitting a verdict" in (result.reason or "")
    (ended,) = _events(ledger, SessionEnded)
    assert ended.status == "failed"


def test_verifier_sessions_never_resume_the_builder(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    fake.add(message(text("Built.")))
    builder = run_claude_code_session(make_spec("builder", repo), ledger)
    fake.add(lambda body: message(tool_use(tool_named(body, "submit_verdict"), VERDICT)), message(text("Done.")))

    verifier = run_claude_code_session(make_spec("verifier", repo), ledger)

    assert builder.external_id and verifier.external_id and builder.external_id != verifier.external_id
    verifier_first = fake.requests[1]
    assert "Built." not in str(verifier_first["messages"])  # a fresh context, no builder turns
    assert len(verifier_first["messages"]) <= 2


# -- failures -------------------------------------------------------------------------------------


def test_api_error_fails_the_session(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    fake.handler = lambda body: Error(400, "fake says no")

    result = run_claude_code_session(make_spec("verifier", repo), ledger)

    assert result.status == "failed" and result.submitted is None
    assert "fake says no" in (result.reason or "")
    (ended,) = _events(ledger, SessionEnded)
    assert ended.status == "failed" and "fake says no" in (ended.reason or "")


@pytest.mark.parametrize("ends", ["api error", "turn limit"])
def test_a_session_leaves_nothing_for_a_closed_event_loop(
    repo: Path, ledger: Ledger, claude_code_env, monkeypatch: pytest.MonkeyPatch, ends: str
) -> None:
    """The SDK leaves its CLI's asyncio transport unclosed in a reference cycle; collected after the
    session's loop had closed, its ``__del__`` raised "Event loop is closed" (ignored, but printed in
    every suite run). Whether it is left depends on when the CLI exits: without the collection in
    ``_run`` this failed in some runs, not all."""
    import gc

    fake, _ = claude_code_env
    if ends == "api error":
        fake.handler = lambda body: Error(400, "fake says no")
    else:
        fake.handler = lambda body: message(tool_use("Glob", {"pattern": "*"}))
    gc.collect()
    raised: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda hook: raised.append(repr(hook.exc_value)))

    for _ in range(3):  # whether the SDK leaves the transport behind depends on when its CLI exits
        result = run_claude_code_session(make_spec("builder", repo, max_turns=2), ledger)
        gc.collect()
        assert result.status in ("failed", "limits")

    assert raised == []


def test_cli_that_cannot_start_fails_the_session(repo: Path, ledger: Ledger, claude_code_env, tmp_path: Path) -> None:
    fake, _ = claude_code_env

    result = run_claude_code_session(make_spec("builder", tmp_path / "no-such-worktree"), ledger)

    assert result.status == "failed" and result.submitted is None
    assert (result.reason or "").startswith("Claude Code failed:")
    assert fake.requests == []
    (ended,) = _events(ledger, SessionEnded)
    assert ended.status == "failed"


def test_turn_limit_ends_the_session_without_success(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    fake.handler = lambda body: message(tool_use("Glob", {"pattern": "*"}))

    result = run_claude_code_session(make_spec("builder", repo, max_turns=3), ledger)

    assert result.status == "limits" and result.submitted is None
    assert "turn limit" in (result.reason or "")
    assert len(fake.requests) == 3


def test_token_limit_stops_the_session_and_charges_an_estimate(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    fake.handler = lambda body: message(tool_use("Glob", {"pattern": "*"}), usage={"input_tokens": 1000})
    budget = RunBudget(limit_usd=10.0)

    result = run_claude_code_session(make_spec("builder", repo, max_tokens=1500, budget=budget), ledger)

    assert result.status == "limits" and "token limit" in (result.reason or "")
    assert result.submitted is None and len(fake.requests) <= 3  # stopped at the limit, not at max_turns (8)
    assert result.cost_usd > 0 and budget.spent_usd == pytest.approx(result.cost_usd)


def test_verdict_then_error_is_still_no_verdict(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    fake.add(lambda body: message(tool_use(tool_named(body, "submit_verdict"), VERDICT)))
    fake.handler = lambda body: Error(400, "broken after the verdict")

    result = run_claude_code_session(make_spec("verifier", repo), ledger)

    assert result.status == "failed" and result.submitted is None


def test_time_limit_stops_the_cli(repo: Path, ledger: Ledger, claude_code_env) -> None:
    from tests.fakeapi import Delay

    fake, _ = claude_code_env
    fake.add(Delay(30, message(text("too late"))))

    result = run_claude_code_session(make_spec("builder", repo, max_seconds=2), ledger)

    assert result.status == "limits" and "time limit" in (result.reason or "")
    assert _cli_processes_in(repo) == []


def _cli_processes_in(root: Path) -> list[int]:
    """Claude Code processes still running with ``root`` in their command line (Linux /proc)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if "claude" in args and str(root) in args and state != "Z":
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
@pytest.mark.parametrize("how", ["raise", "sigint"])
def test_interrupt_is_recorded_and_stops_the_cli(
    repo: Path, ledger: Ledger, claude_code_env, how: str, ctrl_c: None
) -> None:
    fake, _ = claude_code_env
    fake.handler = lambda body: message(tool_use("Glob", {"pattern": "*"}))

    def interrupt(progress: dict) -> None:
        if how == "sigint":  # Ctrl-C: asyncio cancels the session, then raises KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)
        else:  # a KeyboardInterrupt raised inside agentflow's own code
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_claude_code_session(make_spec("builder", repo), ledger, interrupt)

    (ended,) = _events(ledger, SessionEnded)
    assert ended.status == "interrupted"
    assert _cli_processes_in(repo) == []


def test_exhausted_run_budget_starts_no_session(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    budget = RunBudget(limit_usd=1.0, spent_usd=1.0)

    result = run_claude_code_session(make_spec("builder", repo, budget=budget), ledger)

    assert result.status == "limits" and "run budget" in (result.reason or "")
    assert fake.requests == []


def test_session_cost_is_charged_to_the_run_budget(repo: Path, ledger: Ledger, claude_code_env) -> None:
    fake, _ = claude_code_env
    fake.add(message(text("Nothing to do."), usage={"input_tokens": 1000, "output_tokens": 100}))
    budget = RunBudget(limit_usd=10.0)

    result = run_claude_code_session(make_spec("builder", repo, budget=budget), ledger)

    assert result.cost_usd > 0 and budget.spent_usd == pytest.approx(result.cost_usd)


# -- units: policy, environment, installation ------------------------------------------------------


def test_policy_refuses_escapes_network_and_history(tmp_path: Path) -> None:
    root = tmp_path / "wt"
    root.mkdir()
    (root / "up").symlink_to(tmp_path)
    builder, verifier = ToolPolicy(root, "builder"), ToolPolicy(root, "verifier")
    assert builder.refusal("Write", {"file_path": str(root / "a.py")}) is None
    assert builder.refusal("Edit", {"file_path": "pkg/a.py"}) is None
    assert builder.refusal("Bash", {"command": "pytest -q && git status && git diff"}) is None
    assert builder.refusal("Grep", {"pattern": "TODO", "path": "src"}) is None
    for tool, data in [
        ("Write", {"file_path": "../x"}),
        ("Write", {"file_path": "/etc/passwd"}),
        ("Read", {"file_path": "up/secret"}),
        ("Read", {"file_path": "~/.ssh/id_rsa"}),
        ("Edit", {"file_path": ".git/HEAD"}),
        ("Glob", {"pattern": "../**"}),
        ("Grep", {"pattern": "x", "glob": "/etc/*"}),
        ("WebSearch", {"query": "x"}),
        ("Bash", {"command": "git -C . commit -m x"}),
        ("Bash", {"command": "echo; git push"}),
        ("Agent", {"prompt": "x"}),
    ]:
        assert builder.refusal(tool, data), (tool, data)
    assert verifier.refusal("Read", {"file_path": "a.py"}) is None
    assert verifier.refusal(VERDICT_TOOL, VERDICT) is None
    for tool in ("Write", "Edit", "Bash"):
        assert verifier.refusal(tool, {"file_path": "a.py", "command": "ls"})
    assert builder.refusal(VERDICT_TOOL, VERDICT)  # the verdict tool is the verifier's


def test_session_env_blanks_secrets_but_keeps_the_cli_credentials() -> None:
    env = session_env(
        {
            "AGENTFLOW_SIGNING_KEY": "k" * 32,
            "GITHUB_TOKEN": "t",
            "ANTHROPIC_API_KEY": "a",
            "AWS_SECRET_ACCESS_KEY": "s",
            "PATH": "/bin",
            "DISABLE_TELEMETRY": "0",
        }
    )
    assert env["AGENTFLOW_SIGNING_KEY"] == "" and env["GITHUB_TOKEN"] == ""
    assert "ANTHROPIC_API_KEY" not in env and "AWS_SECRET_ACCESS_KEY" not in env and "PATH" not in env
    assert env["CLAUDE_CODE_DISABLE_AUTO_MEMORY"] == "1"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert "DISABLE_TELEMETRY" not in env  # the user's explicit choice stays


def test_missing_extra_is_a_usage_error(repo: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)  # find_spec raises ValueError for None
    monkeypatch.setattr(claude_code.importlib.util, "find_spec", lambda name: None)

    with pytest.raises(UsageError) as caught:
        run_claude_code_session(make_spec("builder", repo), ledger)

    assert caught.value.exit_code == 2
    assert "pip install 'agentflow[claude-code]'" in str(caught.value)
    assert ledger.events() == []


def test_evaluator_role_is_refused(repo: Path, ledger: Ledger) -> None:
    with pytest.raises(UsageError, match="builder and verifier"):
        run_claude_code_session(make_spec("evaluator", repo), ledger)
