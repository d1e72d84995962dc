"""Attacks on the notes history the gate reads revocations from (``notes.note_history``).

The attacker can push to ``refs/notes/agentflow`` but, with the ref protected against force
pushes, only fast-forwards: every notes commit it pushes descends from the remote's. It wants a
rejection that revoked an approval to stop counting.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentflow.notes import NOTES_REF
from tests.gate_helpers import add_verdict, note_for, plan_branch
from tests.helpers import git

KEY = "team-secret-signing-key-0123-0123456789abcdef0123456789"
SIGNED = {"AGENTFLOW_SIGNING_KEY": KEY}
BRANCH = "agentflow/348-capsule-isolation"


def _commit_tree(root: Path, tree: str, *parents: str, message: str = "Notes added by 'git notes add'") -> str:
    args = ["commit-tree", tree, "-m", message]
    for parent in parents:
        args += ["-p", parent]
    return git(root, *args)


def _git_in(root: Path, stdin: str, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, input=stdin, capture_output=True, text=True, check=True
    ).stdout.strip()


def _append_to_note(root: Path, commit: str, line: str) -> None:
    """Append ``line`` to ``commit``'s verdict note with plain git, as anyone who can push notes can."""
    lines = git(root, "notes", f"--ref={NOTES_REF}", "show", commit).splitlines()
    _git_in(root, "\n".join([*lines, line]) + "\n", "notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", commit)


def _note_tree_with(root: Path, commit: str, lines: list[str]) -> str:
    """A notes tree holding only ``commit``'s note with ``lines``."""
    blob = _git_in(root, "\n".join(lines) + "\n", "hash-object", "-w", "--stdin")
    return _git_in(root, f"100644 blob {blob}\t{commit}\n", "mktree")


def test_a_fast_forward_merge_that_drops_a_rejection_does_not_bring_the_approval_back(repo: Path, cli) -> None:
    """approval (A) -> rejection appended (R). The attacker adds A' (a child of A with A's tree) and
    the merge M = (A', R) whose tree is A's: M descends from R (a fast-forward), its note holds only
    the approval, and with git log's default history simplification a path-limited walk follows
    only M's TREESAME first parent: R, and the rejection in it, were never read."""
    commit = plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY)
    a = git(repo, "rev-parse", NOTES_REF)
    assert cli("gate", BRANCH, "--base", "main", env=SIGNED).exit_code == 0
    add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2099-01-01T00:00:00+00:00")
    r = git(repo, "rev-parse", NOTES_REF)
    assert cli("gate", BRANCH, "--base", "main", env=SIGNED).exit_code == 1

    tree_a = git(repo, "rev-parse", f"{a}^{{tree}}")
    assert tree_a == _note_tree_with(repo, commit, [approval.to_line()])
    a2 = _commit_tree(repo, tree_a, a)
    merged = _commit_tree(repo, tree_a, a2, r, message="Merge notes")
    git(repo, "update-ref", NOTES_REF, merged, r)  # a fast-forward of R: allowed past force-push protection
    assert git(repo, "merge-base", "--is-ancestor", r, merged, check=False) == ""

    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output
    assert "revoked" in result.output


def test_the_rejection_on_the_second_parent_of_a_notes_merge_still_counts(repo: Path, cli) -> None:
    """The same with the parents the other way round: M = (R', A) where R' drops the rejection."""
    commit = plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY)
    add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2099-01-01T00:00:00+00:00")
    r = git(repo, "rev-parse", NOTES_REF)
    only_approval = _note_tree_with(repo, commit, [approval.to_line()])
    dropped = _commit_tree(repo, only_approval, r)
    side = _commit_tree(repo, only_approval)  # an unrelated root holding the approval alone
    merged = _commit_tree(repo, only_approval, side, dropped, message="Merge notes")
    git(repo, "update-ref", NOTES_REF, merged, r)

    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output
    assert "revoked" in result.output


def test_a_note_moved_to_another_fanout_path_keeps_its_rejection(repo: Path, cli) -> None:
    """The rejection is recorded under the flat path; the attacker's next notes commit moves the note to
    the 2/38 fanout path holding only the approval (git reads both spellings as the same note)."""
    commit = plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY)
    add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2099-01-01T00:00:00+00:00")
    r = git(repo, "rev-parse", NOTES_REF)
    blob = _git_in(repo, approval.to_line() + "\n", "hash-object", "-w", "--stdin")
    inner = _git_in(repo, f"100644 blob {blob}\t{commit[2:]}\n", "mktree")
    outer = _git_in(repo, f"040000 tree {inner}\t{commit[:2]}\n", "mktree")
    git(repo, "update-ref", NOTES_REF, _commit_tree(repo, outer, r), r)
    assert git(repo, "notes", f"--ref={NOTES_REF}", "show", commit) == approval.to_line()

    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output


