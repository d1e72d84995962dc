"""Attacks that replay a validly signed verdict line onto another commit.

A signature proves the orchestrator wrote a line, not where the line sits: anyone who can push
``refs/notes/agentflow`` can copy a signed line from one commit's note into another's. A commit
with the same tree and the same parent as an approved one (the same change, a new message or date)
is a commit the pull request's author can make at will. When the approval was later revoked on
the commit it was written for, the copy on a fresh sibling commit opened the gate: the gate read
the sibling's own (replayed) line and never the history of the commit the verdict was given on.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from agentflow.notes import NOTES_REF
from tests.build_helpers import notes, verifier_session, write_plan, write_script
from tests.gate_helpers import note_for
from tests.helpers import git

KEY = "team-secret-signing-key-0123-0123456789abcdef0123456789"
SIGNED = {"AGENTFLOW_SIGNING_KEY": KEY}


def _pull_request(repo: Path) -> str:
    write_plan(repo)
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "farewell.py").write_text("def farewell():\n    return 'bye'\n")
    git(repo, "add", "farewell.py")
    git(repo, "commit", "-q", "-m", "farewell", "--trailer", "Agentflow-Plan: 1")
    return git(repo, "rev-parse", "HEAD")


def _verify(repo: Path, cli, decision: str) -> None:
    script = write_script(repo, {"verifier": [verifier_session(decision=decision)]}, name=f"{decision}.yaml")
    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json", env=SIGNED)
    assert json.loads(result.stdout)["outcome"] == ("approved" if decision == "approve" else "rejected"), result.output


def _sibling(repo: Path, commit: str, message: str = "farewell (reworded)") -> str:
    """A new commit with ``commit``'s tree and parent: what the author of a pull request can push."""
    tree, parent = git(repo, "rev-parse", f"{commit}^{{tree}}"), git(repo, "rev-parse", f"{commit}^")
    return git(repo, "commit-tree", tree, "-p", parent, "-m", message)


def _replay(repo: Path, onto: str, line: str) -> None:
    existing = git(repo, "notes", f"--ref={NOTES_REF}", "show", onto, check=False)
    text = "\n".join([*existing.splitlines(), line]) if existing and "no note" not in existing else line
    git(repo, "notes", f"--ref={NOTES_REF}", "add", "-f", "-m", text, onto)


def _approval_line(repo: Path, commit: str) -> str:
    raw = git(repo, "notes", f"--ref={NOTES_REF}", "show", commit)
    return next(line for line in raw.splitlines() if json.loads(line)["outcome"] == "approved")


def test_a_revoked_approval_replayed_onto_a_sibling_commit_does_not_open_the_gate(repo: Path, cli) -> None:
    head = _pull_request(repo)
    _verify(repo, cli, "approve")
    assert cli("gate", head, "--base", "main", env=SIGNED).exit_code == 0
    _verify(repo, cli, "reject")  # a later verification of the same commit revokes the approval
    assert cli("gate", head, "--base", "main", env=SIGNED).exit_code == 1

    sibling = _sibling(repo, head)
    _replay(repo, sibling, _approval_line(repo, head))
    git(repo, "update-ref", "refs/heads/pr", sibling)

    result = cli("gate", "pr", "--base", "main", env=SIGNED)
    assert result.exit_code == 1, result.output
    assert "gate open" not in result.output


def test_a_replayed_approval_with_its_original_note_removed_does_not_open_the_gate(repo: Path, cli) -> None:
    """The attacker also removes the revoked commit's note (a later notes commit: the history keeps
    it, but the same-tree search reads current notes): the replay alone must decide nothing."""
    head = _pull_request(repo)
    _verify(repo, cli, "approve")
    _verify(repo, cli, "reject")
    line = _approval_line(repo, head)
    sibling = _sibling(repo, head)
    _replay(repo, sibling, line)
    git(repo, "notes", f"--ref={NOTES_REF}", "remove", head)
    git(repo, "update-ref", "refs/heads/pr", sibling)

    result = cli("gate", "pr", "--base", "main", env=SIGNED)
    assert result.exit_code == 1, result.output


