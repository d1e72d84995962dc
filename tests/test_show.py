"""``agentflow show RUN``: one run's timeline in text, Markdown and HTML, with transcripts on request."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import HOSTILE_ESCAPED, HOSTILE_MARKDOWN, hostile_rows
from metrics_helpers import Cycle, History, at, build_history, finding

from agentflow.ledger import Ledger


@pytest.fixture
def history(repo: Path) -> Path:
    h = build_history(repo)
    with Ledger.open(repo) as ledger:
        builder = next(
            e.session_id for e in ledger.events(run_id="r-102a", kinds=["session_started"]) if e.role == "builder"
        )
        ledger.save_transcript(
            builder,
            "builder",
            "r-102a",
            [
                {"role": "system", "content": [{"type": "text", "text": "You are the builder."}]},
                {"role": "user", "content": [{"type": "text", "text": "Plan 102: keep <tenant> scoping"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Reading the entity"},
                        {"type": "tool_use", "id": "t1", "name": "read_file", "input": {"path": "src/entity.py"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "class Entity: ...", "is_error": False}
                    ],
                },
                {"role": "command", "command": "agent run", "exit_code": 0, "output_tail": "done"},
            ],
        )
    assert h.repo.root == repo
    return repo


def test_text_timeline(history: Path, cli) -> None:
    result = cli("show", "r-102a")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("run r-102a\n")
    assert "Plan:     102 Enforce tenant scoping" in out
    assert "Outcome:  approved: ended approved" in out
    assert "Cycles:   2 of at most 3" in out
    assert "Cost:     $4.60" in out  # 2.00 + 0.80 + 1.20 + 0.60
    cycle1, cycle2 = out.split("\ncycle 1\n")[1].split("\ncycle 2\n")
    assert "builder   completed, 3 turns, $2.00" in cycle1
    assert "Implemented plan 102, cycle 1" in cycle1
    assert re.search(r"commit    [0-9a-f]{10}: 1 file changed, \+1 -0", cycle1)
    assert "checks    pass  pytest -q  (1.5s)" in cycle1
    assert "verdict   changes_requested (decision: request_changes)" in cycle1
    assert "AC1: unmet (tests)" in cycle1
    assert "finding F1 high [capsule-isolation] src/app.py:3: problem" in cycle1
    assert "finding F2 medium [capsule-isolation]" in cycle1
    assert "verdict   approved (decision: approve)" in cycle2
    assert re.search(r"commit    [0-9a-f]{10}: 1 file changed, \+2 -0", cycle2)
    assert "AC1: met (tests)" in cycle2 and "finding F3 low src/app.py:3: problem" in cycle2
    sessions = out.split("\nsessions\n")[1].splitlines()
    assert len([s for s in sessions if s.strip()]) == 4
    assert "builder   cycle 1  completed   3 turns  $2.00  in 1,000 / out 200 / cache r 4,000 w 500" in sessions[0]
    assert "verifier  cycle 2  completed   3 turns  $0.60" in sessions[3]
    assert "transcript" not in out  # only with --transcripts


def test_transcripts_on_request(history: Path, cli) -> None:
    out = cli("show", "r-102a", "--transcripts").stdout
    assert out.count("\ntranscript s-") == 4
    assert "[assistant → read_file]" in out and '"path": "src/entity.py"' in out
    assert "[user ← result]\nclass Entity: ..." in out
    assert '"exit_code": 0' in out
    assert "no transcript was saved for this session" in out  # the other three sessions


def test_markdown_timeline(history: Path, cli) -> None:
    out = cli("show", "r-102a", "--format", "md").stdout
    assert out.startswith("## agentflow run `r-102a`")
    assert "| Plan | 102 Enforce tenant scoping |" in out
    assert "### Cycle 1" in out and "### Cycle 2" in out
    assert "| `pytest -q` | pass | 1.5 |" in out
    assert "| F1 | high | capsule-isolation | src/app.py:3 | problem |" in out
    assert "| AC1 | unmet | tests |" in out
    assert re.search(r"\| `s-\d+` \| verifier \| 2 \| completed \| 3 \| .* \| \$0\.60 \|", out)


def test_html_timeline_escapes_and_is_self_contained(history: Path, cli, tmp_path: Path) -> None:
    out_file = tmp_path / "run.html"
    assert cli("show", "r-102a", "--format", "html", "--transcripts", "--output", str(out_file)).exit_code == 0
    html = out_file.read_text()
    assert "<title>agentflow run r-102a</title>" in html
    assert "Plan 102: keep &lt;tenant&gt; scoping" in html and "<tenant>" not in html
    assert '<span class="badge changes_requested">changes requested</span>' in html
    assert '<td class="sev-high">high</td>' in html
    assert html.count("<summary>Transcript ") == 4
    assert not re.search(r"<script|<link|src=|url\(", html)


def test_run_prefix_and_overrides(history: Path, cli) -> None:
    out = cli("show", "r-103").stdout
    assert out.startswith("run r-103a\n")
    assert "Outcome:  capped: ended capped" in out
    assert "override  approved at 2026-11-21T14:00:00+00:00: hotfix" in out
    assert out.count("verdict   changes_requested") == 3


def test_no_verdict_run(history: Path, cli) -> None:
    out = cli("show", "r-104a").stdout
    assert "verdict   no_verdict (decision: —)" in out
    assert "verifier  failed, 3 turns, $0.10" in out


@pytest.mark.parametrize("ref", ["r-999", "r-10"])
def test_unknown_or_ambiguous_run_exits_2(history: Path, cli, ref: str) -> None:
    result = cli("show", ref)
    assert result.exit_code == 2
    if ref == "r-999":
        assert "no run 'r-999' in the ledger" in result.output and "agentflow log" in result.output
    else:
        assert "ambiguous" in result.output and "r-100a" in result.output


def test_show_without_a_ledger(repo: Path, cli) -> None:
    result = cli("show", "r-1")
    assert result.exit_code == 2
    assert "agentflow log" in result.output
    assert not (repo / ".agentflow").exists()


def test_timeline_is_typed_and_its_dict_keys_are_the_field_names(history: Path) -> None:
    """``run_timeline`` returns a ``Timeline``; ``to_dict()`` keeps the shape the dict had (pinned here)."""
    from dataclasses import fields

    from agentflow.show import Commit, Cycle, RunHeader, Session, Timeline, Verdict, run_timeline

    def names(cls: type) -> list[str]:
        return [f.name for f in fields(cls)]

    with Ledger.open(history) as ledger:
        timeline = run_timeline(ledger, "r-103a")
    assert isinstance(timeline, Timeline)
    data = timeline.to_dict()
    assert list(data) == names(Timeline) == ["run", "cycles", "sessions", "overrides", "transcripts"]
    assert list(data["run"]) == names(RunHeader) == [
        "run_id", "mode", "plan_id", "plan_title", "plan_path", "branch", "base", "base_commit",
        "estimate_hours", "max_cycles", "started", "ended", "outcome", "reason", "cycles", "commit",
        "resumed", "cost_usd", "interrupted",
    ]  # fmt: skip
    cycle = data["cycles"][0]
    assert list(cycle) == names(Cycle) == ["cycle", "builder", "commit", "checks", "verifier", "verdict"]
    assert list(cycle["builder"]) == names(Session) == [
        "session_id", "role", "cycle", "backend", "model", "started", "ended", "status", "reason", "turns",
        "tokens", "cost_usd", "summary",
    ]  # fmt: skip
    assert list(cycle["commit"]) == names(Commit) == ["commit", "files", "insertions", "deletions", "out_of_scope"]
    assert list(cycle["verdict"]) == names(Verdict) == [
        "ts", "cycle", "commit", "outcome", "decision", "reason", "summary", "criteria", "findings", "override",
        "signed",
    ]  # fmt: skip
    assert [o["outcome"] for o in data["overrides"]] == ["approved"] and data["overrides"][0]["override"] is True
    assert data["run"]["outcome"] == "capped" and data["transcripts"] is None
    json.dumps(data)  # plain data all the way down


def test_markdown_escapes_hostile_model_text(repo: Path, cli) -> None:
    """A plan title and a finding with ``<script>``, a backslash-pipe and a newline: no raw HTML, no broken row."""
    with Ledger.open(repo) as ledger:
        hostile = finding("F1", "low", "naming", HOSTILE_MARKDOWN)
        History(repo, ledger).run(
            "9", HOSTILE_MARKDOWN, "r-9a", at(17, 9), [Cycle(1.0, 0.5, "approved", [hostile])], "approved", 4
        )
    out = cli("show", "r-9a", "--format", "md").stdout
    rows = hostile_rows(out)
    assert [len(r) for r in rows] == [2, 5], out  # the Plan header row, the finding row
    assert rows[0][1].startswith(f"9 {HOSTILE_ESCAPED}") and rows[1][4] == HOSTILE_ESCAPED


# -- the timeline from stored JSON (#19 item 1: show starts without pydantic) ----------------------


def _every_run(root: Path) -> list[str]:
    with Ledger.open(root) as ledger:
        return ledger.run_ids()


@pytest.mark.parametrize("fmt", ["text", "md", "html"])
def test_stored_json_and_the_event_classes_give_the_same_timeline(history: Path, cli, monkeypatch, fmt: str) -> None:
    import agentflow.show as show

    runs = _every_run(history)
    assert len(runs) >= 5
    with Ledger.open(history) as ledger:
        assert all(show._stored_events(ledger, run) is not None for run in runs)  # none needs the classes
    light = {run: cli("show", run, "--format", fmt, "--transcripts").stdout for run in runs}
    monkeypatch.setattr(show, "_stored_events", lambda ledger, run_id: None)
    typed = {run: cli("show", run, "--format", fmt, "--transcripts").stdout for run in runs}
    assert light == typed
    with Ledger.open(history) as ledger:
        assert show.run_timeline(ledger, "r-102a").to_dict() == show.run_timeline(ledger, "r-102a").to_dict()


@pytest.mark.parametrize(
    ("kind", "edit"),
    [
        ("session_ended", lambda d: d["usage"].pop("cache_write")),  # recorded before prompt caching
        ("checks_ran", lambda d: [r.pop("evidence") for r in d["results"]]),  # before JUnit evidence
        ("run_started", lambda d: d.update(estimate_hours=2)),  # an integer where a float is written
        ("verdict_recorded", lambda d: d.update(cycle="1")),  # a string the classes turn into 1
    ],
)
def test_a_field_not_as_agentflow_writes_it_is_read_through_the_event_classes(repo: Path, cli, kind, edit) -> None:
    import sqlite3

    import agentflow.show as show

    with Ledger.open(repo) as ledger:
        History(repo, ledger).run("7", "Seven", "r-7a", at(17, 9), [Cycle(1.0, 0.5, "approved")], "approved", 4)
    db = sqlite3.connect(repo / ".agentflow" / "ledger.db")
    seq, body = db.execute("SELECT seq, body FROM events WHERE run_id = 'r-7a' AND kind = ?", (kind,)).fetchone()
    data = json.loads(body)
    edit(data)
    # a legacy run (no hash chain, as before #13): its rows may be edited
    db.execute("UPDATE events SET body = ? WHERE seq = ?", (json.dumps(data), seq))
    db.execute("UPDATE events SET eid = NULL, prev = NULL, hash = NULL WHERE run_id = 'r-7a'")
    db.commit()
    db.close()
    with Ledger.open(repo) as ledger:
        stored = show._stored_events(ledger, "r-7a")
        if kind == "run_started":  # an integer hour estimate is a float to both readers
            assert stored is not None and stored[0].estimate_hours == 2.0
        else:
            assert stored is None
        typed = show.run_timeline(ledger, "r-7a").to_dict()
    assert typed["run"]["outcome"] == "approved"
    result = cli("show", "r-7a")
    assert result.exit_code == 0, result.output


def test_the_timelines_literals_and_check_status_are_the_event_classes() -> None:
    from itertools import product
    from typing import get_args

    from agentflow.events import CheckResult, RunStarted, SessionEnded, SessionStarted
    from agentflow.show import MODES, ROLES, STATUSES, _check_passed

    assert get_args(RunStarted.model_fields["mode"].annotation) == MODES
    assert get_args(SessionStarted.model_fields["role"].annotation) == ROLES
    assert get_args(SessionEnded.model_fields["status"].annotation) == STATUSES
    for exit_code, junit, evidence, tests in product(
        [0, 1, None], [False, True], [None, "", "no report"], [None, 0, 3]
    ):
        check = CheckResult(command="t", exit_code=exit_code, duration_s=1, junit=junit, evidence=evidence, tests=tests)
        assert _check_passed(check) == check.passed, (exit_code, junit, evidence, tests)


def test_show_imports_no_pydantic(history: Path) -> None:
    from helpers import command_in_fresh_process

    exit_code, loaded = command_in_fresh_process(history, ["show", "r-102a"], ("pydantic", "agentflow.events"))
    assert (exit_code, loaded) == (0, [])
