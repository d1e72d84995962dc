"""The ledger: append-only typed events, migrations, concurrent writers, projections, redaction."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentflow import ledger as ledger_module
from agentflow.errors import LedgerError
from agentflow.events import (
    FindingsRecorded,
    Merged,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionStarted,
    ToolCalled,
    Usage,
    VerdictRecorded,
)
from agentflow.ledger import MIGRATIONS, Ledger, ledger_path

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from agentflow.events import ToolCalled
    from agentflow.ledger import Ledger

    root, writer, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():          # start together: maximise contention
        time.sleep(0.001)
    with Ledger.open(root) as ledger:
        for i in range(count):
            ledger.append(ToolCalled(run_id=writer, session_id=writer, turn=i, tool="read_file"))
    """
)


def test_concurrent_writers_from_several_processes_lose_no_event(tmp_path: Path):
    writers, per_writer = 4, 200
    Ledger.open(tmp_path).close()  # schema created once, so the writers only contend on appends
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), f"w{n}", str(per_writer), str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    with Ledger.open(tmp_path) as ledger:
        events = ledger.events()
        seqs = [row[0] for row in ledger._db.execute("SELECT seq FROM events")]
    assert len(events) == writers * per_writer
    assert len(set(seqs)) == len(seqs)
    for n in range(writers):
        turns = [e.turn for e in events if e.run_id == f"w{n}"]
        assert turns == list(range(per_writer))  # each writer's events complete and in its order


def test_concurrent_first_open_migrates_once(tmp_path: Path):
    code = "import sys; from pathlib import Path; from agentflow.ledger import Ledger; Ledger.open(Path(sys.argv[1])).close()"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with Ledger.open(tmp_path) as ledger:
        assert ledger.schema_version == len(MIGRATIONS)


def test_opening_a_current_ledger_takes_no_write_lock(tmp_path: Path):
    """A view opens the ledger while a build holds its write lock: it reads at once (it used to
    wait in BEGIN IMMEDIATE for the migration check, up to the 30 s busy timeout)."""
    with Ledger.open(tmp_path) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="7"))
    writer = sqlite3.connect(ledger_path(tmp_path), isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with Ledger.open(tmp_path) as view:
            assert [e.run_id for e in view.events(kinds=["run_started"])] == ["r-1"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_new_ledger_is_wal_and_fully_migrated(tmp_path: Path):
    with Ledger.open(tmp_path) as ledger:
        assert ledger.path == ledger_path(tmp_path) == tmp_path / ".agentflow" / "ledger.db"
        assert ledger.schema_version == len(MIGRATIONS)
        assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_apply_in_order_and_keep_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with Ledger.open(tmp_path) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
    extra = "CREATE TABLE probe (x INTEGER); INSERT INTO probe (x) VALUES (42)"
    monkeypatch.setattr(ledger_module, "MIGRATIONS", [*MIGRATIONS, extra])
    with Ledger.open(tmp_path) as ledger:
        assert ledger.schema_version == len(MIGRATIONS) + 1
        assert ledger._db.execute("SELECT x FROM probe").fetchall() == [(42,)]
        assert [e.run_id for e in ledger.events()] == ["r-1"]
    with Ledger.open(tmp_path) as ledger:  # applied once: reopening does not run it again
        assert ledger._db.execute("SELECT count(*) FROM probe").fetchone()[0] == 1


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    Ledger.open(tmp_path).close()
    monkeypatch.setattr(ledger_module, "MIGRATIONS", [*MIGRATIONS, "CREATE TABLE ok (x); THIS IS NOT SQL"])
    with pytest.raises((LedgerError, sqlite3.DatabaseError)):
        Ledger.open(tmp_path)
    monkeypatch.setattr(ledger_module, "MIGRATIONS", MIGRATIONS)
    with Ledger.open(tmp_path) as ledger:
        assert ledger.schema_version == len(MIGRATIONS)
        tables = {r[0] for r in ledger._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "ok" not in tables


class _CtrlC:
    """The ledger's connection, with a Ctrl-C (KeyboardInterrupt) raised once right after the
    statement ``at`` returns: where a real SIGINT lands between two bytecodes."""

    def __init__(self, db: object, at: str):
        self._db, self._at = db, at

    def execute(self, sql: str, *args: object) -> object:
        result = self._db.execute(sql, *args)
        if sql == self._at:
            self._at = ""
            raise KeyboardInterrupt
        return result

    def __getattr__(self, name: str) -> object:
        return getattr(self._db, name)


@pytest.mark.parametrize("at", ["COMMIT", "BEGIN IMMEDIATE"])
def test_ctrl_c_during_an_append_stays_a_ctrl_c_and_the_chain_goes_on(tmp_path: Path, at: str):
    """Ctrl-C after COMMIT returned used to ROLLBACK a finished transaction: "no transaction is
    active" replaced the KeyboardInterrupt (a build exited 2 instead of 130), and the head this
    process chains onto stayed behind the committed row. Before COMMIT, the step is rolled back."""
    with Ledger.open(tmp_path) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="7"))
        ledger._db = _CtrlC(ledger._db, at)
        with pytest.raises(KeyboardInterrupt):
            ledger.append(SessionStarted(run_id="r-1", session_id="s", role="builder", backend="scripted", model="m"))
        assert not ledger._raw.in_transaction
        ledger.append(SessionEnded(run_id="r-1", session_id="s", role="builder", status="interrupted"))
        ledger.verify_run("r-1")  # one chain: the next append chained onto what was committed
        kinds = [e.kind for e in ledger.events(run_id="r-1")]
    committed = at == "COMMIT"
    assert kinds == ["run_started", *(["session_started"] if committed else []), "session_ended"]
    with Ledger.open(tmp_path) as fresh:  # another process sees the same, intact chain
        fresh.verify_run("r-1")


def test_ledger_newer_than_agentflow_is_refused(tmp_path: Path):
    Ledger.open(tmp_path).close()
    db = sqlite3.connect(ledger_path(tmp_path))
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 5}")
    db.close()
    with pytest.raises(LedgerError, match="newer than this agentflow") as info:
        Ledger.open(tmp_path)
    assert info.value.exit_code == 2


