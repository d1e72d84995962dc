"""The chain's summary check (``chain.summary_holds``, what ``Ledger.verify_runs`` vouches with before
it falls back to the row-by-row ``chain.verify_rows``): it never passes a run the exact check fails.

Each case edits a ledger with plain sqlite3, as an attacker (or a broken tool) would, then checks
both checks on the same rows: the summary may only say "holds" where ``verify_rows`` finds nothing,
and ``verify_runs`` (what metrics calls) must raise exactly where ``verify_rows`` finds a problem.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentflow import chain
from agentflow.events import ModelCalled, RunEnded, RunStarted, SessionStarted, Usage
from agentflow.ledger import ChainBroken, Ledger, ledger_path

KEY = "summary-test-signing-key-0123456789"


def _ledger(root: Path, runs: int = 3) -> list[str]:
    ids = []
    with Ledger.open(root) as ledger:
        for n in range(runs):
            run_id = f"r-sum-{n}"
            ids.append(run_id)
            ledger.append_many(
                [
                    RunStarted(run_id=run_id, plan_id=str(n), inputs_text={"plan": "ü" * 50}),
                    SessionStarted(run_id=run_id, session_id=f"s-{n}", role="builder", backend="x", model="m"),
                    ModelCalled(run_id=run_id, session_id=f"s-{n}", turn=1, model="m", usage=Usage(input_tokens=5)),
                    RunEnded(run_id=run_id, outcome="approved", cycles=1),
                ]
            )
    return ids


def _both(root: Path, run_id: str, key: str | None, strict: bool = False) -> tuple[bool, chain.ChainProblem | None]:
    db = sqlite3.connect(ledger_path(root))
    try:
        summary = db.execute(
            f"SELECT {chain.SUMMARY_COLUMNS} FROM events WHERE run_id = ? GROUP BY run_id", (run_id,)
        ).fetchone()
        rows = chain.run_rows(db, run_id)
    finally:
        db.close()
    holds = summary is not None and chain.summary_holds(summary, key, strict=strict)
    return holds, chain.verify_rows(run_id, rows, key, strict=strict)


def _sql(root: Path, statement: str, *args: object) -> None:
    db = sqlite3.connect(ledger_path(root))
    db.execute(statement, args)
    db.commit()
    db.close()


EDITS = {
    "body edited": "UPDATE events SET body = replace(body, '\"turn\":1', '\"turn\":2') WHERE kind = 'model_called'",
    "body edited, same length": "UPDATE events SET body = replace(body, 'approved', 'rejected') WHERE kind = 'run_ended'",
    "ts edited": "UPDATE events SET ts = '2020-01-01T00:00:00+00:00' WHERE kind = 'session_started'",
    "kind edited": "UPDATE events SET kind = 'tool_called' WHERE kind = 'model_called'",
    "eid edited": "UPDATE events SET eid = 'ffffffffffffffffffff' WHERE kind = 'run_ended'",
    "eid removed": "UPDATE events SET eid = NULL WHERE kind = 'run_ended'",
    "eid emptied": "UPDATE events SET eid = '' WHERE kind = 'run_ended'",
    "hash removed": "UPDATE events SET hash = NULL WHERE kind = 'model_called'",
    "hash malformed": "UPDATE events SET hash = 'md5:' || substr(hash, 8) WHERE kind = 'model_called'",
    "prev cut": "UPDATE events SET prev = NULL WHERE kind = 'model_called'",
    "prev of the first": "UPDATE events SET prev = 'sha256:00' WHERE kind = 'run_started'",
    "middle deleted": "DELETE FROM events WHERE kind = 'session_started'",
    "first deleted": "DELETE FROM events WHERE kind = 'run_started'",
    "reordered": "UPDATE events SET seq = seq + 100000 WHERE kind = 'session_started'",
    "run_started moved last": "UPDATE events SET seq = seq + 100000 WHERE kind = 'run_started'",
    "a later event's kind made run_started": "UPDATE events SET kind = 'run_started' WHERE kind = 'session_started'",
    "comma in a hash": "UPDATE events SET hash = hash || ',x' WHERE kind = 'session_started'",
    "comma in prev": "UPDATE events SET prev = prev || ',' WHERE kind = 'run_ended'",
    "0x1e in a body": "UPDATE events SET body = replace(body, '\"turn\":1', '\"turn\":1' || char(30)) "
    "WHERE kind = 'model_called'",
    "NUL in a body": "UPDATE events SET body = CAST(body || x'00' AS TEXT) WHERE kind = 'run_ended'",
    "blob body": "UPDATE events SET body = CAST(body AS BLOB) WHERE kind = 'run_ended'",
    "blob eid": "UPDATE events SET eid = CAST(eid AS BLOB) WHERE kind = 'run_ended'",
    "blob hash": "UPDATE events SET hash = CAST(hash AS BLOB) WHERE kind = 'run_ended'",
    "not UTF-8": "UPDATE events SET body = CAST(CAST(body AS BLOB) || x'ff' AS BLOB) WHERE kind = 'run_ended'",
    "hash downgraded to sha256": "UPDATE events SET hash = 'sha256:' || substr(hash, 6) WHERE kind = 'run_ended'",
    # a value moved into the row before it, behind a comma, and the row left NULL: every joined
    # column reads the same (group_concat skips NULLs), only the count of values tells
    # (the subquery's lowercase "where" keeps the run filter on the outer WHERE)
    "hash moved into the previous row's": "UPDATE events SET hash = CASE kind WHEN 'run_ended' THEN NULL "
    "ELSE hash || ',' || (SELECT n.hash FROM events AS n where n.seq = events.seq + 1) END "
    "WHERE kind IN ('model_called', 'run_ended')",
    "eid moved into the previous row's": "UPDATE events SET eid = CASE kind WHEN 'run_ended' THEN NULL "
    "ELSE eid || ',' || (SELECT n.eid FROM events AS n where n.seq = events.seq + 1) END "
    "WHERE kind IN ('model_called', 'run_ended')",
    "ts moved into the previous row's": "UPDATE events SET ts = ts || ',' || "
    "(SELECT n.ts FROM events AS n where n.seq = events.seq + 1) WHERE kind = 'model_called'",
}


@pytest.mark.parametrize("keyed", [False, True], ids=["sha256", "hmac"])
@pytest.mark.parametrize("edit", sorted(EDITS))
def test_the_summary_never_passes_a_run_the_exact_check_fails(repo: Path, monkeypatch, edit: str, keyed: bool) -> None:
    if keyed:
        monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    key = KEY if keyed else None
    ids = _ledger(repo)
    for run_id in ids:
        assert _both(repo, run_id, key) == (True, None)  # an honest chain: both hold
    _sql(repo, EDITS[edit].replace("WHERE ", f"WHERE run_id = '{ids[1]}' AND ", 1))
    holds, problem = _both(repo, ids[1], key)
    assert not (holds and problem is not None), f"{edit}: the summary passed what verify_rows refuses: {problem}"
    same_bytes = edit.startswith("blob ")  # the same bytes stored as a blob: the same content, both hold
    assert (problem is None) == same_bytes, (edit, problem)
    assert _both(repo, ids[0], key) == (True, None) and _both(repo, ids[2], key) == (True, None)
    with Ledger.open(repo) as ledger:
        if same_bytes:
            ledger.verify_runs(ids, strict=False, legacy_ok=True)
            return
        with pytest.raises(ChainBroken) as raised:
            ledger.verify_runs(ids, strict=False, legacy_ok=True)
        assert raised.value.chain == problem  # the same first bad event, named the same way


@pytest.mark.parametrize("keyed", [False, True], ids=["sha256", "hmac"])
def test_a_rehashed_chain_that_does_not_begin_with_run_started_is_refused(repo: Path, monkeypatch, keyed: bool) -> None:
    """run_started deleted and every later hash recomputed (with the key, for an HMAC chain): the links
    and hashes hold, only the first event's kind tells."""
    if keyed:
        monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    key = KEY if keyed else None
    ids = _ledger(repo)
    db = sqlite3.connect(ledger_path(repo))
    db.execute("DELETE FROM events WHERE run_id = ? AND kind = 'run_started'", (ids[1],))
    prev = None
    for seq, eid, kind, rid, ts, body, _prev, _hash in chain.run_rows(db, ids[1]):
        digest = chain.digest(key, prev, eid, kind, rid, ts, body)
        db.execute("UPDATE events SET prev = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    db.commit()
    db.close()
    holds, problem = _both(repo, ids[1], key)
    assert not holds and problem is not None and "does not begin with run_started" in problem.problem
    with Ledger.open(repo) as ledger, pytest.raises(ChainBroken) as raised:
        ledger.verify_runs(ids, strict=False, legacy_ok=True)
    assert raised.value.chain == problem


def test_a_keyed_chain_without_the_key_checks_links_only_unless_strict(repo: Path, monkeypatch) -> None:
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", KEY)
    ids = _ledger(repo, runs=1)
    assert _both(repo, ids[0], None, strict=False) == (True, None)  # links hold; HMACs need the key
    holds, problem = _both(repo, ids[0], None, strict=True)
    assert not holds and problem is not None and "no signing key" in problem.problem
    _sql(repo, "UPDATE events SET body = replace(body, 'approved', 'rejected') WHERE kind = 'run_ended'")
    assert _both(repo, ids[0], KEY) == (False, _both(repo, ids[0], KEY)[1])
    assert _both(repo, ids[0], KEY)[1] is not None


def test_a_sha256_chain_is_refused_when_a_key_is_set_and_strict(repo: Path) -> None:
    ids = _ledger(repo, runs=1)
    holds, problem = _both(repo, ids[0], KEY, strict=True)
    assert not holds and problem is not None and "not keyed" in problem.problem
    assert _both(repo, ids[0], KEY, strict=False) == (True, None)


@pytest.mark.parametrize("key", ["k", KEY, "k" * 63, "k" * 64, "k" * 65, "ü" * 32, "ü" * 33, "k" * 200])
def test_the_summary_hmac_is_hmac_sha256(key: str) -> None:
    """``chain.hmac_hexes`` (two SHA-256 passes with the key blocks, C calls only) is what ``hmac``
    computes, for keys shorter than, as long as and longer than SHA-256's 64-byte block."""
    import hashlib
    import hmac

    materials = [b"", b"x", "\x1f".join(("", "e" * 20, "run_started", "r-1", "ts", "{}" * 600)).encode()]
    expected = [hmac.new(key.encode(), m, hashlib.sha256).hexdigest() for m in materials]
    assert list(chain.hmac_hexes(key, materials)) == expected
    assert list(chain.hmac_hexes(key + "!", materials)) != expected


def test_the_summary_splits_into_the_rows_and_the_material_digest_hashes(repo: Path) -> None:
    ids = _ledger(repo, runs=2)
    db = sqlite3.connect(ledger_path(repo))
    summary = db.execute(
        f"SELECT {chain.SUMMARY_COLUMNS} FROM events WHERE run_id = ? GROUP BY run_id", ids[1:]
    ).fetchone()
    rows = chain.run_rows(db, ids[1])
    db.close()
    split = chain.split_summary(summary)
    assert split is not None and split.run_id == ids[1]
    assert split.seqs == [row[0] for row in rows] and split.kinds == [row[2].encode() for row in rows]
    assert split.bodies == [row[5].encode() for row in rows]  # the stored bytes, "ü" (UTF-8) included
    for (_seq, eid, kind, rid, ts, body, prev, hsh), material in zip(rows, split.materials, strict=True):
        assert material == "\x1f".join((prev or "", eid, kind, rid or "", ts, body)).encode()
        assert hsh == chain.digest(None, prev, eid, kind, rid, ts, body)


def test_verified_events_are_the_checked_rows_of_the_kinds_asked_for(repo: Path, monkeypatch) -> None:
    ids = _ledger(repo, runs=3)
    with Ledger.open(repo) as ledger:
        got = ledger.verified_events(ids[::-1], ("run_ended", "model_called"))
        expected = [
            (row[0], row[3], row[2], row[5])
            for run_id in ids[::-1]
            for row in ledger.chain_rows(run_id)
            if row[2] in ("run_ended", "model_called")
        ]
        assert [
            (seq, run, kind, bytes(body) if isinstance(body, bytes) else body.encode()) for seq, run, kind, body in got
        ] == [(seq, run, kind, body.encode()) for seq, run, kind, body in expected]
        assert ledger.verified_events(ids, ()) == [] and ledger.verified_events(["r-none"], ("run_ended",)) == []
        # the row-by-row path (a legacy run is passed with legacy_ok) returns the same events
        _sql(repo, f"UPDATE events SET hash = NULL, prev = NULL WHERE run_id = '{ids[0]}'")
        legacy = ledger.verified_events([ids[0]], ("run_ended",), legacy_ok=True)
        assert [(seq, run, kind) for seq, run, kind, _ in legacy] == [
            (row[0], row[3], row[2]) for row in ledger.chain_rows(ids[0]) if row[2] == "run_ended"
        ]
        with pytest.raises(ChainBroken):
            ledger.verified_events([ids[0]], ("run_ended",))


def test_metrics_refuses_a_window_run_edited_in_place(repo: Path, cli) -> None:
    _ledger(repo)
    assert cli("metrics", "--format", "json").exit_code == 0
    _sql(
        repo,
        "UPDATE events SET body = replace(body, 'approved', 'rejected') WHERE run_id = 'r-sum-2' AND kind = 'run_ended'",
    )
    result = cli("metrics")
    assert result.exit_code == 2
    assert "ledger chain of run r-sum-2 is broken at event" in result.stderr and "(run_ended)" in result.stderr
