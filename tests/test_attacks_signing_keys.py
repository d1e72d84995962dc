"""Two signing keys for one repository (CI's and a developer's local one): what each key's verdicts do
where the other is configured. Held, kept as regression guards.

The gate checks each line's HMAC with the one key configured where it runs (``agentflow.keys``), and
a line that does not verify under it is anybody's who can push notes: an approval signed with the
local key never opens CI's gate (``bad_signature``), and a rejection signed with it never revokes
CI's approval either (it would let anyone close any gate for good with a made-up line). So a
developer's local rejection is no revocation in CI: one key per repository (docs/security.md).
"""

from __future__ import annotations

from pathlib import Path

from agentflow.gate import GateStatus, evaluate_gate
from agentflow.git import Repo
from tests.gate_helpers import add_verdict, plan_branch

CI_KEY = "ci-signing-key-of-this-repository-0123"
LOCAL_KEY = "a-developers-local-signing-key-4567"
BRANCH = "agentflow/348-capsule-isolation"


def _gate(repo: Path, key: str):
    return evaluate_gate(Repo(repo), BRANCH, base="main", key=key)


def test_an_approval_signed_with_the_local_key_does_not_open_the_ci_gate(repo: Path) -> None:
    plan_branch(repo)
    add_verdict(repo, BRANCH, key=LOCAL_KEY)

    assert _gate(repo, LOCAL_KEY).open
    result = _gate(repo, CI_KEY)
    assert result.status is GateStatus.BAD_SIGNATURE and not result.open


def test_a_rejection_signed_with_the_local_key_does_not_revoke_the_ci_approval(repo: Path) -> None:
    plan_branch(repo)
    add_verdict(repo, BRANCH, key=CI_KEY)
    add_verdict(repo, BRANCH, "rejected", key=LOCAL_KEY, ts="9999-12-31T00:00:00Z")

    assert _gate(repo, CI_KEY).open  # the local line decides nothing under CI's key
    assert not _gate(repo, LOCAL_KEY).open  # where the local key is configured, it is the latest verdict