def test_corrupt_ledger_is_a_usage_error_with_fix(tmp_path: Path):
    path = ledger_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(LedgerError, match="move the file aside"):
        Ledger.open(tmp_path)


def test_events_round_trip_typed_and_filtered(tmp_path: Path):
    with Ledger.open(tmp_path) as ledger:
        first = ledger.append(RunStarted(run_id="r-1", plan_id="7", plan_title="Seven", max_cycles=2))
        ledger.append(ToolCalled(run_id="r-1", session_id="s", turn=1, tool="read_file", input={"path": "a.py"}))
        ledger.append(RunStarted(run_id="r-2", plan_id="8"))
        last = ledger.append(RunEnded(run_id="r-1", outcome="approved", cycles=1))
        assert last > first
        events = ledger.events(run_id="r-1")
        assert [type(e) for e in events] == [RunStarted, ToolCalled, RunEnded]
        assert events[1].input == {"path": "a.py"}
        assert [e.run_id for e in ledger.events(kinds=["run_started"])] == ["r-1", "r-2"]
        assert ledger.run_ids() == ["r-1", "r-2"]
        # a session's tampering check asks about the runs one id at a time, never listing them all
        others = ledger.other_runs("r-1")
        assert "r-2" in others and "r-1" not in others and "r-3" not in others
        assert None not in others and 7 not in others and ["r-2"] not in others  # a note's "run" may be anything


def test_secrets_never_reach_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-supersecretvalue")
    with Ledger.open(tmp_path) as ledger:
        ledger.append(
            ToolCalled(
                run_id="r",
                session_id="s",
                turn=1,
                tool="run_command",
                input={"command": "echo sk-ant-api03-supersecretvalue"},
            )
        )
        ledger.save_transcript("s", "builder", "r", [{"role": "user", "content": "key sk-ant-api03-supersecretvalue"}])
    raw = ledger_path(tmp_path).read_bytes()
    assert b"supersecretvalue" not in raw
    with Ledger.open(tmp_path) as ledger:
        assert "[REDACTED]" in ledger.events()[0].input["command"]
        assert "[REDACTED]" in ledger.transcript("s")[0]["content"]


def _session(ledger: Ledger, run: str, sid: str, role: str, cycle: int, cost: float) -> None:
    ledger.append(SessionStarted(run_id=run, session_id=sid, role=role, cycle=cycle, backend="scripted", model="m"))
    ledger.append(
        SessionEnded(
            run_id=run,
            session_id=sid,
            role=role,
            cycle=cycle,
            status="completed",
            turns=3,
            usage=Usage(input_tokens=100, output_tokens=10),
            cost_usd=cost,
        )
    )


def test_run_and_plan_state_projections(tmp_path: Path):
    with Ledger.open(tmp_path) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1", plan_title="One", max_cycles=3))
        _session(ledger, "r-1", "b1", "builder", 1, 0.10)
        _session(ledger, "r-1", "v1", "verifier", 1, 0.05)
        ledger.append(VerdictRecorded(run_id="r-1", cycle=1, outcome="changes_requested"))
        _session(ledger, "r-1", "b2", "builder", 2, 0.10)
        _session(ledger, "r-1", "v2", "verifier", 2, 0.05)
        ledger.append(VerdictRecorded(run_id="r-1", cycle=2, outcome="approved"))
        ledger.append(RunEnded(run_id="r-1", outcome="approved", cycles=2, commit="abc"))
        ledger.append(RunStarted(run_id="r-2", plan_id="2"))
        _session(ledger, "r-2", "b3", "builder", 1, 0.5)
        ledger.append(Merged(plan_id="1", branch="agentflow/1-one", into="main", commit="def"))
        ledger.append(FindingsRecorded(findings=[{"id": "F1"}]))
        ledger.append(FindingsRecorded(findings=[{"id": "F2"}]))

        run = ledger.run("r-1")
        assert (run.outcome, run.cycles, run.commit) == ("approved", 2, "abc")
        assert run.cost_usd == pytest.approx(0.30)
        assert [s.role for s in run.sessions] == ["builder", "verifier", "builder", "verifier"]
        assert [v.outcome for v in run.verdicts] == ["changes_requested", "approved"]
        assert ledger.run("r-2").state == "in progress"
        with pytest.raises(LedgerError):
            ledger.run("r-404")

        states = ledger.plan_states()
        assert states["1"].state == "merged" and states["1"].last_outcome == "approved"
        assert states["2"].state == "in progress" and states["2"].cost_usd == pytest.approx(0.5)
        assert ledger.open_findings() == [{"id": "F2"}]  # the latest evaluation decides
