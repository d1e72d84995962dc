"""Attacks through agentflow's own state folder, ``.agentflow/``, carried by the change.

``.agentflow/`` is local state and git-ignored, but nothing stops a pull request from committing
it: a CI checkout (or a developer's checkout of the branch) then has the pull request's
``.agentflow`` before agentflow runs. Committed as a symbolic link, agentflow put its ledger, locks
and the verifier's checkout wherever the link pointed; a committed lock file linked to a host file
was truncated by ``build`` (the plan's lock is rewritten with the holder's pid).
"""

from __future__ import annotations

from pathlib import Path

from tests.build_helpers import builder_session, verifier_session, write_plan, write_script
from tests.helpers import git


def _commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A", "-f")
    git(repo, "commit", "-q", "-m", message)


def test_a_committed_state_folder_link_is_refused_by_verify(repo: Path, cli, tmp_path: Path) -> None:
    (repo / "agentflow.yaml").write_text("sandbox: {mode: off}\n")
    _commit(repo, "config")
    git(repo, "checkout", "-q", "-b", "pr")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / ".agentflow").symlink_to(elsewhere)
    (repo / "app.py").write_text("x = 1\n")
    _commit(repo, "change")
    script = write_script(repo, {"verifier": [verifier_session()]})

    result = cli("verify", "--base", "main", "--script", str(script))

    assert result.exit_code == 2, result.output
    assert ".agentflow" in result.output and "symbolic link" in result.output
    assert list(elsewhere.iterdir()) == []


def test_a_committed_lock_linked_to_a_host_file_is_not_truncated_by_build(repo: Path, cli, tmp_path: Path) -> None:
    (repo / "agentflow.yaml").write_text("sandbox: {mode: off}\n")
    write_plan(repo)
    victim = tmp_path / "bashrc"
    victim.write_text("export PATH=$HOME/bin:$PATH\n")
    locks = repo / ".agentflow" / "locks"
    locks.mkdir(parents=True)
    (locks / "agentflow--1-farewell.lock").symlink_to(victim)
    _commit(repo, "a branch that carries agentflow's state")
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})

    result = cli("build", "1", "--script", str(script))

    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.output
    assert victim.read_text() == "export PATH=$HOME/bin:$PATH\n"


def test_a_committed_ledger_link_is_refused(repo: Path, cli, tmp_path: Path) -> None:
    target = tmp_path / "an-empty-host-file"  # SQLite makes an empty file a database
    target.write_bytes(b"")
    (repo / ".agentflow").mkdir()
    (repo / ".agentflow" / "ledger.db").symlink_to(target)
    (repo / ".agentflow" / "ledger.db-wal").symlink_to(tmp_path / "wal")

    result = cli("log")

    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.output
    assert target.read_bytes() == b"" and not (tmp_path / "wal").exists()
