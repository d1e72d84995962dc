"""The ledger: an append-only SQLite log of typed events, session transcripts and projections.

``.agentflow/ledger.db`` in WAL mode; schema migrations are numbered and applied on open. Several
agentflow processes may write at once: every append is its own short ``BEGIN IMMEDIATE``
transaction and waits for the lock (``busy_timeout``) instead of failing.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import compress, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from agentflow import chain
from agentflow.errors import LedgerError
from agentflow.files import make_dir
from agentflow.redact import redact

if TYPE_CHECKING:
    from agentflow.events import Event
    from agentflow.runview import RunView

# Every ``kind`` this agentflow can read, with the fields its event cannot do without: the tags
# and required fields of ``agentflow.events.Event`` (a test checks that they agree). Kept here, as
# plain strings, so that the read-side views check what they read without building pydantic models.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "run_started": (),
    "run_resumed": (),
    "session_started": ("session_id", "role", "backend", "model"),
    "model_called": ("session_id", "turn", "model"),
    "tool_called": ("session_id", "turn", "tool"),
    "session_ended": ("session_id", "role", "status"),
    "builder_committed": ("cycle", "commit"),
    "checks_ran": ("cycle",),
    "verdict_recorded": ("cycle", "outcome"),
    "run_ended": ("outcome", "cycles"),
    "merged": ("branch", "into", "commit"),
    "findings_recorded": (),
    "tampering_detected": ("role", "reason"),
    "builder_commits_folded": ("onto",),
    "git_snapshot": ("role",),
    "git_checked": ("role",),
}
EVENT_KINDS = frozenset(REQUIRED_FIELDS)
_RUN_STARTED = ("run_started", b"run_started")  # a kind as text, or as a blob (written outside agentflow)
SUMMARY_RUNS = 200  # runs per chain-summary query (``Ledger.verified_events``): their split bodies are held at once

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
    # 2: the hash chain (#13 item 2) and indexed columns for projections (#19 item 1); rows from
    # before it keep NULL hashes: their runs are legacy (readable, never resumed or approved)
    """
    ALTER TABLE events ADD COLUMN eid TEXT;
    ALTER TABLE events ADD COLUMN prev TEXT;
    ALTER TABLE events ADD COLUMN hash TEXT;
    ALTER TABLE events ADD COLUMN plan_id TEXT;
    CREATE UNIQUE INDEX events_eid ON events(eid);
    CREATE INDEX events_ts ON events(ts);
    CREATE INDEX events_plan ON events(plan_id, seq);
    """,
    # 3: transcripts appended one row per message (#19 item 2); the old table stays readable
    """
    CREATE TABLE transcript_messages (
        session_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        run_id TEXT,
        role TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (session_id, n)
    );
    """,
    # 4: view_indexes (#19 item 1): what the views' window and projection queries read through;
    # the derived view tables themselves (``VIEW_SCHEMA``) are created and rebuilt on demand
    """
    CREATE INDEX events_kind_ts ON events(kind, ts);
    CREATE INDEX events_runless_ts ON events(ts) WHERE run_id IS NULL;
    """,
]
MIGRATION_NAMES = ("events_and_transcripts", "hash_chain_and_indexed_columns", "transcript_rows", "view_indexes")


class ChainBroken(LedgerError):
    """A run's hash chain does not hold: it is never resumed, approved or shown as trustworthy."""

    def __init__(self, problem: chain.ChainProblem, where: Path | None = None):
        self.chain = problem
        if problem.run_id:
            fix = (
                "the ledger was changed outside agentflow; start a new run (`agentflow build PLAN`) "
                f"and inspect this one with `agentflow ledger export --run {problem.run_id}`"
            )
        else:  # the run-less events: no run to start again
            fix = (
                "the ledger was changed outside agentflow: move it aside to start a new ledger, and keep it "
                f"to inspect (`sqlite3 {where or '.agentflow/ledger.db'} "
                "'SELECT seq, kind, body FROM events WHERE run_id IS NULL'`)"
            )
        super().__init__(problem.line(), where=where, fix=fix)


def ledger_path(root: Path) -> Path:
    return root / ".agentflow" / "ledger.db"


_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(path: Path) -> threading.RLock:
    """One lock per ledger file and process, shared by its connections (each ``-j`` run has its own).
    SQLite makes a writer that finds the file locked sleep and poll (1, 2, 5, 10, ... ms): under ``-j 4``
    an append of 0.5 ms waited 3 ms, now and then 0.1 s, for the others'. On this lock the threads wait
    in turn and the next one is woken at once; other processes still meet at SQLite's (busy_timeout)."""
    key = os.path.abspath(path)
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.RLock())


