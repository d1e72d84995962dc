"""The typed metrics report: what ``compute`` returns and every renderer reads.

Field names are the JSON keys (``MetricsReport.to_dict`` is ``dataclasses.asdict``, in field
order), so the JSON of ``agentflow metrics --format json`` is a public contract defined here.
docs/metrics.md defines each figure. What a source cannot know is ``None`` (JSON ``null``), never
a made-up zero: sessions, tokens and cost are ``None`` from git alone, times are ``None`` when run
start times are unknown.

Mappings keyed by data (roles, outcomes, severities, patterns, days) stay ``dict``s, in the order of
``ROLES``, ``OUTCOMES`` and ``SEVERITIES`` (patterns: most findings first; days: in order).

Each class is a dataclass that writes its own ``__init__`` (``agentflow.metrics._record.record``:
``@dataclass`` compiling eleven classes' methods was 9 ms of every ``agentflow metrics``); a field
added is added to its ``__init__`` too (``tests/test_metrics_records.py`` fails otherwise).
"""

from __future__ import annotations

from dataclasses import asdict, field
from typing import Any

from agentflow.metrics._record import FACTORY, record
from agentflow.notes import OUTCOMES  # the outcomes as plain strings (the light note parser's), no pydantic

# The severities a report counts, as plain strings: ``agentflow.verdict.SEVERITIES`` (a test checks
# they agree), so metrics imports no pydantic model.
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")  # most severe first
ROLES: tuple[str, ...] = ("builder", "verifier", "evaluator")
NO_PATTERN = "(no pattern)"  # the pattern of a finding that names none

__all__ = [
    "NO_PATTERN",
    "OUTCOMES",
    "ROLES",
    "SEVERITIES",
    "CostFigures",
    "CycleFigures",
    "EstimateFigures",
    "EvaluatorFigures",
    "FindingFigures",
    "MetricsReport",
    "PeriodBounds",
    "PlanCounts",
    "PlanMetrics",
    "TimeToApproval",
    "TokenCounts",
]


@record
class PeriodBounds:
    """The reported period ``[start, end)`` as ISO 8601 UTC date-times."""

    start: str
    end: str

    def __init__(self, start: str, end: str) -> None:
        self.start = start
        self.end = end


@record
class PlanCounts:
    """Distinct plans, by what happened to them in the period."""

    built: int  # with a build run that finished in the period
    approved: int  # approved by a verifier (not an override) in the period
    merged: int  # merged into the main branch in the period
    capped: int  # with a run that ended capped (out of cycles) in the period
    rejected: int  # with a verdict "rejected" in the period

    def __init__(self, built: int, approved: int, merged: int, capped: int, rejected: int) -> None:
        self.built = built
        self.approved = approved
        self.merged = merged
        self.capped = capped
        self.rejected = rejected


@record
class CycleFigures:
    """Rework cycles of the build runs that finished in the period."""

    total: int
    mean_per_plan: float | None  # total / plans built; None when none was built
    max: int  # the most cycles one run took
    distribution: dict[str, int]  # number of cycles (as a string) -> runs that took that many

    def __init__(self, total: int, mean_per_plan: float | None, max: int, distribution: dict[str, int]) -> None:
        self.total = total
        self.mean_per_plan = mean_per_plan
        self.max = max
        self.distribution = distribution


@record
class FindingFigures:
    """Distinct verifier findings (once per run and finding id, once per commit and finding id)."""

    total: int
    by_severity: dict[str, int]  # every severity of SEVERITIES, in order
    by_pattern: dict[str, int]  # pattern (or NO_PATTERN) -> findings, most first
    by_pattern_severity: dict[str, dict[str, int]]  # pattern -> severity -> findings, patterns as by_pattern

    def __init__(
        self,
        total: int,
        by_severity: dict[str, int],
        by_pattern: dict[str, int],
        by_pattern_severity: dict[str, dict[str, int]],
    ) -> None:
        self.total = total
        self.by_severity = by_severity
        self.by_pattern = by_pattern
        self.by_pattern_severity = by_pattern_severity


@record
class EvaluatorFigures:
    """Evaluator findings: the difference between consecutive evaluations."""

    opened: int  # new in an evaluation of the period
    closed: int  # gone in an evaluation of the period
    open: int  # in the last evaluation up to the period's end

    def __init__(self, opened: int, closed: int, open: int) -> None:
        self.opened = opened
        self.closed = closed
        self.open = open


@record
class TokenCounts:
    """Tokens of the sessions that ended in the period."""

    input: int
    output: int
    cache_read: int
    cache_write: int

    def __init__(self, input: int, output: int, cache_read: int, cache_write: int) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_write = cache_write


