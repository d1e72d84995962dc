"""``agentflow merge``: gate first, merge --no-ff, record, clean up; a conflict changes nothing."""

from __future__ import annotations

from agentflow.events import Merged
from agentflow.git import Repo
from agentflow.ledger import Ledger
from tests.gate_helpers import add_verdict, commit_file, git, plan_branch, snapshot

BRANCH = "agentflow/348-capsule-isolation"


def merged_events(root) -> list[Merged]:
    with Ledger.open(root) as ledger:
        return [e for e in ledger.events(kinds=["merged"]) if isinstance(e, Merged)]


def test_merge_refuses_an_unapproved_branch_and_changes_nothing(repo, cli):
    plan_branch(repo)
    before = snapshot(repo)
    result = cli("merge", BRANCH)
    assert result.exit_code == 1
    assert "refusing to merge" in result.output and "no verdict" in result.output
    assert snapshot(repo) == before
    assert not merged_events(repo)


def test_merge_refuses_a_stale_branch_naming_the_approved_commit(repo, cli):
    approved = plan_branch(repo)
    add_verdict(repo, BRANCH)
    git(repo, "checkout", "-q", BRANCH)
    commit_file(repo, "src/app.py", "print('changed')\n")
    git(repo, "checkout", "-q", "main")
    result = cli("merge", BRANCH)
    assert result.exit_code == 1
    assert "stale" in result.output and approved[:12] in result.output


def test_merge_of_an_approved_branch_into_the_checked_out_main(repo, cli):
    head = plan_branch(repo)
    add_verdict(repo, BRANCH, run="r-20261127-abc123")
    result = cli("merge", BRANCH)
    assert result.exit_code == 0, result.output
    parents = git(repo, "rev-list", "--parents", "-n", "1", "main").split()
    assert len(parents) == 3 and parents[2] == head  # --no-ff: a real merge commit
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert "plan 348" in message and "r-20261127-abc123" in message and "Verdict: approved" in message
    assert (repo / "src/app.py").read_text() == "print('capsule')\n"  # working tree follows
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    [event] = merged_events(repo)
    assert (event.plan_id, event.branch, event.into, event.commit) == ("348", BRANCH, "main", parents[0])


def test_merge_by_plan_id_into_a_branch_that_is_not_checked_out(repo, cli):
    git(repo, "branch", "release")
    head = plan_branch(repo)
    add_verdict(repo, BRANCH)
    git(repo, "checkout", "-q", "-b", "elsewhere")
    before_main = git(repo, "rev-parse", "main")
    result = cli("merge", "348", "--into", "release")
    assert result.exit_code == 0, result.output
    assert git(repo, "rev-parse", "release^2") == head
    assert git(repo, "rev-parse", "main") == before_main
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/elsewhere"
    assert git(repo, "show", "release:src/app.py") == "print('capsule')"


def test_merge_conflict_leaves_everything_untouched(repo, cli):
    plan_branch(repo, path="README.md", content="# plan version\n")
    add_verdict(repo, BRANCH)
    commit_file(repo, "README.md", "# main version\n", "main edits the same line")
    (repo / "notes.txt").write_text("untracked work in progress\n")
    before = snapshot(repo)
    result = cli("merge", BRANCH)
    assert result.exit_code == 1
    assert "conflicts in README.md" in result.output and "rebase" in result.output
    assert snapshot(repo) == before
    assert not merged_events(repo)


def test_merge_conflict_into_a_branch_not_checked_out_leaves_it_untouched(repo, cli):
    plan_branch(repo, path="README.md", content="# plan version\n")
    add_verdict(repo, BRANCH)
    commit_file(repo, "README.md", "# main version\n", "main edits the same line")
    git(repo, "checkout", "-q", "-b", "elsewhere")
    before = snapshot(repo)
    assert cli("merge", BRANCH, "--into", "main").exit_code == 1
    assert snapshot(repo) == before


def test_merge_into_a_dirty_checked_out_branch_refuses(repo, cli):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    (repo / "README.md").write_text("# local edit\n")
    before = snapshot(repo)
    result = cli("merge", BRANCH)
    # the checkout is the user's input and it is not ready: exit 2 (usage), not 1 (not approved)
    assert result.exit_code == 2 and "uncommitted changes" in result.output
    assert "commit or stash them, then merge again" in result.output
    assert snapshot(repo) == before


def test_merge_removes_the_plans_worktree(repo, cli):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    worktree = repo / ".agentflow" / "worktrees" / "348-capsule-isolation"
    git(repo, "worktree", "add", "-q", str(worktree), BRANCH)
    result = cli("merge", BRANCH)
    assert result.exit_code == 0, result.output
    assert not worktree.exists()
    assert "removed worktree" in result.output
    assert all(path != worktree for path, _ in Repo(repo).worktrees())


def test_merge_unknown_target_is_a_usage_error(repo, cli):
    result = cli("merge", "no-such-plan")
    assert result.exit_code == 2


def test_merge_of_a_plan_that_was_never_built_names_the_branch(repo, cli):
    from tests.build_helpers import write_plan

    write_plan(repo)
    result = cli("merge", "1")
    assert result.exit_code == 2 and "agentflow/1-farewell" in result.output and "agentflow build 1" in result.output
