"""GitPython as agentflow's repository layer (#17 "Also"): reads go through it, hardened as
``run_git`` is (no hooks, no fsmonitor, no secrets), its ``cat-file`` processes are per thread and
closed, and ``--version``, ``import agentflow.cli`` and the gate never import it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

from agentflow.git import SAFE_CONFIG, Repo
from tests.helpers import child_processes, command_in_fresh_process, git

SECRET = "tok-gitpython-5f3a9c71"


def _spy(tmp_path: Path) -> tuple[Path, Path]:
    """An executable that records that it ran (and its environment)."""
    marker = tmp_path / "ran"
    spy = tmp_path / "spy.sh"
    spy.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nenv >> {marker}\n')
    spy.chmod(spy.stat().st_mode | stat.S_IEXEC)
    return spy, marker


def _plant(repo: Path, spy: Path) -> None:
    """Hooks, an fsmonitor and an external diff driver in the repository's own config and hooks."""
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for name in ("post-commit", "pre-commit", "post-checkout", "reference-transaction", "post-index-change"):
        (hooks / name).write_text(spy.read_text())
        (hooks / name).chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(spy))
    git(repo, "config", "diff.external", str(spy))


def _agentflow_commit(repo: Path, plan: str, run: str, body: str = "") -> str:
    (repo / f"f{run}.txt").write_text(run)
    git(repo, "add", "-A")
    message = f"plan {plan}\n\n{body}Agentflow-Plan: {plan}\nAgentflow-Run: {run}\n"
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def _note(repo: Path, commit: str, line: dict) -> None:
    git(repo, "notes", "--ref=refs/notes/agentflow", "add", "-f", "-m", json.dumps(line), commit)


def _cat_files() -> list[int]:
    """This process's ``git cat-file`` children."""
    return [pid for pid, argv in child_processes().items() if b"cat-file" in argv]


def test_gitpython_reads_run_no_planted_hook_fsmonitor_or_diff_driver(repo, cli, tmp_path, monkeypatch):
    """Refs, commits, trees, trailers, notes and identity read through GitPython (directly and by
    `metrics --from-git`), and `repo.git` plumbing through its Git object (`status` reads the index:
    the fsmonitor's moment), with a hook, an fsmonitor and diff.external planted: none runs."""
    head = _agentflow_commit(repo, "1", "r-1")
    _note(repo, head, {"outcome": "approved"})
    spy, marker = _spy(tmp_path)
    _plant(repo, spy)
    (repo / "README.md").write_text("changed\n")  # a dirty index entry: status asks the fsmonitor
    monkeypatch.setenv("MY_API_TOKEN", SECRET)
    with Repo(repo) as r:
        assert r.rev("HEAD") == head and r.rev("main") == head
        assert r.tree("HEAD") == git(repo, "rev-parse", "HEAD^{tree}")
        assert r.has_commits() and r.branch_exists("main") and not r.branch_exists("nope")
        assert r.base_tree("HEAD") == git(repo, "rev-parse", "HEAD^{tree}")
        assert r.notes(head) == r.notes(head[:8]) == r.notes("HEAD") == ['{"outcome": "approved"}']
        assert r.notes(head, "refs/notes/other") == [] and r.notes("nope") == []
        [found] = r.log_trailers()
        assert (found.commit, found.trailers) == (head, {"Agentflow-Plan": "1", "Agentflow-Run": "r-1"})
        assert r.user_identity() == "Dev <dev@example.com>"
        assert "README.md" in r.lib().git.status("--porcelain")
        assert r.lib().git.diff("HEAD")  # textual diff, not the external driver's
    result = cli("metrics", "--from-git", "--format", "json")
    assert result.exit_code == 0, result.output
    assert not marker.exists(), marker.read_text()


def test_gitpythons_cat_file_process_is_hardened_and_closed(repo, monkeypatch):
    """The persistent `cat-file --batch` runs with SAFE_CONFIG and without the secret; close() ends it."""
    head = _agentflow_commit(repo, "1", "r-1")
    _note(repo, head, {"outcome": "approved"})
    monkeypatch.setenv("MY_API_TOKEN", SECRET)
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", "sekrit-signing-key-123-0123456789abcdef0123456789")
    before = set(_cat_files())
    r = Repo(repo)
    assert r.notes(head) == ['{"outcome": "approved"}']
    started = set(_cat_files()) - before
    assert started  # `cat-file --batch-check` for headers, `--batch` for contents
    for pid in started:
        argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
        assert argv[1 : 1 + len(SAFE_CONFIG)] == list(SAFE_CONFIG)
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert SECRET.encode() not in environ and b"sekrit-signing-key-123-0123456789abcdef0123456789" not in environ
        assert b"PATH=" in environ
    r.close()
    assert set(_cat_files()) - before == set()
    assert r.notes(head) == ['{"outcome": "approved"}']  # reopened on demand
    del r  # collected: its processes go with it
    assert set(_cat_files()) - before == set()


