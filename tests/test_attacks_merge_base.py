"""Attacks on which merge base the gate binds an approval to: criss-cross histories.

``git merge-base A B`` prints one best common ancestor; ``git merge`` (and GitHub's merge, and
``git merge-tree``) merges from all of them. A change approved on M1 (main's tip then) while
another pull request's M2 (a security fix) was merged into main beside it: the attacker's commit Y
has the approved tree and the parents M1 and M2. Its merge bases with main are M1 and M2;
``git merge-base`` names M1, whose tree is the approved base, so the gate bound the approval and
opened, and merging Y into main removes M2's fix (Y's side of the merge deletes it).
"""

from __future__ import annotations

from pathlib import Path

from agentflow.gate import evaluate_gate
from agentflow.git import Repo
from tests.gate_helpers import add_verdict, commit_file
from tests.helpers import git

KEY = "team-secret-signing-key-0123-0123456789abcdef0123456789"
SIGNED = {"AGENTFLOW_SIGNING_KEY": KEY}


def _criss_cross(repo: Path) -> tuple[str, str, str]:
    """(the approved commit A, the attacker's Y, main's tip); M2 adds security.py."""
    git(repo, "checkout", "-q", "-b", "side")
    m2 = commit_file(repo, "security.py", "check_token()\n", "M2: security fix")
    git(repo, "checkout", "-q", "main")
    m1 = commit_file(repo, "one.py", "one = 1\n", "M1")
    git(repo, "checkout", "-q", "-b", "pr")
    approved = commit_file(repo, "feature.py", "feature = 1\n", "A", {"Agentflow-Plan": "348"})
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "side", "-m", "merge the security fix")
    add_verdict(repo, approved, key=KEY, base=m1)
    tree = git(repo, "rev-parse", f"{approved}^{{tree}}")
    attacker = git(repo, "commit-tree", tree, "-p", m1, "-p", m2, "-m", "builder: implement plan 348")
    git(repo, "branch", "attack", attacker)
    return approved, attacker, git(repo, "rev-parse", "main")


def test_the_attack_would_remove_the_fix(repo: Path) -> None:
    """The premise: one merge base printed, two used by the merge, and the merge drops security.py."""
    _, attacker, main = _criss_cross(repo)
    assert len(git(repo, "merge-base", "--all", attacker, main).split()) == 2
    merged = git(repo, "merge-tree", "--write-tree", main, attacker).splitlines()[0]
    assert "security.py" not in git(repo, "ls-tree", "--name-only", merged).split()


def test_an_approved_tree_on_a_criss_cross_merge_does_not_open_the_gate(repo: Path, cli) -> None:
    approved, _, _ = _criss_cross(repo)
    assert cli("gate", approved, "--base", "main", env=SIGNED).exit_code == 0  # the approval itself holds

    result = cli("gate", "attack", "--base", "main", env=SIGNED)

    assert result.exit_code == 1, result.output
    assert "merge bases" in result.output


def test_the_merge_queue_commit_of_it_does_not_pass(repo: Path) -> None:
    _, attacker, main = _criss_cross(repo)
    merged = git(repo, "merge-tree", "--write-tree", main, attacker).splitlines()[0]
    queue = git(repo, "commit-tree", merged, "-p", main, "-p", attacker, "-m", "Merge pull request #9")

    result = evaluate_gate(Repo(repo), queue, base=main, key=KEY)

    assert not result.open, result.reasons
