"""Red team of the ledger's derived view tables (view_runs/view_plans/view_merged/view_meta): with
the sandbox off a builder can write .agentflow/ledger.db. Forged or stale view rows never reach a
decision (merge and the gate read the events and notes), and `status` rebuilds tables that do not
describe the events it has."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from agentflow.ledger import ledger_path
from tests.build_helpers import builder_session, verifier_session, write_plan, write_script
from tests.helpers import git


def _sql(root: Path, *statements: str) -> None:
    db = sqlite3.connect(ledger_path(root))
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def _status(cli) -> dict[str, dict]:
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    return {row["id"]: row for row in json.loads(result.stdout)}


def _rejected_plan(repo: Path, cli) -> dict[str, dict]:
    write_plan(repo)
    reject = {"builder": [builder_session()], "verifier": [verifier_session(decision="reject")]}
    assert cli("build", "1", "--script", str(write_script(repo, reject))).exit_code == 1
    rows = _status(cli)  # stores the tables
    assert rows["1"]["state"] == "rejected"
    return rows


def test_forged_view_rows_are_rebuilt_from_the_events_by_status(repo: Path, cli) -> None:
    """A builder (sandbox off) marks its rejected plan approved and merged in the view tables, with
    a view_meta that claims they are current: one forgery at a time, status rebuilds and says what
    the events say."""
    honest = _rejected_plan(repo, cli)
    run = honest["1"]["last_run"]
    forgeries = [
        # a merged row that no merged event backs, tables otherwise current
        ("INSERT INTO view_merged VALUES ('1')",),
        # the outcome rewritten and view_meta moved to another event's sequence number
        (f"UPDATE view_runs SET outcome = 'approved' WHERE run_id = '{run}'", "UPDATE view_meta SET seq = seq - 1"),
        # view_meta ahead of the events (as after events were removed)
        (f"UPDATE view_runs SET outcome = 'approved' WHERE run_id = '{run}'", "UPDATE view_meta SET seq = seq + 7"),
        # an anchor made up by someone who copied the sequence number only
        (f"UPDATE view_runs SET outcome = 'approved' WHERE run_id = '{run}'", "UPDATE view_meta SET anchor = 'x'"),
        # an older view_meta table without the anchor (another version's), claiming to be current
        (
            f"UPDATE view_runs SET outcome = 'approved' WHERE run_id = '{run}'",
            "DROP TABLE view_meta",
            "CREATE TABLE view_meta (name TEXT PRIMARY KEY, version INTEGER NOT NULL, seq INTEGER NOT NULL)",
            "INSERT INTO view_meta VALUES ('plan_states', 1, (SELECT MAX(seq) FROM events))",
        ),
    ]
    for statements in forgeries:
        _sql(repo, *statements)
        rows = _status(cli)
        assert rows["1"]["state"] == "rejected", statements
        assert rows == honest, statements


def test_the_event_at_the_views_sequence_number_rewritten_is_a_rebuild(repo: Path, cli) -> None:
    """The events rewritten behind the tables (same highest sequence number, another event there)
    no longer match view_meta's anchor: status projects again instead of showing the old tables."""
    _rejected_plan(repo, cli)
    _sql(
        repo,
        "UPDATE view_runs SET outcome = 'approved'",
        "UPDATE events SET eid = 'another-event' WHERE seq = (SELECT MAX(seq) FROM events)",
    )
    assert _status(cli)["1"]["state"] == "rejected"


def test_merge_and_the_gate_never_read_the_view_tables(repo: Path, cli) -> None:
    """Tables forged to be self-consistent (status cannot tell: they pass every check it makes)
    move no decision: merge refuses the rejected plan and the gate stays shut on its branch."""
    _rejected_plan(repo, cli)
    _sql(repo, "UPDATE view_runs SET outcome = 'approved'")
    branch = git(repo, "branch", "--list", "agentflow/1-*", "--format=%(refname:short)").strip()
    main = git(repo, "rev-parse", "main")

    merged = cli("merge", "1")
    gate = cli("gate", branch, "--base", "main")

    assert merged.exit_code == 1, merged.output
    assert gate.exit_code == 1, gate.output
    assert git(repo, "rev-parse", "main") == main