def test_threads_never_share_a_gitpython_repo_and_all_are_closed(repo):
    commits = [_agentflow_commit(repo, str(i), f"r-{i}") for i in range(6)]
    for i, commit in enumerate(commits):
        _note(repo, commit, {"run": f"r-{i}"})
    before = set(_cat_files())
    r = Repo(repo)
    handles, errors = set(), []
    start = threading.Barrier(4)

    def read() -> None:
        start.wait()
        handles.add(id(r.lib()))
        for _ in range(30):
            for i, commit in enumerate(commits):
                if r.notes(commit) != [json.dumps({"run": f"r-{i}"})] or r.rev(commit) != commit:
                    errors.append(commit)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(handles) == 4
    r.close()
    assert set(_cat_files()) - before == set()


def test_trailers_are_read_as_git_reads_them(repo):
    """`log_trailers` parses messages itself; on each of these it agrees with git's `%(trailers)`."""
    messages = [
        "plan 1\n\nAgentflow-Plan: 1\nAgentflow-Run: r-1\n",
        "plan 2\n\nbody text\n\nAgentflow-Plan: 2\nAgentflow-Cycle: 3\n",
        "plan 3\n\nAgentflow-Plan: 3\nAgentflow-Run: r-3\n  continued here\n",
        "plan 4\n\nAgentflow-Plan: 4\nnot a trailer line\n",  # mostly not trailers: none
        "plan 5\n\nAgentflow-Plan: 5\nSigned-off-by: A <a@b>\nfree text\nmore text\n",  # git-generated: 25%
        "Agentflow-Plan: 6\n",  # the title is never a trailer
        "plan 7\n\nAgentflow-Plan: 7\n\n",
        "plan 8\n\nAgentflow-Plan : 8\nAgentflow-Run:r-8\n---\nAgentflow-Cycle: 1\n",
        "plan 9\n\nAgentflow-Plan: 9\nAgentflow-Plan: 10\nKey with space: x\n",
        "plan 11\n\n  Agentflow-Plan: 11\n",
    ]
    for message in messages:
        tree = git(repo, "rev-parse", "HEAD^{tree}")
        commit = subprocess.run(
            ["git", "commit-tree", tree, "-p", "HEAD"], cwd=repo, input=message, capture_output=True, text=True
        ).stdout.strip()
        git(repo, "update-ref", "refs/heads/main", commit)
    fmt = "%H%x1f%(trailers:only,unfold)%x1e"
    expected = {}
    for record in git(repo, "log", "--grep=^Agentflow-", f"--format={fmt}").split("\x1e"):
        if "\x1f" in record:
            commit, text = record.strip("\n").split("\x1f")
            pairs = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
            if any(key.startswith("Agentflow-") for key in pairs):
                expected[commit] = {k.strip(): v.strip() for k, v in pairs.items()}
    got = {c.commit: c.trailers for c in Repo(repo).log_trailers()}
    assert got == expected and len(got) >= 5
    # the command-line reader (metrics without --from-git) reads the same commits, times and trailers
    assert Repo(repo, gitpython=False).log_trailers() == Repo(repo).log_trailers()
    assert Repo(repo, gitpython=False).log_trailers("HEAD~3..HEAD") == Repo(repo).log_trailers("HEAD~3..HEAD")
    assert Repo(repo, gitpython=False).log_trailers("nope") == Repo(repo).log_trailers("nope") == []