def ledger_error(exc: sqlite3.Error, path: Path) -> LedgerError:
    """One line for what SQLite says about the ledger file: read-only, corrupt, not a file, or else."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        problem = f"the ledger is read-only ({text})"
        fix = f"make {path.parent} and {path.name} writable (chmod u+w), or run agentflow as their owner"
    elif "malformed" in text or "not a database" in text or "corrupt" in text:
        problem = f"the ledger is corrupt ({text})"
        fix = "move the file aside to start a new ledger; keep the old one to inspect it"
    elif "unable to open" in text:
        what = "a directory, not a file" if path.is_dir() else "not readable"
        problem = f"cannot open the ledger: it is {what} ({text})"
        fix = f"move {path} aside to start a new ledger, or make it a readable file"
    else:
        problem, fix = f"cannot use the ledger: {text}", "move the file aside to start a new ledger"
    return LedgerError(problem, where=path, fix=fix)


class _Guarded:
    """The ledger's connection (and its cursors) with every SQLite error turned into a one-line
    ``LedgerError`` naming the file: a read-only, corrupt or replaced ledger is bad input (exit 2)."""

    def __init__(self, target: Any, path: Path):
        self._target, self._path = target, path

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = attr(*args, **kwargs)
            except sqlite3.DatabaseError as exc:
                raise ledger_error(exc, self._path) from None
            return _Guarded(result, self._path) if isinstance(result, sqlite3.Cursor) else result

        return call

    def __iter__(self) -> Any:
        return iter(self.fetchall())


class Ledger:
    """Open with ``Ledger.open(root)``; use as a context manager or call ``close()``."""

    def __init__(self, path: Path):
        self.path = path
        make_dir(path.parent)
        self._lock = _file_lock(path)  # one transaction at a time per file in this process (-j runs)
        self._heads: dict[str | None, str] = {}  # the last hash this process appended, per run
        self._transcript_n: dict[str, int] = {}  # messages stored per session (appends only)
        try:
            self._raw = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            self._db: Any = _Guarded(self._raw, path)
            self._db.execute("PRAGMA busy_timeout = 30000")
            self._set_wal()
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if not self._open_read_only(exc):
                raise ledger_error(exc, path) from None

    def _open_read_only(self, exc: sqlite3.DatabaseError) -> bool:
        """A ledger in a folder the user cannot write (a teammate's checkout, a read-only mount):
        SQLite cannot make the WAL's shared-memory file there, so even reading failed ("attempt to
        write a readonly database"). Opened read-only instead, for the views: through the WAL files
        when they are there, else as an immutable file (no WAL left to apply: the file is the whole
        ledger). Every write is refused as before (``require_writable``, an append: exit 2 naming
        the fix). True when opened; the schema must be current (nothing can be migrated)."""
        if "readonly" not in str(exc) or not self.path.is_file():
            return False
        with contextlib.suppress(sqlite3.Error):
            self._raw.close()
        wal = self.path.with_name(self.path.name + "-wal")
        query = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
        uri = f"{self.path.resolve().as_uri()}?{query}"
        try:
            self._raw = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
            self._db = _Guarded(self._raw, self.path)
            if self._db.execute("PRAGMA user_version").fetchone()[0] != len(MIGRATIONS):
                return False  # an older or newer schema: the first error stands
            self._db.execute("SELECT 1 FROM events LIMIT 1").fetchall()
        except sqlite3.DatabaseError:
            return False
        return True

    def _set_wal(self, attempts: int = 200) -> None:
        """Switch to WAL, retrying: SQLite answers "database is locked" at once (no busy wait) when
        another connection (a -j thread, another process) is creating or converting the file."""
        for attempt in range(attempts):
            try:
                self._raw.execute("PRAGMA journal_mode = WAL")
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

    @contextlib.contextmanager
    def _transaction(self, on_commit: Callable[[], object] | None = None) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` .. ``COMMIT`` under the thread lock, rolled back on any exception
        while it is still open; ``on_commit`` runs once COMMIT took effect. A Ctrl-C can land after
        COMMIT returned (between two bytecodes): then nothing is rolled back, ``on_commit`` still
        runs and the KeyboardInterrupt goes on (a ROLLBACK there fails with "no transaction is
        active", which used to replace the Ctrl-C with a LedgerError: exit 2, not 130)."""
        with self._lock:
            committing = False
            try:
                self._db.execute("BEGIN IMMEDIATE")  # inside: a Ctrl-C just after it must roll back
                yield
                committing = True
                self._db.execute("COMMIT")
            except BaseException:
                if self._raw.in_transaction:
                    with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
                        self._raw.execute("ROLLBACK")
                elif committing and on_commit is not None:
                    on_commit()
                raise
            if on_commit is not None:
                on_commit()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees one state of the file: one deferred read transaction (WAL gives it a
        snapshot; appends by other processes go on beside it). A view that reads its events and then
        checks their chains checks the very rows it prints: a row edited before the read and put back
        before the check (or the reverse) is found (``agentflow log``). No write may run inside."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                if self._raw.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._raw.execute("COMMIT")

    def _migrate(self) -> None:
        if self._db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
            return  # current: no write lock taken just to open (a view would wait behind a build's append)
        with self._transaction():  # asked again inside: another process may have just migrated it
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

    def require_writable(self) -> None:
        """``LedgerError`` (exit 2) now, before a run creates a branch or a worktree, when the ledger
        cannot be written: a read-only file opens, and reads, without a word until the first append."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(f"PRAGMA user_version = {self.schema_version}")  # a write of nothing new
            finally:
                with contextlib.suppress(sqlite3.Error):
                    self._raw.execute("ROLLBACK")

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    # -- writing ---------------------------------------------------------------------------------

    def append(self, event: Event) -> int:
        """Append one event (secrets redacted) to its run's chain; returns its sequence number."""
        return self.append_many([event])[-1]

    def append_many(self, events: Iterable[Event]) -> list[int]:
        """Append several events in one transaction (a step's events: all or none survive a kill)."""
        rows = [(event, redact(event.model_dump_json())) for event in events]
        if not rows:
            return []
        key = chain.chain_key()
        heads: dict[str | None, str | None] = {}
        seqs = []
        # once committed (a Ctrl-C may follow) the next append chains onto these rows
        with self._transaction(on_commit=lambda: self._heads.update({r: h for r, h in heads.items() if h})):
            for event, body in rows:
                seqs.append(self._insert(event, body, key, heads))
        return seqs

    def save_transcript(self, session_id: str, role: str, run_id: str | None, messages: list[Any]) -> None:
        """Record the session's transcript: messages not stored yet are appended, one row each,
        redacted once (transcripts only grow, so a session costs the same per turn at any length)."""
        import json  # here and below, not at the top: the views read with orjson and never load json

        with self._lock:
            stored = self._transcript_n.get(session_id)
            if stored is None:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM transcript_messages WHERE session_id = ?", (session_id,)
                ).fetchone()
                stored = int(row[0])
            new = messages[stored:]
            if not new:
                return
            rows = [
                (session_id, n, run_id, role, redact(json.dumps(message, default=str)))
                for n, message in enumerate(new, start=stored)
            ]
            with self._transaction():
                self._db.executemany(
                    "INSERT OR IGNORE INTO transcript_messages (session_id, n, run_id, role, message) "
                    "VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
            self._transcript_n[session_id] = stored + len(new)

    def _insert(self, event: Event, body: str, key: str | None, heads: dict[str | None, str | None]) -> int:
        run_id = event.run_id
        if run_id not in heads:
            # chain onto the head this process wrote last: a row someone slipped in after it breaks
            # the chain instead of being adopted; else (a new process) onto the run's last row. The
            # run-less events (merges, evaluations, overrides) have many writers: always their last row
            cached = self._heads.get(run_id) if run_id is not None else None
            heads[run_id] = cached or self._tail(run_id)
        prev = None if event.kind == "run_started" else heads[run_id]
        eid, ts = os.urandom(10).hex(), event.ts.isoformat()  # secrets.token_hex(10), without importing secrets
        digest = chain.digest(key, prev, eid, event.kind, run_id, ts, body)
        cursor = self._db.execute(
            "INSERT INTO events (ts, kind, run_id, body, eid, prev, hash, plan_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ts, event.kind, run_id, body, eid, prev, digest, getattr(event, "plan_id", None)),
        )
        heads[run_id] = digest
        return int(cursor.lastrowid or 0)

    def _tail(self, run_id: str | None) -> str | None:
        row = self._db.execute(
            "SELECT hash FROM events WHERE run_id IS ? ORDER BY seq DESC LIMIT 1", (run_id,)
        ).fetchone()
        return row[0] if row else None

    def head(self, run_id: str) -> str | None:
        """The hash of the run's last event: what a verdict note records as its chain head."""
        with self._lock:
            return self._heads.get(run_id) or self._tail(run_id)

    def chain_problem(self, run_id: str, *, strict: bool = True) -> chain.ChainProblem | None:
        """The first problem of the run's chain (None: it holds). A run this process appended to
        must also end with the last event it appended (nobody else writes into a live run)."""
        with self._lock:
            rows = chain.run_rows(self._db, run_id)
            tail = self._heads.get(run_id)
        return chain.verify_rows(run_id, rows, chain.chain_key(), strict=strict, tail=tail)

    def chain_rows(self, run_id: str) -> list[chain.Row]:
        with self._lock:
            return chain.run_rows(self._db, run_id)

    def verify_run(
        self, run_id: str, *, strict: bool = True, legacy_ok: bool = False, elsewhere_ok: bool = False
    ) -> None:
        """Raise ChainBroken unless the run's chain holds (``legacy_ok``: a run from before the chain passes;
        ``elsewhere_ok``: see ``verified_events``)."""
        self.verify_runs([run_id], strict=strict, legacy_ok=legacy_ok, elsewhere_ok=elsewhere_ok)

    def verify_runs(
        self,
        run_ids: Iterable[str],
        *,
        strict: bool = True,
        legacy_ok: bool = False,
        elsewhere_ok: bool = False,
        summarise: bool | None = None,
    ) -> None:
        """``verify_run`` for many runs, a few hundred runs per query (``metrics``; ``verified_events``)."""
        self.verified_events(
            run_ids, (), strict=strict, legacy_ok=legacy_ok, elsewhere_ok=elsewhere_ok, summarise=summarise
        )

    def verified_events(
        self,
        run_ids: Iterable[str],
        kinds: Iterable[str],
        *,
        strict: bool = True,
        legacy_ok: bool = False,
        elsewhere_ok: bool = False,
        summarise: bool | None = None,
    ) -> list[tuple[int, str, str, str | bytes]]:
        """The ``(seq, run_id, kind, body)`` of the runs' events of ``kinds``, from the very rows their chains
        were checked on: raise ChainBroken unless every run's chain holds (``verify_runs``).

        Each run's hashes are recomputed from one summary row of its stored bytes (``chain.SUMMARY_COLUMNS``,
        ``chain.summary_holds``: no Python per event), a few hundred runs per query; a run that summary
        cannot vouch for (a broken, legacy or odd chain) is then checked row by row by
        ``chain.verify_rows``, which names its first bad event. Nothing is cached: every call reads
        and hashes every event of the runs, and what it returns is what it hashed (a row edited
        between a check and a read cannot slip in). Bodies come as stored: ``decode`` reads them.
        ``summarise``: ``_summaries_apply()`` as the caller just asked it (None: asked here).

        ``elsewhere_ok``: a run with no run_started here at all (it ran elsewhere, e.g. in CI, and only
        a later event such as its merge was recorded here) is checked from its first event here: that
        one follows nothing (an empty ``prev``), every hash recomputes and every later event follows the
        one before it (``chain.verify_rows(after=None)``). A run that has a run_started anywhere must
        begin with it, as always; a run whose run_started was deleted is refused either way (the next
        event still names the deleted one as its ``prev``; only a rewrite recomputing every later hash
        hides that, as it hides any edit of an unkeyed chain, and a keyed one needs the key for it)."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return []
        key = chain.chain_key()
        wanted, wanted_bytes = frozenset(kinds), frozenset(kind.encode() for kind in kinds)
        if summarise is None:
            summarise = self._summaries_apply()
        found: list[tuple[int, str, str, str | bytes]] = []
        for start in range(0, len(ids), SUMMARY_RUNS):
            chunk = ids[start : start + SUMMARY_RUNS]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                tails = {run_id: self._heads.get(run_id) for run_id in chunk}
                # each run's summary is split, checked and let go as it arrives (the wanted events
                # kept): a chunk's split bodies and materials are never all held at once
                held: dict[str, list[tuple[int, str, str, str | bytes]] | None] = {}  # None: doubtful
                if summarise:
                    for row in self._db.execute(
                        f"SELECT {chain.SUMMARY_COLUMNS} FROM events WHERE run_id IN ({marks}) GROUP BY run_id", chunk
                    ):
                        run_id = row[0]
                        if run_id not in tails:  # not asked for (the IN list matched it anyway): ignored
                            continue
                        split = chain.split_summary(row)
                        if split is None or not chain.summary_holds(split, key, strict=strict, tail=tails[run_id]):
                            held[run_id] = None
                        elif wanted:  # no Python per event: C-level filters
                            mask = list(map(wanted_bytes.__contains__, split.kinds))
                            held[run_id] = list(
                                zip(
                                    compress(split.seqs, mask),
                                    repeat(run_id),
                                    map(bytes.decode, compress(split.kinds, mask)),
                                    compress(split.bodies, mask),
                                )
                            )
                        else:
                            held[run_id] = []
                doubtful = []
                for run_id in chunk:
                    if run_id not in held:
                        if not summarise or tails[run_id] is not None:  # no events: only a run this process
                            doubtful.append(run_id)  # wrote to misses them
                        continue
                    events = held[run_id]
                    if events is None:
                        doubtful.append(run_id)
                    else:
                        found += events
                if not doubtful:
                    continue
                rows = self._db.execute(
                    f"SELECT {chain.ROW_COLUMNS} FROM events WHERE run_id IN ({','.join('?' * len(doubtful))}) "
                    "ORDER BY run_id, seq",
                    doubtful,
                ).fetchall()
            by_run: dict[str, list[chain.Row]] = {run_id: [] for run_id in doubtful}
            for row in rows:
                by_run[row[3]].append(row)
            for run_id, run_rows in by_run.items():
                unknown = next((row[2] for row in run_rows if row[2] not in EVENT_KINDS), None)
                if unknown is not None:  # a newer agentflow's event: say so, rather than that the chain broke
                    raise self._unreadable(f"an event of unknown kind {unknown!r}")
                begins_here = any(row[2] in _RUN_STARTED for row in run_rows)
                after = None if elsewhere_ok and not begins_here else False  # None: follows nothing
                problem = chain.verify_rows(run_id, run_rows, key, strict=strict, tail=tails[run_id], after=after)
                if problem is not None and not (legacy_ok and problem.problem == chain.LEGACY):
                    raise ChainBroken(problem, self.path)
                found += [(row[0], run_id, row[2], row[5]) for row in run_rows if row[2] in wanted]  # type: ignore[misc]
        return found

    def verified_runless(self, seqs: Iterable[int], *, strict: bool = True, legacy_ok: bool = False) -> None:
        """Raise ChainBroken unless the run-less events (merges, evaluations, overrides: one chain of
        their own) hold from the first of ``seqs`` to the last: each row's hash recomputes, each
        follows the one before it (the first, the run-less row before the span), and the run-less
        row after the span follows its last. An edit, insertion or removal there is caught (at the
        chain's very end, only one the chain cannot see: as for a run's last event); the cost
        follows the span, not the ledger."""
        wanted = sorted(set(seqs))
        if not wanted:
            return
        low, high = wanted[0], wanted[-1]
        with self._lock:
            rows = self._db.execute(
                f"SELECT {chain.ROW_COLUMNS} FROM events WHERE run_id IS NULL AND seq BETWEEN ? AND ? ORDER BY seq",
                (low, high),
            ).fetchall()
            before = self._db.execute(
                "SELECT hash FROM events WHERE run_id IS NULL AND seq < ? ORDER BY seq DESC LIMIT 1", (low,)
            ).fetchone()
            following = self._db.execute(
                "SELECT seq, kind, prev FROM events WHERE run_id IS NULL AND seq > ? ORDER BY seq LIMIT 1", (high,)
            ).fetchone()
        anchor = before[0] if before else None  # None too after a legacy row: the chain began there
        problem = chain.verify_rows("", rows, chain.chain_key(), strict=strict, after=anchor)
        if problem is None and following is not None and rows and following[2] != rows[-1][7]:
            problem = chain.ChainProblem(
                "", int(following[0]), str(following[1]), "it does not follow the previous event (removed or reordered)"
            )
        if problem is not None and not (legacy_ok and problem.problem == chain.LEGACY):
            raise ChainBroken(problem, self.path)

    def _summaries_apply(self) -> bool:
        """Whether ``chain.summary_holds`` may vouch for runs here: a UTF-8 ledger (SQLite's bytes are
        then what ``chain.digest`` hashes) whose events are all of kinds this agentflow knows (else
        the row-by-row check says which kind is unknown). The kinds come from the ``kind`` index,
        one seek per distinct kind, so this stays flat in the ledger's size."""
        if self._db.execute("PRAGMA encoding").fetchone()[0] != "UTF-8":
            return False
        kinds = self._db.execute(
            "WITH RECURSIVE k(kind) AS (SELECT min(kind) FROM events UNION ALL "
            "SELECT (SELECT min(kind) FROM events WHERE kind > k.kind) FROM k WHERE k.kind IS NOT NULL) "
            "SELECT kind FROM k WHERE kind IS NOT NULL"
        ).fetchall()
        return all(kind in EVENT_KINDS for (kind,) in kinds)

    # -- export and import (#15 item 5) ---------------------------------------------------------

    def export_run(self, run_id: str) -> list[str]:
        """The run's events as JSON Lines, exactly as stored (body text, id and chain), oldest first."""
        import json

        with self._lock:
            rows = self._db.execute(
                "SELECT eid, ts, kind, run_id, plan_id, prev, hash, body FROM events WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        if not rows or rows[0][2] != "run_started":
            raise LedgerError(f"no run {run_id!r} in the ledger", fix="list runs with `agentflow log`")
        names = ("eid", "ts", "kind", "run_id", "plan_id", "prev", "hash", "body")
        return [json.dumps(dict(zip(names, row, strict=True)), separators=(",", ":")) for row in rows]

    def import_lines(self, sources: list[tuple[str, list[str]]]) -> ImportResult:
        """Merge exported runs (``(file name, lines)`` pairs) into this ledger, idempotently by event id.

        Every run's chain is checked first (links and hashes; HMACs when the key is set); a broken
        chain, a run that does not start with run_started, or one whose events differ from the
        ledger's own events of that run (a foreign chain) refuses the whole import (nothing written).
        """
        runs: dict[str, list[tuple[Any, ...]]] = {}
        where: dict[str, str] = {}
        for name, lines in sources:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                row = _import_row(line, f"{name}:{number}")
                rows = runs.setdefault(row[3], [])
                if row[0] not in {r[0] for r in rows}:  # the same run exported twice: one copy
                    rows.append(row)
                where.setdefault(row[3], name)
        key = chain.chain_key()
        result = ImportResult()
        with self._transaction():
            for run_id, rows in runs.items():
                result.runs += 1
                result.added += self._import_run(run_id, rows, key, where[run_id])
                result.skipped += len(rows)
        result.skipped -= result.added
        return result

    def _import_run(self, run_id: str, rows: list[tuple[Any, ...]], key: str | None, name: str) -> int:
        as_chain = [
            (n, eid, kind, rid, ts, body, prev, hsh)
            for n, (eid, ts, kind, rid, _p, prev, hsh, body) in enumerate(rows, start=1)
        ]
        problem = chain.verify_rows(run_id, as_chain, key, strict=False)
        if problem is not None:
            raise LedgerError(f"refused: {problem.line()}", where=name, fix="export the run again from its runner")
        local = [r[1] for r in chain.run_rows(self._db, run_id)]
        imported = [r[0] for r in rows]
        if local != imported[: len(local)] and imported != local[: len(imported)]:
            raise LedgerError(
                f"refused: run {run_id} has a foreign chain (its events differ from the ledger's own run {run_id})",
                where=name,
                fix="import runs exported from the ledger they were recorded in, or import into a fresh ledger",
            )
        new = rows[len(local) :]
        self._db.executemany(
            "INSERT INTO events (eid, ts, kind, run_id, plan_id, prev, hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            new,
        )
        return len(new)

    # -- reading ---------------------------------------------------------------------------------

    @staticmethod
    def _where(
        run_id: str | None, kinds: Iterable[str] | None, since: datetime | None, until: datetime | None
    ) -> tuple[str, list[Any]]:
        sql, args = "1=1", []
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
        return sql, args

    def events(
        self,
        *,
        run_id: str | None = None,
        kinds: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Event]:
        """The typed (pydantic-validated) events, in order: what orchestration and the full replay use."""
        where, args = self._where(run_id, kinds, since, until)
        with self._lock:
            rows = self._db.execute(f"SELECT body FROM events WHERE {where} ORDER BY seq", args).fetchall()
        return [self._parse(body) for (body,) in rows]

    def records(
        self,
        *,
        run_id: str | None = None,
        kinds: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The events as stored JSON objects (``decode_event``), in order, never validated: the
        read-side views (``log``, ``show``, ``metrics``) read the fields they show from these."""
        where, args = self._where(run_id, kinds, since, until)
        with self._lock:
            rows = self._db.execute(f"SELECT body FROM events WHERE {where} ORDER BY seq", args).fetchall()
        return [self.decode(body) for (body,) in rows]

    def decode(self, body: str | bytes) -> dict[str, Any]:
        """One stored event as its JSON object (orjson; no pydantic validation, only its kind and
        required fields are checked). A row no view can read (not a JSON object, an unknown kind, a
        required field missing) is bad input, with the same line as ``_parse``."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise self._unreadable("an event agentflow cannot read (its body is not a JSON object)", known=True)
        kind = data.get("kind")
        required = REQUIRED_FIELDS.get(kind) if isinstance(kind, str) else None
        if required is None:
            if kind is None:
                raise self._unreadable("an event agentflow cannot read (kind: Field required)", known=True)
            raise self._unreadable(f"an event of unknown kind {kind!r}")
        for name in required:
            if name not in data:
                raise self._unreadable(f"a {kind!r} event agentflow cannot read ({name}: Field required)", known=True)
        return data

    def _unreadable(self, problem: str, *, known: bool = False) -> LedgerError:
        """``known``: not a newer agentflow's event, but a row changed outside agentflow."""
        fix = (
            "the ledger was changed outside agentflow: move the file aside to start a new ledger and keep it to inspect"
            if known
            else "a newer agentflow wrote it: upgrade agentflow, or move the file aside to start a new ledger"
        )
        return LedgerError(f"the ledger holds {problem}", where=self.path, fix=fix)

    def _parse(self, body: str) -> Event:
        """One stored event; a row agentflow cannot read (an unknown kind, a broken body) is bad input."""
        import json

        from agentflow.events import parse_event

        try:
            return parse_event(body)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            try:
                data = json.loads(body)
                kind = data.get("kind") if isinstance(data, dict) else None
            except ValueError:
                data, kind = None, None
            if kind is not None and kind not in EVENT_KINDS:
                problem, fix = (
                    f"an event of unknown kind {kind!r}",
                    "a newer agentflow wrote it: upgrade agentflow, or move the file aside to start a new ledger",
                )
            else:
                what = f"a {kind!r} event" if kind else "an event"
                reason = "its body is not a JSON object" if not isinstance(data, dict) else _first_error(exc)
                problem, fix = (
                    f"{what} agentflow cannot read ({reason})",
                    "the ledger was changed outside agentflow: move the file aside to start a new ledger "
                    "and keep it to inspect",
                )
            raise LedgerError(f"the ledger holds {problem}", where=self.path, fix=fix) from None

    # the kinds a metrics report reads of each run (model calls only of sessions that never ended)
    WINDOW_KINDS = ("run_started", "session_started", "session_ended", "verdict_recorded", "run_ended")

    def window_records(
        self, start: datetime, end: datetime | None = None, *, strict: bool, legacy_ok: bool
    ) -> list[dict[str, Any]]:
        """What a report of the time from ``start`` to ``end`` (None: now) reads, as stored JSON
        objects in order: the ``WINDOW_KINDS`` events of runs started in it, the model calls of their
        sessions that never ended, the merges, evaluations and run-less events (overrides) in it,
        and the last evaluation before it (what the first one in it is compared with).

        The runs' events are read with their chains' check (``verified_events``: ChainBroken unless
        each holds, ``strict`` and ``legacy_ok`` as there), so what the report folds is what was
        hashed; the run-less rows it reads are checked as a span of their chain
        (``verified_runless``), the merges and evaluations of earlier runs with those runs' chains. Every query goes through an index on (kind, ts), (run_id, seq) or the run-less
        rows' ts, so the cost follows the window's runs and events, not the ledger's size."""
        since = start.isoformat()
        until = "9999" if end is None else end.isoformat()  # after every stored time
        with self._lock:
            runs = [
                run_id
                for (run_id,) in self._db.execute(
                    "SELECT run_id FROM events WHERE kind = 'run_started' AND ts >= ? AND ts < ? ORDER BY seq",
                    (since, until),
                )
                if run_id
            ]
            summarise = self._summaries_apply()  # asked once for the checks below (it only picks the path)
            picked: dict[int, tuple[str | None, str, str | bytes]] = {
                seq: (run_id, kind, body)
                for seq, run_id, kind, body in self.verified_events(
                    runs, self.WINDOW_KINDS, strict=strict, legacy_ok=legacy_ok, summarise=summarise
                )
            }
            for seq, run_id, kind, body in self._db.execute(
                "SELECT seq, run_id, kind, body FROM events WHERE kind IN ('merged', 'findings_recorded') "
                "AND ts >= ? AND ts < ?",
                (since, until),
            ):
                picked[seq] = (run_id, kind, body)
            for seq, kind, body in self._db.execute(
                "SELECT seq, kind, body FROM events INDEXED BY events_runless_ts "
                "WHERE run_id IS NULL AND ts >= ? AND ts < ? AND kind NOT IN ('merged', 'findings_recorded')",
                (since, until),
            ):
                picked[seq] = (None, kind, body)
            earlier = self._db.execute(
                "SELECT seq, run_id, body FROM events WHERE kind = 'findings_recorded' AND ts < ? ORDER BY ts DESC",
                (since,),
            )
            while (row := earlier.fetchone()) is not None:
                if self.decode(row[2]).get("source", "evaluator") == "evaluator":
                    picked[row[0]] = (row[1], "findings_recorded", row[2])
                    break
            # what the runs' check above did not cover: the run-less rows (their own chain) and the
            # merges and evaluations of runs started before the window (those runs' chains)
            self.verified_runless(
                (seq for seq, (run_id, _, _) in picked.items() if run_id is None), strict=strict, legacy_ok=legacy_ok
            )
            in_window = set(runs)
            others = sorted({run_id for run_id, _, _ in picked.values() if run_id and run_id not in in_window})
            # (a merged run with no run_started here ran elsewhere, e.g. in CI: its events here are checked)
            self.verify_runs(others, strict=strict, legacy_ok=legacy_ok, elsewhere_ok=True, summarise=summarise)
            decode = self.decode
            records = {seq: decode(body) for seq, (_, _, body) in picked.items()}
            started = {r["session_id"] for r in records.values() if r["kind"] == "session_started"}
            unended = started - {r["session_id"] for r in records.values() if r["kind"] == "session_ended"}
            if unended:  # a session that never ended is paid for call by call: its run's model calls
                open_runs = sorted({r["run_id"] for r in records.values() if r.get("session_id") in unended})
                for seq, _, _, body in self.verified_events(
                    open_runs, ("model_called",), strict=strict, legacy_ok=legacy_ok, summarise=summarise
                ):
                    records[seq] = decode(body)
        return [records[seq] for seq in sorted(records)]

    def transcript(self, session_id: str) -> list[Any] | None:
        """The session's messages in order (one row each; sessions from before migration 3: one JSON array)."""
        import json

        with self._lock:
            rows = self._db.execute(
                "SELECT message FROM transcript_messages WHERE session_id = ? ORDER BY n", (session_id,)
            ).fetchall()
            if rows:
                return [json.loads(message) for (message,) in rows]
            row = self._db.execute("SELECT messages FROM transcripts WHERE session_id = ?", (session_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def run_ids(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT run_id FROM events WHERE kind = 'run_started' ORDER BY seq")
            return [r[0] for r in rows]

    def chained_run_ids(self) -> list[str]:
        """Every run any event here belongs to, with a run_started here or not (a run from CI whose
        merge was recorded here): the chains ``agentflow log`` checks."""
        with self._lock:
            rows = self._db.execute(
                "SELECT run_id FROM events WHERE run_id IS NOT NULL GROUP BY run_id ORDER BY min(seq)"
            )
            return [r[0] for r in rows]

    def runless_seqs(self) -> list[int]:
        """The sequence numbers of the events of no run (merges, evaluations, overrides): their own chain."""
        with self._lock:
            return [seq for (seq,) in self._db.execute("SELECT seq FROM events WHERE run_id IS NULL ORDER BY seq")]

    def has_run(self, run_id: object) -> bool:
        """Whether the ledger holds a run ``run_id`` (its run_started), through the ``run_id`` index."""
        if not isinstance(run_id, str):
            return False
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM events WHERE run_id = ? AND +kind = 'run_started' LIMIT 1", (run_id,)
            ).fetchone()
        return row is not None

    def other_branches(self, run_id: str) -> set[str]:
        """The branches (``refs/heads/...``) the ledger's runs but ``run_id`` build on, from their
        run_started events (``Run.check_pending``: what other runs may have made or moved meanwhile)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT json_extract(body, '$.branch') FROM events "
                "WHERE kind = 'run_started' AND run_id IS NOT ?",
                (run_id,),
            ).fetchall()
        return {f"refs/heads/{branch}" for (branch,) in rows if isinstance(branch, str) and branch}

    def other_runs(self, run_id: str) -> OtherRuns:
        """The runs of this ledger but ``run_id``, as a container asked one id at a time (``in``):
        what a session's tampering check asks about the verdict lines that appeared meanwhile, without
        listing every run of the ledger (``run_ids`` grows with it)."""
        return OtherRuns(self, run_id)

    def recent_run_ids(self, limit: int = 5) -> list[str]:
        """The ``limit`` runs started last, oldest first (through the kind index: no scan of all runs)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT run_id FROM events WHERE kind = 'run_started' ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [r[0] for r in reversed(rows)]

    def interrupted(self, run_id: str) -> bool:
        """Whether the run, not ended, was stopped during a session (Ctrl-C): its last session event
        is a ``session_ended`` of status ``interrupted``, with no ``run_resumed`` after it. One row
        through the ``run_id`` index (``status`` asks it of runs in progress only)."""
        import json

        with self._lock:
            row = self._db.execute(
                "SELECT kind, body FROM events WHERE run_id = ? AND +kind IN "
                "('session_started', 'session_ended', 'run_resumed', 'run_ended') ORDER BY seq DESC LIMIT 1",
                (run_id,),
            ).fetchone()
        if row is None or row[0] != "session_ended":
            return False
        try:
            return json.loads(row[1]).get("status") == "interrupted"
        except (ValueError, AttributeError):
            return False  # a damaged row: the chain check of `log`/`show` names it

    def match_runs(self, ref: str, limit: int = 6) -> list[str]:
        """Run ids equal to ``ref``, else starting with it (at most ``limit``, in start order),
        through the ``run_id`` index: resolving ``show``'s argument never lists every run."""
        with self._lock:
            exact = self._db.execute(
                "SELECT 1 FROM events WHERE run_id = ? AND +kind = 'run_started' LIMIT 1", (ref,)
            ).fetchone()
            if exact or not ref:
                return [ref] if exact else []
            upper = ref[:-1] + chr(ord(ref[-1]) + 1)  # the first string after every one ``ref`` begins
            rows = self._db.execute(
                "SELECT run_id, MIN(seq) AS first FROM events WHERE run_id >= ? AND run_id < ? "
                "AND +kind = 'run_started' GROUP BY run_id ORDER BY first LIMIT ?",
                (ref, upper, limit),
            ).fetchall()
        return [r[0] for r in rows]

    # -- projections -----------------------------------------------------------------------------

    def run(self, run_id: str) -> RunView:
        from agentflow.events import RunStarted
        from agentflow.runview import project_run

        events = self.events(run_id=run_id)
        if not events or not isinstance(events[0], RunStarted):
            raise LedgerError(f"no run {run_id!r} in the ledger", fix="list runs with `agentflow log`")
        return project_run(events)

    def runs(self) -> list[RunView]:
        from agentflow.events import RunStarted
        from agentflow.runview import project_run

        by_run: dict[str, list[Event]] = {}
        for event in self.events():
            if event.run_id:
                by_run.setdefault(event.run_id, []).append(event)
        return [project_run(evs) for evs in by_run.values() if isinstance(evs[0], RunStarted)]

    def plan_states(self) -> dict[str, PlanState]:
        """The latest state of each plan that has runs, keyed by plan id (what ``status`` shows).

        Read from the derived tables of ``PlanProjection`` (one row per plan), caught up first with
        the events appended since the sequence number they were computed at, and rebuilt from the
        events when missing, of another version or ahead of the events. The events stay the record:
        ``plan_states_replay`` computes the same from a full replay of the typed events. A
        read-only ledger is projected in memory instead.
        """
        with self._lock:
            return PlanProjection(self).states()

    def plan_states_replay(self) -> dict[str, PlanState]:
        """``plan_states`` from a full replay of the typed events (the reference the projection equals)."""
        from agentflow.events import Merged

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
        from agentflow.events import FindingsRecorded

        latest: FindingsRecorded | None = None
        for event in self.events(kinds=["findings_recorded"]):
            assert isinstance(event, FindingsRecorded)
            if event.source == source:
                latest = event
        return list(latest.findings) if latest else []


# -- derived tables: the projection behind ``status`` ----------------------------------------------

PROJECTION_VERSION = 2  # bump when what the tables hold changes: every ledger rebuilds them once
VIEW_TABLES = ("view_meta", "view_runs", "view_plans", "view_merged")
VIEW_SCHEMA = """
CREATE TABLE IF NOT EXISTS view_meta (
    name TEXT PRIMARY KEY, version INTEGER NOT NULL, seq INTEGER NOT NULL, anchor TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS view_runs (
    run_id TEXT PRIMARY KEY, ok INTEGER NOT NULL, plan_id TEXT,
    cost_usd REAL NOT NULL, cycles INTEGER NOT NULL, outcome TEXT
);
CREATE TABLE IF NOT EXISTS view_plans (
    plan_id TEXT PRIMARY KEY, first_seq INTEGER NOT NULL, runs INTEGER NOT NULL,
    cost_usd REAL NOT NULL, last_run TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS view_merged (plan_id TEXT PRIMARY KEY)
"""
_PROJECTED_KINDS = ("run_started", "session_started", "session_ended", "run_ended", "merged")


class PlanProjection:
    """Plan states as derived tables, keyed by the last sequence number folded into them.

    ``view_runs`` holds per run whether it began with ``run_started``, its plan, cost, cycles and
    outcome; ``view_plans`` per plan its run count, total cost and last run; ``view_merged`` the
    plans ever merged; ``view_meta`` the version and the sequence number they are current at, with
    that event's anchor (its hash, id and time). Nothing here is a record: drop any of the tables
    and the next read rebuilds them all from the events; events appended since are folded in (only
    the five kinds this projection reads, through the ``kind`` index); ``run_started`` and
    ``merged`` are read from the ``plan_id`` column without decoding their bodies. Used under the
    ledger's lock.

    Tables whose anchor is not the event at their sequence number (events rewritten or removed
    since, a ``view_meta`` ahead of the events or forged) or with another number of merged plans
    than the ``merged`` events are rebuilt. Whoever can write the ledger file can still write
    tables that pass these checks (the events' chain is what is verified), so nothing that decides
    (merge, the gate, resume) reads them: only ``status`` and ``plan list`` show them.
    """

    NAME = "plan_states"

    def __init__(self, ledger: Ledger):
        self.ledger, self.db = ledger, ledger._db
        self.runs: dict[str, list[Any]] = {}  # run id -> [ok, plan, cost, cycles, outcome]
        self.plans: dict[str, list[Any]] = {}  # plan id -> [first seq, runs, cost, last run]
        self.merged: set[str] = set()
        self.stored = True  # False: computed in memory (a read-only ledger), nothing to look up

    def states(self) -> dict[str, PlanState]:
        top = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        if self._current() == top and self._merged_agree(top):
            return self._read()
        try:
            with self.ledger._transaction():
                self._catch_up()
        except LedgerError as exc:
            if "read-only" not in str(exc):
                raise
            return self._in_memory()  # reading a read-only ledger works; it only is not cached
        return self._read()

    def _current(self) -> int | None:
        """The sequence number the tables are current at; None when they need a rebuild."""
        count = self.db.execute(
            f"SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ({','.join('?' * len(VIEW_TABLES))})",
            VIEW_TABLES,
        ).fetchone()[0]
        if count != len(VIEW_TABLES):
            return None
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(view_meta)").fetchall()}
        if "anchor" not in columns:
            return None  # another version's table
        row = self.db.execute("SELECT version, seq, anchor FROM view_meta WHERE name = ?", (self.NAME,)).fetchone()
        if row is None or row[0] != PROJECTION_VERSION or row[2] != self._anchor(row[1]):
            return None  # of another version, or not describing these events (rewritten, ahead, forged)
        return int(row[1])

    def _anchor(self, seq: Any) -> str:
        """What identifies the event at ``seq`` (its chain hash, id and time): "" when there is none."""
        row = self.db.execute("SELECT hash, eid, ts FROM events WHERE seq = ?", (seq,)).fetchone()
        return "" if row is None else f"{row[0]}:{row[1]}:{row[2]}"

    def _merged_agree(self, upto: int) -> bool:
        """As many merged plans in the tables as in the ``merged`` events up to ``upto`` (few: one per
        merge): a row added to or dropped from ``view_merged`` would show a plan merged, or not, wrongly."""
        events = self.db.execute(
            "SELECT COUNT(DISTINCT plan_id) FROM events WHERE kind = 'merged' AND plan_id IS NOT NULL AND seq <= ?",
            (upto,),
        ).fetchone()[0]
        legacy = self.db.execute(
            "SELECT 1 FROM events WHERE kind = 'merged' AND plan_id IS NULL AND seq <= ? LIMIT 1", (upto,)
        ).fetchone()
        return legacy is not None or events == self.db.execute("SELECT COUNT(*) FROM view_merged").fetchone()[0]

    def _catch_up(self) -> None:
        top = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        current = self._current()  # again: another process may have caught up meanwhile
        if current is not None and (current > top or not self._merged_agree(current)):
            current = None  # events were removed, or the tables were written by someone else
        if current is None:
            for table in VIEW_TABLES:
                self.db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in VIEW_SCHEMA.split(";"):
                self.db.execute(statement)
            current = 0
            self.stored = False  # nothing stored to look up while rebuilding
        if current < top:
            self._fold(current)
            self.db.executemany("INSERT OR REPLACE INTO view_runs VALUES (?, ?, ?, ?, ?, ?)", self._run_rows())
            self.db.executemany(
                "INSERT OR REPLACE INTO view_plans VALUES (?, ?, ?, ?, ?)",
                [(plan, *values) for plan, values in self.plans.items()],
            )
            self.db.executemany("INSERT OR IGNORE INTO view_merged VALUES (?)", [(p,) for p in self.merged])
        self.db.execute(
            "INSERT OR REPLACE INTO view_meta (name, version, seq, anchor) VALUES (?, ?, ?, ?)",
            (self.NAME, PROJECTION_VERSION, top, self._anchor(top)),
        )

    def _run_rows(self) -> list[tuple[Any, ...]]:
        return [(run_id, *values) for run_id, values in self.runs.items()]

    def _run(self, run_id: str) -> list[Any] | None:
        run = self.runs.get(run_id)
        if run is None and self.stored:
            row = self.db.execute(
                "SELECT ok, plan_id, cost_usd, cycles, outcome FROM view_runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is not None:
                run = self.runs[run_id] = list(row)
        return run

    def _plan(self, plan_id: str) -> list[Any] | None:
        plan = self.plans.get(plan_id)
        if plan is None and self.stored:
            row = self.db.execute(
                "SELECT first_seq, runs, cost_usd, last_run FROM view_plans WHERE plan_id = ?", (plan_id,)
            ).fetchone()
            if row is not None:
                plan = self.plans[plan_id] = list(row)
        return plan

    def _fold(self, after: int) -> None:
        """Fold the projected events with a sequence number above ``after`` into the dicts."""
        decode = self.ledger.decode
        rows = self.db.execute(
            f"SELECT seq, run_id, kind, plan_id, body FROM events WHERE kind IN ({','.join('?' * 5)}) "
            "AND seq > ? ORDER BY seq",
            (*_PROJECTED_KINDS, after),
        )
        for seq, run_id, kind, plan_id, body in rows:
            if kind in ("run_started", "merged") and plan_id is None:
                plan_id = decode(body).get("plan_id")  # rows from before the plan_id column
            if kind == "merged":
                if plan_id is not None:
                    self.merged.add(plan_id)
                continue
            if not run_id:
                continue
            run = self._run(run_id)
            if run is None:
                ok = kind == "run_started"  # a run must begin with run_started to count
                run = self.runs[run_id] = [ok, plan_id if ok else None, 0.0, 0, None]
                if ok and plan_id is not None:
                    plan = self._plan(plan_id)
                    if plan is None:
                        plan = self.plans[plan_id] = [seq, 0, 0.0, run_id]
                    plan[1] += 1
                    plan[3] = run_id
            if kind == "session_started":
                run[3] = max(run[3], decode(body).get("cycle", 1))
            elif kind == "session_ended":
                cost = decode(body).get("cost_usd", 0.0)
                run[2] += cost
                if run[0] and run[1] is not None:
                    plan = self._plan(run[1])
                    if plan is not None:
                        plan[2] += cost
            elif kind == "run_ended":
                data = decode(body)
                run[4] = data["outcome"]
                run[3] = max(run[3], data.get("cycles", 0))

    def _read(self) -> dict[str, PlanState]:
        rows = self.db.execute(
            "SELECT p.plan_id, p.runs, p.cost_usd, p.last_run, r.outcome, r.cycles, m.plan_id IS NOT NULL "
            "FROM view_plans p JOIN view_runs r ON r.run_id = p.last_run "
            "LEFT JOIN view_merged m ON m.plan_id = p.plan_id ORDER BY p.first_seq"
        ).fetchall()
        return {row[0]: self._state(*row) for row in rows}

    def _in_memory(self) -> dict[str, PlanState]:
        self.runs, self.plans, self.merged, self.stored = {}, {}, set(), False
        self._fold(0)
        ordered = sorted(self.plans.items(), key=lambda item: item[1][0])
        return {
            plan: self._state(plan, runs, cost, last, self.runs[last][4], self.runs[last][3], plan in self.merged)
            for plan, (_first, runs, cost, last) in ordered
        }

    @staticmethod
    def _state(
        plan_id: str, runs: int, cost: float, last_run: str, outcome: str | None, cycles: int, merged: Any
    ) -> PlanState:
        state = "merged" if merged else (outcome or "in progress")
        return PlanState(plan_id, state, outcome, last_run, runs, cycles, cost)


class OtherRuns:
    """``Ledger.other_runs``: ``run_id in runs`` looks the one id up (a plain class: every view
    imports this module, and each dataclass costs it about 1 ms at start-up)."""

    __slots__ = ("ledger", "own")

    def __init__(self, ledger: Ledger, own: str) -> None:
        self.ledger, self.own = ledger, own

    def __contains__(self, run_id: object) -> bool:
        return run_id != self.own and self.ledger.has_run(run_id)


@dataclass
class ImportResult:
    runs: int = 0
    added: int = 0
    skipped: int = 0  # already in the ledger


def _import_row(line: str, where: str) -> tuple[Any, ...]:
    """One exported event line as an events row (eid, ts, kind, run_id, plan_id, prev, hash, body)."""
    import json

    fix = "import files written by `agentflow ledger export`"
    try:
        data = json.loads(line)
    except ValueError:
        raise LedgerError("not a JSON object (an exported ledger event)", where=where, fix=fix) from None
    names = ("eid", "ts", "kind", "run_id", "body", "hash")
    if not isinstance(data, dict) or not all(isinstance(data.get(n), str) and data.get(n) for n in names):
        raise LedgerError(f"an exported event needs the string fields {', '.join(names)}", where=where, fix=fix)
    for optional in ("plan_id", "prev"):
        if data.get(optional) is not None and not isinstance(data[optional], str):
            raise LedgerError(f"{optional}: must be a string or null", where=where, fix=fix)
    try:
        body = json.loads(data["body"])
    except ValueError:
        raise LedgerError("body: not JSON", where=where, fix=fix) from None
    if not isinstance(body, dict) or body.get("kind") != data["kind"] or body.get("run_id") != data["run_id"]:
        raise LedgerError("body: its kind and run_id differ from the line's", where=where, fix=fix)
    return tuple(data.get(n) for n in ("eid", "ts", "kind", "run_id", "plan_id", "prev", "hash", "body"))


@dataclass
class PlanState:
    plan_id: str
    state: str = "not started"
    last_outcome: str | None = None
    last_run: str | None = None
    runs: int = 0
    cycles: int = 0
    cost_usd: float = 0.0


def dump_event(event: Event) -> dict[str, Any]:
    from agentflow.events import event_adapter

    return event_adapter.dump_python(event, mode="json")


def _first_error(exc: ValueError) -> str:
    """The first problem pydantic found, as ``field: message`` (its own first line names only the union)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())[1:])  # [0] is the union's tag
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(exc).splitlines()[0]
