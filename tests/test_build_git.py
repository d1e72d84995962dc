"""The git reads and writes of a build step, fewer processes and the same answers (#19 item 5)."""

from __future__ import annotations

import pytest

from agentflow.errors import GitError
from agentflow.events import BuilderCommitted
from agentflow.git import DiffStat, Repo
from tests.build_helpers import (
    builder_session,
    finish,
    git,
    run_events,
    verifier_session,
    write_file,
    write_plan,
    write_script,
)


def test_one_diff_names_the_changed_files_and_counts_their_lines(repo):
    (repo / "bin.dat").write_bytes(b"\0\1\2")
    (repo / "old.txt").write_text("one\ntwo\nthree\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "files")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "src").mkdir()
    git(repo, "mv", "old.txt", "src/moved.txt")  # a rename: named by its new path
    (repo / "src" / "café.py").write_text("x = 1\ny = 2\n")  # git quotes it in --name-only
    (repo / "bin.dat").write_bytes(b"\0\1\2\3")  # binary: no line counts
    (repo / "README.md").write_text("# changed\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change")
    files, stat = Repo(repo, gitpython=False).diff_summary(base, "HEAD")
    assert sorted(files) == ["README.md", "bin.dat", "src/café.py", "src/moved.txt"]
    assert stat == DiffStat(files=4, insertions=3, deletions=1)
    assert Repo(repo, gitpython=False).diff_summary(base, base) == ([], DiffStat())


def test_a_file_with_an_unusual_name_in_the_scope_is_in_the_scope(repo, cli):
    """``--name-only`` quoted the name (``"src/caf\\303\\251.py"``), which no scope glob matched."""
    write_plan(repo, scope=["src/**"])
    script = write_script(
        repo,
        {"builder": [[write_file("src/café.py", "x = 1\n"), finish()]], "verifier": [verifier_session()]},
    )
    result = cli("build", "1", "--script", str(script))
    assert result.exit_code == 0, result.output
    [committed] = run_events(repo, BuilderCommitted)
    assert committed.out_of_scope == []
    assert committed.files_changed == 1


def test_a_builder_that_changed_nothing_commits_nothing(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [[finish("nothing to do")]], "verifier": []})
    result = cli("build", "1", "--script", str(script))
    [committed] = run_events(repo, BuilderCommitted)
    assert committed.commit is None
    assert "the builder changed nothing" in result.output


def test_a_commit_git_refuses_is_an_error_not_nothing_changed(repo, monkeypatch):
    """Nothing staged is asked only when ``git commit`` refuses; a refusal with changes staged
    (here: no identity) is an error, never "the builder changed nothing"."""
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    git(repo, "config", "user.useConfigOnly", "true")
    git(repo, "config", "--unset", "user.email")
    (repo / "new.txt").write_text("x\n")
    with pytest.raises(GitError, match="git commit"):
        Repo(repo, gitpython=False).commit_all("msg", {"Agentflow-Plan": "1"})
    git(repo, "config", "user.email", "dev@example.com")
    commit = Repo(repo, gitpython=False).commit_all("msg", {"Agentflow-Plan": "1"})
    assert commit == git(repo, "rev-parse", "HEAD")
    assert git(repo, "show", "--name-only", "--format=", commit) == "new.txt"


def test_builder_commit_keeps_its_trailers(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    [committed] = run_events(repo, BuilderCommitted)
    assert committed.commit == git(repo, "rev-parse", "agentflow/1-farewell")
    assert committed.files_changed == 1 and committed.insertions == 2


def test_verify_finds_a_file_with_an_unusual_name_in_the_scope(repo, cli):
    """``agentflow verify`` reads base..head's files the same way (it quoted them too)."""
    import json

    write_plan(repo, scope=["src/**"])
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "src").mkdir()
    (repo / "src" / "café.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add café", "--trailer", "Agentflow-Plan: 1")
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--script", str(script), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert not [f for f in data["findings"] if f.get("pattern") == "scope"], data["findings"]
    assert data["outcome"] == "approved"


def test_a_commits_trailers_are_its_own_last_paragraph_even_after_a_trailer_like_title(repo):
    """With ``git commit --trailer`` a title whose last paragraph looked like trailers took agentflow's
    trailers into it; written by agentflow they are a paragraph of their own, read back as written."""
    (repo / "new.txt").write_text("x\n")
    r = Repo(repo, gitpython=False)
    commit = r.commit_all("agentflow: T\n\nAgentflow-Plan: 9", {"Agentflow-Plan": "1", "Agentflow-Run": "r-1"})
    assert commit is not None
    message = git(repo, "log", "-1", "--format=%B", commit)
    assert message.endswith("Agentflow-Plan: 9\n\nAgentflow-Plan: 1\nAgentflow-Run: r-1"), message
    assert r.trailers(commit) == {"Agentflow-Plan": "1", "Agentflow-Run": "r-1"}
    assert git(repo, "log", "-1", "--format=%(trailers:key=Agentflow-Plan,valueonly)", commit) == "1"


def test_a_build_runs_git_maintenance_once_and_its_commits_none(repo, cli, monkeypatch, tmp_path):
    """``git commit`` started ``interpret-trailers`` and ``maintenance run --auto`` as children of
    every commit; a build's commits start neither, and the build runs the maintenance once at its end."""
    from tests.test_build_processes import git_commands

    write_plan(repo)
    write_plan(repo, plan_id="2", title="Add greet", slug="greet", scope=["src/greet.py"])
    sessions = {
        "builder": [builder_session(), builder_session(path="src/greet.py", content="x = 1\n")],
        "verifier": [verifier_session(), verifier_session()],
    }
    script = write_script(repo, sessions)
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    assert cli("build", "1", "2", "--script", str(script)).exit_code == 0
    monkeypatch.delenv("GIT_TRACE")
    commands = git_commands(trace)
    assert len([c for c in commands if c.startswith("commit ")]) == 2, commands
    assert not [c for c in commands if c.startswith("interpret-trailers")], commands
    assert [c for c in commands if c.startswith("maintenance")] == ["maintenance run --auto --quiet"], commands
    assert commands[-1] == "maintenance run --auto --quiet"
