"""``agentflow metrics``: every figure of a hand-worked history in JSON, Markdown, HTML and text.

The history is in ``metrics_helpers`` (read its docstring first); the expected numbers below were
worked out by hand from it, not copied from the program's output.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import HOSTILE_ESCAPED, HOSTILE_MARKDOWN, hostile_rows
from metrics_helpers import PERIOD_ARGS, Cycle, History, at, build_history, finding, git

from agentflow.errors import UsageError
from agentflow.events import ModelCalled, RunStarted, SessionStarted, Usage
from agentflow.ledger import Ledger, ledger_path
from agentflow.metrics import parse_period

ZERO_DAY = {"builder": 0.0, "verifier": 0.0, "evaluator": 0.0}

EXPECTED_CURRENT = {
    "period": {"start": "2026-11-16T00:00:00+00:00", "end": "2026-11-23T00:00:00+00:00"},
    "source": "ledger",
    # built: 101, 102, 103, 104 finished build runs; approved: 101 and 102; merged: 101 (merge on the 16th)
    "plans": {"built": 4, "approved": 2, "merged": 1, "capped": 1, "rejected": 1},
    "runs": 5,  # r-101a r-102a r-103a r-104a r-104b
    "runs_by_mode": {"build": 5},
    "sessions": {"builder": 8, "verifier": 8, "evaluator": 1},  # one per cycle: 1+2+3+1+1
    "cycles": {"total": 8, "mean_per_plan": 2.0, "max": 3, "distribution": {"1": 3, "2": 1, "3": 1}},
    "first_pass_approval_rate": 0.25,  # only 101 of the 4 built plans passed in cycle 1 of its first run
    # per cycle: 101 approved; 102 changes + approved; 103 changes x3 then the cap; 104 no verdict, rejected
    "outcomes": {"approved": 2, "changes_requested": 4, "rejected": 1, "no_verdict": 1, "capped": 1},
    "overrides": 1,
    # distinct per run: 101 F1; 102 F1 F2 F3 (F2 listed twice counts once); 103 F1 (three times); 104b F1
    "findings": {
        "total": 6,
        "by_severity": {"critical": 1, "high": 2, "medium": 1, "low": 2, "info": 0},
        "by_pattern": {"capsule-isolation": 2, "(no pattern)": 1, "api-errors": 1, "backwards-compat": 1, "naming": 1},
        "by_pattern_severity": {
            "capsule-isolation": {"high": 1, "medium": 1},
            "(no pattern)": {"low": 1},
            "api-errors": {"high": 1},
            "backwards-compat": {"critical": 1},
            "naming": {"low": 1},
        },
    },
    "evaluator_findings": {"opened": 2, "closed": 1, "open": 3},  # {E1,E4} -> {E1,E2,E3}
    # 8 builder x (1000, 200, 4000, 500) + 8 verifier x (500, 100, 2000, 0) + evaluator (3000, 500)
    "tokens": {"input": 15000, "output": 2900, "cache_read": 48000, "cache_write": 4000},
    "cache_hit_ratio": 0.7164,  # 48000 / (15000 + 48000 + 4000)
    "cost_usd": {
        "total": 12.15,
        "per_role": {"builder": 8.4, "verifier": 3.5, "evaluator": 0.25},
        "per_approved_plan": 5.95,  # (8.40 + 3.50) / 2
        "by_day": {
            "2026-11-16": {"builder": 1.0, "verifier": 0.5, "evaluator": 0.0},
            "2026-11-17": {"builder": 3.2, "verifier": 1.4, "evaluator": 0.0},
            "2026-11-18": {"builder": 3.0, "verifier": 1.2, "evaluator": 0.0},
            "2026-11-19": {"builder": 0.5, "verifier": 0.1, "evaluator": 0.0},
            "2026-11-20": {"builder": 0.7, "verifier": 0.3, "evaluator": 0.0},
            "2026-11-21": {"builder": 0.0, "verifier": 0.0, "evaluator": 0.25},
            "2026-11-22": ZERO_DAY,
        },
    },
    "commits": 8,  # one per cycle; the merge and the human commit carry no trailers
    "time_to_approval_hours": {"mean": 1.0, "max": 1.5},  # 101: 0.5 h, 102: 1.5 h
    "estimate": {"estimated_hours": 24.0, "actual_hours": 2.0, "speedup": 12.0, "speedup_note": None, "plans": 2},
    "plans_detail": [
        {
            "plan": "101",
            "title": "Add capsule_id to RoleAssignment",
            "runs": 1,
            "cycles": 1,
            "outcome": "approved",
            "estimate_hours": 16.0,
            "actual_hours": 0.5,
        },
        {
            "plan": "102",
            "title": "Enforce tenant scoping",
            "runs": 1,
            "cycles": 2,
            "outcome": "approved",
            "estimate_hours": 8.0,
            "actual_hours": 1.5,
        },
        {
            "plan": "103",
            "title": "Rate limiting",
            "runs": 1,
            "cycles": 3,
            "outcome": "capped",
            "estimate_hours": None,
            "actual_hours": None,
        },
        {
            "plan": "104",
            "title": "Drop the legacy endpoint",
            "runs": 2,
            "cycles": 2,
            "outcome": "rejected",
            "estimate_hours": 4.0,
            "actual_hours": None,
        },
    ],
    "empty": False,
}

EXPECTED_PREVIOUS = {
    "period": {"start": "2026-11-09T00:00:00+00:00", "end": "2026-11-16T00:00:00+00:00"},
    "source": "ledger",
    "plans": {"built": 1, "approved": 1, "merged": 0, "capped": 0, "rejected": 0},
    "runs": 1,
    "runs_by_mode": {"build": 1},
    "sessions": {"builder": 1, "verifier": 1, "evaluator": 0},
    "cycles": {"total": 1, "mean_per_plan": 1.0, "max": 1, "distribution": {"1": 1}},
    "first_pass_approval_rate": 1.0,
    "outcomes": {"approved": 1, "changes_requested": 0, "rejected": 0, "no_verdict": 0, "capped": 0},
    "overrides": 0,
    "findings": {
        "total": 0,
        "by_severity": dict.fromkeys(("critical", "high", "medium", "low", "info"), 0),
        "by_pattern": {},
        "by_pattern_severity": {},
    },
    "evaluator_findings": {"opened": 2, "closed": 0, "open": 2},
    "tokens": {"input": 1500, "output": 300, "cache_read": 6000, "cache_write": 500},
    "cache_hit_ratio": 0.75,
    "cost_usd": {
        "total": 1.5,
        "per_role": {"builder": 1.0, "verifier": 0.5, "evaluator": 0.0},
        "per_approved_plan": 1.5,
        "by_day": {
            f"2026-11-{d:02d}": ({"builder": 1.0, "verifier": 0.5, "evaluator": 0.0} if d == 10 else ZERO_DAY)
            for d in range(9, 16)
        },
    },
    "commits": 1,
    "time_to_approval_hours": {"mean": 0.5, "max": 0.5},
    "estimate": {"estimated_hours": 8.0, "actual_hours": 0.5, "speedup": 16.0, "speedup_note": None, "plans": 1},
    "plans_detail": [
        {
            "plan": "100",
            "title": "Seed the ledger",
            "runs": 1,
            "cycles": 1,
            "outcome": "approved",
            "estimate_hours": 8.0,
            "actual_hours": 0.5,
        }
    ],
    "empty": False,
    "previous": None,
}

# label -> (this period, previous, change) as every format prints it
EXPECTED_ROWS: dict[str, tuple[str, str, str]] = {
    "Plans built": ("4", "1", "+3"),
    "Plans approved": ("2", "1", "+1"),
    "Plans merged": ("1", "0", "+1"),
    "Plans capped": ("1", "0", "+1"),
    "Plans rejected": ("1", "0", "+1"),
    "Runs": ("5", "1", "+4"),
    "Builder sessions": ("8", "1", "+7"),
    "Verifier sessions": ("8", "1", "+7"),
    "Evaluator sessions": ("1", "0", "+1"),
    "Cycles (total)": ("8", "1", "+7"),
    "Cycles per plan (mean)": ("2.00", "1.00", "+1.00"),
    "Cycles (max of a run)": ("3", "1", "+2"),
    "First-pass approval rate": ("25.0%", "100.0%", "−75.0 pts"),
    "Verdicts approved": ("2", "1", "+1"),
    "Verdicts changes requested": ("4", "0", "+4"),
    "Verdicts rejected": ("1", "0", "+1"),
    "Verdicts no verdict": ("1", "0", "+1"),
    "Verdicts capped": ("1", "0", "+1"),
    "Human overrides": ("1", "0", "+1"),
    "Verifier findings": ("6", "0", "+6"),
    "Findings critical": ("1", "0", "+1"),
    "Findings high": ("2", "0", "+2"),
    "Findings medium": ("1", "0", "+1"),
    "Findings low": ("2", "0", "+2"),
    "Findings info": ("0", "0", "0"),
    "Evaluator findings opened": ("2", "2", "0"),
    "Evaluator findings closed": ("1", "0", "+1"),
    "Evaluator findings open": ("3", "2", "+1"),
    "Input tokens": ("15,000", "1,500", "+13,500"),
    "Output tokens": ("2,900", "300", "+2,600"),
    "Cache read tokens": ("48,000", "6,000", "+42,000"),
    "Cache write tokens": ("4,000", "500", "+3,500"),
    "Cache hit ratio": ("71.6%", "75.0%", "−3.4 pts"),
    "Cost (total)": ("$12.15", "$1.50", "+$10.65"),
    "Cost builder": ("$8.40", "$1.00", "+$7.40"),
    "Cost verifier": ("$3.50", "$0.50", "+$3.00"),
    "Cost evaluator": ("$0.25", "$0.00", "+$0.25"),
    "Cost per approved plan": ("$5.95", "$1.50", "+$4.45"),
    "Commits with agentflow trailers": ("8", "1", "+7"),
    "Time to approval (mean)": ("1.00 h", "30 min", "+30 min"),
    "Time to approval (max)": ("1.50 h", "30 min", "+1.00 h"),
    "Estimated hours (approved plans)": ("24.00 h", "8.00 h", "+16.00 h"),
    "Actual hours (same plans)": ("2.00 h", "30 min", "+1.50 h"),
    "Speedup": ("12.00×", "16.00×", "−4.00×"),
}
EXPECTED_PATTERNS = [
    ("capsule-isolation", "2", "0"),
    ("(no pattern)", "1", "0"),
    ("api-errors", "1", "0"),
    ("backwards-compat", "1", "0"),
    ("naming", "1", "0"),
]
EXPECTED_PLANS = [
    ("101", "Add capsule_id to RoleAssignment", "1", "1", "approved", "16.00 h", "30 min"),
    ("102", "Enforce tenant scoping", "1", "2", "approved", "8.00 h", "1.50 h"),
    ("103", "Rate limiting", "1", "3", "capped", "—", "—"),
    ("104", "Drop the legacy endpoint", "2", "2", "rejected", "4.00 h", "—"),
]


@pytest.fixture
def history(repo: Path) -> Path:
    build_history(repo)
    return repo


def metrics_json(cli, *args: str) -> dict:
    result = cli("metrics", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# -- the period ----------------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "until", "start", "end"),
    [
        ("7d", None, datetime(2026, 11, 20, 15, 30, tzinfo=UTC), NOW),
        ("2w", None, datetime(2026, 11, 13, 15, 30, tzinfo=UTC), NOW),
        ("24h", None, datetime(2026, 11, 26, 15, 30, tzinfo=UTC), NOW),
        ("2026-11-01", None, datetime(2026, 11, 1, tzinfo=UTC), NOW),
        ("2026-11-01", "2026-11-07", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)),
        ("7d", "2026-11-07", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)),
        (
            "2026-11-01T12:00:00+02:00",
            "2026-11-02T00:00:00Z",
            datetime(2026, 11, 1, 10, tzinfo=UTC),
            datetime(2026, 11, 2, tzinfo=UTC),
        ),
    ],
)
def test_parse_period(since: str, until: str | None, start: datetime, end: datetime) -> None:
    period = parse_period(since, until, now=NOW)
    assert (period.start, period.end) == (start, end)
    assert period.previous().end == start and period.previous().length == end - start


@pytest.mark.parametrize(
    ("since", "until"), [("seven days", None), ("0d", None), ("2026-11-10", "2026-11-01"), ("7d", "yesterday")]
)
def test_bad_periods_are_usage_errors(since: str, until: str | None) -> None:
    with pytest.raises(UsageError):
        parse_period(since, until, now=NOW)


def test_bad_since_exits_2_naming_the_accepted_forms(repo: Path, cli) -> None:
    result = cli("metrics", "--since", "last week")
    assert result.exit_code == 2
    assert "7d, 2w, 24h" in result.output


# -- every figure --------------------------------------------------------------------------------


def test_json_has_every_figure(history: Path, cli) -> None:
    report = metrics_json(cli, *PERIOD_ARGS)
    previous = report.pop("previous")
    assert report == EXPECTED_CURRENT
    assert previous == EXPECTED_PREVIOUS


def test_json_contract_keys(history: Path, cli) -> None:
    """The keys DESIGN/issue 7 promise, exactly as named (extra keys are allowed, renames are not)."""
    report = metrics_json(cli, *PERIOD_ARGS)
    contract = {
        "period": {"start", "end"},
        "plans": {"built", "approved", "merged", "capped", "rejected"},
        "sessions": {"builder", "verifier", "evaluator"},
        "cycles": {"total", "mean_per_plan", "max"},
        "outcomes": {"approved", "changes_requested", "rejected", "no_verdict", "capped"},
        "findings": {"by_severity", "by_pattern"},
        "tokens": {"input", "output", "cache_read", "cache_write"},
        "cost_usd": {"total", "per_role", "per_approved_plan"},
        "estimate": {"estimated_hours", "actual_hours", "speedup"},
    }
    for data in (report, report["previous"]):
        for key, inner in contract.items():
            assert inner <= set(data[key]), key
        for key in ("runs", "first_pass_approval_rate", "commits", "previous"):
            assert key in data


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass a field's type names (``X``, ``X | None``, ``list[X]``), or None for plain data."""
    if dataclasses.is_dataclass(hint):
        return hint  # type: ignore[return-value]
    return next((found for arg in typing.get_args(hint) if (found := _dataclass_in(arg))), None)


