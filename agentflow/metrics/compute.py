"""The computation: pure functions from ``Facts`` and a ``Period`` to a typed ``MetricsReport``.

Nothing here reads the ledger or git (``agentflow.metrics.facts`` does) or formats a figure
(``agentflow.report`` does). docs/metrics.md defines every figure.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from agentflow.metrics.facts import Facts, RunFact, SessionFact, Usage, VerdictFact
from agentflow.metrics.model import (
    NO_PATTERN,
    OUTCOMES,
    ROLES,
    SEVERITIES,
    CostFigures,
    CycleFigures,
    EstimateFigures,
    EvaluatorFigures,
    FindingFigures,
    MetricsReport,
    PeriodBounds,
    PlanCounts,
    PlanMetrics,
    TimeToApproval,
    TokenCounts,
)
from agentflow.metrics.period import Period

# Actual times in hours keep 4 digits (0.36 s), so a run of seconds is not reported as 0 h.
HOUR_DIGITS = 4
# Below a minute of actual time a speedup against an estimate in hours is noise (a scripted or cached run).
SPEEDUP_FLOOR_HOURS = 1 / 60
SPEEDUP_FLOOR_TEXT = "1 min"
_EPOCH = datetime.min.replace(tzinfo=UTC)


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


def _distinct_findings(verdicts: list[VerdictFact]) -> list[dict[str, Any]]:
    """One finding per run and finding id (a finding re-listed in a later cycle counts once, as last
    listed) and per commit and finding id (re-verifying a commit does not count its findings again)."""
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
    return list(latest.values())


def _findings(verdicts: list[VerdictFact]) -> FindingFigures:
    distinct = _distinct_findings(verdicts)
    severity = Counter(str(f.get("severity") or "info") for f in distinct)
    pattern = Counter(str(f.get("pattern") or NO_PATTERN) for f in distinct)
    by_pattern_severity: dict[str, dict[str, int]] = defaultdict(dict)
    for finding in distinct:
        cell = by_pattern_severity[str(finding.get("pattern") or NO_PATTERN)]
        sev = str(finding.get("severity") or "info")
        cell[sev] = cell.get(sev, 0) + 1
    ordered = sorted(pattern.items(), key=lambda kv: (-kv[1], kv[0]))
    return FindingFigures(
        total=len(distinct),
        by_severity={name: severity.get(name, 0) for name in SEVERITIES},
        by_pattern=dict(ordered),
        by_pattern_severity={name: by_pattern_severity[name] for name, _ in ordered},
    )


def _evaluator(facts: Facts, period: Period) -> EvaluatorFigures | None:
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
    return EvaluatorFigures(opened=opened, closed=closed, open=len(current))


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
    for run in sorted(facts.runs, key=lambda r: r.first_seen or _EPOCH):
        if run.plan_id and run.estimate_hours is not None:
            estimates[run.plan_id] = run.estimate_hours  # the latest estimate wins
    return estimates


def _whole_seconds(ts: datetime) -> datetime:
    """Notes keep whole seconds (truncated): the ledger's times are cut the same way so both sources agree."""
    return ts.replace(microsecond=0)


def _actual_hours(facts: Facts, approvals: dict[str, datetime]) -> dict[str, float]:
    """Each approved plan's actual hours: from its first run start to its approval."""
    started = _plan_started(facts)
    return {p: _hours(_whole_seconds(ts) - _whole_seconds(started[p])) for p, ts in approvals.items() if p in started}


def _estimate(facts: Facts, actual: dict[str, float], estimates: dict[str, float]) -> EstimateFigures:
    with_estimate = [p for p in actual if p in estimates]
    est_total = sum(estimates[p] for p in with_estimate)
    act_total = sum(actual[p] for p in with_estimate)
    known = bool(with_estimate) or facts.timing_known
    too_short = bool(with_estimate) and act_total < SPEEDUP_FLOOR_HOURS
    return EstimateFigures(
        estimated_hours=round(est_total, 2) if with_estimate else (0.0 if known else None),
        actual_hours=round(act_total, HOUR_DIGITS) if with_estimate else (0.0 if known else None),
        speedup=_ratio(est_total, act_total, 2) if with_estimate and not too_short else None,
        speedup_note=(
            f"no speedup: the actual time is under {SPEEDUP_FLOOR_TEXT}, too short to compare with an estimate"
            if too_short
            else None
        ),
        plans=len(with_estimate),
    )


def _time_to_approval(actual: dict[str, float]) -> TimeToApproval:
    durations = list(actual.values())
    return TimeToApproval(
        mean=round(sum(durations) / len(durations), HOUR_DIGITS) if durations else None,
        max=round(max(durations), HOUR_DIGITS) if durations else None,
    )


def _sessions(facts: Facts, period: Period) -> list[SessionFact] | None:
    return None if facts.sessions is None else [s for s in facts.sessions if s.ts in period]


def _cost(sessions: list[SessionFact] | None, approved: int, period: Period) -> CostFigures:
    if sessions is None:
        return CostFigures(total=None, per_role=None, per_approved_plan=None, by_day=None)
    per_role = {role: _money(sum(s.cost_usd for s in sessions if s.role == role)) for role in ROLES}
    by_day = {day.isoformat(): dict.fromkeys(ROLES, 0.0) for day in period.days()}
    for s in sessions:
        cell = by_day[s.ts.date().isoformat()]
        cell[s.role] = _money(cell[s.role] + s.cost_usd)
    plan_cost = per_role["builder"] + per_role["verifier"]
    return CostFigures(
        total=_money(sum(s.cost_usd for s in sessions)),
        per_role=per_role,
        per_approved_plan=_ratio(plan_cost, approved, 6),
        by_day=by_day,
    )


