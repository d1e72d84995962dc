"""The merge gate: approvals bound to content, revocation, signatures, stale and rebased changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agentflow.config import Config, Gate
from agentflow.gate import GateStatus, evaluate_gate, evaluate_merge_commit
from agentflow.git import Repo
from agentflow.verdict import VerdictNote
from tests.gate_helpers import add_verdict, commit_file, git, note_for, plan_branch

KEY = "team-secret-key-0123456789abcdef0123456789"
BRANCH = "agentflow/348-capsule-isolation"


def gate(root: Path, ref: str = BRANCH, **kwargs):
    return evaluate_gate(Repo(root), ref, **kwargs)


def test_approved_content_passes(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    result = gate(repo)
    assert result.open and result.status is GateStatus.APPROVED
    assert result.note is not None and result.note.plan == "348"
    assert result.exit_code == 0


def test_no_verdict_is_closed(repo):
    plan_branch(repo)
    result = gate(repo)
    assert not result.open and result.status is GateStatus.NO_VERDICT
    assert "agentflow verify" in result.reasons[0]


def test_one_changed_byte_after_approval_is_stale_and_names_the_approved_commit(repo):
    approved = plan_branch(repo)
    add_verdict(repo, BRANCH)
    git(repo, "checkout", "-q", BRANCH)
    commit_file(repo, "src/app.py", "print('capsulE')\n", "tweak")
    result = gate(repo, "HEAD")
    assert result.status is GateStatus.STALE and not result.open
    assert result.note_commit == approved
    text = "\n".join(result.reasons)
    assert approved[:12] in text
    assert re.search(r"1 files? changed, \+1 -1", text) and "src/app.py" in text


def test_amend_with_a_changed_byte_and_copied_note_is_stale(repo):
    """notes.rewriteRef copies the note onto the amended commit; the gate recomputes the tree."""
    approved = plan_branch(repo)
    add_verdict(repo, BRANCH)
    git(repo, "checkout", "-q", BRANCH)
    git(repo, "config", "notes.rewriteRef", "refs/notes/agentflow")
    (repo / "src/app.py").write_text("print('capsule!')\n")
    git(repo, "commit", "-q", "-a", "--amend", "--no-edit", "--no-verify")
    head = git(repo, "rev-parse", "HEAD")
    assert Repo(repo).notes(head), "the note was copied by the amend"
    result = gate(repo, "HEAD")
    assert result.status is GateStatus.STALE
    assert approved[:12] in "\n".join(result.reasons)


def test_message_only_amend_still_passes(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    git(repo, "checkout", "-q", BRANCH)
    git(repo, "commit", "-q", "--amend", "-m", "better message", "--no-verify")  # no note copied
    assert not Repo(repo).notes("HEAD")
    result = gate(repo, "HEAD")
    assert result.open
    assert "identical tree" in "\n".join(result.reasons)


def test_hand_written_note_fails_when_a_key_is_configured(repo, monkeypatch):
    plan_branch(repo)
    add_verdict(repo, BRANCH)  # unsigned, as a person with push access could write
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    result = gate(repo)
    assert result.status is GateStatus.UNSIGNED and not result.open
    monkeypatch.delenv("AGENTFLOW_SIGNING_KEY")
    assert gate(repo).open


def test_signed_note_passes_and_a_note_signed_with_another_key_fails(repo, monkeypatch):
    plan_branch(repo)
    add_verdict(repo, BRANCH, key="another-key")
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    assert gate(repo).status is GateStatus.BAD_SIGNATURE
    add_verdict(repo, BRANCH, key=KEY)
    result = gate(repo)
    assert result.open and result.signed


def test_tampered_signed_note_fails(repo, monkeypatch):
    plan_branch(repo)
    note = note_for(repo, BRANCH, "rejected", key=KEY)
    forged = json.loads(note.to_line()) | {"outcome": "approved"}
    Repo(repo).append_note(Repo(repo).rev(BRANCH), json.dumps(forged))
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    assert gate(repo).status is GateStatus.BAD_SIGNATURE


def test_require_signature_without_a_key_is_closed_and_names_the_fix(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH, key=KEY)
    result = gate(repo, config=Config(gate=Gate(require_signature=True)))
    assert not result.open and result.status is GateStatus.UNSIGNED
    assert "AGENTFLOW_SIGNING_KEY" in result.reasons[0]


def test_rejected_verdict_after_an_approval_revokes_it(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    add_verdict(repo, BRANCH, "rejected", findings=[{"id": "F1", "severity": "high", "message": "leaks capsule"}])
    result = gate(repo)
    assert result.status is GateStatus.REVOKED and not result.open
    assert any("F1" in line and "leaks capsule" in line for line in result.reasons)


def test_changes_requested_only_is_not_approved_and_says_why(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH, "changes_requested", reason="check failed: pytest -q; criterion AC2 unmet")
    result = gate(repo)
    assert result.status is GateStatus.NOT_APPROVED
    assert "why: check failed: pytest -q; criterion AC2 unmet" in result.reasons


def test_latest_verdict_wins_by_timestamp_not_line_order(repo):
    """``git notes merge -s cat_sort_uniq`` sorts lines, so order is by ``ts``."""
    plan_branch(repo)
    commit = Repo(repo).rev(BRANCH)
    later = note_for(repo, BRANCH, "rejected", ts="2026-11-27T12:00:00+00:00")
    earlier = note_for(repo, BRANCH, "approved", ts="2026-11-27T11:00:00+00:00")
    Repo(repo).append_note(commit, later.to_line())
    Repo(repo).append_note(commit, earlier.to_line())
    assert gate(repo).status is GateStatus.REVOKED


def test_approval_on_another_commit_does_not_cover_other_content(repo):
    plan_branch(repo)
    other = plan_branch(repo, "agentflow/349-other", "src/other.py", "x = 1\n")
    add_verdict(repo, other, plan="349")
    assert gate(repo).status is GateStatus.NO_VERDICT


def test_note_claiming_this_tree_on_an_unrelated_commit_is_not_trusted(repo):
    """A note attached to commit X but claiming the tree of Y opens nothing for Y."""
    head = plan_branch(repo)
    tree = Repo(repo).tree(head)
    Repo(repo).append_note(git(repo, "rev-parse", "main"), VerdictNote(outcome="approved", tree=tree).to_line())
    assert not gate(repo).open


def test_override_with_reason_passes_and_says_so(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH, override=True, reason="hotfix, reviewed by hand", by="Dev <dev@example.com>")
    result = gate(repo)
    assert result.open and result.override
    assert "override" in result.headline() and "hotfix" in "\n".join(result.reasons)


def test_override_without_reason_does_not_count(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH, override=True)
    assert not gate(repo).open


def test_clean_rebase_onto_a_moved_base_needs_reverification(repo):
    approved = plan_branch(repo)
    add_verdict(repo, BRANCH)
    commit_file(repo, "docs/other.md", "unrelated\n", "main moves on")
    git(repo, "checkout", "-q", BRANCH)
    git(repo, "rebase", "-q", "main")
    result = gate(repo, "HEAD")
    assert result.status is GateStatus.NEEDS_REVERIFICATION and not result.open
    assert "needs re-verification on the new base" in result.reasons[0]
    assert result.note_commit == approved


def test_rebase_that_changes_the_patch_is_stale_not_reverification(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    git(repo, "checkout", "-q", BRANCH)
    commit_file(repo, "src/app.py", "print('capsule')\nprint('more')\n", "more", {"Agentflow-Plan": "348"})
    result = gate(repo, "HEAD")
    assert result.status is GateStatus.STALE


def test_unknown_ref_is_a_usage_error(repo):
    from agentflow.errors import GitError

    with pytest.raises(GitError):
        gate(repo, "no-such-branch")


def test_merge_commit_of_an_approved_branch_passes_the_push_rule(repo):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    commit_file(repo, "docs/other.md", "unrelated\n", "main moves on")
    git(repo, "merge", "-q", "--no-ff", "--no-verify", "-m", "merge", BRANCH)
    result = evaluate_merge_commit(Repo(repo), "HEAD")
    assert result.open, result.reasons
    # an edit smuggled into the merge commit is not a clean merge
    (repo / "src/app.py").write_text("print('evil')\n")
    git(repo, "commit", "-q", "-a", "--amend", "--no-edit", "--no-verify")
    assert not evaluate_merge_commit(Repo(repo), "HEAD").open


def test_merge_commit_of_an_unapproved_branch_fails_the_push_rule(repo):
    plan_branch(repo)
    git(repo, "merge", "-q", "--no-ff", "--no-verify", "-m", "merge", BRANCH)
    assert not evaluate_merge_commit(Repo(repo), "HEAD").open


def test_base_falls_back_to_the_remote_tracking_branch(repo, tmp_path):
    """In CI only ``origin/main`` exists; a clean rebase is still recognised."""
    approved = plan_branch(repo)
    add_verdict(repo, BRANCH)
    commit_file(repo, "docs/other.md", "unrelated\n", "main moves on")
    git(repo, "checkout", "-q", BRANCH)
    git(repo, "rebase", "-q", "main")
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    git(repo, "checkout", "-q", "--detach")
    git(repo, "branch", "-D", "main")
    result = gate(repo, "HEAD")
    assert result.status is GateStatus.NEEDS_REVERIFICATION and result.note_commit == approved


def test_multi_line_model_text_stays_on_one_reason_line(repo):
    """A verifier's message with newlines never breaks the gate's line-per-reason output."""
    from agentflow.report.github import gate_annotation as render_github
    from agentflow.report.text import gate_text as render_text

    r = Repo(repo)
    note = VerdictNote(
        outcome="changes_requested",
        decision="request_changes",
        tree=r.tree("HEAD"),
        reason="verifier requested\nchanges",
        findings=[{"id": "F1", "severity": "high", "message": "two\nlines"}],
    )
    r.append_note(r.rev("HEAD"), note.to_line())
    result = evaluate_gate(r, "HEAD")
    text = render_text(result)
    assert "why: verifier requested changes" in text
    assert "high finding F1: two lines" in text
    assert "\n" not in render_github(result)