def _assert_shape(data: Any, cls: type, where: str) -> None:
    """``data`` has exactly the fields of ``cls``, in field order, and so do its nested records."""
    assert isinstance(data, dict), where
    names = [f.name for f in dataclasses.fields(cls)]
    assert list(data) == names, where
    hints = typing.get_type_hints(cls)
    for name in names:
        inner, value = _dataclass_in(hints[name]), data[name]
        if inner is None or value is None:
            continue
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            _assert_shape(item, inner, f"{where}.{name}[{index}]")


@pytest.mark.parametrize("source", ["ledger", "git"])
def test_json_shape_is_the_typed_report(history: Path, cli, source: str) -> None:
    """The JSON is ``MetricsReport`` field for field, in field order, from either source: the keys are
    defined once, by the typed report, and a renamed or reordered field shows here."""
    from agentflow.metrics.model import MetricsReport

    result = cli("metrics", *PERIOD_ARGS, "--format", "json", *(["--from-git"] if source == "git" else []))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    _assert_shape(report, MetricsReport, "report")
    assert report["previous"]["previous"] is None and report["plans_detail"]
    assert result.stdout == json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def test_every_figure_row_reads_its_json_key(history: Path, cli) -> None:
    """Each row the text, Markdown and HTML print shows the value at its ``key`` in the JSON."""
    from agentflow.metrics import metrics_report
    from agentflow.report.figures import FORMATTERS, figure_rows, figures

    report = metrics_report(history, parse_period(*PERIOD_ARGS[1::2]))
    data = report.to_dict()
    for figure, row in zip(figures(), figure_rows(report), strict=True):
        value: Any = data
        for part in figure.key.split("."):
            value = value[part] if value is not None else None
        assert row.key == figure.key and row.value == FORMATTERS[figure.kind](value), figure.key


