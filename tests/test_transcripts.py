"""Transcripts are appended one row per message, redacted once, never rewritten (#19 item 2)."""

from __future__ import annotations

import sqlite3

from agentflow.events import SessionEnded
from agentflow.ledger import Ledger, ledger_path
from tests.build_helpers import builder_session, verifier_session, write_file, write_plan, write_script


def test_each_message_is_one_row_appended_in_order(repo, cli, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "transcript-secret-value-42")
    write_plan(repo)
    turns = [write_file(f"src/f{n}.py", f"x = {n}  # transcript-secret-value-42\n") for n in range(6)]
    script = write_script(repo, {"builder": [turns + builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0

    with Ledger.open(repo) as ledger:
        ended = [e for e in ledger.events(kinds=["session_ended"]) if isinstance(e, SessionEnded)]
        builder = next(e for e in ended if e.role == "builder")
        transcript = ledger.transcript(builder.session_id)
    db = sqlite3.connect(ledger_path(repo))
    rows = db.execute(
        "SELECT rowid, n, message FROM transcript_messages WHERE session_id = ? ORDER BY rowid", (builder.session_id,)
    ).fetchall()
    db.close()

    assert transcript is not None and transcript[0]["role"] == "system"
    # system + prompt + (assistant, tool results) per turn, the last turn (finish) without results:
    # each message stored once, in order
    assert len(transcript) == 2 + 2 * builder.turns - 1
    assert [n for _, n, _ in rows] == list(range(len(transcript)))
    assert "transcript-secret-value-42" not in "".join(m for _, _, m in rows)
    assert "[REDACTED]" in "".join(m for _, _, m in rows)
    assert cli("show", builder.run_id or "", "--transcripts").exit_code == 0


def test_a_secret_set_after_the_first_append_is_still_redacted(repo, monkeypatch):
    from agentflow.events import RunStarted

    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_title="first"))
        monkeypatch.setenv("LATE_API_TOKEN", "late-secret-value-0042")
        ledger.append(RunStarted(run_id="r-2", plan_title="late-secret-value-0042"))
        monkeypatch.delenv("LATE_API_TOKEN")
        ledger.append(RunStarted(run_id="r-3", plan_title="late-secret-value-0042"))
        titles = [e.plan_title for e in ledger.events()]
    assert titles == ["first", "[REDACTED]", "late-secret-value-0042"]
