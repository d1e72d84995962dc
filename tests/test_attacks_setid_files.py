"""A sandboxed command that makes a set-user-ID file in its worktree.

In its user namespace the command owns what it writes, and the owner of a file may set its
set-user-ID and set-group-ID bits without any capability. Inside the sandbox every mount is
``nosuid``; on the host it is not: with agentflow run as root the file is root's there, so any local
user who could reach the worktree (``.agentflow/worktrees/<plan>``, kept after the build) ran it as
root (tested before the fix: ``nobody`` running a builder's copy of ``id`` printed ``euid=0``); with
agentflow run as a developer, as the developer. After every agent session such bits are now cleared
and the session is tampering (``no_verdict``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.build_helpers import finish, verifier_session, write_plan, write_script
from tests.helpers import need_tool


def run_command(command: str) -> dict:
    return {"tool_calls": [{"name": "run_command", "input": {"command": command}}]}


def test_a_builders_setuid_file_is_cleared_and_ends_the_run(repo: Path, cli) -> None:
    need_tool("bwrap")
    write_plan(repo, scope=["**"])
    command = "cp /bin/id tools-id && chmod 4755 tools-id && cp /bin/sh tools-sh && chmod 2755 tools-sh"
    script = write_script(repo, {"builder": [[run_command(command), finish()]], "verifier": [verifier_session()]})

    result = cli("build", "1", "--script", str(script))

    made = list((repo / ".agentflow" / "worktrees").glob("*/tools-*"))
    assert made, "the builder's command made no file"
    for path in made:
        mode = path.stat().st_mode
        assert not mode & (stat.S_ISUID | stat.S_ISGID), f"{path} kept {stat.filemode(mode)}"
        assert os.access(path, os.X_OK)  # the file stays; only the bits are gone
    assert result.exit_code == 3 and "set-user-ID" in result.output and "tools-id" in result.output, result.output
    assert cli("gate", "agentflow/1-farewell", "--base", "main").exit_code == 1


def test_a_setuid_file_in_a_folder_made_unreadable_is_found(repo: Path, cli) -> None:
    """A folder of mode 311 can be entered by anyone who knows a name in it, but not listed: its
    set-user-ID file was missed by a walk that skipped unreadable folders."""
    need_tool("bwrap")
    write_plan(repo, scope=["**"])
    command = "mkdir hidden && cp /bin/id hidden/x && chmod 4755 hidden/x && chmod 311 hidden"
    script = write_script(repo, {"builder": [[run_command(command), finish()]], "verifier": [verifier_session()]})

    result = cli("build", "1", "--script", str(script))

    [made] = list((repo / ".agentflow" / "worktrees").glob("*/hidden/x"))
    assert not made.stat().st_mode & stat.S_ISUID
    assert result.exit_code == 3 and "set-user-ID" in result.output, result.output