def test_note_for_is_bound_like_the_orchestrators(repo: Path) -> None:
    """The helper the attacks above sign with writes what a real approval holds (a sanity check)."""
    plan_branch(repo)
    note = note_for(repo, BRANCH, key=KEY)
    assert note.base_tree and note.parent_tree and note.sig


def test_a_nul_byte_planted_in_the_note_does_not_hide_a_later_rejection(repo: Path, cli) -> None:
    """The attacker appends a line with a NUL byte to the approved commit's note. The orchestrator's
    next line (a rejection) is appended to that note, whose blob git now diffs as binary: a history
    read from `git log -p` without --text shows `Binary files differ` and never the rejection."""
    commit = plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY)
    _git_in(
        repo,
        "\n".join([approval.to_line(), "junk\x00"]) + "\n",
        "notes",
        f"--ref={NOTES_REF}",
        "add",
        "-f",
        "-F",
        "-",
        commit,
    )
    assert cli("gate", BRANCH, "--base", "main", env=SIGNED).exit_code == 0
    add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2099-01-01T00:00:00+00:00")  # what a re-verify appends
    assert "rejected" in git(repo, "notes", f"--ref={NOTES_REF}", "show", commit)

    revoked = cli("gate", BRANCH, "--base", "main", env=SIGNED)
    assert revoked.exit_code == 1, revoked.output
    # ... and the attacker's later note holding the approval alone does not bring it back either
    r = git(repo, "rev-parse", NOTES_REF)
    git(repo, "update-ref", NOTES_REF, _commit_tree(repo, _note_tree_with(repo, commit, [approval.to_line()]), r), r)
    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)
    assert result.exit_code == 1, result.output
    assert "revoked" in result.output


def test_gitattributes_in_the_checkout_do_not_make_notes_binary(repo: Path, cli) -> None:
    """A pull request's `.gitattributes` (the CI checkout is its head) marking the note paths `-diff`
    for the fanout spelling the rejection was written under only."""
    commit = plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY)
    a = git(repo, "rev-parse", NOTES_REF)
    rejection = note_for(repo, BRANCH, "rejected", key=KEY, ts="2099-01-01T00:00:00+00:00")
    blob = _git_in(repo, approval.to_line() + "\n" + rejection.to_line() + "\n", "hash-object", "-w", "--stdin")
    inner = _git_in(repo, f"100644 blob {blob}\t{commit[2:]}\n", "mktree")
    fanned = _git_in(repo, f"040000 tree {inner}\t{commit[:2]}\n", "mktree")  # what git notes does past 256 notes
    r = _commit_tree(repo, fanned, a)
    git(repo, "update-ref", NOTES_REF, r, a)
    assert cli("gate", BRANCH, "--base", "main", env=SIGNED).exit_code == 1
    (repo / ".gitattributes").write_text(f"{commit[:2]}/** -diff\n")

    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output


@pytest.mark.parametrize("separator", ["\r", "\u2028", "\x85", "\x1c"])
def test_a_planted_line_that_python_would_split_does_not_end_the_rejections_hunk(
    repo: Path, cli, separator: str
) -> None:
    """git splits a diff at "\\n" only; Python's splitlines also at \\r, U+2028, U+0085, \\x1c...
    A line `x<sep>diff --git a/0 b/0` in the note, read that way, is a diff header in the middle of
    the hunk that appends the rejection: every line after it would belong to no note."""
    commit = plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY)
    planted = f"x{separator}diff --git a/0 b/0"
    _git_in(repo, f"{approval.to_line()}\n{planted}\n", "notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", commit)
    add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2099-01-01T00:00:00+00:00")

    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output
    assert "revoked" in result.output


def test_a_rejection_whose_text_holds_a_line_separator_still_revokes(repo: Path, cli) -> None:
    """A verdict line is JSON written with ensure_ascii=False: a finding's file (a path from the
    change) holding U+2028 stays raw in the line. Read with splitlines it was two halves of JSON,
    neither a verdict, and the rejection did not count."""
    plan_branch(repo)
    add_verdict(repo, BRANCH, key=KEY)
    odd = {"id": "protected_path:x", "severity": "high", "file": "src/a\u2028b.py", "line": None, "pattern": "p"}
    rejection = add_verdict(repo, BRANCH, "changes_requested", key=KEY, ts="2099-01-01T00:00:00+00:00", findings=[odd])
    assert "\u2028" in rejection.to_line()

    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output
    assert "revoked" in result.output


def _deep_fanout_junk(root: Path, commit: str) -> None:
    """Notes on made-up object ids that fill git's notes trie along ``commit``'s path: the next
    ``git notes add`` for ``commit`` writes its note at ``xx/yy/zz/<34 hex>``, a fanout deeper than
    the flat, 2/38 and 2/2/36 spellings (288 entries suffice). A fast-forward push of the notes."""
    blob = _git_in(root, "junk\n", "hash-object", "-w", "--stdin")
    digits = "0123456789abcdef"
    ids = {
        (commit[:level] + x + digits[(level + n) % 16] * 40)[:40]
        for level in range(6)
        for x in digits
        for n in range(3)
    }
    ids.discard(commit)
    current = git(root, "rev-parse", NOTES_REF)
    listing = _git_in(root, "", "ls-tree", "-r", current)
    entries = "".join(f"100644 blob {blob}\t{i}\n" for i in sorted(ids))
    tree = _git_in(root, listing + "\n" + entries, "mktree")
    git(root, "update-ref", NOTES_REF, _commit_tree(root, tree, current), current)


