"""A demanding new user's walk through every command: what each bad input did, kept as tests.

Each test is one thing a user ran that printed too much, too little, a traceback or the wrong exit
code, or left something behind; the fix made the behaviour the README and DESIGN.md promise (one
line naming the file, the problem and the fix; the documented exit code; nothing half-created)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from agentflow.events import Event, GitChecked, GitSnapshotTaken, RunStarted
from agentflow.ledger import Ledger
from agentflow.report.lines import KEY_FIELDS


def _kinds() -> list[str]:
    (union, _discriminator) = get_args(Event)
    return [get_args(cls.model_fields["kind"].annotation)[0] for cls in get_args(union)]


def test_every_event_kind_has_its_key_fields_in_the_log() -> None:
    """A kind without an entry printed every field, a dict as its repr: one line of `agentflow log`
    was the whole git snapshot (every ref, hook and file hash, thousands of characters)."""
    assert sorted(set(_kinds()) - set(KEY_FIELDS)) == []


def test_the_log_line_of_a_git_snapshot_is_short(repo: Path, cli) -> None:
    files = {f".git/hooks/hook-{n}.sample": "ab" * 32 for n in range(40)}
    snapshot = {"workdir": str(repo), "refs": {"refs/heads/main": "c" * 40}, "files": files, "paths": files}
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
        ledger.append(GitSnapshotTaken(run_id="r-1", role="builder", snapshot=snapshot))
        ledger.append(GitChecked(run_id="r-1", role="builder", changes=["refs/heads/main moved"]))
    result = cli("log", "--run", "r-1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].endswith(" r-1 git_snapshot cycle=1 role=builder refs=1 files=40")
    assert lines[2].endswith(" r-1 git_checked cycle=1 role=builder changes='refs/heads/main moved'")
    assert all(len(line) < 200 for line in lines), lines
