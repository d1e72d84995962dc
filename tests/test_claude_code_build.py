"""Mixed and all-Claude-Code teams through ``agentflow build`` (real CLI against tests.fakeapi)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from agentflow.events import RunEnded, SessionEnded, SessionStarted
from agentflow.ledger import Ledger
from agentflow.models import claude_code
from tests.build_helpers import git, notes, verdict, verifier_session, write_plan, write_script
from tests.claude_code_helpers import claude_code_env, tool_named  # noqa: F401
from tests.fakeapi import fake_anthropic, message, text, tool_use  # noqa: F401
from tests.helpers import need_tool

pytest.importorskip("claude_agent_sdk", reason="the claude-code extra is not installed")

FAREWELL = "def farewell():\n    return 'bye'\n"


def _config(root: Path, models: dict) -> None:
    (root / "agentflow.yaml").write_text(yaml.safe_dump({"models": models}))
    git(root, "add", "agentflow.yaml")
    git(root, "commit", "-q", "-m", "config")


def _builder_replies() -> list:
    return [
        message(text("Adding farewell."), tool_use("Write", {"file_path": "src/app.py", "content": FAREWELL})),
        message(text("Added farewell() to src/app.py.")),
    ]


def _events(root: Path, kind: type) -> list:
    with Ledger.open(root) as ledger:
        return [e for e in ledger.events() if isinstance(e, kind)]


def test_claude_code_builder_with_a_scripted_verifier(repo: Path, cli, claude_code_env) -> None:
    fake, proxy = claude_code_env
    write_plan(repo)
    script = write_script(repo, {"verifier": [verifier_session()]})
    _config(
        repo,
        {
            "builder": {"backend": "claude-code", "model": "claude-sonnet-5-5"},
            "verifier": {"backend": "scripted", "script": str(script)},
        },
    )
    fake.add(*_builder_replies())

    result = cli("build", "1")

    assert result.exit_code == 0, result.output
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert git(repo, "show", f"{head}:src/app.py") + "\n" == FAREWELL
    # only what the builder wrote: not the empty files Claude Code's Bash sandbox mounts over
    assert git(repo, "diff", "--name-only", "main", head).split() == ["src/app.py"]
    [note] = notes(repo, head)
    assert note["outcome"] == "approved"
    assert note["models"]["builder"] == "claude-code:claude-sonnet-5-5"
    started = {e.role: e.backend for e in _events(repo, SessionStarted)}
    assert started == {"builder": "claude-code", "verifier": "scripted"}
    assert not proxy.requests


def test_claude_code_builder_with_an_anthropic_api_verifier(repo: Path, cli, claude_code_env) -> None:
    fake, proxy = claude_code_env
    write_plan(repo)
    _config(
        repo,
        {
            "builder": {"backend": "claude-code", "model": "claude-sonnet-5-5"},
            "verifier": {"backend": "anthropic", "model": "claude-sonnet-5-5"},
        },
    )
    fake.add(
        *_builder_replies(),
        message(tool_use("read_file", {"path": "src/app.py"})),
        message(tool_use("submit_verdict", verdict())),
    )

    result = cli("build", "1")

    assert result.exit_code == 0, result.output
    verifier_tools = {t["name"] for t in fake.requests[2]["tools"]}
    assert "submit_verdict" in verifier_tools and "Write" not in verifier_tools  # agentflow's own toolbox
    started = {e.role: e.backend for e in _events(repo, SessionStarted)}
    assert started == {"builder": "claude-code", "verifier": "anthropic"}
    [run_end] = _events(repo, RunEnded)
    assert run_end.outcome == "approved"
    assert not proxy.requests


def test_all_claude_code_team_with_the_backend_flag(repo: Path, cli, claude_code_env) -> None:
    fake, proxy = claude_code_env
    write_plan(repo)
    fake.add(
        *_builder_replies(),
        message(tool_use("Read", {"file_path": "src/app.py"})),
        lambda body: message(tool_use(tool_named(body, "submit_verdict"), verdict())),
        message(text("Verdict submitted.")),
    )

    result = cli("build", "1", "--backend", "claude-code")

    assert result.exit_code == 0, result.output
    builder_prompt, verifier_prompt = fake.requests[0], fake.requests[2]
    assert "Added farewell()" not in str(verifier_prompt["messages"])  # a fresh context
    assert "farewell" in str(verifier_prompt["messages"])  # the diff is in the prompt
    assert not {t["name"] for t in verifier_prompt["tools"]} & {"Write", "Edit", "Bash"}
    assert "Write" in {t["name"] for t in builder_prompt["tools"]}
    ended = _events(repo, SessionEnded)
    assert [(e.role, e.status) for e in ended] == [("builder", "completed"), ("verifier", "completed")]
    assert all(e.external_id for e in ended) and ended[0].external_id != ended[1].external_id
    [run_end] = _events(repo, RunEnded)
    assert run_end.outcome == "approved"
    assert not proxy.requests


def test_claude_code_verifier_without_verdict_is_no_verdict(repo: Path, cli, claude_code_env) -> None:
    fake, _ = claude_code_env
    write_plan(repo)
    fake.add(*_builder_replies(), message(text("Approve, looks fine.")))

    result = cli("build", "1", "--backend", "claude-code")

    assert result.exit_code == 3, result.output
    [run_end] = _events(repo, RunEnded)
    assert run_end.outcome == "no_verdict"
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert all(n["outcome"] != "approved" for n in notes(repo, head))


def test_missing_extra_is_exit_2(repo: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    write_plan(repo)
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)
    monkeypatch.setattr(claude_code.importlib.util, "find_spec", lambda name: None)

    result = cli("build", "1", "--backend", "claude-code")

    assert result.exit_code == 2, result.output
    assert "pip install 'agentflow[claude-code]'" in result.output
    assert not (repo / ".agentflow" / "worktrees" / "1-farewell").exists()  # refused before anything started
    assert git(repo, "branch", "--list", "agentflow/*") == ""


def test_without_socat_the_build_is_exit_2_before_anything_starts(
    repo: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_plan(repo)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "bash", "sh", "bwrap"):  # everything but socat
        (bin_dir / tool).symlink_to(need_tool(tool))
    monkeypatch.setenv("PATH", str(bin_dir))

    result = cli("build", "1", "--backend", "claude-code")

    assert result.exit_code == 2, result.output
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert "the claude-code backend needs socat for Claude Code's Bash sandbox" in line
    assert "apt-get install bubblewrap socat" in line
    assert not (repo / ".agentflow" / "worktrees" / "1-farewell").exists()
    assert git(repo, "branch", "--list", "agentflow/*") == ""


def test_verify_in_ci_with_a_claude_code_verifier(repo: Path, cli, claude_code_env) -> None:
    from tests.build_helpers import feature

    fake, proxy = claude_code_env
    write_plan(repo)
    head = feature(repo)
    fake.add(
        message(tool_use("Grep", {"pattern": "farewell", "path": "src"})),
        lambda body: message(tool_use(tool_named(body, "submit_verdict"), verdict())),
        message(text("Done.")),
    )

    result = cli("verify", "--backend", "claude-code", "--format", "json")

    assert result.exit_code == 0, result.output
    [note] = notes(repo, head)
    assert note["outcome"] == "approved" and note["models"]["verifier"] == "claude-code:claude-sonnet-5-5"
    assert git(repo, "status", "--porcelain") == ""  # the verifier left the tree alone
    assert not proxy.requests


def test_the_bash_sandboxs_mount_points_are_removed_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("")  # there before the session: the user's, kept even empty
    with claude_code.mount_points_removed(tmp_path):
        for name in (".gitmodules", "package.json", ".npmrc", ".env.local", "yarn.lock"):
            (tmp_path / name).write_text("")  # what bwrap leaves
        (tmp_path / "package.json").write_text('{"name": "app"}\n')  # the session gave it content
        (tmp_path / "__init__.py").write_text("")  # an empty file of the session's, not on the list
        (tmp_path / "data").mkdir()
        (tmp_path / "yarn.lock").unlink()
        os.link(tmp_path / "data" / ".." / ".npmrc", tmp_path / "data" / "npmrc")  # a second link: not bwrap's
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env", ".npmrc", "__init__.py", "data", "package.json"]
