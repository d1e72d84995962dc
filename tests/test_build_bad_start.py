"""A build that cannot start leaves nothing behind: a ledger whose first page is sound but whose
indexes are damaged opens, and passes ``require_writable`` (a write of page 1), and failed only at
the run's first append, after its worktree and branch were made (both were left behind)."""

from __future__ import annotations

from pathlib import Path

from tests.build_helpers import builder_session, verifier_session, write_plan, write_script
from tests.helpers import git, one_line_exit_2


def _damaged_beyond_page_one(repo: Path) -> bytes:
    """A ledger whose index of events by time is overwritten: it opens, reads its runs, passes
    ``require_writable``, and an append (which updates that index) finds it malformed."""
    from agentflow.events import RunStarted
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        for n in range(50):
            ledger.append(RunStarted(run_id=f"r-{n}", plan_id="9"))
        ledger._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = ledger._db.execute("PRAGMA page_size").fetchone()[0]
        pages = [n for (n,) in ledger._db.execute("SELECT pageno FROM dbstat WHERE name = 'events_ts'")]
    path = repo / ".agentflow" / "ledger.db"
    data = bytearray(path.read_bytes())
    for page in pages:
        data[(page - 1) * size : page * size] = bytes(range(256)) * (size // 256)
    path.write_bytes(bytes(data))
    return bytes(data)


def test_a_build_on_a_ledger_damaged_past_page_one_creates_no_worktree_and_no_branch(repo: Path, cli) -> None:
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    damaged = _damaged_beyond_page_one(repo)
    branches = git(repo, "branch", "--list")
    worktrees = git(repo, "worktree", "list", "--porcelain")
    result = cli("build", "1", "--script", str(script))
    one_line_exit_2(result, ".agentflow/ledger.db: ")
    assert git(repo, "branch", "--list") == branches
    assert git(repo, "worktree", "list", "--porcelain") == worktrees
    assert not (repo / ".agentflow" / "worktrees").exists() or not any((repo / ".agentflow" / "worktrees").iterdir())
    assert (repo / ".agentflow" / "ledger.db").read_bytes() == damaged  # left as it was, for inspection


def test_a_build_on_a_damaged_ledger_keeps_the_branch_it_reused(repo: Path, cli) -> None:
    # the branch was there before the run (a worktree removed by hand): only the worktree goes
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    git(repo, "branch", "agentflow/1-farewell")
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    _damaged_beyond_page_one(repo)
    one_line_exit_2(cli("build", "1", "--script", str(script)), ".agentflow/ledger.db: ")
    assert git(repo, "rev-parse", "agentflow/1-farewell") == head
    assert len(git(repo, "worktree", "list", "--porcelain").split("\n\n")) == 1
    assert not (repo / ".agentflow" / "worktrees" / "1-farewell").exists()


def test_a_missing_script_of_the_config_names_the_config_file_and_key(repo: Path, cli) -> None:
    write_plan(repo)
    (repo / "agentflow.yaml").write_text(
        "models:\n  builder:\n    backend: scripted\n    script: gone.json\n"
        "  verifier:\n    backend: scripted\n    script: gone.json\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "scripted config")
    branches = git(repo, "branch", "--list")
    result = cli("build", "1")
    one_line_exit_2(
        result, "agentflow.yaml: models.builder.script names gone.json, no such file", "set models.builder.script"
    )
    assert "--script FILE" in result.stderr and "pass an existing --script FILE" not in result.stderr
    assert git(repo, "branch", "--list") == branches
    # passed on the command line, the fix is the option's
    one_line_exit_2(
        cli("build", "1", "--script", "missing.json"),
        "missing.json: no such script file",
        "pass an existing --script FILE",
    )