@record
class CostFigures:
    """US dollars of the sessions that ended in the period; all ``None`` from git alone."""

    total: float | None
    per_role: dict[str, float] | None  # every role of ROLES
    per_approved_plan: float | None  # builder + verifier cost / plans approved
    by_day: dict[str, dict[str, float]] | None  # ISO day -> role -> cost, every day of the period

    def __init__(
        self,
        total: float | None,
        per_role: dict[str, float] | None,
        per_approved_plan: float | None,
        by_day: dict[str, dict[str, float]] | None,
    ) -> None:
        self.total = total
        self.per_role = per_role
        self.per_approved_plan = per_approved_plan
        self.by_day = by_day


@record
class TimeToApproval:
    """Hours from a plan's first run start to its first approval in the period."""

    mean: float | None
    max: float | None

    def __init__(self, mean: float | None, max: float | None) -> None:
        self.mean = mean
        self.max = max


@record
class EstimateFigures:
    """The plans' own estimates against the actual time of the approved plans that have one."""

    estimated_hours: float | None
    actual_hours: float | None
    speedup: float | None  # estimated / actual; None under a minute of actual time
    speedup_note: str | None  # why there is no speedup, when that is the reason
    plans: int  # approved plans with an estimate

    def __init__(
        self,
        estimated_hours: float | None,
        actual_hours: float | None,
        speedup: float | None,
        speedup_note: str | None,
        plans: int,
    ) -> None:
        self.estimated_hours = estimated_hours
        self.actual_hours = actual_hours
        self.speedup = speedup
        self.speedup_note = speedup_note
        self.plans = plans


@record
class PlanMetrics:
    """One plan with a build run that finished in the period (the cycles-per-plan chart)."""

    plan: str
    title: str | None
    runs: int
    cycles: int
    outcome: str | None  # the last finished run's outcome
    estimate_hours: float | None
    actual_hours: float | None  # to its approval in the period, when approved

    def __init__(
        self,
        plan: str,
        title: str | None,
        runs: int,
        cycles: int,
        outcome: str | None,
        estimate_hours: float | None,
        actual_hours: float | None,
    ) -> None:
        self.plan = plan
        self.title = title
        self.runs = runs
        self.cycles = cycles
        self.outcome = outcome
        self.estimate_hours = estimate_hours
        self.actual_hours = actual_hours


@record
class MetricsReport:
    """The report of one period; ``previous`` is the same report for the period just before."""

    period: PeriodBounds
    source: str  # "ledger" or "git"
    plans: PlanCounts
    runs: int  # runs started in the period
    runs_by_mode: dict[str, int]  # mode -> runs started, sorted by mode
    sessions: dict[str, int] | None  # role -> sessions ended, every role of ROLES; None from git
    cycles: CycleFigures
    first_pass_approval_rate: float | None  # built plans approved in cycle 1 of their first run
    outcomes: dict[str, int]  # every outcome of OUTCOMES -> verdicts (plus caps and lost verdicts)
    overrides: int  # human overrides recorded in the period
    findings: FindingFigures
    evaluator_findings: EvaluatorFigures | None  # None from git
    tokens: TokenCounts | None  # None from git
    cache_hit_ratio: float | None  # cache reads / all prompt tokens
    cost_usd: CostFigures
    commits: int  # commits with agentflow trailers in the period
    time_to_approval_hours: TimeToApproval
    estimate: EstimateFigures
    plans_detail: list[PlanMetrics] = field(default_factory=list)
    empty: bool = False  # nothing at all happened in the period
    previous: MetricsReport | None = None

    def __init__(
        self,
        period: PeriodBounds,
        source: str,
        plans: PlanCounts,
        runs: int,
        runs_by_mode: dict[str, int],
        sessions: dict[str, int] | None,
        cycles: CycleFigures,
        first_pass_approval_rate: float | None,
        outcomes: dict[str, int],
        overrides: int,
        findings: FindingFigures,
        evaluator_findings: EvaluatorFigures | None,
        tokens: TokenCounts | None,
        cache_hit_ratio: float | None,
        cost_usd: CostFigures,
        commits: int,
        time_to_approval_hours: TimeToApproval,
        estimate: EstimateFigures,
        plans_detail: list[PlanMetrics] = FACTORY,
        empty: bool = False,
        previous: MetricsReport | None = None,
    ) -> None:
        self.period = period
        self.source = source
        self.plans = plans
        self.runs = runs
        self.runs_by_mode = runs_by_mode
        self.sessions = sessions
        self.cycles = cycles
        self.first_pass_approval_rate = first_pass_approval_rate
        self.outcomes = outcomes
        self.overrides = overrides
        self.findings = findings
        self.evaluator_findings = evaluator_findings
        self.tokens = tokens
        self.cache_hit_ratio = cache_hit_ratio
        self.cost_usd = cost_usd
        self.commits = commits
        self.time_to_approval_hours = time_to_approval_hours
        self.estimate = estimate
        self.plans_detail = list() if plans_detail is FACTORY else plans_detail
        self.empty = empty
        self.previous = previous

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: field names as keys, in field order, nested reports and records as objects."""
        return asdict(self)
