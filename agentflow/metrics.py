"""The metrics report: what the team of agents did in a period (``agentflow metrics``).

Two sources feed one computation. ``facts_from_ledger`` reads the ledger (sessions, costs, verdicts,
runs) plus git (agentflow commits); ``facts_from_git`` reads commits, trailers and verdict notes
alone, so a CI job on a fresh clone can publish the report. Both produce ``Facts``; ``compute``
turns facts and a period into the report dictionary, whose keys are a public contract (see
docs/metrics.md for every definition). What a source cannot know is ``None`` (JSON ``null``),
never a made-up zero.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal

from agentflow.errors import UsageError
from agentflow.events import (
    OUTCOMES,
    FindingsRecorded,
    Merged,
    ModelCalled,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionStarted,
    Usage,
    VerdictRecorded,
)
from agentflow.git import TRAILER_CYCLE, TRAILER_PLAN, TRAILER_RUN, Repo
from agentflow.ledger import Ledger, ledger_path
from agentflow.verdict import SEVERITIES

ROLES: tuple[str, ...] = ("builder", "verifier", "evaluator")
NO_PATTERN = "(no pattern)"
DEFAULT_SINCE = "7d"
# Actual times in hours keep 4 digits (0.36 s), so a run of seconds is not reported as 0 h.
HOUR_DIGITS = 4
# Below a minute of actual time a speedup against an estimate in hours is noise (a scripted or cached run).
SPEEDUP_FLOOR_HOURS = 1 / 60
SPEEDUP_FLOOR_TEXT = "1 min"

# -- the period ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A half-open interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __contains__(self, ts: datetime | None) -> bool:
        return ts is not None and self.start <= _utc(ts) < self.end

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Period:
        """The period of the same length immediately before this one."""
        return Period(self.start - self.length, self.start)

    def days(self) -> list[date]:
        """Every UTC calendar day the period touches, in order."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


