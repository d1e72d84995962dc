"""Ledger views at team scale (#19 item 1): the status projection is a derived table, equal to a
full replay of the events and rebuilt from them when missing or stale; metrics reads only its
window, unvalidated, with the same figures as a full read; `log` and `status` import no events."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import get_args

import pytest
from metrics_helpers import at, build_history

from agentflow.events import (
    Event,
    Merged,
    ModelCalled,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionStarted,
    Usage,
    VerdictRecorded,
)
from agentflow.git import Repo
from agentflow.ledger import EVENT_KINDS, REQUIRED_FIELDS, VIEW_TABLES, Ledger, dump_event, ledger_path
from tests.build_helpers import builder_session, verifier_session, write_plan, write_script


def _costly_runs(ledger: Ledger) -> None:
    """Runs with costs that do not add up exactly in binary floating point, in interleaved order."""
    ledger.append(RunStarted(run_id="r-a", plan_id="7"))
    ledger.append(RunStarted(run_id="r-b", plan_id="8"))
    for n, (run, cost) in enumerate([("r-a", 0.1), ("r-b", 0.2), ("r-a", 0.7), ("r-b", 0.3)]):
        sid = f"s-{n}"
        ledger.append(SessionStarted(run_id=run, session_id=sid, role="builder", cycle=n + 1, backend="x", model="m"))
        ledger.append(SessionEnded(run_id=run, session_id=sid, role="builder", status="completed", cost_usd=cost))
    ledger.append(RunEnded(run_id="r-a", outcome="approved", cycles=2))
    ledger.append(RunStarted(run_id="r-c", plan_id="7"))  # plan 7's last run: in progress
    ledger.append(Merged(plan_id="8", branch="agentflow/8", into="main", commit="abc"))


def _same_states(ledger: Ledger) -> dict:
    projected, replayed = ledger.plan_states(), ledger.plan_states_replay()
    assert list(projected) == list(replayed)  # same plans, in the order of their first run
    for plan, state in projected.items():
        assert state.cost_usd == pytest.approx(replayed[plan].cost_usd)  # summed in another order
        assert replace(state, cost_usd=0) == replace(replayed[plan], cost_usd=0)
    return projected


def _view_tables(root: Path) -> set[str]:
    db = sqlite3.connect(ledger_path(root))
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'view_%'")}
    finally:
        db.close()


def _sql(root: Path, statement: str) -> None:
    db = sqlite3.connect(ledger_path(root))
    db.execute(statement)
    db.commit()
    db.close()


def test_the_status_projection_is_a_derived_table_equal_to_a_full_replay(repo: Path, cli) -> None:
    write_plan(repo)
    write_plan(repo, "2", "Add greeting", "greeting")
    approve = {"builder": [builder_session()], "verifier": [verifier_session()]}
    reject = {"builder": [builder_session()], "verifier": [verifier_session(decision="reject")]}
    assert cli("build", "1", "--script", str(write_script(repo, approve))).exit_code == 0
    assert cli("build", "2", "--script", str(write_script(repo, reject, name="b.yaml"))).exit_code == 1
    assert cli("merge", "1").exit_code == 0
    with Ledger.open(repo) as ledger:
        _costly_runs(ledger)

    first = cli("status", "--json")
    assert first.exit_code == 0, first.output
    assert _view_tables(repo) == set(VIEW_TABLES)  # status stored its projection
    rows = {row["id"]: row for row in json.loads(first.stdout)}
    assert (rows["1"]["state"], rows["2"]["state"], rows["2"]["last_outcome"]) == ("merged", "rejected", "rejected")
    assert (rows["7"]["state"], rows["7"]["runs"], rows["7"]["cost_usd"]) == ("in progress", 2, 0.8)
    assert (rows["8"]["state"], rows["8"]["cost_usd"]) == ("merged", 0.5)
    with Ledger.open(repo) as ledger:
        _same_states(ledger)

    # events appended after the projection was stored are folded in (caught up by sequence number)
    assert cli("build", "2", "--script", str(write_script(repo, approve, name="c.yaml"))).exit_code == 0
    with Ledger.open(repo) as ledger:
        ledger.append(RunEnded(run_id="r-c", outcome="capped", cycles=1))
        states = _same_states(ledger)
    assert (states["2"].state, states["2"].runs, states["7"].state) == ("approved", 2, "capped")
    caught_up = cli("status", "--json").stdout

    # deleting a derived table (or all of them) rebuilds it from the events, with the same answer
    for statement in ("DROP TABLE view_plans", "DROP TABLE view_meta", "DELETE FROM view_runs"):
        _sql(repo, statement)
        if statement.startswith("DELETE"):  # emptied behind the projection's back: stale, not missing
            _sql(repo, "UPDATE view_meta SET version = version + 100")
        assert cli("status", "--json").stdout == caught_up, statement
        assert _view_tables(repo) == set(VIEW_TABLES)
    # tables ahead of the events (events removed since) are rebuilt, not trusted
    _sql(repo, "UPDATE view_meta SET seq = seq + 1000")
    assert cli("status", "--json").stdout == caught_up
    with Ledger.open(repo) as ledger:
        _same_states(ledger)


def test_status_on_a_read_only_ledger_projects_in_memory_and_leaves_the_file_alone(
    repo: Path, cli, monkeypatch
) -> None:
    with Ledger.open(repo) as ledger:
        _costly_runs(ledger)
        expected = ledger.plan_states_replay()
        ledger._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = ledger_path(repo).read_bytes()
    real_connect = sqlite3.connect

    import agentflow.ledger

    def read_only(path, *args, **kwargs):  # root ignores chmod: SQLite's own read-only mode stands for it
        return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(agentflow.ledger.sqlite3, "connect", read_only)
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert {plan: (row["state"], row["runs"]) for plan, row in rows.items()} == {
        plan: (state.state, state.runs) for plan, state in expected.items()
    }
    assert ledger_path(repo).read_bytes() == before and not _view_tables(repo)


def test_metrics_of_a_week_reads_only_its_window_and_agrees_with_a_full_read(repo: Path, cli) -> None:
    from agentflow.metrics import compute, facts_from_ledger, parse_period
    from agentflow.report import render_metrics

    build_history(repo).ledger.close()
    with Ledger.open(repo) as ledger:
        # long before the window: a run, a merge and an evaluation that must not change the figures
        old = at(16, 9) - timedelta(days=60)
        ledger.append(RunStarted(ts=old, run_id="r-old", plan_id="90"))
        ledger.append(RunEnded(ts=old, run_id="r-old", outcome="approved", cycles=1))
        ledger.append(Merged(ts=old, plan_id="90", branch="agentflow/90", into="main", commit="abc"))
        # in the period: a session that never ended is paid for call by call; a run-less override
        ledger.append(RunStarted(ts=at(20, 9), run_id="r-105a", plan_id="105", plan_title="Unfinished"))
        ledger.append(
            SessionStarted(ts=at(20, 9), run_id="r-105a", session_id="s-open", role="builder", backend="x", model="m")
        )
        for turn in (1, 2):
            usage = Usage(input_tokens=100 * turn, output_tokens=10)
            ledger.append(
                ModelCalled(
                    ts=at(20, 10),
                    run_id="r-105a",
                    session_id="s-open",
                    turn=turn,
                    model="m",
                    usage=usage,
                    cost_usd=0.25,
                )
            )
        ledger.append(VerdictRecorded(ts=at(21, 9), cycle=1, outcome="approved", override=True, commit="c0ffee"))
        period = parse_period("2026-11-16", "2026-11-22")
        typed = [dump_event(event) for event in ledger.events()]  # every event, validated by pydantic
        full = compute(facts_from_ledger(SimpleNamespace(records=lambda: typed), Repo(repo)), period)
        window = ledger.window_records(period.previous().start - timedelta(days=7), strict=True, legacy_ok=False)
    assert "r-old" not in {record.get("run_id") for record in window}
    assert not any(record["kind"] in ("tool_called", "checks_ran") for record in window)
    assert {r["kind"] for r in window if r.get("session_id") == "s-open"} == {"session_started", "model_called"}
    result = cli("metrics", "--since", "2026-11-16", "--until", "2026-11-22", "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown == json.loads(render_metrics(full, "json"))
    assert shown["cost_usd"]["total"] > 0


def test_metrics_of_a_past_week_reads_nothing_after_it(repo: Path, cli) -> None:
    """--until bounds the window too: runs, merges and run-less events after a past period are not
    read (a report of last month costs what last week's does), and its figures are a full read's."""
    from agentflow.metrics import compute, facts_from_ledger, parse_period
    from agentflow.report import render_metrics

    build_history(repo).ledger.close()
    later = at(16, 9) + timedelta(days=30)
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(ts=later, run_id="r-later", plan_id="91"))
        ledger.append(RunEnded(ts=later, run_id="r-later", outcome="approved", cycles=1))
        ledger.append(Merged(ts=later, plan_id="91", branch="agentflow/91", into="main", commit="abc"))
        ledger.append(VerdictRecorded(ts=later, cycle=1, outcome="approved", override=True, commit="c0ffee"))
        period = parse_period("2026-11-16", "2026-11-22")
        start = period.previous().start - timedelta(days=7)
        window = ledger.window_records(start, period.end, strict=True, legacy_ok=False)
        unbounded = ledger.window_records(start, strict=True, legacy_ok=False)
        typed = [dump_event(event) for event in ledger.events()]
    dropped = [r for r in unbounded if r not in window]
    assert window == [r for r in unbounded if r in window]  # the same records, in the same order
    assert {(r["kind"], r.get("run_id")) for r in dropped} == {
        ("run_started", "r-later"),
        ("run_ended", "r-later"),
        ("merged", None),
        ("verdict_recorded", None),
    }
    assert all(datetime.fromisoformat(r["ts"]) >= period.end for r in dropped)
    full = compute(facts_from_ledger(SimpleNamespace(records=lambda: typed), Repo(repo)), period)
    result = cli("metrics", "--since", "2026-11-16", "--until", "2026-11-22", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(render_metrics(full, "json"))


def test_event_kinds_and_required_fields_listed_for_the_views_are_the_typed_union(repo: Path) -> None:
    union = get_args(get_args(Event)[0])
    assert {cls.model_fields["kind"].default for cls in union} == EVENT_KINDS


@pytest.mark.parametrize("command", [["log", "--run", "r-1"], ["status"]])
def test_log_and_status_never_build_the_event_classes(repo: Path, command: list[str]) -> None:
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
    code = (
        "import sys\nfrom agentflow.cli import main\n"
        f"sys.argv = ['agentflow', *{command!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('agentflow.events' in sys.modules, 'agentflow.plans' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    events_loaded, plans_loaded = out.stdout.split()[-2:]
    assert events_loaded == "False"
    assert plans_loaded == "False"  # status: no plan files, so no plan models (agentflow.planfiles)


def test_show_resolves_a_prefix_through_the_index(repo: Path, cli) -> None:
    with Ledger.open(repo) as ledger:
        for run in ("r-20261201-aaaaaa", "r-20261201-aaabbb", "r-20261202-cccccc"):
            ledger.append(RunStarted(run_id=run, plan_id="1"))
        assert ledger.match_runs("r-20261201-aaabbb") == ["r-20261201-aaabbb"]
        assert ledger.match_runs("r-20261201-aaa") == ["r-20261201-aaaaaa", "r-20261201-aaabbb"]
        assert ledger.match_runs("r-20261202") == ["r-20261202-cccccc"]
        assert ledger.match_runs("r-2026120~") == [] and ledger.recent_run_ids(2) == [
            "r-20261201-aaabbb",
            "r-20261202-cccccc",
        ]
    assert "r-20261202-cccccc" in cli("show", "r-20261202").stdout
    ambiguous = cli("show", "r-20261201-aa")
    assert ambiguous.exit_code == 2 and "r-20261201-aaaaaa, r-20261201-aaabbb" in ambiguous.stderr


def test_a_sessions_git_check_and_its_tampering_are_one_append(repo: Path, cli, monkeypatch) -> None:
    # #19 item 4: a step's events go in one transaction, so a kill between them cannot leave the
    # check recorded without the tampering it found (resume would then never look again)
    from agentflow.config import Config
    from tests.build_helpers import finish, write_file
    from tests.helpers import git

    if "sandbox" in Config.model_fields:  # the attack must land to be detected
        (repo / "agentflow.yaml").write_text('sandbox:\n  mode: "off"\n')
        git(repo, "add", "agentflow.yaml")
        git(repo, "commit", "-q", "-m", "sandbox off")
    write_plan(repo)
    evil = "git update-ref refs/heads/main $(git commit-tree HEAD^{tree} -p HEAD -m evil)"
    builder = [
        write_file("src/app.py", "def farewell():\n    return 'bye'\n"),
        {"tool_calls": [{"name": "run_command", "input": {"command": evil}}]},
        finish(),
    ]
    script = write_script(repo, {"builder": [builder], "verifier": [verifier_session()]})
    batches: list[list[str]] = []
    real = Ledger.append_many

    def spy(self: Ledger, events):  # type: ignore[no-untyped-def]
        events = list(events)
        batches.append([event.kind for event in events])
        return real(self, events)

    monkeypatch.setattr(Ledger, "append_many", spy)
    result = cli("build", "1", "--script", str(script))
    assert result.exit_code == 3 and "tampering: refs/heads/main moved" in result.output
    assert ["git_checked", "tampering_detected"] in batches
    with Ledger.open(repo) as ledger:
        kinds = [record["kind"] for record in ledger.records()]
    checked = kinds.index("git_checked")
    assert kinds[checked : checked + 2] == ["git_checked", "tampering_detected"]


@pytest.mark.parametrize("attack", ["edit", "delete", "delete_last_in_window", "insert"])
def test_metrics_refuses_run_less_events_changed_outside_agentflow(repo: Path, cli, attack: str) -> None:
    """Overrides, merges and evaluations outside any run have a chain of their own: a report used to
    count them unchecked, so an override added or a merge removed with plain sqlite3 changed the
    figures without a word. Each change in the period is now refused (exit 2, the event named)."""
    build_history(repo).ledger.close()
    with Ledger.open(repo) as ledger:
        ledger.append(VerdictRecorded(ts=at(18, 9), cycle=1, outcome="approved", override=True, commit="c0ffee"))
        ledger.append(Merged(ts=at(18, 10), plan_id="91", branch="agentflow/91", into="main", commit="abc"))
        ledger.append(Merged(ts=at(30, 10), plan_id="92", branch="agentflow/92", into="main", commit="def"))
    args = ("metrics", "--since", "2026-11-16", "--until", "2026-11-22", "--format", "json")
    clean = cli(*args)
    assert clean.exit_code == 0, clean.output
    db = sqlite3.connect(ledger_path(repo))
    runless = [row for row in db.execute("SELECT seq, kind, body FROM events WHERE run_id IS NULL ORDER BY seq")]
    override = next(seq for seq, kind, body in runless if kind == "verdict_recorded" and '"c0ffee"' in body)
    merge = next(seq for seq, kind, body in runless if kind == "merged" and '"abc"' in body)
    if attack == "edit":  # the override now rejects: the report's outcomes change
        db.execute("UPDATE events SET body = replace(body, '\"approved\"', '\"rejected\"') WHERE seq = ?", (override,))
    elif attack == "delete":
        db.execute("DELETE FROM events WHERE seq = ?", (override,))
    elif attack == "delete_last_in_window":  # the merge after it (outside the period) still points at it
        db.execute("DELETE FROM events WHERE seq = ?", (merge,))
    else:  # a copy of the override, with its stored hash: the copy follows nothing
        db.execute(
            "INSERT INTO events (ts, kind, run_id, body, eid, prev, hash, plan_id) "
            "SELECT ts, kind, run_id, body, eid || 'x', prev, hash, plan_id FROM events WHERE seq = ?",
            (override,),
        )
        db.execute("UPDATE events SET ts = ? WHERE seq = last_insert_rowid()", (at(19, 9).isoformat(),))
    db.commit()
    db.close()
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "run-less events" in result.output and "is broken at event" in result.output


def test_run_less_events_from_several_processes_make_one_chain(tmp_path: Path) -> None:
    """Two writers take turns appending run-less events (a merge here, an evaluation there): each
    chains onto the ledger's last run-less row, not onto the one it wrote itself, so the chain the
    reports check holds."""
    first, second = Ledger.open(tmp_path), Ledger.open(tmp_path)
    try:
        for n in range(3):
            first.append(Merged(ts=at(18, 9, n), branch=f"agentflow/{n}", into="main", commit=f"a{n}"))
            second.append(VerdictRecorded(ts=at(18, 10, n), cycle=1, outcome="approved", override=True))
        seqs = [seq for (seq,) in first._db.execute("SELECT seq FROM events WHERE run_id IS NULL")]
        first.verified_runless(seqs)
        second.verified_runless(seqs[:2])
    finally:
        first.close()
        second.close()


def _run_and_merge(repo: Path) -> None:
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
        ledger.append(RunEnded(run_id="r-1", outcome="approved", cycles=1))
        ledger.append(
            Merged(plan_id="1", branch="agentflow/1-x", into="main", commit="c" * 40)
        )  # no run: its own chain


@pytest.mark.parametrize("json_out", [False, True])
@pytest.mark.parametrize(
    ("edit", "broken"),
    [
        ("UPDATE events SET body = replace(body, '\"approved\"', '\"rejected\"') WHERE kind = 'run_ended'", "run r-1"),
        ("UPDATE events SET body = replace(body, '\"main\"', '\"prod\"') WHERE kind = 'merged'", "run-less events"),
    ],
)
def test_log_of_the_whole_ledger_refuses_a_row_edited_outside_agentflow(
    repo: Path, cli, edit: str, broken: str, json_out: bool
) -> None:
    """`log` without --run checks what it prints as `show`, `log --run` and `metrics` do: every
    run's chain and the run-less events' chain; an edited row is exit 2, nothing printed."""
    _run_and_merge(repo)
    extra = ["--json"] if json_out else []
    assert cli("log", *extra).exit_code == 0
    _sql(repo, edit)
    result = cli("log", *extra)
    assert result.exit_code == 2
    assert f"ledger chain of the {broken}" in result.stderr or f"ledger chain of {broken}" in result.stderr
    assert "is broken at" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("json_out", [False, True])
@pytest.mark.parametrize("run", [None, "r-1"])
def test_log_checks_the_rows_it_printed_when_an_edit_is_put_back_before_the_check(
    repo: Path, cli, monkeypatch, run: str | None, json_out: bool
) -> None:
    """A row edited before `log` reads it and restored before `log` checks its chain: the check must
    see what was read (one snapshot), or the edited row is printed as if the chain vouched for it."""
    _run_and_merge(repo)
    edit = "UPDATE events SET body = replace(body, '\"approved\"', '\"rejected\"') WHERE kind = 'run_ended'"
    undo = "UPDATE events SET body = replace(body, '\"rejected\"', '\"approved\"') WHERE kind = 'run_ended'"
    _sql(repo, edit)
    method = "events" if json_out else "records"  # log --json prints typed events, log the stored records
    read = getattr(Ledger, method)

    def read_then_restore(self, **kwargs):
        rows = read(self, **kwargs)
        _sql(repo, undo)  # another process puts the row back between the read and the check
        return rows

    monkeypatch.setattr(Ledger, method, read_then_restore)
    result = cli("log", *(["--run", run] if run else []), *(["--json"] if json_out else []))
    assert "rejected" not in result.stdout
    assert result.exit_code == 2 and "is broken at" in result.stderr, result.output


def _merged_from_ci(repo: Path) -> None:
    """A run built in CI (its events in CI's ledger) merged here: the local ledger holds its merge
    alone, the first event of that run's chain here, with no run_started."""
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-local", plan_id="1"))
        ledger.append(RunEnded(run_id="r-local", outcome="approved", cycles=1))
        ledger.append(Merged(run_id="r-ci", plan_id="2", branch="agentflow/2-x", into="main", commit="c" * 40))


def test_a_run_merged_here_but_started_elsewhere_is_counted_and_shown(repo: Path, cli) -> None:
    """It used to make `metrics` exit 2 ("the run does not begin with run_started", the ledger
    'changed outside agentflow') though nothing was changed."""
    _merged_from_ci(repo)
    result = cli("metrics", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["plans"]["merged"] == 1
    for args in (["log"], ["log", "--run", "r-ci"]):
        shown = cli(*args)
        assert shown.exit_code == 0, shown.stderr
        assert "r-ci merged plan_id=2" in shown.stdout


@pytest.mark.parametrize("args", [["metrics"], ["log"], ["log", "--run", "r-ci"], ["log", "--json"]])
def test_a_run_started_elsewhere_is_still_checked_from_its_first_event_here(repo: Path, cli, args: list[str]) -> None:
    """Its events here are a chain from the first one (which follows nothing): an edit is exit 2.
    `log` without --run used to print such a run's events unchecked (it checked only runs with a
    run_started)."""
    _merged_from_ci(repo)
    _sql(repo, "UPDATE events SET body = replace(body, '\"main\"', '\"prod\"') WHERE kind = 'merged'")
    result = cli(*args)
    assert result.exit_code == 2
    assert "ledger chain of run r-ci is broken at event 3 (merged): its hash does not match" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["metrics"], ["log"], ["log", "--run", "r-1"]])
def test_a_deleted_run_started_is_refused_not_taken_for_a_run_from_elsewhere(repo: Path, cli, args: list[str]) -> None:
    """The run's next event still names the deleted run_started as its prev: refused by every view
    (`log` used to skip the run and print the rest of it unchecked)."""
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
        ledger.append(RunEnded(run_id="r-1", outcome="approved", cycles=1))
        ledger.append(Merged(run_id="r-1", plan_id="1", branch="agentflow/1-x", into="main", commit="c" * 40))
    _sql(repo, "DELETE FROM events WHERE kind = 'run_started'")
    result = cli(*args)
    assert result.exit_code == 2
    assert "ledger chain of run r-1 is broken at event 2 (run_ended)" in result.stderr
    assert result.stdout == ""
