"""``agentflow notes push | fetch``: verdict notes travel through a bare remote without being lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow.gate import evaluate_gate
from agentflow.git import Repo
from agentflow.notesync import fetch_notes, push_notes, tracking_ref
from tests.gate_helpers import add_verdict, commit_file, git


def clone(remote: Path, dest: Path) -> Path:
    git(dest.parent, "clone", "-q", str(remote), str(dest))
    git(dest, "config", "user.email", f"{dest.name}@example.com")
    git(dest, "config", "user.name", dest.name)
    return dest


@pytest.fixture
def team(repo: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A bare remote with two commits on main, and two clones (alice and bob)."""
    commit_file(repo, "src/a.py", "a = 1\n")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    return remote, clone(remote, tmp_path / "alice"), clone(remote, tmp_path / "bob")


def lines(root: Path, ref: str) -> list[str]:
    return Repo(root).notes(Repo(root).rev(ref))


def test_round_trip_with_concurrent_writers_on_different_commits(team):
    _, alice, bob = team
    alice_note = add_verdict(alice, "HEAD", "approved")
    bob_note = add_verdict(bob, "HEAD~1", "changes_requested")
    assert push_notes(Repo(alice)).attempts == 1
    result = push_notes(Repo(bob))  # rejected first: alice pushed; fetched, merged, retried
    assert result.attempts == 2
    assert lines(bob, "HEAD") == [alice_note.to_line()]  # bob now has alice's note too
    assert fetch_notes(Repo(alice)).merged
    assert lines(alice, "HEAD") == [alice_note.to_line()]
    assert lines(alice, "HEAD~1") == [bob_note.to_line()]
    assert evaluate_gate(Repo(alice), "HEAD").open


def test_concurrent_verdicts_on_the_same_commit_are_both_kept(team):
    _, alice, bob = team
    approval = add_verdict(alice, "HEAD", "approved", ts="2026-11-27T10:00:00+00:00")
    rejection = add_verdict(bob, "HEAD", "rejected", ts="2026-11-27T11:00:00+00:00")
    push_notes(Repo(alice))
    push_notes(Repo(bob))
    fetch_notes(Repo(alice))
    for root in (alice, bob):
        assert sorted(lines(root, "HEAD")) == sorted([approval.to_line(), rejection.to_line()])
        assert evaluate_gate(Repo(root), "HEAD").status == "revoked"  # the later verdict decides


def test_fetch_never_drops_unpushed_local_notes(team):
    _, alice, bob = team
    add_verdict(alice, "HEAD", "approved")
    push_notes(Repo(alice))
    local = add_verdict(bob, "HEAD~1", "approved")  # not pushed
    assert fetch_notes(Repo(bob)).merged
    assert lines(bob, "HEAD~1") == [local.to_line()]
    assert len(lines(bob, "HEAD")) == 1
    assert Repo(bob).git("rev-parse", "--verify", tracking_ref("origin"))


def test_fetch_when_the_remote_has_no_notes(team, cli, monkeypatch):
    _, alice, _ = team
    monkeypatch.chdir(alice)
    result = cli("notes", "fetch")
    assert result.exit_code == 0 and "no agentflow notes" in result.output


def test_cli_push_and_fetch(team, cli, monkeypatch):
    _, alice, bob = team
    add_verdict(alice, "HEAD")
    monkeypatch.chdir(alice)
    result = cli("notes", "push", "--remote", "origin")
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(bob)
    result = cli("notes", "fetch")
    assert result.exit_code == 0 and "merged" in result.output
    assert cli("gate").exit_code == 0


def test_push_without_notes_or_with_a_bad_remote_is_a_usage_error(team, cli, monkeypatch):
    _, alice, _ = team
    monkeypatch.chdir(alice)
    assert cli("notes", "push").exit_code == 2
    add_verdict(alice, "HEAD")
    assert cli("notes", "push", "--remote", "nowhere").exit_code == 2


def test_fetch_merges_without_a_configured_identity(team, monkeypatch):
    """CI runners often have no user.name/user.email; the notes merge commit must still be made."""
    _, alice, bob = team
    add_verdict(alice, "HEAD")
    push_notes(Repo(alice))
    local = add_verdict(bob, "HEAD~1")
    git(bob, "config", "--unset", "user.name")
    git(bob, "config", "--unset", "user.email")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(bob.parent / "home"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert fetch_notes(Repo(bob)).merged
    assert lines(bob, "HEAD~1") == [local.to_line()] and len(lines(bob, "HEAD")) == 1
