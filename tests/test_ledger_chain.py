"""The ledger's hash chain (#13 item 2): edits made outside agentflow never become an approval."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agentflow.errors import ExitCode
from agentflow.events import ChecksRan, RunStarted, SessionStarted, ToolCalled, VerdictRecorded
from agentflow.ledger import ChainBroken, Ledger, ledger_path
from agentflow.models.base import ModelRequest
from agentflow.models.scripted import FunctionModel
from agentflow.orchestration import BuildOptions, RunInterrupted, build
from tests.build_helpers import builder_session, git, notes, verdict, verifier_session, write_plan, write_script

KEY = "chain-test-signing-key-0123456789"


def _run_id(repo: Path) -> str:
    with Ledger.open(repo) as ledger:
        return next(e.run_id for e in ledger.events() if isinstance(e, RunStarted))


def _fake_rows(run_id: str, *, plain_hashes: bool = False) -> list[tuple[str, str, str, str, str | None]]:
    """A passing checks_ran and a verifier session that approved, as an attacker writes them."""
    events = [
        ChecksRan(run_id=run_id, cycle=1, results=[]),
        SessionStarted(run_id=run_id, session_id="s-fake", role="verifier", backend="scripted", model="x"),
        ToolCalled(run_id=run_id, session_id="s-fake", turn=1, tool="submit_verdict", input=verdict()),
    ]
    rows = []
    for event in events:
        body = event.model_dump_json()
        rows.append((event.ts.isoformat(), event.kind, run_id, body, hashlib.sha256(body.encode()).hexdigest()))
    return rows


def _insert(repo: Path, run_id: str, *, forge_chain: bool = False) -> None:
    """sqlite3 INSERTs into .agentflow/ledger.db; ``forge_chain``: recompute the unkeyed hashes too."""
    from agentflow.chain import digest

    db = sqlite3.connect(ledger_path(repo))
    prev = db.execute("SELECT hash FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()[0]
    for ts, kind, rid, body, eid in _fake_rows(run_id):
        if forge_chain:
            hsh = digest(None, prev, eid, kind, rid, ts, body)
            db.execute(
                "INSERT INTO events (ts, kind, run_id, body, eid, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (ts, kind, rid, body, eid, prev, hsh),
            )
            prev = hsh
        else:
            db.execute("INSERT INTO events (ts, kind, run_id, body) VALUES (?, ?, ?, ?)", (ts, kind, rid, body))
    db.commit()
    db.close()


def _interrupted_after_builder(repo: Path) -> str:
    """A build killed as its verifier starts (the failing check has not run yet)."""
    write_plan(repo, checks=["false"])

    def factory(role: str, cycle: int) -> FunctionModel:
        turns = builder_session()

        def reply(request: ModelRequest) -> dict[str, Any]:
            if role == "verifier":
                raise KeyboardInterrupt
            return turns[sum(1 for m in request.messages if m.role == "assistant")]

        return FunctionModel(reply, name=f"fn-{role}")

    with pytest.raises(RunInterrupted):
        build(repo, ["1"], BuildOptions(models=factory))
    return _run_id(repo)


def _approvals(repo: Path) -> list[dict[str, Any]]:
    branch = git(repo, "rev-parse", "agentflow/1-farewell")
    return [n for n in notes(repo, branch) if n["outcome"] == "approved"]


def test_an_honest_build_records_the_chain_head_in_its_note_and_verifies(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    run_id = _run_id(repo)
    with Ledger.open(repo) as ledger:
        assert ledger.chain_problem(run_id) is None
        hashes = [row[7] for row in ledger.chain_rows(run_id)]
    (note,) = _approvals(repo)
    assert note["chain"] in hashes and note["chain"].startswith("sha256:")
    assert cli("show", run_id).exit_code == 0
    assert cli("gate", "agentflow/1-farewell").exit_code == 0


@pytest.mark.parametrize("forge_chain", [False, True])
def test_fake_checks_and_verdict_inserted_with_sqlite3_are_refused_on_resume(repo, cli, forge_chain, monkeypatch):
    """Unkeyed, rows without hashes break the chain; with the signing key, so do rows whose SHA-256
    chain the attacker recomputed (they cannot compute the HMAC)."""
    if forge_chain:
        monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    run_id = _interrupted_after_builder(repo)
    _insert(repo, run_id, forge_chain=forge_chain)
    script = write_script(repo, {"builder": [], "verifier": [verifier_session()]})

    result = cli("build", "--resume", run_id, "--script", str(script))

    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"ledger chain of run {run_id} is broken at event" in result.stderr
    assert "(checks_ran)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with Ledger.open(repo) as ledger:
        assert not [e for e in ledger.events(kinds=["verdict_recorded"]) if e.outcome == "approved"]
    assert git(repo, "notes", "--ref=refs/notes/agentflow", "list") == ""


def test_fake_events_inserted_while_the_run_is_live_never_become_an_approval(repo):
    """A hostile builder writes a passing checks_ran and an approving verifier into the ledger, with a
    correctly recomputed unkeyed chain: the running process knows its own head, so the run stops."""
    write_plan(repo, checks=["false"])

    def factory(role: str, cycle: int) -> FunctionModel:
        turns = builder_session()

        def reply(request: ModelRequest) -> dict[str, Any]:
            turn = sum(1 for m in request.messages if m.role == "assistant")
            if role == "builder" and turn == 1:
                _insert(repo, _run_id(repo), forge_chain=True)
            return turns[turn] if role == "builder" else verifier_session()[turn]

        return FunctionModel(reply, name=f"fn-{role}")

    with pytest.raises(ChainBroken) as caught:
        build(repo, ["1"], BuildOptions(models=factory))

    assert caught.value.exit_code == ExitCode.USAGE
    assert "does not follow the previous event" in str(caught.value)
    with Ledger.open(repo) as ledger:
        outcomes = [e.outcome for e in ledger.events() if isinstance(e, VerdictRecorded)]
    assert "approved" not in outcomes
    assert git(repo, "notes", "--ref=refs/notes/agentflow", "list") == ""


def test_a_rejected_run_reopened_by_deleting_its_tail_is_refused_on_resume(repo, cli):
    write_plan(repo)
    rejecting = {"builder": [builder_session()], "verifier": [verifier_session(decision="reject")]}
    assert cli("build", "1", "--script", str(write_script(repo, rejecting))).exit_code == 1
    run_id = _run_id(repo)
    db = sqlite3.connect(ledger_path(repo))
    first_verifier = db.execute(
        "SELECT MIN(seq) FROM events WHERE run_id = ? AND kind = 'session_started' AND body LIKE '%verifier%'",
        (run_id,),
    ).fetchone()[0]
    db.execute("DELETE FROM events WHERE run_id = ? AND seq >= ?", (run_id, first_verifier))
    db.commit()
    db.close()
    approving = write_script(repo, {"builder": [], "verifier": [verifier_session()]}, name="again.yaml")

    result = cli("build", "--resume", run_id, "--script", str(approving))

    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"ledger chain of run {run_id} is broken" in result.stderr
    assert "no longer holds (events removed)" in result.stderr
    assert not _approvals(repo)


def test_an_edited_event_closes_the_gate_where_the_ledger_holds_the_run(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    db = sqlite3.connect(ledger_path(repo))
    db.execute("UPDATE events SET body = replace(body, '\"cycle\":1', '\"cycle\":1 ') WHERE kind = 'checks_ran'")
    db.commit()
    db.close()

    result = cli("gate", "agentflow/1-farewell")

    assert result.exit_code == ExitCode.NOT_APPROVED, result.output
    assert "ledger chain of run" in result.output and "(checks_ran)" in result.output
    shown = cli("show", _run_id(repo))
    assert shown.exit_code == ExitCode.USAGE and "(checks_ran): its hash does not match" in shown.stderr
    assert cli("metrics").exit_code == ExitCode.USAGE
    ledger_path(repo).unlink()  # a fresh clone has only the signed note: the gate decides from it
    assert cli("gate", "agentflow/1-farewell").exit_code == 0


def test_a_legacy_run_is_readable_but_never_resumed(repo, cli):
    """A ledger from before the chain (schema 1): its runs show, and resuming one is refused."""
    path = ledger_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    from agentflow.ledger import MIGRATIONS

    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    write_plan(repo)
    start = RunStarted(run_id="r-old", plan_id="1", plan_path=".plans/1-farewell.md", plan_title="Add farewell")
    db.execute(
        "INSERT INTO events (ts, kind, run_id, body) VALUES (?, ?, ?, ?)",
        (start.ts.isoformat(), start.kind, "r-old", start.model_dump_json()),
    )
    db.commit()
    db.close()

    assert cli("show", "r-old").exit_code == 0
    result = cli("build", "--resume", "r-old", "--script", str(write_script(repo, {"builder": [], "verifier": []})))
    assert result.exit_code == ExitCode.USAGE
    assert "ledger chain of run r-old is broken at its chain: started before the ledger's hash chain" in result.stderr
    with Ledger.open(repo) as ledger:
        assert ledger.schema_version >= 3
        assert json.loads(ledger.chain_rows("r-old")[0][5])["run_id"] == "r-old"


# -- ledger export / import (#15 item 5) ---------------------------------------------------------


def _built(repo: Path, cli) -> str:
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    return _run_id(repo)


def test_export_then_import_into_another_ledger_is_idempotent(repo, cli, tmp_path):
    run_id = _built(repo, cli)
    exported = tmp_path / "run.jsonl"
    assert cli("ledger", "export", "--run", run_id, "-o", str(exported)).exit_code == 0
    stdout = cli("ledger", "export", "--run", run_id)
    assert stdout.exit_code == 0 and stdout.stdout == exported.read_text()
    with Ledger.open(repo) as ledger:
        own = [e.model_dump() for e in ledger.events(run_id=run_id)]
    ledger_path(repo).unlink()  # the gathering job: a fresh ledger

    first = cli("ledger", "import", str(exported))
    again = cli("ledger", "import", str(exported), str(exported))

    assert first.exit_code == 0 and f"imported {len(own)} events of 1 runs" in first.stdout
    assert again.exit_code == 0 and "imported 0 events of 1 runs" in again.stdout
    with Ledger.open(repo) as ledger:
        assert [e.model_dump() for e in ledger.events(run_id=run_id)] == own
        assert ledger.chain_problem(run_id) is None
    assert cli("show", run_id).exit_code == 0
    assert cli("metrics", "--format", "json").exit_code == 0


def test_import_refuses_a_broken_or_foreign_chain_with_one_line(repo, cli, tmp_path):
    run_id = _built(repo, cli)
    lines = cli("ledger", "export", "--run", run_id).stdout.splitlines()
    edited = [json.loads(line) for line in lines]
    edited[2]["body"] = edited[2]["body"].replace('"run_id"', ' "run_id"', 1)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(json.dumps(e) + "\n" for e in edited))
    result = cli("ledger", "import", str(broken))
    assert result.exit_code == ExitCode.USAGE
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"refused: ledger chain of run {run_id} is broken at event 3" in result.stderr

    foreign = [json.loads(line) for line in lines][:3]
    from agentflow.chain import digest

    foreign[2]["eid"] = "someone-elses-event"
    foreign[2]["hash"] = digest(
        None,
        foreign[2]["prev"],
        "someone-elses-event",
        foreign[2]["kind"],
        run_id,
        foreign[2]["ts"],
        foreign[2]["body"],
    )
    other = tmp_path / "foreign.jsonl"
    other.write_text("".join(json.dumps(e) + "\n" for e in foreign))
    result = cli("ledger", "import", str(other))
    assert result.exit_code == ExitCode.USAGE and "has a foreign chain" in result.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    result = cli("ledger", "import", str(bad))
    assert result.exit_code == ExitCode.USAGE and f"{bad}:1: not a JSON object" in result.stderr
    assert cli("ledger", "export", "--run", "r-nope").exit_code == ExitCode.USAGE


def test_ledger_help_has_examples(cli):
    for command in ("export", "import"):
        assert "Examples:" in cli("ledger", command, "--help").stdout


@pytest.mark.parametrize("name", ["plain", "odd?name", "hash#1", "pct%41"])
def test_the_gate_reads_the_ledger_of_a_checkout_whose_path_has_uri_characters(tmp_path: Path, name: str) -> None:
    """The gate opens the ledger read-only through an SQLite URI: a `?`, `#` or `%` in the
    checkout's path opened another file (or none), and the run's chain was not the one checked."""
    from agentflow.chain import ledger_chain_problem

    root = tmp_path / name
    root.mkdir()
    with Ledger.open(root) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
        ledger.append(ChecksRan(run_id="r-1", cycle=1, results=[]))
    assert ledger_chain_problem(root, "r-1", None, None) is None
    db = sqlite3.connect(ledger_path(root))
    db.execute("UPDATE events SET body = replace(body, '\"cycle\":1', '\"cycle\":1 ') WHERE kind = 'checks_ran'")
    db.commit()
    db.close()
    assert "(checks_ran)" in (ledger_chain_problem(root, "r-1", None, None) or "")
