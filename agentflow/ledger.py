"""The ledger: an append-only SQLite log of typed events, session transcripts and projections.

``.agentflow/ledger.db`` in WAL mode; schema migrations are numbered and applied on open. Several
agentflow processes may write at once: every append is its own short ``BEGIN IMMEDIATE``
transaction and waits for the lock (``busy_timeout``) instead of failing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agentflow.errors import LedgerError
from agentflow.events import (
    Event,
    FindingsRecorded,
    Merged,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionStarted,
    VerdictRecorded,
    event_adapter,
    parse_event,
)
from agentflow.redact import redact

MIGRATIONS: list[str] = [
    # 1: events and transcripts
    """
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        kind TEXT NOT NULL,
        run_id TEXT,
        body TEXT NOT NULL
    );
    CREATE INDEX events_run ON events(run_id, seq);
    CREATE INDEX events_kind ON events(kind, seq);
    CREATE TABLE transcripts (
        session_id TEXT PRIMARY KEY,
        run_id TEXT,
        role TEXT NOT NULL,
        messages TEXT NOT NULL,
        updated TEXT NOT NULL
    );
    """,
]


def ledger_path(root: Path) -> Path:
    return root / ".agentflow" / "ledger.db"


class Ledger:
    """Open with ``Ledger.open(root)``; use as a context manager or call ``close()``."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._set_wal()
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"cannot open the ledger: {exc}", where=path, fix="move the file aside to start a new ledger"
            ) from None

    def _set_wal(self, attempts: int = 200) -> None:
        """Switch to WAL, retrying: SQLite answers "database is locked" at once (no busy wait) when
        another connection (a -j thread, another process) is creating or converting the file."""
        for attempt in range(attempts):
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05)

    @classmethod
    def open(cls, root: Path) -> Ledger:
        return cls(ledger_path(root))

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise LedgerError(
                    f"ledger schema {version} is newer than this agentflow ({len(MIGRATIONS)})",
                    where=self.path,
                    fix="upgrade agentflow",
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    # -- writing ---------------------------------------------------------------------------------

    def append(self, event: Event) -> int:
        """Append one event (secrets redacted); returns its sequence number."""
        body = redact(event.model_dump_json())
        cursor = self._db.execute(
            "INSERT INTO events (ts, kind, run_id, body) VALUES (?, ?, ?, ?)",
            (event.ts.isoformat(), event.kind, event.run_id, body),
        )
        return int(cursor.lastrowid or 0)

    def save_transcript(self, session_id: str, role: str, run_id: str | None, messages: list[Any]) -> None:
        body = redact(json.dumps(messages, default=str))
        self._db.execute(
            "INSERT INTO transcripts (session_id, run_id, role, messages, updated) VALUES (?, ?, ?, ?, "
            "datetime('now')) ON CONFLICT(session_id) DO UPDATE SET messages = excluded.messages, "
            "updated = excluded.updated",
            (session_id, run_id, role, body),
        )

    # -- reading ---------------------------------------------------------------------------------

    def events(
        self,
        *,
        run_id: str | None = None,
        kinds: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Event]:
        sql, args = "SELECT body FROM events WHERE 1=1", []
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        if kinds is not None:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        if since is not None:
            sql += " AND ts >= ?"
            args.append(since.isoformat())
        if until is not None:
            sql += " AND ts < ?"
            args.append(until.isoformat())
        rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [parse_event(body) for (body,) in rows]

    def transcript(self, session_id: str) -> list[Any] | None:
        row = self._db.execute("SELECT messages FROM transcripts WHERE session_id = ?", (session_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def run_ids(self) -> list[str]:
        rows = self._db.execute("SELECT DISTINCT run_id FROM events WHERE kind = 'run_started' ORDER BY seq")
        return [r[0] for r in rows]

    # -- projections -----------------------------------------------------------------------------

    def run(self, run_id: str) -> RunView:
        events = self.events(run_id=run_id)
        if not events or not isinstance(events[0], RunStarted):
            raise LedgerError(f"no run {run_id!r} in the ledger", fix="list runs with `agentflow log`")
        return project_run(events)

    def runs(self) -> list[RunView]:
        by_run: dict[str, list[Event]] = {}
        for event in self.events():
            if event.run_id:
                by_run.setdefault(event.run_id, []).append(event)
        return [project_run(evs) for evs in by_run.values() if isinstance(evs[0], RunStarted)]

    def plan_states(self) -> dict[str, PlanState]:
        """The latest state of each plan that has runs, keyed by plan id."""
        states: dict[str, PlanState] = {}
        for run in self.runs():
            if run.plan_id is None:
                continue
            state = states.setdefault(run.plan_id, PlanState(plan_id=run.plan_id))
            state.runs += 1
            state.cost_usd += run.cost_usd
            state.last_run = run.run_id
            state.last_outcome = run.outcome
            state.cycles = run.cycles
            state.state = run.state
        for event in self.events(kinds=["merged"]):
            assert isinstance(event, Merged)
            if event.plan_id in states:
                states[event.plan_id].state = "merged"
        return states

    def open_findings(self, source: str = "evaluator") -> list[dict[str, Any]]:
        """Findings of the latest evaluation: a finding missing from a later evaluation is closed."""
        latest: FindingsRecorded | None = None
        for event in self.events(kinds=["findings_recorded"]):
            assert isinstance(event, FindingsRecorded)
            if event.source == source:
                latest = event
        return list(latest.findings) if latest else []


@dataclass
class SessionView:
    session_id: str
    role: str
    cycle: int
    backend: str
    model: str
    started: datetime
    status: str = "running"
    reason: str | None = None
    turns: int = 0
    cost_usd: float = 0.0
    tokens: dict[str, int] = field(default_factory=dict)
    summary: str | None = None


@dataclass
class RunView:
    run_id: str
    mode: str
    plan_id: str | None
    plan_title: str | None
    started: datetime
    ended: datetime | None = None
    outcome: str | None = None
    reason: str | None = None
    cycles: int = 0
    cost_usd: float = 0.0
    commit: str | None = None
    sessions: list[SessionView] = field(default_factory=list)
    verdicts: list[VerdictRecorded] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.outcome if self.outcome else "in progress"


@dataclass
class PlanState:
    plan_id: str
    state: str = "not started"
    last_outcome: str | None = None
    last_run: str | None = None
    runs: int = 0
    cycles: int = 0
    cost_usd: float = 0.0


def project_run(events: list[Event]) -> RunView:
    start = events[0]
    assert isinstance(start, RunStarted)
    run = RunView(start.run_id or "", start.mode, start.plan_id, start.plan_title, start.ts, events=events)
    sessions: dict[str, SessionView] = {}
    for event in events:
        if isinstance(event, SessionStarted):
            view = SessionView(event.session_id, event.role, event.cycle, event.backend, event.model, event.ts)
            sessions[event.session_id] = view
            run.sessions.append(view)
            run.cycles = max(run.cycles, event.cycle)
        elif isinstance(event, SessionEnded):
            view = sessions.get(event.session_id) or SessionView(
                event.session_id, event.role, event.cycle, "?", "?", event.ts
            )
            view.status, view.reason, view.turns = event.status, event.reason, event.turns
            view.cost_usd, view.summary = event.cost_usd, event.summary
            view.tokens = event.usage.model_dump()
            run.cost_usd += event.cost_usd
        elif isinstance(event, VerdictRecorded):
            run.verdicts.append(event)
        elif isinstance(event, RunEnded):
            run.ended, run.outcome, run.reason = event.ts, event.outcome, event.reason
            run.commit = event.commit
            run.cycles = max(run.cycles, event.cycles)
    return run


def dump_event(event: Event) -> dict[str, Any]:
    return event_adapter.dump_python(event, mode="json")