def test_a_message_only_amend_keeps_its_approval_and_a_copied_note_too(repo: Path, cli) -> None:
    """What must keep working: the approved commit reworded (the same tree and parent) is approved
    through the original's note, also when git copied that note onto it (``notes.rewriteRef``)."""
    head = _pull_request(repo)
    _verify(repo, cli, "approve")
    sibling = _sibling(repo, head)
    assert cli("gate", sibling, "--base", "main", env=SIGNED).exit_code == 0
    _replay(repo, sibling, _approval_line(repo, head))
    result = cli("gate", sibling, "--base", "main", env=SIGNED)
    assert result.exit_code == 0, result.output
    [note] = [n for n in notes(repo, head) if n["outcome"] == "approved"]
    assert note["commit"] == head


def test_an_override_names_its_commit_and_a_replay_of_it_does_not_outlive_a_revocation(repo: Path, cli) -> None:
    head = _pull_request(repo)
    result = cli("approve", head, "--override", "--reason", "reviewed by hand", env=SIGNED)
    assert result.exit_code == 0, result.output
    [override] = [n for n in notes(repo, head) if n.get("override")]
    assert override["commit"] == head
    _verify(repo, cli, "reject")
    assert cli("gate", head, "--base", "main", env=SIGNED).exit_code == 1
    sibling = _sibling(repo, head)
    _replay(repo, sibling, json.dumps(override, sort_keys=True, separators=(",", ":")))
    assert cli("gate", sibling, "--base", "main", env=SIGNED).exit_code == 1


# -- the base's test counts -------------------------------------------------------------------------

CHECK = "cp counts.xml {report}"


def _counts(root: Path, tests: int) -> None:
    (root / "counts.xml").write_text(f'<testsuite tests="{tests}" failures="0" errors="0" skipped="0"/>\n')


def _checks(tests: int) -> list[dict]:
    return [{"command": CHECK, "junit": True, "tests": tests, "failures": 0, "errors": 0, "skipped": 0}]


def test_a_signed_note_of_another_commit_replayed_onto_the_base_does_not_lower_its_test_counts(
    repo: Path, cli, monkeypatch
) -> None:
    """``verify`` compares a change's JUnit counts with the newest signed note on the base. A signed
    line of any other commit (another pull request's verification, where the check ran one test)
    copied onto main's note was newer, and its counts were taken for main's: a change that stops
    most tests from being collected showed no ``test_evidence_regressed`` finding."""
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    _counts(repo, 5)
    (repo / "agentflow.yaml").write_text(yaml.safe_dump({"checks": [{"run": CHECK, "junit": True}]}))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "project")
    base = git(repo, "rev-parse", "HEAD")
    genuine = note_for(repo, base, key=KEY, checks=_checks(5), ts="2026-01-01T00:00:00+00:00", commit=base)
    _replay(repo, base, genuine.to_line())
    git(repo, "checkout", "-q", "-b", "other")
    _counts(repo, 1)
    git(repo, "commit", "-qam", "another pull request")
    other = git(repo, "rev-parse", "HEAD")
    elsewhere = note_for(repo, other, key=KEY, checks=_checks(1), ts="2026-01-02T00:00:00+00:00", commit=other)
    _replay(repo, base, elsewhere.to_line())  # signed, newer, about another commit and tree
    git(repo, "checkout", "-q", "-b", "feature", "main")
    _counts(repo, 1)
    (repo / "app.py").write_text("X = 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    script = write_script(repo, {"verifier": [verifier_session(criteria={})]})

    result = cli("verify", "--base", "main", "--format", "json", "--script", str(script))

    data = json.loads(result.stdout)
    hits = [f for f in data["findings"] if f.get("rule") == "test_evidence_regressed"]
    assert hits and "1 test(s) against 5 on the base" in hits[0]["message"], data["findings"]
    assert result.exit_code == 1