def test_trailer_commits_since_a_moment_keep_their_offsets_in_both_readers(repo):
    """``log_trailers(since=...)``: commits committed at or after the moment, with the committer's and
    the author's own offsets, alike through GitPython and through the git command line."""
    from datetime import datetime, timedelta, timezone

    india = timezone(timedelta(hours=5, minutes=30))
    days = [datetime(2026, 11, day, 9, 0, tzinfo=india) for day in (1, 10, 20)]
    made = []
    for n, when in enumerate(days):
        (repo / f"f{n}.txt").write_text(str(n))
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"plan {n}\n\nAgentflow-Plan: {n}\n", when=when)
        made.append(git(repo, "rev-parse", "HEAD"))
    for gitpython in (True, False):
        every = Repo(repo, gitpython=gitpython).log_trailers()
        assert [c.commit for c in every] == made[::-1]
        assert [c.committed for c in every] == days[::-1] and every[0].committed.utcoffset() == timedelta(hours=5.5)
        since = Repo(repo, gitpython=gitpython).log_trailers(since=days[1])  # that very second counts
        assert [c.commit for c in since] == made[:0:-1]
        assert Repo(repo, gitpython=gitpython).log_trailers(since=days[2] + timedelta(seconds=1)) == []


def test_identity_comes_from_the_config_files_git_reads(repo, tmp_path, monkeypatch):
    glob = tmp_path / "global.gitconfig"
    glob.write_text("[user]\n\tname = Global Person\n\temail = global@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(glob))
    git(repo, "config", "--unset", "user.name")
    assert Repo(repo).user_identity() == "Global Person <dev@example.com>"
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "From Env")
    assert Repo(repo).user_identity() == "From Env <dev@example.com>"
    assert git(repo, "config", "user.name") == "From Env"  # what git says too


def test_version_cli_import_and_gate_do_not_import_gitpython(repo):
    head = _agentflow_commit(repo, "1", "r-1")
    _note(repo, head, {"v": 1, "outcome": "approved"})
    code = (
        "import sys\n"
        "import agentflow.cli\n"
        "from typer.testing import CliRunner\n"
        "print('git' in sys.modules)\n"
        "CliRunner().invoke(agentflow.cli.app, ['--version'])\n"
        "print('git' in sys.modules)\n"
        "CliRunner().invoke(agentflow.cli.app, ['gate', 'HEAD'])\n"
        "print('git' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["False", "False", "False"], out.stderr


def test_command_line_reads_answer_as_gitpython_does(repo):
    """``Repo(gitpython=False)`` (what build and verify runs use) reads refs, trees and notes with
    the git command line: the same answers, flat and fanned-out notes alike, and no GitPython."""
    head = _agentflow_commit(repo, "1", "r-1")
    _note(repo, head, {"outcome": "approved"})
    other = _agentflow_commit(repo, "2", "r-2")
    with Repo(repo) as lib, Repo(repo, gitpython=False) as cli:
        for r in (lib, cli):
            assert r.rev("HEAD") == other and r.rev("HEAD~1") == head and r.rev("main") == other
            assert r.tree(head) == git(repo, "rev-parse", f"{head}^{{tree}}")
            assert r.base_tree(head) == git(repo, "rev-parse", f"{head}^{{tree}}")
            assert r.has_commits() and r.branch_exists("main") and not r.branch_exists("nope")
            assert r.notes(head) == r.notes("HEAD~1") == ['{"outcome": "approved"}']
            assert r.notes(other) == [] and r.notes("nope") == [] and r.notes(head, "refs/notes/other") == []
        assert cli._handles == {}  # never opened GitPython
    # a note where a fan-out puts it (a repository with many notes): found by its path, as GitPython finds it
    blob = git(repo, "rev-parse", f"refs/notes/agentflow:{head}")

    def mktree(entry: str) -> str:
        return subprocess.run(["git", "mktree"], cwd=repo, input=entry, capture_output=True, text=True).stdout.strip()

    fanned = mktree(f"100644 blob {blob}\t{head[2:]}\n")
    top = mktree(f"040000 tree {fanned}\t{head[:2]}\n")
    commit = git(repo, "commit-tree", top, "-m", "fanned out")
    git(repo, "update-ref", "refs/notes/fanned", commit)
    assert Repo(repo, gitpython=False).notes(head, "refs/notes/fanned") == ['{"outcome": "approved"}']
    assert Repo(repo).notes(head, "refs/notes/fanned") == ['{"outcome": "approved"}']


def test_a_build_never_imports_gitpython(repo):
    """Build runs read git through the command line: GitPython's import (0.3-0.8 s of CPU) stays off
    the way to the first model call (#19 item 5)."""
    from tests.build_helpers import builder_session, verifier_session, write_plan, write_script

    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert command_in_fresh_process(repo, ["build", "1", "--script", str(script)], ("git",)) == (0, [])
    assert git(repo, "notes", "--ref=refs/notes/agentflow", "list")  # the build ran and noted its verdict
