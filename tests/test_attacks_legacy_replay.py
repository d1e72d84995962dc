"""Attacks that replay a verdict line written before lines named their commit.

Since ``commit`` (signed with the rest) a line copied onto another commit decides nothing there
(tests/test_attacks_note_replay.py). Lines written before the field name no commit and are still
taken where they sit, so a repository's older signed approval, revoked later on its commit, copied
onto a sibling commit (the same tree and parent, another message: what a pull request's author can
make at will) opened the gate there (tested before the fix). Such an approval now holds only while
no later verdict about the same change, on any commit, ever recorded in the notes history, revokes it.
"""

from __future__ import annotations

from pathlib import Path

from agentflow.notes import NOTES_REF
from tests.gate_helpers import note_for
from tests.helpers import git

KEY = "legacy-replay-signing-key-0123-0123456789abcdef0123456789"
SIGNED = {"AGENTFLOW_SIGNING_KEY": KEY}


def _pull_request(repo: Path) -> str:
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "farewell.py").write_text("def farewell():\n    return 'bye'\n")
    git(repo, "add", "farewell.py")
    git(repo, "commit", "-q", "-m", "farewell")
    return git(repo, "rev-parse", "HEAD")


def _legacy(repo: Path, on: str, outcome: str, ts: str, **extra: object) -> str:
    """A signed line as agentflow wrote it before the ``commit`` field (unless ``extra`` names one)."""
    return note_for(repo, on, outcome, KEY, ts=ts, **extra).to_line()


def _add(repo: Path, commit: str, *lines: str) -> None:
    existing = git(repo, "notes", f"--ref={NOTES_REF}", "show", commit, check=False)
    old = existing.splitlines() if existing and "no note" not in existing else []
    git(repo, "notes", f"--ref={NOTES_REF}", "add", "-f", "-m", "\n".join([*old, *lines]), commit)


def _sibling(repo: Path, commit: str) -> str:
    tree, parent = git(repo, "rev-parse", f"{commit}^{{tree}}"), git(repo, "rev-parse", f"{commit}^")
    return git(repo, "commit-tree", tree, "-p", parent, "-m", "farewell (reworded)")


def _revoked_and_replayed(repo: Path) -> tuple[str, str]:
    head = _pull_request(repo)
    approval = _legacy(repo, head, "approved", "2026-01-01T10:00:00+00:00")
    _add(repo, head, approval)
    _add(repo, head, _legacy(repo, head, "rejected", "2026-01-02T10:00:00+00:00"))
    sibling = _sibling(repo, head)
    _add(repo, sibling, approval)
    git(repo, "update-ref", "refs/heads/pr", sibling)
    return head, sibling


def test_a_revoked_legacy_approval_replayed_onto_a_sibling_does_not_open_the_gate(repo: Path, cli) -> None:
    head, _ = _revoked_and_replayed(repo)
    assert cli("gate", head, "--base", "main", env=SIGNED).exit_code == 1

    result = cli("gate", "pr", "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output
    assert "names no commit" in result.output and head[:12] in result.output, result.output


def test_with_the_original_note_removed_too(repo: Path, cli) -> None:
    """The rejection lives on in the notes history after the original's note is removed."""
    head, _ = _revoked_and_replayed(repo)
    git(repo, "notes", f"--ref={NOTES_REF}", "remove", head)

    result = cli("gate", "pr", "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output


def test_revoked_by_a_line_that_names_its_commit(repo: Path, cli) -> None:
    """After the upgrade the original was verified again and rejected: the new line names its commit."""
    head = _pull_request(repo)
    approval = _legacy(repo, head, "approved", "2026-01-01T10:00:00+00:00")
    _add(repo, head, approval, _legacy(repo, head, "rejected", "2026-01-02T10:00:00+00:00", commit=head))
    sibling = _sibling(repo, head)
    _add(repo, sibling, approval)
    git(repo, "update-ref", "refs/heads/pr", sibling)

    result = cli("gate", "pr", "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output


def test_an_unsigned_later_rejection_does_not_revoke_a_signed_legacy_approval(repo: Path, cli) -> None:
    """Anyone who can push notes can write an unsigned rejection: under a key it closes nothing."""
    head = _pull_request(repo)
    _add(repo, head, _legacy(repo, head, "approved", "2026-01-01T10:00:00+00:00"))
    unsigned = note_for(repo, head, "rejected", None, ts="2026-01-02T10:00:00+00:00").to_line()
    other = _sibling(repo, head)
    _add(repo, other, unsigned)

    assert cli("gate", head, "--base", "main", env=SIGNED).exit_code == 0


def test_a_legacy_approval_still_opens_the_gate_where_it_was_written(repo: Path, cli) -> None:
    head = _pull_request(repo)
    _add(repo, head, _legacy(repo, head, "approved", "2026-01-01T10:00:00+00:00"))

    result = cli("gate", head, "--base", "main", env=SIGNED)

    assert result.exit_code == 0, result.output


def test_a_rejection_of_the_same_tree_on_another_base_does_not_revoke(repo: Path, cli) -> None:
    """The same tree on another base is another change (a rebase that reverts main's work): its
    rejection says nothing about this one."""
    head = _pull_request(repo)
    _add(repo, head, _legacy(repo, head, "approved", "2026-01-01T10:00:00+00:00"))
    elsewhere = _sibling(repo, head)
    _add(repo, elsewhere, _legacy(repo, head, "rejected", "2026-01-02T10:00:00+00:00", base_tree="0" * 40))

    assert cli("gate", head, "--base", "main", env=SIGNED).exit_code == 0


def test_a_third_commit_found_through_the_same_tree_search(repo: Path, cli) -> None:
    """The gated commit holds no note at all: the same-tree search finds the replayed copy on the
    sibling (the original's note removed), which must not decide either."""
    head, sibling = _revoked_and_replayed(repo)
    git(repo, "notes", f"--ref={NOTES_REF}", "remove", head)
    third = _sibling(repo, sibling)
    git(repo, "update-ref", "refs/heads/pr", third)

    result = cli("gate", "pr", "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output
