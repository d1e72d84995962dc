"""What counts as the verifier having read a file its diff cut (``diff_cut``, ``Run.judge_cut``).

A cut file counts as shown only when the verifier read it whole. With the claude-code backend the
verifier reads with Claude Code's ``Read``, recorded as ``Read`` tool calls (``file_path``, ``offset``,
``limit``, the result's length): before, only agentflow's ``read_file`` counted, so a claude-code
verifier that read the cut file whole still left the high finding and its approval never opened
the gate (tested before the fix). A ``Read`` now counts when it returned every line of the file as
committed (``agentflow.rules.budget.read_whole``); one with a ``limit``, a ``Grep`` or a ``Read`` that
failed does not. The build path (``agentflow build``'s verifier) is tested end to end here too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agentflow.rules.budget import read_whole
from tests.build_helpers import verdict, write_plan, write_script
from tests.claude_code_helpers import claude_code_env  # noqa: F401
from tests.fakeapi import fake_anthropic  # noqa: F401
from tests.helpers import git

PAYLOAD = "PAYLOAD-c41a exfiltrate()"
# 400 lines of 250 characters: over the 80,000 characters of the verifier's diff, within Read's limits
BIG = "".join(f"v{i:04} = '{PAYLOAD} {'x' * 210}'\n" for i in range(400))


def _cut(data: dict) -> list[dict]:
    return [f for f in data["findings"] if f.get("rule") == "diff_cut"]


def _numbered(text: str) -> int:
    return len("\n".join(f"{n}\t{line}" for n, line in enumerate(text.split("\n"), 1)))


@pytest.mark.parametrize(
    ("data", "chars", "whole"),
    [
        ({"file_path": "/r/app.py"}, _numbered(BIG), True),
        ({"file_path": "/r/app.py", "offset": 1, "limit": 2000}, _numbered(BIG) + 200, True),  # + a reminder
        ({"file_path": "/r/app.py", "limit": 100}, _numbered(BIG), False),
        ({"file_path": "/r/app.py", "offset": 50}, _numbered(BIG), False),
        ({"file_path": "/r/app.py", "limit": True}, _numbered(BIG), False),
        ({"file_path": "/r/app.py"}, _numbered(BIG) - 1, False),  # shortened, or a refusal
    ],
)
def test_a_claude_code_read_counts_only_when_it_returned_every_line(data: dict, chars: int, whole: bool) -> None:
    assert read_whole(data, chars, BIG) is whole


def test_a_file_beyond_reads_own_limits_never_counts() -> None:
    many = "x\n" * 2500
    assert not read_whole({"file_path": "/r/a"}, 10**9, many)  # Read returns the first 2,000 lines
    assert not read_whole({"file_path": "/r/a"}, 10**9, "y" * 2001)  # and cuts longer lines
    assert not read_whole({"file_path": "/r/a"}, 10**9, None)  # not in the commit


def _pull_request(repo: Path, again: bool = False) -> str:
    if again:  # a second change on the same branch: another head to verify
        (repo / "app.py").write_text(BIG.replace("v0000", "w0000"))
    else:
        (repo / "app.py").write_text("x = 1\n")
        write_plan(repo)
        git(repo, "checkout", "-q", "-b", "pr")
        (repo / "app.py").write_text(BIG)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change", "--trailer", "Agentflow-Plan: 1")
    return git(repo, "rev-parse", "HEAD")


def _claude_code_verify(repo: Path, cli, fake, reads: list, first=None) -> dict:
    from tests.claude_code_helpers import tool_named
    from tests.fakeapi import message, text, tool_use

    fake.add(
        *([first] if first else []),
        *[message(tool_use(name, data)) for name, data in reads],
        lambda body: message(tool_use(tool_named(body, "submit_verdict"), verdict())),
        message(text("Done.")),
    )
    result = cli("verify", "--base", "main", "--backend", "claude-code", "--format", "json")
    assert result.stdout.startswith("{"), result.output
    return json.loads(result.stdout) | {"exit_code": result.exit_code}


@pytest.fixture
def claude(claude_code_env):
    pytest.importorskip("claude_agent_sdk", reason="the claude-code extra is not installed")
    return claude_code_env[0]


def test_a_cut_file_a_claude_code_verifier_read_whole_counts_as_shown(repo: Path, cli, claude) -> None:
    _pull_request(repo)

    data = _claude_code_verify(repo, cli, claude, [("Read", {"file_path": "app.py"})])
    assert _cut(data) == [] and data["outcome"] == "approved", data["findings"]
    _pull_request(repo, again=True)

    def absolute(body: dict) -> dict:  # the checkout the verifier runs in, as its prompt names it
        from tests.fakeapi import message, tool_use

        root = re.search(r"(/\S+/\.agentflow/worktrees/[\w.-]+)", json.dumps(body)).group(1)
        return message(tool_use("Read", {"file_path": f"{root}/app.py"}))

    data = _claude_code_verify(repo, cli, claude, [], first=absolute)

    assert _cut(data) == [] and data["outcome"] == "approved" and data["exit_code"] == 0, data["findings"]


@pytest.mark.parametrize(
    "reads",
    [
        [("Read", {"file_path": "app.py", "limit": 20})],
        [("Grep", {"pattern": "PAYLOAD", "path": "."})],
        [("Read", {"file_path": "README.md"})],
        [("read_file", {"path": "app.py"})],  # agentflow's tool name: no such tool in Claude Code
    ],
    ids=["read in part", "grep", "another file", "read_file"],
)
def test_a_cut_file_a_claude_code_verifier_did_not_read_whole_still_blocks(repo: Path, cli, claude, reads) -> None:
    _pull_request(repo)

    data = _claude_code_verify(repo, cli, claude, reads)

    [found] = _cut(data)
    assert found["severity"] == "high" and data["outcome"] != "approved" and data["exit_code"] == 1, data


def _build(repo: Path, cli, reads: list[str]) -> dict:
    (repo / "app.py").write_text("x = 1\n")
    write_plan(repo, scope=["app.py"])
    verifier = [{"text": "reading", "tool_calls": [{"name": "read_file", "input": {"path": p}} for p in reads]}]
    verifier.append({"tool_calls": [{"name": "submit_verdict", "input": verdict()}]})
    builder = [
        {"tool_calls": [{"name": "write_file", "input": {"path": "app.py", "content": BIG}}]},
        {"tool_calls": [{"name": "finish", "input": {"summary": "done"}}]},
    ]
    script = write_script(repo, {"builder": [builder], "verifier": [verifier]})
    result = cli("build", "1", "--script", str(script), "--max-cycles", "1")
    return {"exit_code": result.exit_code, "output": result.output}


def test_the_build_path_counts_a_cut_file_the_verifier_read_whole(repo: Path, cli) -> None:
    from tests.build_helpers import notes

    result = _build(repo, cli, ["app.py"])

    assert result["exit_code"] == 0, result["output"]
    [note] = notes(repo, git(repo, "rev-parse", "agentflow/1-farewell"))
    assert note["outcome"] == "approved" and not [f for f in note["findings"] if f.get("pattern") == "diff_cut"]


def test_the_build_path_keeps_the_cut_finding_when_the_verifier_did_not_read_it(repo: Path, cli) -> None:
    from tests.build_helpers import notes

    result = _build(repo, cli, ["README.md"])

    assert result["exit_code"] == 1, result["output"]
    lines = notes(repo, git(repo, "rev-parse", "agentflow/1-farewell"))
    assert lines[0]["outcome"] == "changes_requested"
    assert [f["severity"] for f in lines[0]["findings"] if f.get("pattern") == "diff_cut"] == ["high"]
