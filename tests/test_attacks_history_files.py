"""Git files that rewrite the history every later git command sees, left behind by a builder.

The integrity check around each session compares refs, HEADs, config, hooks and excludes (the sandbox
keeps ``.git`` read-only; the check is what catches a builder where the sandbox is off). It did not
look at ``.git/info/grafts`` (a commit gets other parents: git still honours the file), ``.git/shallow``
(a commit's parents are cut off), ``.git/objects/info/alternates`` (objects read from a folder the
builder controls, which the repository depends on once ``gc`` has dropped its own copies) nor a
worktree's ``commondir`` (which repository its git writes to). A builder that wrote them was approved
and left the user's repository with a rewritten history: after the build ``git rev-list --count main``
counted one commit (tested before the fix). Each is tampering now, and put back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.build_helpers import git
from tests.test_integrity import assert_no_approval, hostile_build


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("git rev-parse main > $(git rev-parse --git-common-dir)/info/grafts", ".git/info/grafts"),
        ("git rev-parse main > $(git rev-parse --git-common-dir)/shallow", ".git/shallow"),
        (
            "mkdir -p .objs && echo $PWD/.objs > $(git rev-parse --git-common-dir)/objects/info/alternates",
            ".git/objects/info/alternates",
        ),
    ],
)
def test_a_history_rewriting_file_is_tampering_and_removed(repo: Path, cli, command: str, name: str) -> None:
    result = hostile_build(repo, cli, command)
    count = git(repo, "rev-list", "--count", "main")

    assert_no_approval(repo, result, f"{name} added")
    assert not (repo / name).exists()
    assert int(count) > 1, count  # main's history as it was


def test_a_worktree_pointed_at_another_repository_is_put_back(repo: Path, cli, tmp_path: Path) -> None:
    """Detected before too (every file then read from the other repository differed), but the
    worktree stayed pointed at it: the next git command agentflow ran there wrote to that repository."""
    other = tmp_path / "other.git"
    git(tmp_path, "init", "-q", "--bare", str(other))
    result = hostile_build(repo, cli, f"echo {other} > $(git rev-parse --git-dir)/commondir")

    assert_no_approval(repo, result, "commondir")
    commondir = repo / ".git" / "worktrees" / "1-farewell" / "commondir"
    assert (repo / ".git" / "worktrees" / "1-farewell" / commondir.read_text().strip()).resolve() == (
        repo / ".git"
    ).resolve()