def _tokens(sessions: list[SessionFact] | None) -> tuple[TokenCounts | None, float | None]:
    if sessions is None:
        return None, None
    usage = sum((s.usage for s in sessions), Usage())
    tokens = TokenCounts(
        input=usage.input_tokens,
        output=usage.output_tokens,
        cache_read=usage.cache_read,
        cache_write=usage.cache_write,
    )
    prompt = usage.input_tokens + usage.cache_read + usage.cache_write
    return tokens, _ratio(usage.cache_read, prompt)


def _finish_order(run: RunFact) -> tuple[datetime, str]:
    """Runs in the order they finished, to the whole second (as notes keep times), then by plan: two
    plans finishing within one second are in the same order from the ledger and from git."""
    return _whole_seconds(run.ended or run.first_seen or _EPOCH), run.plan_id or ""


def _plan_rows(finished: list[RunFact], actual: dict[str, float], estimates: dict[str, float]) -> list[PlanMetrics]:
    """One row per plan with a finished build run in the period (the cycles-per-plan chart)."""
    rows: dict[str, PlanMetrics] = {}
    for run in sorted(finished, key=_finish_order):
        plan_id = run.plan_id or "?"
        row = rows.setdefault(plan_id, PlanMetrics(plan_id, run.plan_title, 0, 0, None, None, None))
        row.runs += 1
        row.cycles += run.cycles
        row.outcome = run.outcome
        row.title = row.title or run.plan_title
    for plan_id, row in rows.items():
        row.estimate_hours = estimates.get(plan_id)
        row.actual_hours = round(actual[plan_id], HOUR_DIGITS) if plan_id in actual else None
    return list(rows.values())


def _cycles(finished: list[RunFact], built: int) -> CycleFigures:
    cycles = [r.cycles for r in finished]
    return CycleFigures(
        total=sum(cycles),
        mean_per_plan=_ratio(sum(cycles), built, 2),
        max=max(cycles, default=0),
        distribution={str(n): cycles.count(n) for n in sorted(set(cycles))},
    )


def _plan_counts(
    facts: Facts, period: Period, built: set[str], approved: int, verdicts: list[VerdictFact]
) -> PlanCounts:
    merged = {plan for plan, ts in facts.merges if ts in period}
    capped = {r.plan_id for r in facts.runs if r.outcome == "capped" and r.ended in period and r.plan_id}
    return PlanCounts(
        built=len(built),
        approved=approved,
        merged=len(merged),
        capped=len(capped),
        rejected=len({v.plan_id for v in verdicts if v.outcome == "rejected" and v.plan_id}),
    )


def compute_period(facts: Facts, period: Period) -> MetricsReport:
    """The report for one period, without ``previous``."""
    finished = [r for r in facts.runs if r.mode == "build" and r.ended in period]
    built = {r.plan_id for r in finished if r.plan_id}
    in_period = _verdicts_in(facts, period)
    verdicts = [v for v in in_period if not v.override]
    overrides = [v for v in in_period if v.override]
    approvals = _approvals(facts, period)
    first_runs = _first_build_runs(facts)
    first_pass = {p for p in built if p in first_runs and _approved_in_cycle_one(first_runs[p])}
    sessions = _sessions(facts, period)
    tokens, cache_hit_ratio = _tokens(sessions)
    actual, estimates = _actual_hours(facts, approvals), _estimates(facts)
    commits = {c.commit for c in facts.commits if c.ts in period}
    runs_started = [r for r in facts.runs if r.first_seen in period and not r.synthetic]
    plans = _plan_counts(facts, period, built, len(approvals), verdicts)
    evaluator = _evaluator(facts, period)
    report = MetricsReport(
        period=PeriodBounds(period.start.isoformat(), period.end.isoformat()),
        source=facts.source,
        plans=plans,
        runs=len(runs_started),
        runs_by_mode=dict(sorted(Counter(r.mode for r in runs_started).items())),
        sessions=None if sessions is None else {role: sum(s.role == role for s in sessions) for role in ROLES},
        cycles=_cycles(finished, len(built)),
        first_pass_approval_rate=_ratio(len(first_pass), len(built)),
        outcomes=_outcomes(facts, period),
        overrides=len(overrides),
        findings=_findings(verdicts),
        evaluator_findings=evaluator,
        tokens=tokens,
        cache_hit_ratio=cache_hit_ratio,
        cost_usd=_cost(sessions, len(approvals), period),
        commits=len(commits),
        time_to_approval_hours=_time_to_approval(actual),
        estimate=_estimate(facts, actual, estimates),
        plans_detail=_plan_rows(finished, actual, estimates),
    )
    evaluator_moved = evaluator is not None and bool(evaluator.opened or evaluator.closed)
    report.empty = not (
        runs_started or finished or verdicts or overrides or sessions or commits or plans.merged or evaluator_moved
    )
    return report


def compute(facts: Facts, period: Period) -> MetricsReport:
    """The report for ``period`` with ``previous``: the same figures for the period just before."""
    report = compute_period(facts, period)
    report.previous = compute_period(facts, period.previous())
    return report
