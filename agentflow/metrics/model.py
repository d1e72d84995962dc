"""The typed metrics report: what ``compute`` returns and every renderer reads.

Field names are the JSON keys (``MetricsReport.to_dict`` is ``dataclasses.asdict``, in field
order), so the JSON of ``agentflow metrics --format json`` is a public contract defined here.
docs/metrics.md defines each figure. What a source cannot know is ``None`` (JSON ``null``), never
a made-up zero: sessions, tokens and cost are ``None`` from git alone, times are ``None`` when run
start times are unknown.

Mappings keyed by data (roles, outcomes, severities, patterns, days) stay ``dict``s, in the order of
``ROLES``, ``OUTCOMES`` and ``SEVERITIES`` (patterns: most findings first; days: in order).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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


@dataclass
class PeriodBounds:
    """The reported period ``[start, end)`` as ISO 8601 UTC date-times."""

    start: str
    end: str


@dataclass
class PlanCounts:
    """Distinct plans, by what happened to them in the period."""

    built: int  # with a build run that finished in the period
    approved: int  # approved by a verifier (not an override) in the period
    merged: int  # merged into the main branch in the period
    capped: int  # with a run that ended capped (out of cycles) in the period
    rejected: int  # with a verdict "rejected" in the period


@dataclass
class CycleFigures:
    """Rework cycles of the build runs that finished in the period."""

    total: int
    mean_per_plan: float | None  # total / plans built; None when none was built
    max: int  # the most cycles one run took
    distribution: dict[str, int]  # number of cycles (as a string) -> runs that took that many


@dataclass
class FindingFigures:
    """Distinct verifier findings (once per run and finding id, once per commit and finding id)."""

    total: int
    by_severity: dict[str, int]  # every severity of SEVERITIES, in order
    by_pattern: dict[str, int]  # pattern (or NO_PATTERN) -> findings, most first
    by_pattern_severity: dict[str, dict[str, int]]  # pattern -> severity -> findings, patterns as by_pattern


@dataclass
class EvaluatorFigures:
    """Evaluator findings: the difference between consecutive evaluations."""

    opened: int  # new in an evaluation of the period
    closed: int  # gone in an evaluation of the period
    open: int  # in the last evaluation up to the period's end


@dataclass
class TokenCounts:
    """Tokens of the sessions that ended in the period."""

    input: int
    output: int
    cache_read: int
    cache_write: int


@dataclass
class CostFigures:
    """US dollars of the sessions that ended in the period; all ``None`` from git alone."""

    total: float | None
    per_role: dict[str, float] | None  # every role of ROLES
    per_approved_plan: float | None  # builder + verifier cost / plans approved
    by_day: dict[str, dict[str, float]] | None  # ISO day -> role -> cost, every day of the period


@dataclass
class TimeToApproval:
    """Hours from a plan's first run start to its first approval in the period."""

    mean: float | None
    max: float | None


@dataclass
class EstimateFigures:
    """The plans' own estimates against the actual time of the approved plans that have one."""

    estimated_hours: float | None
    actual_hours: float | None
    speedup: float | None  # estimated / actual; None under a minute of actual time
    speedup_note: str | None  # why there is no speedup, when that is the reason
    plans: int  # approved plans with an estimate


@dataclass
class PlanMetrics:
    """One plan with a build run that finished in the period (the cycles-per-plan chart)."""

    plan: str
    title: str | None
    runs: int
    cycles: int
    outcome: str | None  # the last finished run's outcome
    estimate_hours: float | None
    actual_hours: float | None  # to its approval in the period, when approved


@dataclass
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: field names as keys, in field order, nested reports and records as objects."""
        return asdict(self)