def _markdown_table(text: str, first_header: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_markdown_table_has_every_figure(history: Path, cli) -> None:
    result = cli("metrics", *PERIOD_ARGS, "--format", "md")
    assert result.exit_code == 0
    assert result.stdout.startswith("## agentflow metrics: 2026-11-16 00:00 → 2026-11-23 00:00 UTC")
    rows = {label: (value, prev, change) for label, value, prev, change in _markdown_table(result.stdout, "Figure")}
    assert rows == EXPECTED_ROWS
    assert [tuple(r) for r in _markdown_table(result.stdout, "Pattern")] == EXPECTED_PATTERNS
    assert [tuple(r) for r in _markdown_table(result.stdout, "Plan")] == EXPECTED_PLANS


class _Cells(HTMLParser):
    """Collects table rows (cell texts) per table id, and checks tags are balanced."""

    VOID = {"meta", "br", "rect", "line"}

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.keys: list[str] = []
        self.stack: list[str] = []
        self.table: str | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.VOID:
            self.stack.append(tag)
        attributes = dict(attrs)
        if tag == "table":
            self.table = attributes.get("id")
        elif tag == "tr" and self.table:
            self.row = []
            if attributes.get("data-key"):
                self.keys.append(attributes["data-key"] or "")
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # self-closing SVG elements

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> after {self.stack[-3:]}"
        self.stack.pop()
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None and self.table:
            self.tables.setdefault(self.table, []).append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def test_html_has_every_figure_and_four_charts(history: Path, cli, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = cli("metrics", *PERIOD_ARGS, "--format", "html", "--output", str(out))
    assert result.exit_code == 0
    html = out.read_text()
    parser = _Cells()
    parser.feed(html)
    assert parser.stack == [], "every element is closed"
    figures = [r for r in parser.tables["figures"][1:] if len(r) == 4]
    assert {label: (value, prev, change) for label, value, prev, change in figures} == EXPECTED_ROWS
    assert [tuple(r) for r in parser.tables["patterns"][1:]] == EXPECTED_PATTERNS
    assert [tuple(r) for r in parser.tables["plans"][1:]] == [(f"{p[0]} {p[1]}", *p[2:]) for p in EXPECTED_PLANS]
    assert "first_pass_approval_rate" in parser.keys and "cost_usd.per_approved_plan" in parser.keys
    # headline cards
    for text in ("2 of 4 built", "25.0%", "2.00", "$5.95", "12.00×", "24.00 h estimated, 2.00 h actual"):
        assert text in html
    # self-contained: no scripts, no external resources of any kind
    assert not re.search(r"<script|<link|<img|src=|url\(|@import", html)
    assert set(re.findall(r"https?://[^\s'\"]+", html)) == {"http://www.w3.org/2000/svg"}
    # four well-formed SVG charts carrying the figures
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 4
    titles = [[t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}title")] for svg in svgs]
    cycles, outcomes, findings, cost = titles
    assert "102 Enforce tenant scoping: cycles (approved) 2" in cycles
    assert "103 Rate limiting: cycles (capped) 3" in cycles
    assert {"approved: approved 2", "changes requested: changes requested 4", "capped: capped 1"} <= set(outcomes)
    assert {"capsule-isolation: high 1", "capsule-isolation: medium 1", "backwards-compat: critical 1"} <= set(findings)
    assert {"Nov 17 builder: $3.20", "Nov 17 verifier: $1.40", "Nov 21 evaluator: $0.25"} <= set(cost)


def test_text_report(history: Path, cli) -> None:
    result = cli("metrics", *PERIOD_ARGS)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "agentflow metrics  2026-11-16 00:00 → 2026-11-23 00:00 UTC  (source: ledger)"
    for label, (value, prev, change) in EXPECTED_ROWS.items():
        pattern = rf"^  {re.escape(label)}\s+{re.escape(value)}\s+{re.escape(prev)}\s+{re.escape(change)}$"
        assert any(re.match(pattern, line) for line in lines), label
    assert any(re.match(r"^103 Rate limiting\s+1\s+3\s+capped\s+—\s+—$", line) for line in lines)


def test_output_file_and_message(history: Path, cli, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "metrics.json"
    result = cli("metrics", *PERIOD_ARGS, "--format", "json", "--output", str(out))
    assert result.exit_code == 0
    assert f"wrote {out}" in result.output
    assert json.loads(out.read_text())["plans"]["built"] == 4


# -- empty periods -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "md", "html"])
def test_empty_period_says_so(history: Path, cli, fmt: str) -> None:
    result = cli("metrics", "--since", "2026-10-01", "--until", "2026-10-07", "--format", fmt)
    assert result.exit_code == 0
    assert "Nothing in this period (2026-10-01 00:00 → 2026-10-08 00:00 UTC)" in result.stdout


def test_empty_period_json_is_all_zeros(history: Path, cli) -> None:
    report = metrics_json(cli, "--since", "2026-10-01", "--until", "2026-10-07")
    assert report["empty"] is True
    assert report["plans"] == dict.fromkeys(("built", "approved", "merged", "capped", "rejected"), 0)
    assert report["runs"] == report["commits"] == 0
    assert report["first_pass_approval_rate"] is None and report["cost_usd"]["per_approved_plan"] is None
    assert report["cost_usd"]["total"] == 0.0


def test_repository_without_ledger_is_an_empty_report_and_creates_nothing(repo: Path, cli) -> None:
    result = cli("metrics")
    assert result.exit_code == 0
    assert "Nothing in this period" in result.stdout
    assert not ledger_path(repo).exists()


# -- edge cases ----------------------------------------------------------------------------------


def test_a_session_that_never_ended_is_still_paid_for(repo: Path, cli) -> None:
    """A killed builder left SessionStarted and ModelCalled only: its cost counts, no plan is built."""
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(ts=at(17, 9), run_id="r-k", plan_id="7", plan_title="Killed"))
        ledger.append(
            SessionStarted(ts=at(17, 9), run_id="r-k", session_id="s-k", role="builder", backend="x", model="m")
        )
        for turn in (1, 2):
            ledger.append(
                ModelCalled(
                    ts=at(17, 9, turn),
                    run_id="r-k",
                    session_id="s-k",
                    turn=turn,
                    model="m",
                    usage=Usage(input_tokens=100, output_tokens=10),
                    cost_usd=0.25,
                )
            )
    report = metrics_json(cli, *PERIOD_ARGS)
    assert report["runs"] == 1 and report["plans"]["built"] == 0
    assert report["sessions"] == {"builder": 1, "verifier": 0, "evaluator": 0}
    assert report["cost_usd"]["total"] == 0.5
    assert report["tokens"]["input"] == 200
    assert report["cycles"]["mean_per_plan"] is None and report["first_pass_approval_rate"] is None


# -- --from-git ----------------------------------------------------------------------------------


def fresh_clone(origin: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(origin), where.name)
    git(where, "fetch", "-q", "origin", "refs/notes/agentflow:refs/notes/agentflow")
    return where


KNOWN_TO_BOTH = [
    ("plans", "built"),
    ("plans", "approved"),
    ("plans", "merged"),
    ("plans", "rejected"),
    ("runs",),
    ("cycles",),
    ("first_pass_approval_rate",),
    ("outcomes", "approved"),
    ("outcomes", "changes_requested"),
    ("outcomes", "rejected"),
    ("outcomes", "no_verdict"),
    ("overrides",),
    ("findings",),
    ("commits",),
]


def _pick(report: dict, path: tuple[str, ...]) -> object:
    for key in path:
        report = report[key]
    return report


def test_from_git_on_a_fresh_clone_agrees_with_the_ledger(history: Path, cli, tmp_path: Path) -> None:
    from_ledger = metrics_json(cli, *PERIOD_ARGS)
    clone = fresh_clone(history, tmp_path / "clone")
    assert not ledger_path(clone).exists()
    result = cli("-C", str(clone), "metrics", *PERIOD_ARGS, "--from-git", "--format", "json")
    assert result.exit_code == 0, result.output
    from_git = json.loads(result.stdout)
    assert from_git["source"] == "git"
    for report_l, report_g in ((from_ledger, from_git), (from_ledger["previous"], from_git["previous"])):
        for path in KNOWN_TO_BOTH:
            assert _pick(report_g, path) == _pick(report_l, path), path
    # what git cannot know is null, never a made-up zero
    assert from_git["sessions"] is None and from_git["tokens"] is None and from_git["evaluator_findings"] is None
    assert from_git["cost_usd"] == {"total": None, "per_role": None, "per_approved_plan": None, "by_day": None}
    assert from_git["estimate"]["speedup"] is None and from_git["estimate"]["actual_hours"] is None
    # git has no "capped": a capped run shows as its last verdict, changes requested
    assert from_git["plans"]["capped"] == 0 and from_git["outcomes"]["capped"] == 0
    # and it renders in every format
    for fmt in ("text", "md", "html"):
        rendered = cli("-C", str(clone), "metrics", *PERIOD_ARGS, "--from-git", "--format", fmt)
        assert rendered.exit_code == 0 and "capsule-isolation" in rendered.stdout


def test_from_git_uses_run_start_and_estimate_when_notes_carry_them(repo: Path, cli, tmp_path: Path) -> None:
    build_history(repo, note_extensions=True)
    from_ledger = metrics_json(cli, *PERIOD_ARGS)
    clone = fresh_clone(repo, tmp_path / "clone")
    result = cli("-C", str(clone), "metrics", *PERIOD_ARGS, "--from-git", "--format", "json")
    from_git = json.loads(result.stdout)
    assert from_git["estimate"] == from_ledger["estimate"] == EXPECTED_CURRENT["estimate"]
    assert from_git["time_to_approval_hours"] == from_ledger["time_to_approval_hours"]


def test_from_git_without_notes_counts_commits_only(history: Path, cli, tmp_path: Path) -> None:
    clone = tmp_path / "bare-clone"
    git(tmp_path, "clone", "-q", str(history), clone.name)  # notes are not fetched by default
    result = cli("-C", str(clone), "metrics", *PERIOD_ARGS, "--from-git", "--format", "json")
    report = json.loads(result.stdout)
    assert report["commits"] == 8 and report["plans"]["approved"] == 0 and report["empty"] is False


# -- rendering details ---------------------------------------------------------------------------


def test_html_escapes_titles_and_patterns() -> None:
    from agentflow.metrics import Facts, RunFact, VerdictFact, compute
    from agentflow.report import render_metrics

    run = RunFact(
        "r-x", "9", "<script>alert(1)</script> & co", started=at(17, 9), ended=at(17, 10), outcome="approved", cycles=1
    )
    run.verdicts.append(
        VerdictFact(
            "r-x", "9", 1, "approved", at(17, 10), findings=[{"id": "F1", "severity": "low", "pattern": "<b>bold</b>"}]
        )
    )
    report = compute(
        Facts(source="ledger", runs=[run], sessions=[], evaluations=[]), parse_period("2026-11-16", "2026-11-22")
    )
    html = render_metrics(report, "html")
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    markdown = render_metrics(report, "md")
    assert "<script>" not in markdown and "| 9 | &lt;script&gt;alert(1)&lt;/script&gt; & co |" in markdown


def test_long_periods_chart_cost_per_week_then_month() -> None:
    from agentflow.report.html import cost_buckets

    def days(n: int) -> dict:
        start = datetime(2026, 1, 1).date()
        return {
            (start + timedelta(days=i)).isoformat(): {"builder": 1.0, "verifier": 0.5, "evaluator": 0.0}
            for i in range(n)
        }

    unit, columns = cost_buckets(days(7))
    assert unit == "day" and len(columns) == 7 and columns[0][0] == "Jan 01"
    unit, columns = cost_buckets(days(90))
    assert unit == "week" and columns[0] == ("Dec 29", {"builder": 4.0, "verifier": 2.0, "evaluator": 0.0})
    assert sum(c["builder"] for _, c in columns) == 90.0
    unit, columns = cost_buckets(days(500))
    assert unit == "month" and columns[0] == ("Jan 2026", {"builder": 31.0, "verifier": 15.5, "evaluator": 0.0})


def test_markdown_escapes_hostile_titles_and_patterns(repo: Path, cli) -> None:
    """A plan title and a finding pattern with ``<script>``, a backslash-pipe and a newline: no raw HTML, no
    broken row in the Markdown report (a PR comment)."""
    with Ledger.open(repo) as ledger:
        hostile = finding("F1", "low", HOSTILE_MARKDOWN)
        History(repo, ledger).run(
            "9", HOSTILE_MARKDOWN, "r-9a", at(17, 9), [Cycle(1.0, 0.5, "approved", [hostile])], "approved", 4
        )
    out = cli("metrics", *PERIOD_ARGS, "--format", "md").stdout
    rows = hostile_rows(out)
    assert [len(r) for r in rows] == [3, 7], out  # findings by pattern, plans finished
    assert rows[0][0] == HOSTILE_ESCAPED and rows[1][:2] == ["9", HOSTILE_ESCAPED]