def test_a_rejection_written_at_a_deep_fanout_still_revokes(repo: Path, cli) -> None:
    commit = plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY)
    _deep_fanout_junk(repo, commit)
    assert cli("gate", BRANCH, "--base", "main", env=SIGNED).exit_code == 0
    rejection = add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2099-01-01T00:00:00+00:00")
    paths = git(repo, "ls-tree", "-r", "--name-only", NOTES_REF).splitlines()
    assert f"{commit[:2]}/{commit[2:4]}/{commit[4:6]}/{commit[6:]}" in paths, "git did not fan out deeper"
    # the orchestrator's append kept the approval: it read the note wherever git keeps it
    assert git(repo, "notes", f"--ref={NOTES_REF}", "show", commit).splitlines() == [
        approval.to_line(),
        rejection.to_line(),
    ]

    # a further append reads the note at its deep path (it found nothing there, and dropped both lines)
    third = add_verdict(repo, BRANCH, "changes_requested", key=KEY, ts="2099-01-02T00:00:00+00:00")
    lines = git(repo, "notes", f"--ref={NOTES_REF}", "show", commit).splitlines()
    assert lines == [approval.to_line(), rejection.to_line(), third.to_line()]

    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output
    assert "revoked" in result.output


def test_an_unsigned_line_dated_far_ahead_does_not_close_a_signed_approval_for_ever(repo: Path, cli) -> None:
    """With a key, unsigned lines count for nothing; one dated 9999 decided as "the latest verdict"
    (UNSIGNED, closed), and no later signed verdict could ever come after it: anyone who could push
    notes closed any approved commit's gate for good."""
    commit = plan_branch(repo)
    approval = add_verdict(repo, BRANCH, key=KEY)
    for forged in (
        note_for(repo, BRANCH, "rejected", ts="9999-12-31T23:59:59+00:00"),  # unsigned
        note_for(repo, BRANCH, "rejected", key="another-key", ts="9999-12-31T23:59:58+00:00"),  # mis-signed
        note_for(repo, BRANCH, "approved", ts="9999-12-31T23:59:57+00:00", tree="0" * 40),  # "copied"
    ):
        _append_to_note(repo, commit, forged.to_line())

        result = cli("gate", BRANCH, "--base", "main", env=SIGNED)

        assert result.exit_code == 0, result.output
    # a signed rejection still revokes, and only signed verdicts are listed as the reason
    add_verdict(repo, BRANCH, "rejected", key=KEY, ts="2099-01-01T00:00:00+00:00")
    revoked = cli("gate", BRANCH, "--base", "main", env=SIGNED)
    assert revoked.exit_code == 1 and "revoked" in revoked.output, revoked.output
    assert approval.ts in revoked.output


def test_only_unsigned_verdicts_still_say_unsigned(repo: Path, cli) -> None:
    plan_branch(repo)
    add_verdict(repo, BRANCH)  # written before the team had a key
    result = cli("gate", BRANCH, "--base", "main", env=SIGNED)
    assert result.exit_code == 1 and "unsigned" in result.output


def test_an_unsigned_line_of_the_same_run_does_not_stop_the_signed_verdict_being_written(
    repo: Path, cli, monkeypatch
) -> None:
    """A note line is not written twice for one run, cycle and outcome (a resumed run). Unsigned lines
    decide nothing with a key, so an unsigned line that claimed the run's rejection was already there
    kept the signed rejection from being written at all: the earlier signed approval stood."""
    import agentflow.orchestration.verify_runs as verify_runs
    from tests.build_helpers import verifier_session, write_script

    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    (repo / "agentflow.yaml").write_text("sandbox: {mode: off}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "config")
    commit = plan_branch(repo)
    git(repo, "checkout", "-q", BRANCH)
    add_verdict(repo, BRANCH, key=KEY)
    monkeypatch.setattr(verify_runs, "new_id", lambda prefix: f"{prefix}-20991231-aaaaaa")
    forged = note_for(repo, BRANCH, "changes_requested", run="r-20991231-aaaaaa", cycle=1)  # unsigned
    _append_to_note(repo, commit, forged.to_line())
    script = write_script(repo, {"verifier": [verifier_session(decision="request_changes")]})

    assert cli("verify", "--base", "main", "--script", str(script)).exit_code == 1

    result = cli("gate", BRANCH, "--base", "main")
    assert result.exit_code == 1, result.output
    assert "revoked" in result.output