_RELATIVE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _parse_moment(value: str, *, option: str, end_of_day: bool) -> datetime:
    """An ISO date or date-time; a bare date means its midnight (or the next one for ``--until``)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        return _utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise UsageError(
            f"{option} {value!r} is neither a duration nor an ISO date",
            fix=f"use e.g. {option} 7d, 2w, 24h or {option} 2026-11-20",
        ) from None


def _whole_second_after(now: datetime | None) -> datetime:
    """``now`` rounded up to a whole second: tidy timestamps that still include what just happened."""
    moment = _utc(now or datetime.now(UTC))
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def parse_period(since: str | None, until: str | None, now: datetime | None = None) -> Period:
    """The period ``--since``/``--until`` describe; ``since`` defaults to ``7d`` and ``until`` to now.

    ``since`` is a duration (``24h``, ``7d``, ``2w``) counted back from ``until``, or an ISO date
    (its midnight UTC) or date-time. A bare ``until`` date includes that whole day.
    """
    end = _parse_moment(until, option="--until", end_of_day=True) if until else _whole_second_after(now)
    since = since or DEFAULT_SINCE
    match = _RELATIVE.match(since)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        if amount <= 0:
            raise UsageError(f"--since {since!r} is an empty period", fix="use a positive duration such as 7d")
        start = end - timedelta(hours=amount * _UNIT_HOURS[unit])
    else:
        start = _parse_moment(since, option="--since", end_of_day=False)
    if start >= end:
        raise UsageError(
            f"the period is empty: --since {start:%Y-%m-%d %H:%M} is not before --until {end:%Y-%m-%d %H:%M}",
            fix="pick a --since earlier than --until",
        )
    return Period(start, end)


# -- facts: what a source knows ------------------------------------------------------------------


@dataclass
class VerdictFact:
    """One verification (one cycle's verdict) or a human override."""

    run_id: str
    plan_id: str | None
    cycle: int
    outcome: str
    ts: datetime
    override: bool = False
    findings: list[dict[str, Any]] = field(default_factory=list)
    commit: str | None = None  # the verified commit, when known


@dataclass
class RunFact:
    run_id: str
    plan_id: str | None
    plan_title: str | None = None
    mode: str = "build"
    started: datetime | None = None
    ended: datetime | None = None
    outcome: str | None = None  # the run's final outcome; None while in progress (or unknown)
    cycles: int = 0
    estimate_hours: float | None = None
    verdicts: list[VerdictFact] = field(default_factory=list)
    synthetic: bool = False  # holds verdicts that belong to no run (e.g. an override of a human commit)

    @property
    def first_seen(self) -> datetime | None:
        """When the run started, or the earliest thing known about it."""
        candidates = [t for t in (self.started, *(v.ts for v in self.verdicts), self.ended) if t is not None]
        return min(candidates) if candidates else None


@dataclass
class SessionFact:
    session_id: str
    run_id: str | None
    role: str
    ts: datetime  # when it ended (or started, for a session that never ended)
    usage: Usage
    cost_usd: float


@dataclass
class CommitFact:
    commit: str
    ts: datetime
    plan_id: str | None
    run_id: str | None
    cycle: int | None


@dataclass
class Facts:
    """Everything a source knows; ``None`` marks what it cannot know."""

    source: Literal["ledger", "git"]
    runs: list[RunFact] = field(default_factory=list)
    sessions: list[SessionFact] | None = None
    commits: list[CommitFact] = field(default_factory=list)
    merges: list[tuple[str, datetime]] = field(default_factory=list)  # (plan id, when)
    evaluations: list[tuple[datetime, list[dict[str, Any]]]] | None = None
    timing_known: bool = True  # False when run start times are unknown (git without run_started)


def _commit_facts(repo: Repo | None) -> list[CommitFact]:
    if repo is None:
        return []
    facts = []
    for c in repo.log_trailers():
        cycle = c.trailers.get(TRAILER_CYCLE, "")
        facts.append(
            CommitFact(
                c.commit,
                _utc(c.committed),
                c.trailers.get(TRAILER_PLAN),
                c.trailers.get(TRAILER_RUN),
                int(cycle) if cycle.isdigit() else None,
            )
        )
    return facts


def facts_from_ledger(ledger: Ledger | None, repo: Repo | None, since: datetime | None = None) -> Facts:
    """Runs, sessions, verdicts, merges and evaluations from the ledger; commits from git.

    ``since``: only runs started from ``since`` minus ``RUN_MARGIN`` on are read (plus every merge,
    evaluation and run-less event), through the indexed columns: time stays flat in ledger size."""
    facts = Facts(source="ledger", sessions=[], evaluations=[], commits=_commit_facts(repo))
    if ledger is None:
        return facts
    runs: dict[str, RunFact] = {}
    sessions: dict[str, SessionFact] = {}
    ended_sessions: set[str] = set()
    events = ledger.events() if since is None else ledger.events_for_window(since - RUN_MARGIN)
    for event in events:
        run = runs.get(event.run_id or "")
        if isinstance(event, RunStarted) and event.run_id:
            runs[event.run_id] = RunFact(
                event.run_id,
                event.plan_id,
                event.plan_title,
                event.mode,
                _utc(event.ts),
                estimate_hours=event.estimate_hours,
            )
        elif isinstance(event, VerdictRecorded):
            if run is None:  # an override (or a verdict) outside any run still counts
                run = runs.setdefault(
                    event.run_id or f"verdict:{event.ts.isoformat()}",
                    RunFact(event.run_id or "", None, mode="none", synthetic=True),
                )
            findings = list((event.verdict or {}).get("findings") or [])
            run.verdicts.append(
                VerdictFact(
                    run.run_id,
                    run.plan_id,
                    event.cycle,
                    event.outcome,
                    _utc(event.ts),
                    event.override,
                    findings,
                    event.commit,
                )
            )
        elif isinstance(event, RunEnded) and run is not None:
            run.ended, run.outcome = _utc(event.ts), event.outcome
            run.cycles = max(run.cycles, event.cycles)
        elif isinstance(event, SessionStarted):
            sessions[event.session_id] = SessionFact(
                event.session_id, event.run_id, event.role, _utc(event.ts), Usage(), 0.0
            )
            if run is not None:  # a run that never ended still shows how far it got
                run.cycles = max(run.cycles, event.cycle)
        elif isinstance(event, ModelCalled) and event.session_id not in ended_sessions:
            session = sessions.get(event.session_id)
            if session is not None:  # a session that never ends is still paid for, turn by turn
                session.usage = session.usage + event.usage
                session.cost_usd += event.cost_usd
        elif isinstance(event, SessionEnded):
            ended_sessions.add(event.session_id)
            sessions[event.session_id] = SessionFact(
                event.session_id, event.run_id, event.role, _utc(event.ts), event.usage, event.cost_usd
            )
        elif isinstance(event, Merged):
            plan_id = event.plan_id or (run.plan_id if run else None)
            if plan_id:
                facts.merges.append((plan_id, _utc(event.ts)))
        elif isinstance(event, FindingsRecorded) and event.source == "evaluator":
            facts.evaluations.append((_utc(event.ts), list(event.findings)))  # type: ignore[union-attr]
    facts.runs = list(runs.values())
    facts.sessions = list(sessions.values())
    return facts


def _note_lines(repo: Repo) -> list[tuple[str, int, dict[str, Any]]]:
    """(commit, line number, parsed note) per verdict line under refs/notes/agentflow; bad lines skipped."""
    from agentflow.notes import verdict_lines  # the one parser of note lines (gate, metrics, orchestration)

    return [(commit, index, dict(note.data)) for commit, index, note in verdict_lines(repo.notes_map())]


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _merged_plans(repo: Repo, since: datetime | None, ref: str = "HEAD") -> list[tuple[str, datetime]]:
    """Plans whose commits entered ``ref``'s first-parent history through a merge, with its date.

    Only merges from ``since`` on are looked into (one ``git log`` each), so long histories stay cheap.
    """
    out = repo.git("log", "--first-parent", "--merges", "--format=%H %cI", ref, check=False)
    merges = []
    for line in out.splitlines():
        commit, _, stamp = line.partition(" ")
        when = _utc(datetime.fromisoformat(stamp))
        if since is not None and when < since:
            continue
        brought = repo.log_trailers(f"{commit}^1..{commit}^2")
        plans = {c.trailers[TRAILER_PLAN] for c in brought if TRAILER_PLAN in c.trailers}
        merges += [(plan, when) for plan in sorted(plans)]
    return merges


def facts_from_git(repo: Repo, since: datetime | None = None) -> Facts:
    """What commits, trailers and verdict notes alone tell (``--from-git``).

    A run is the set of notes sharing a ``run`` id; its cycles are its verdicts in time order
    (or the notes' ``cycle`` field when present); it is a build run when a commit carries its
    ``Agentflow-Run`` trailer. Git knows when a run's last verdict was written, not when the run
    ended, so that verdict stands for the run's end and its outcome for the run's outcome. A capped
    run writes a final ``capped`` line on its last verified commit, so git knows caps (notes
    written before agentflow recorded caps make such a run look like one that requested changes).
    Notes carry ``run_started``, ``cycle`` and ``estimate_hours``; without ``run_started`` (older
    notes) time-to-approval and the estimate are unknown. ``since`` bounds the search
    for merges (nothing before it is reported).
    """
    commits = _commit_facts(repo)
    build_runs = {c.run_id for c in commits if c.run_id}
    plan_of_run = {c.run_id: c.plan_id for c in commits if c.run_id and c.plan_id}
    cycle_of_commit = {c.commit: c.cycle or 0 for c in commits}
    grouped: dict[str, list[tuple[tuple[datetime, int, int], dict[str, Any]]]] = defaultdict(list)
    for commit, index, note in _note_lines(repo):
        note["_commit"] = commit
        key = note.get("run") or f"note:{commit}:{note.get('ts')}"
        # note times have whole seconds: ties go by the commit's cycle trailer, then by line order
        order = (_parse_ts(note.get("ts")) or datetime.min.replace(tzinfo=UTC), cycle_of_commit.get(commit, 0), index)
        grouped[key].append((order, note))
    runs: list[RunFact] = []
    timing_known = True
    for run_id, ordered in grouped.items():
        notes = [note for _, note in sorted(ordered, key=lambda pair: pair[0])]
        plan_id = next((str(n["plan"]) for n in notes if n.get("plan")), None) or plan_of_run.get(run_id)
        synthetic = run_id.startswith("note:")
        mode = "build" if run_id in build_runs else ("none" if synthetic else "verify")
        run = RunFact(run_id, plan_id, mode=mode, synthetic=synthetic)
        cycle = 0
        for note in notes:
            commit = note.get("_commit")
            ts = _parse_ts(note.get("ts"))
            if ts is None:
                continue
            override = bool(note.get("override"))
            if not override:
                cycle = int(note["cycle"]) if str(note.get("cycle", "")).isdigit() else cycle + 1
            run.verdicts.append(
                VerdictFact(
                    run_id,
                    plan_id,
                    max(cycle, 1),
                    note["outcome"],
                    ts,
                    override,
                    list(note.get("findings") or []),
                    commit,
                )
            )
            run.plan_title = run.plan_title or note.get("plan_title")
            run.started = run.started or _parse_ts(note.get("run_started"))
            if note.get("estimate_hours") is not None:
                run.estimate_hours = float(note["estimate_hours"])
        run.cycles = cycle
        last = next((v for v in reversed(run.verdicts) if not v.override), None)
        if last is not None:
            run.outcome, run.ended = last.outcome, last.ts
        timing_known = timing_known and (run.started is not None or synthetic)
        runs.append(run)
    return Facts(source="git", runs=runs, commits=commits, merges=_merged_plans(repo, since), timing_known=timing_known)


RUN_MARGIN = timedelta(days=7)  # runs started this long before a report's window can still end in it


def load_facts(root: Path, *, from_git: bool = False, since: datetime | None = None) -> Facts:
    """The facts of the repository at ``root``: its ledger (never created by reading), or git alone.

    ``since`` is the earliest moment the caller reports on; sources may skip work before it.
    """
    repo = Repo(root)
    if from_git:
        return facts_from_git(repo, since)
    if not ledger_path(root).exists():
        return facts_from_ledger(None, repo)
    with Ledger.open(root) as ledger:
        facts = facts_from_ledger(ledger, repo, since)
        for run in facts.runs:  # figures from a broken chain are not reported (#13 item 2)
            ledger.verify_run(run.run_id, strict=False, legacy_ok=True)
        return facts


# -- the computation -----------------------------------------------------------------------------


def _money(value: float) -> float:
    """Dollars to the micro-dollar: sums of float costs stop showing binary noise."""
    return round(float(value), 6)


def _ratio(numerator: float, denominator: float, digits: int = 4) -> float | None:
    return round(numerator / denominator, digits) if denominator else None


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _finding_key(finding: dict[str, Any]) -> str:
    """A finding's identity across evaluations: its id, else what it is about."""
    fallback = tuple(finding.get(key) for key in ("rule", "event_type", "field", "message"))
    return str(finding.get("id") or fallback)


def _verdicts_in(facts: Facts, period: Period) -> list[VerdictFact]:
    return [v for run in facts.runs for v in run.verdicts if v.ts in period]


def _first_build_runs(facts: Facts) -> dict[str, RunFact]:
    """Each plan's first build run over all time: the one that decides "first pass"."""
    first: dict[str, RunFact] = {}
    for run in facts.runs:
        if run.mode != "build" or run.plan_id is None or run.first_seen is None:
            continue
        known = first.get(run.plan_id)
        if known is None or run.first_seen < (known.first_seen or run.first_seen):
            first[run.plan_id] = run
    return first


def _approved_in_cycle_one(run: RunFact) -> bool:
    return any(v.cycle == 1 and v.outcome == "approved" and not v.override for v in run.verdicts)


def _outcomes(facts: Facts, period: Period) -> dict[str, int]:
    counts = Counter(v.outcome for v in _verdicts_in(facts, period) if not v.override)
    for run in facts.runs:
        if run.ended not in period or run.outcome not in ("capped", "no_verdict"):
            continue
        recorded = {v.cycle: v.outcome for v in run.verdicts if not v.override}
        if run.outcome == "capped" and "capped" not in recorded.values():
            counts["capped"] += 1  # the cap is the run's outcome, not a verifier's: one per run
        if run.outcome == "no_verdict" and run.cycles not in recorded:
            counts["no_verdict"] += 1  # the last cycle produced no verdict record at all
    return {name: counts.get(name, 0) for name in OUTCOMES}


def _findings(verdicts: list[VerdictFact]) -> dict[str, Any]:
    """Distinct findings: one per run and finding id (a finding re-listed in a later cycle counts once, as
    last listed) and one per commit and finding id (re-verifying a commit does not count its findings again)."""
    same: dict[tuple[str, str, str], int] = {}  # ("run"|"commit", its id, finding key) -> distinct finding
    latest: dict[int, dict[str, Any]] = {}
    for verdict in sorted(verdicts, key=lambda v: v.ts):
        for finding in verdict.findings:
            key = _finding_key(finding)
            aliases = [("run", verdict.run_id, key)] + ([("commit", verdict.commit, key)] if verdict.commit else [])
            number = next((same[a] for a in aliases if a in same), len(latest))
            for alias in aliases:
                same.setdefault(alias, number)
            latest[number] = finding
    severity = Counter(str(f.get("severity") or "info") for f in latest.values())
    pattern = Counter(str(f.get("pattern") or NO_PATTERN) for f in latest.values())
    by_pattern_severity: dict[str, dict[str, int]] = defaultdict(dict)
    for finding in latest.values():
        cell = by_pattern_severity[str(finding.get("pattern") or NO_PATTERN)]
        sev = str(finding.get("severity") or "info")
        cell[sev] = cell.get(sev, 0) + 1
    ordered = sorted(pattern.items(), key=lambda kv: (-kv[1], kv[0]))
    return {
        "total": len(latest),
        "by_severity": {name: severity.get(name, 0) for name in SEVERITIES},
        "by_pattern": dict(ordered),
        "by_pattern_severity": {name: by_pattern_severity[name] for name, _ in ordered},
    }


def _evaluator(facts: Facts, period: Period) -> dict[str, int] | None:
    """Evaluator findings opened/closed in the period: the diff between consecutive evaluations."""
    if facts.evaluations is None:
        return None
    evaluations = sorted(facts.evaluations, key=lambda e: e[0])
    before = [ids for ts, ids in evaluations if ts < period.start]
    previous = {_finding_key(f) for f in before[-1]} if before else set()
    opened = closed = 0
    current = previous
    for ts, findings in evaluations:
        if ts not in period:
            continue
        current = {_finding_key(f) for f in findings}
        opened += len(current - previous)
        closed += len(previous - current)
        previous = current
    return {"opened": opened, "closed": closed, "open": len(current)}


def _approvals(facts: Facts, period: Period) -> dict[str, datetime]:
    """Plans approved (by a verifier, not an override) in the period and when first in it."""
    approved: dict[str, datetime] = {}
    for verdict in sorted(_verdicts_in(facts, period), key=lambda v: v.ts):
        if verdict.outcome == "approved" and not verdict.override and verdict.plan_id:
            approved.setdefault(verdict.plan_id, verdict.ts)
    return approved


def _plan_started(facts: Facts) -> dict[str, datetime]:
    """Each plan's first RunStarted (any mode), the start of its "actual" time."""
    started: dict[str, datetime] = {}
    for run in facts.runs:
        if run.plan_id and run.started is not None:
            started[run.plan_id] = min(run.started, started.get(run.plan_id, run.started))
    return started


def _estimates(facts: Facts) -> dict[str, float]:
    estimates: dict[str, float] = {}
    for run in sorted(facts.runs, key=lambda r: r.first_seen or datetime.min.replace(tzinfo=UTC)):
        if run.plan_id and run.estimate_hours is not None:
            estimates[run.plan_id] = run.estimate_hours  # the latest estimate wins
    return estimates


def _whole_seconds(ts: datetime) -> datetime:
    """Notes keep whole seconds (truncated): the ledger's times are cut the same way so both sources agree."""
    return ts.replace(microsecond=0)


def _time_and_estimate(
    facts: Facts, approvals: dict[str, datetime]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """``estimate``, ``time_to_approval_hours`` and each approved plan's actual hours."""
    started, estimates = _plan_started(facts), _estimates(facts)
    actual = {p: _hours(_whole_seconds(ts) - _whole_seconds(started[p])) for p, ts in approvals.items() if p in started}
    with_estimate = [p for p in actual if p in estimates]
    est_total = sum(estimates[p] for p in with_estimate)
    act_total = sum(actual[p] for p in with_estimate)
    known = bool(with_estimate) or facts.timing_known
    too_short = bool(with_estimate) and act_total < SPEEDUP_FLOOR_HOURS
    estimate = {
        "estimated_hours": round(est_total, 2) if with_estimate else (0.0 if known else None),
        "actual_hours": round(act_total, HOUR_DIGITS) if with_estimate else (0.0 if known else None),
        "speedup": _ratio(est_total, act_total, 2) if with_estimate and not too_short else None,
        "speedup_note": (
            f"no speedup: the actual time is under {SPEEDUP_FLOOR_TEXT}, too short to compare with an estimate"
            if too_short
            else None
        ),
        "plans": len(with_estimate),
    }
    durations = list(actual.values())
    time_to_approval = {
        "mean": round(sum(durations) / len(durations), HOUR_DIGITS) if durations else None,
        "max": round(max(durations), HOUR_DIGITS) if durations else None,
    }
    return estimate, time_to_approval, actual


def _sessions(facts: Facts, period: Period) -> list[SessionFact] | None:
    return None if facts.sessions is None else [s for s in facts.sessions if s.ts in period]


def _cost_block(facts: Facts, sessions: list[SessionFact] | None, approved: int, period: Period) -> dict[str, Any]:
    if sessions is None:
        return {"total": None, "per_role": None, "per_approved_plan": None, "by_day": None}
    per_role = {role: _money(sum(s.cost_usd for s in sessions if s.role == role)) for role in ROLES}
    by_day = {day.isoformat(): dict.fromkeys(ROLES, 0.0) for day in period.days()}
    for s in sessions:
        cell = by_day[s.ts.date().isoformat()]
        cell[s.role] = _money(cell[s.role] + s.cost_usd)
    plan_cost = per_role["builder"] + per_role["verifier"]
    return {
        "total": _money(sum(s.cost_usd for s in sessions)),
        "per_role": per_role,
        "per_approved_plan": _ratio(plan_cost, approved, 6),
        "by_day": by_day,
    }


def _tokens(sessions: list[SessionFact] | None) -> tuple[dict[str, int] | None, float | None]:
    if sessions is None:
        return None, None
    usage = sum((s.usage for s in sessions), Usage())
    tokens = {
        "input": usage.input_tokens,
        "output": usage.output_tokens,
        "cache_read": usage.cache_read,
        "cache_write": usage.cache_write,
    }
    prompt = usage.input_tokens + usage.cache_read + usage.cache_write
    return tokens, _ratio(usage.cache_read, prompt)


def _plan_rows(finished: list[RunFact], actual: dict[str, float], estimates: dict[str, float]) -> list[dict[str, Any]]:
    """One row per plan with a finished build run in the period (the cycles-per-plan chart)."""
    rows: dict[str, dict[str, Any]] = {}
    for run in sorted(finished, key=lambda r: r.ended or r.first_seen or datetime.min.replace(tzinfo=UTC)):
        plan_id = run.plan_id or "?"
        row = rows.setdefault(
            plan_id, {"plan": plan_id, "title": run.plan_title, "runs": 0, "cycles": 0, "outcome": None}
        )
        row["runs"] += 1
        row["cycles"] += run.cycles
        row["outcome"] = run.outcome
        row["title"] = row["title"] or run.plan_title
    for plan_id, row in rows.items():
        row["estimate_hours"] = estimates.get(plan_id)
        row["actual_hours"] = round(actual[plan_id], HOUR_DIGITS) if plan_id in actual else None
    return list(rows.values())


def compute_period(facts: Facts, period: Period) -> dict[str, Any]:
    """The report for one period, without ``previous``."""
    finished = [r for r in facts.runs if r.mode == "build" and r.ended in period]
    built = {r.plan_id for r in finished if r.plan_id}
    verdicts = [v for v in _verdicts_in(facts, period) if not v.override]
    overrides = [v for v in _verdicts_in(facts, period) if v.override]
    approvals = _approvals(facts, period)
    first_runs = _first_build_runs(facts)
    first_pass = {p for p in built if p in first_runs and _approved_in_cycle_one(first_runs[p])}
    sessions = _sessions(facts, period)
    tokens, cache_hit_ratio = _tokens(sessions)
    estimate, time_to_approval, actual = _time_and_estimate(facts, approvals)
    cycles = [r.cycles for r in finished]
    commits = [c for c in facts.commits if c.ts in period]
    merged = {plan for plan, ts in facts.merges if ts in period}
    runs_started = [r for r in facts.runs if r.first_seen in period and not r.synthetic]
    report: dict[str, Any] = {
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "source": facts.source,
        "plans": {
            "built": len(built),
            "approved": len(approvals),
            "merged": len(merged),
            "capped": len({r.plan_id for r in facts.runs if r.outcome == "capped" and r.ended in period and r.plan_id}),
            "rejected": len({v.plan_id for v in verdicts if v.outcome == "rejected" and v.plan_id}),
        },
        "runs": len(runs_started),
        "runs_by_mode": dict(sorted(Counter(r.mode for r in runs_started).items())),
        "sessions": None if sessions is None else {role: sum(s.role == role for s in sessions) for role in ROLES},
        "cycles": {
            "total": sum(cycles),
            "mean_per_plan": _ratio(sum(cycles), len(built), 2),
            "max": max(cycles, default=0),
            "distribution": {str(n): cycles.count(n) for n in sorted(set(cycles))},
        },
        "first_pass_approval_rate": _ratio(len(first_pass), len(built)),
        "outcomes": _outcomes(facts, period),
        "overrides": len(overrides),
        "findings": _findings(verdicts),
        "evaluator_findings": _evaluator(facts, period),
        "tokens": tokens,
        "cache_hit_ratio": cache_hit_ratio,
        "cost_usd": _cost_block(facts, sessions, len(approvals), period),
        "commits": len({c.commit for c in commits}),
        "time_to_approval_hours": time_to_approval,
        "estimate": estimate,
        "plans_detail": _plan_rows(finished, actual, _estimates(facts)),
    }
    report["empty"] = not (
        runs_started
        or finished
        or verdicts
        or overrides
        or sessions
        or commits
        or merged
        or (report["evaluator_findings"] or {}).get("opened")
        or (report["evaluator_findings"] or {}).get("closed")
    )
    return report


def compute(facts: Facts, period: Period) -> dict[str, Any]:
    """The report for ``period`` with ``previous``: the same figures for the period just before."""
    report = compute_period(facts, period)
    previous = compute_period(facts, period.previous())
    previous["previous"] = None
    report["previous"] = previous
    return report


def metrics_report(root: Path, period: Period, *, from_git: bool = False) -> dict[str, Any]:
    """The metrics report of the repository at ``root``; see ``compute``."""
    return compute(load_facts(root, from_git=from_git, since=period.previous().start), period)


__all__ = [
    "Facts",
    "Period",
    "compute",
    "compute_period",
    "facts_from_git",
    "facts_from_ledger",
    "load_facts",
    "metrics_report",
    "parse_period",
]
