"""``agentflow gate`` asks git each thing once (#19 item 3): the git processes it starts, counted with
``GIT_TRACE``, and the base's config read from what the gate itself resolved (``origin/<base>`` too)."""

from __future__ import annotations

from pathlib import Path

from tests.gate_helpers import add_verdict, commit_file, git, plan_branch

BRANCH = "agentflow/348-capsule-isolation"


def git_commands(trace: Path) -> list[str]:
    """The git commands a traced run started, without the ``-c`` options agentflow adds."""
    commands = []
    for line in trace.read_text().splitlines():
        if "trace: built-in: git " in line:
            words = line.split("trace: built-in: git ", 1)[1].split()
            commands.append(" ".join(words))
    return commands


def traced_gate(cli, monkeypatch, tmp_path: Path, *args: str):
    trace = tmp_path / "git-trace.txt"
    trace.unlink(missing_ok=True)
    monkeypatch.setenv("GIT_TRACE", str(trace))
    result = cli("gate", *args)
    monkeypatch.delenv("GIT_TRACE")
    return result, git_commands(trace)


def test_an_open_gate_starts_each_git_command_once(repo, cli, monkeypatch, tmp_path):
    (repo / "agentflow.yaml").write_text("base: main\n")
    git(repo, "add", "agentflow.yaml")
    git(repo, "commit", "-q", "-m", "config")
    plan_branch(repo)
    # a line as agentflow writes it, naming its commit (one from before the field costs one more
    # `git log`, over the whole notes history: tests/test_attacks_legacy_replay.py)
    add_verdict(repo, BRANCH, commit=git(repo, "rev-parse", BRANCH))
    result, commands = traced_gate(cli, monkeypatch, tmp_path, BRANCH)
    assert result.exit_code == 0 and result.output.startswith("gate open:"), result.output
    # the repository, REF, both base names at once, the merge base, the base's config and the trees
    # below REF at once, REF's note history: before, 11 (rev-parse and merge-base twice, a blob each)
    assert len(commands) == 6, commands
    assert commands.count("cat-file --batch") == 2, commands  # the base names; the config and trees
    others = [c for c in commands if c != "cat-file --batch"]
    assert len(set(others)) == len(others), commands
    assert sum(c.startswith("merge-base") for c in commands) == 1
    assert sum(c.startswith("rev-parse") for c in commands) == 1  # Repo.find only
    assert not any(c.startswith("cat-file blob") for c in commands)


def test_a_closed_gate_does_not_resolve_twice_either(repo, cli, monkeypatch, tmp_path):
    plan_branch(repo)
    result, commands = traced_gate(cli, monkeypatch, tmp_path, BRANCH, "--base", "main")
    assert result.exit_code == 1 and "no verdict" in result.output
    assert sum(c.startswith("merge-base") and "--is-ancestor" not in c for c in commands) == 1, commands
    assert sum(c.startswith("rev-parse") for c in commands) == 1, commands
    assert sum(c.startswith("show -s --no-show-signature") for c in commands) == 1, commands  # REF, once


def test_without_a_local_base_the_config_is_origins_not_the_changes(repo, cli):
    """A CI checkout has origin/main and no main: the config the change is judged by is still the
    base's, so a change that drops ``gate.require_signature`` from agentflow.yaml does not escape it."""
    (repo / "agentflow.yaml").write_text("gate:\n  require_signature: true\n")
    git(repo, "add", "agentflow.yaml")
    git(repo, "commit", "-q", "-m", "config")
    git(repo, "checkout", "-q", "-b", BRANCH)
    commit_file(repo, "agentflow.yaml", "base: main\n", "builder: relax the gate")
    add_verdict(repo, BRANCH)
    git(repo, "update-ref", "refs/remotes/origin/main", "main")
    git(repo, "branch", "-q", "-D", "main")
    result = cli("gate", BRANCH)
    assert result.exit_code == 1, result.output
    assert "gate.require_signature is true" in result.output


def test_a_base_the_trusted_config_names_is_resolved_again(repo, cli):
    """The checkout says base main, the base revision's config says release (and release's own
    config agrees): the gate binds to release. While release's config still names main, the two
    bases disagree and the gate stops, naming --base (it cannot tell which one the change is for)."""
    git(repo, "branch", "release")
    (repo / "agentflow.yaml").write_text("base: release\n")
    git(repo, "add", "agentflow.yaml")
    git(repo, "commit", "-q", "-m", "config on main only")
    plan_branch(repo)
    add_verdict(repo, BRANCH)  # bound to main's tip (its merge base with main)
    git(repo, "checkout", "-q", BRANCH)
    (repo / "agentflow.yaml").write_text("base: main\n")
    result = cli("gate", BRANCH)
    assert result.exit_code == 2, result.output
    assert "names base 'release', whose own config names 'main'" in result.output
    assert "pass --base" in result.output
    # release's own config names release: judged by it, the approval was given on another base
    git(repo, "checkout", "-q", "--", "agentflow.yaml")
    git(repo, "checkout", "-q", "release")
    (repo / "agentflow.yaml").write_text("base: release\n")
    git(repo, "add", "agentflow.yaml")
    git(repo, "commit", "-q", "-m", "config on release")
    git(repo, "checkout", "-q", BRANCH)
    (repo / "agentflow.yaml").write_text("base: main\n")
    result = cli("gate", BRANCH)
    assert result.exit_code == 1 and "stale" in result.output, result.output
    assert cli("gate", BRANCH, "--base", "main").exit_code == 0
