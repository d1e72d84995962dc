"""The ledger's hash chain (#13 item 2): each event of a run carries the hash of the one before it.

An event's ``hash`` covers its id, kind, run, time, body and ``prev`` (the previous event's hash in
the same run; empty for ``run_started``; the events of no run, merges, evaluations and overrides,
chain among themselves, and a report checks the span it reads: ``verify_rows(after=...)``). With a
signing key configured (``agentflow.keys``) the hash is an HMAC-SHA256 with that key
(``hmac:...``), else a plain SHA-256 (``sha256:...``).

What it detects: a row inserted, edited, deleted or reordered inside a run by someone who did not
recompute the hashes after it (plain ``sqlite3``), every forgery without the key when the chain is
keyed, and (through the chain head a verdict note records, and the head the running process keeps)
events removed from the end of a run. What an unkeyed chain cannot detect: someone who rewrites a
run and recomputes every SHA-256 after the change, while no process holds the run and no note
records a later head. Runs started before the chain (events without hashes) are "legacy": readable,
never resumed or trusted for approval.

This module imports no pydantic: the gate (run from git hooks) calls ``ledger_chain_problem``.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from itertools import repeat
from pathlib import Path
from typing import NamedTuple

KEYED, PLAIN = "hmac:", "sha256:"
# a chain row: (seq, eid, kind, run_id, ts, body, prev, hash)
Row = Sequence[object]
ROW_COLUMNS = "seq, eid, kind, run_id, ts, body, prev, hash"


def chain_key() -> str | None:
    """The key chains are keyed with: the signing key (read once per process by ``agentflow.keys``)."""
    from agentflow.keys import signing_key

    return signing_key()


def digest(key: str | None, prev: str | None, eid: str, kind: str, run_id: str | None, ts: str, body: str) -> str:
    material = "\x1f".join((prev or "", eid, kind, run_id or "", ts, body)).encode()
    if key:
        import hmac  # keyed chains only: the views of an unkeyed ledger never import it (#19 item 1)

        return KEYED + hmac.new(key.encode(), material, hashlib.sha256).hexdigest()
    return PLAIN + hashlib.sha256(material).hexdigest()


class ChainProblem(NamedTuple):  # a NamedTuple, as ``Summary``: half a frozen dataclass's cost at import
    run_id: str
    seq: int | None
    kind: str | None
    problem: str

    def line(self) -> str:
        at = f"event {self.seq} ({self.kind})" if self.seq is not None else "its chain"
        who = f"run {self.run_id}" if self.run_id else "the run-less events (merges, evaluations, overrides)"
        return f"ledger chain of {who} is broken at {at}: {self.problem}"


LEGACY = "started before the ledger's hash chain (legacy run)"


def verify_rows(
    run_id: str,
    rows: Iterable[Row],
    key: str | None,
    *,
    strict: bool = True,
    tail: str | None = None,
    contains: str | None = None,
    after: str | None | bool = False,
) -> ChainProblem | None:
    """The first problem of a run's chain (rows in ``seq`` order), or None when it holds.

    ``strict``: a keyed chain needs the key to be checked (without it only the links are checked
    when not strict), and with a key every hash must be keyed (no downgrade to SHA-256).
    ``tail``: the hash the chain must end with (the head this process appended last).
    ``contains``: a hash the chain must contain (the head a verdict note recorded).
    ``after``: the rows are a segment of a chain, not a whole run (the run-less events of a period):
    the first follows ``after`` (the hash of the chain's row before it; None: it is the first).
    """
    segment = after is not False
    running: str | None = after if isinstance(after, str) else None
    seen: set[str] = set()
    first = True
    last: Row | None = None
    for row in rows:
        seq, eid, kind, rid, ts, body, prev, hsh = row
        last = row
        if any(isinstance(value, bytes) for value in row):  # a blob (sqlite3): its bytes are its text
            try:
                eid, kind, rid, ts, body, prev, hsh = (
                    v.decode() if isinstance(v, bytes) else v for v in (eid, kind, rid, ts, body, prev, hsh)
                )
            except UnicodeDecodeError:
                return ChainProblem(
                    run_id, int(seq), None, "the event's columns are not text (written outside agentflow)"
                )  # type: ignore[call-overload]
        where = (run_id, int(seq), str(kind))  # type: ignore[call-overload]
        if first:
            first = False
            if kind != "run_started" and not segment:
                return ChainProblem(*where, "the run does not begin with run_started")
            if hsh is None:
                return ChainProblem(run_id, None, None, LEGACY)
        if not isinstance(hsh, str) or not eid:
            return ChainProblem(*where, "the event has no hash (written outside agentflow)")
        if (prev or None) != running:
            return ChainProblem(*where, "it does not follow the previous event (inserted, removed or reordered)")
        if hsh.startswith(KEYED):
            if key:
                if not _compare_digest(hsh, digest(key, prev, eid, kind, rid, ts, body)):  # type: ignore[arg-type]
                    return ChainProblem(*where, "its HMAC does not match (edited, or forged without the signing key)")
            elif strict:
                return ChainProblem(
                    *where, "the chain is keyed and no signing key is set to check it (set AGENTFLOW_SIGNING_KEY)"
                )
        elif hsh.startswith(PLAIN):
            if key and strict:
                return ChainProblem(*where, "the event is not keyed with the signing key (forged or downgraded)")
            if hsh != digest(None, prev, eid, kind, rid, ts, body):  # type: ignore[arg-type]
                return ChainProblem(*where, "its hash does not match its content (edited)")
        else:
            return ChainProblem(*where, "the event's hash is malformed")
        running = hsh
        seen.add(hsh)
    if tail is not None and running != tail:
        seq = int(last[0]) if last is not None else None  # type: ignore[call-overload]
        kind = str(last[2]) if last is not None else None
        return ChainProblem(run_id, seq, kind, "events were added to or removed from this run by another writer")
    if contains is not None and contains not in seen:
        return ChainProblem(
            run_id,
            None,
            None,
            f"its verdict note records chain head {contains[:20]}, which the ledger no longer holds (events removed)",
        )
    return None


# One row per run: what ``summary_holds`` checks. Each column joins the run's values in the order
# SQLite aggregates its rows (the same order in every column; ``seqs`` tells whether it is ``seq``'s),
# with a comma (no value agentflow writes holds one: ids, kinds, times, hashes, numbers) or, for the
# bodies, a 0x1e byte (JSON escapes it). A value holding its separator, or a NULL (which
# group_concat skips; ``filled`` counts, per row, the values that are neither NULL nor an empty
# event id: 5 a row), changes a column's count, and the exact check decides. The hash material
# (``digest``'s join) is put together in Python from these columns' bytes (``split_summary``):
# SQLite concatenating it row by row cost more than the hashing. Every aggregate costs each row a
# call (16 of them were 7 ms of the 10 at 5.7k events): ``filled`` is one sum, not six, and that the
# run begins with run_started is read from the split kinds, in ``seq`` order.
SUMMARY_COLUMNS = (
    "run_id, count(*), group_concat(seq), group_concat(coalesce(prev, '')), group_concat(hash), "
    "CAST(group_concat(eid) AS BLOB), CAST(group_concat(kind) AS BLOB), CAST(group_concat(ts) AS BLOB), "
    "CAST(group_concat(body, x'1e') AS BLOB), "
    "sum((eid IS NOT NULL AND eid != '') + (hash IS NOT NULL) + (kind IS NOT NULL) + (ts IS NOT NULL) "
    "+ (body IS NOT NULL))"
)
_HEX = type(hashlib.sha256()).hexdigest
# ``hmac.compare_digest`` is this function (OpenSSL's constant-time compare); taken from
# ``_hashlib`` so that a view of an unkeyed ledger does not import ``hmac`` (about 1 ms)
try:
    from _hashlib import compare_digest as _compare_digest
except ImportError:  # a Python without OpenSSL: hmac's own
    from hmac import compare_digest as _compare_digest
_DIGEST = type(hashlib.sha256()).digest


@functools.cache
def _hmac_pads(key: str) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer key blocks (RFC 2104): the key (hashed when over a block long)
    padded to SHA-256's 64-byte block, XORed with 0x36 and with 0x5c."""
    block = key.encode()
    if len(block) > 64:
        block = hashlib.sha256(block).digest()
    block = block.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def hmac_hexes(key: str, materials: Iterable[bytes]) -> Iterable[str]:
    """``hmac.new(key, m, sha256).hexdigest()`` of each material, as C calls only: the two SHA-256
    passes of HMAC with the key blocks prefixed (``hmac.digest`` per event set up OpenSSL's HMAC
    each time, 2.6x slower)."""
    inner_pad, outer_pad = _hmac_pads(key)
    inner = map(_DIGEST, map(hashlib.sha256, map(inner_pad.__add__, materials)))
    return map(_HEX, map(hashlib.sha256, map(outer_pad.__add__, inner)))


class Summary(NamedTuple):
    """One run's events as its ``SUMMARY_COLUMNS`` row holds them, split per event, in ``seq`` order:
    their sequence numbers, kinds and bodies (the stored bytes), and the columns their hash material
    is joined from (``materials``). A NamedTuple, not a frozen dataclass: every view that checks a
    chain imports this module, and a frozen dataclass costs about twice as much to define (#19 item 1)."""

    run_id: str
    seqs: list[int]
    kinds: list[bytes]
    bodies: list[bytes]
    prevs: str
    hashes: str
    parts: tuple[list[bytes], list[bytes], list[bytes]]  # each event's prev, eid and ts

    def each_material(self) -> Iterable[bytes]:
        """Each event's hash material (``digest``'s: prev, eid, kind, run, ts and body joined by 0x1f,
        as UTF-8 bytes), made one at a time as it is consumed: hashed while still in the cache,
        never all held at once."""
        prev_list, eid_list, ts_list = self.parts
        run = repeat(self.run_id.encode(), len(self.seqs))
        return map(b"\x1f".join, zip(prev_list, eid_list, self.kinds, run, ts_list, self.bodies, strict=True))

    @property
    def materials(self) -> list[bytes]:
        return list(self.each_material())


def split_summary(row: Row) -> Summary | None:
    """The run's events from its summary row; None when the row does not split into exactly its
    ``count(*)`` events (a NULL, a separator inside a value), in ``seq`` order, beginning with
    run_started, each with an event id (then ``verify_rows`` decides, on the run's rows)."""
    run_id, count, seqs, prevs, hashes, eids, kinds, tss, bodies, filled = row
    n = int(count)  # type: ignore[call-overload]
    if not (n and filled == 5 * n and isinstance(run_id, str)):
        return None
    if not (isinstance(prevs, str) and isinstance(hashes, str) and isinstance(seqs, str)):
        return None
    if not all(isinstance(column, bytes) for column in (eids, kinds, tss, bodies)):
        return None
    columns = (prevs.encode().split(b","), eids.split(b","), kinds.split(b","), tss.split(b","))  # type: ignore[union-attr]
    body_list = bodies.split(b"\x1e")  # type: ignore[union-attr]
    if len(body_list) != n or hashes.count(",") != n - 1 or any(len(column) != n for column in columns):
        return None
    order = list(map(int, seqs.split(",")))
    if len(order) != n or order != sorted(order):
        return None
    prev_list, eid_list, kind_list, ts_list = columns
    if kind_list[0] != b"run_started":  # the first event, by seq
        return None
    return Summary(run_id, order, kind_list, body_list, prevs, hashes, (prev_list, eid_list, ts_list))


def summary_holds(
    summary: Row | Summary | None, key: str | None, *, strict: bool = True, tail: str | None = None
) -> bool:
    """True only when ``verify_rows`` finds no problem in the run ``summary`` (a ``SUMMARY_COLUMNS``
    row, or ``split_summary``'s split of one) describes; False when it may find one (then it decides,
    on the run's rows).

    The rows' hashes are recomputed from their stored bytes, a few C calls per run rather than
    Python per row: the same definition (``digest``), the same links, the same first event."""
    split = summary if isinstance(summary, Summary) or summary is None else split_summary(summary)
    if split is None:
        return False
    hashes, prevs = split.hashes, split.prevs
    # links: the first event has no prev, every other one the hash of the event before it
    last = hashes.rsplit(",", 1)[-1]
    if ("," + hashes)[: -len(last) - 1] != prevs or (tail is not None and last != tail):
        return False
    if hashes.startswith(PLAIN):
        if key and strict:
            return False
        expected = PLAIN + ("," + PLAIN).join(map(_HEX, map(hashlib.sha256, split.each_material())))
        return expected == hashes
    if hashes.startswith(KEYED):
        if key:
            expected = KEYED + ("," + KEYED).join(hmac_hexes(key, split.each_material()))
            return _compare_digest(expected.encode(), hashes.encode())
        return not strict and all(h.startswith(KEYED) for h in hashes.split(","))
    return False


def run_rows(db: sqlite3.Connection, run_id: str) -> list[Row]:
    return db.execute(f"SELECT {ROW_COLUMNS} FROM events WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()


def _gate_rows(path: Path, run_id: str, query: str) -> list[Row] | None:
    db = sqlite3.connect(f"{path.absolute().as_uri()}?{query}", uri=True, timeout=30)  # `?`, `#`, `%` quoted
    try:
        columns = {r[1] for r in db.execute("PRAGMA table_info(events)")}
        return run_rows(db, run_id) if "hash" in columns else None
    finally:
        db.close()


def ledger_chain_problem(root: Path, run_id: str, head: str | None, key: str | None) -> str | None:
    """For the gate: one line when the local ledger holds ``run_id`` and its chain is broken or no
    longer holds ``head`` (the chain head the verdict note recorded); None when there is no ledger,
    the ledger does not hold the run (a fresh CI clone), or the chain holds."""
    path = root / ".agentflow" / "ledger.db"
    if not path.exists():
        return None
    try:
        rows = _gate_rows(path, run_id, "mode=ro")
    except sqlite3.DatabaseError as exc:
        wal = path.with_name(path.name + "-wal")
        if "readonly" not in str(exc) or (wal.exists() and wal.stat().st_size):
            return f"the ledger {path} cannot be read to check run {run_id}: {exc}"
        try:  # a folder the user cannot write (no WAL shared memory can be made there): the file is the whole ledger
            rows = _gate_rows(path, run_id, "immutable=1")
        except sqlite3.DatabaseError as again:
            return f"the ledger {path} cannot be read to check run {run_id}: {again}"
    if rows is None:
        return None  # a ledger from before the chain holds only legacy runs
    if not rows or rows[0][2] != "run_started":
        return None  # the run itself lives elsewhere (CI, another runner): only later events (a merge) are here
    # not strict: a hook without the key still checks the links and the plain hashes; the note's
    # head (signed when a key was set) catches a chain rewritten without the key
    problem = verify_rows(run_id, rows, key, strict=False, contains=head)
    return problem.line() if problem else None
