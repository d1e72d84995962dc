"""The eval's figures from its runs: rates as fractions from 0 to 1, per-case costs as p50/p95."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from agentflow.errors import UsageError
from agentflow.eval.runner import CaseRun

# rate -> True when higher is better (a drop regresses), False when lower is better
RATES = {
    "accuracy": True,
    "balanced_accuracy": True,
    "finding_recall": True,
    "false_approval_rate": False,
    "false_block_rate": False,
    "no_verdict_rate": False,
}


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _spread(values: list[float], digits: int = 4) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), digits), "p95": round(percentile(values, 95), digits)}


def _overlaps(finding: dict[str, Any], gold: Any) -> bool:
    line = finding.get("line")
    end = finding.get("end_line") or line
    return (
        finding.get("file") == gold.file
        and isinstance(line, int)
        and isinstance(end, int)
        and line <= gold.lines[1]
        and end >= gold.lines[0]
    )


@dataclass
class EvalScore:
    """The rates of a set of runs (all cases, or one tag's)."""

    runs: int
    accuracy: float | None
    balanced_accuracy: float | None
    false_approval_rate: float | None
    false_block_rate: float | None
    no_verdict_rate: float | None
    finding_recall: float | None
    findings_on_approve: float | None  # findings per run of an ``approve`` case
    confusion: dict[str, dict[str, int]]  # label -> outcome -> runs


def score(runs: list[CaseRun]) -> EvalScore:
    confusion = {label: Counter() for label in ("approve", "reject")}
    for run in runs:
        confusion[run.case.label][run.outcome] += 1
    approve, reject = confusion["approve"], confusion["reject"]
    n_approve, n_reject = sum(approve.values()), sum(reject.values())
    right_approve, right_reject = approve["approved"], reject["changes_requested"]
    gold = [(run, g) for run in runs for g in run.case.gold]
    recalled = sum(1 for run, g in gold if any(_overlaps(f, g) for f in run.findings))
    per_class = [r for r in (_ratio(right_approve, n_approve), _ratio(right_reject, n_reject)) if r is not None]
    return EvalScore(
        runs=len(runs),
        accuracy=_ratio(right_approve + right_reject, len(runs)),
        balanced_accuracy=round(sum(per_class) / len(per_class), 4) if per_class else None,
        false_approval_rate=_ratio(reject["approved"], n_reject),
        false_block_rate=_ratio(n_approve - approve["approved"], n_approve),
        no_verdict_rate=_ratio(approve["no_verdict"] + reject["no_verdict"], len(runs)),
        finding_recall=_ratio(recalled, len(gold)),
        findings_on_approve=_ratio(sum(len(r.findings) for r in runs if r.case.label == "approve"), n_approve),
        confusion={
            label: {o: c[o] for o in ("approved", "changes_requested", "no_verdict")} for label, c in confusion.items()
        },
    )


@dataclass
class EvalResults:
    """Everything the reports show; ``to_json`` is the documented JSON report."""

    dataset: str
    backend: str
    repeat: int
    overall: EvalScore
    cases: int
    agreement: float | None  # cases whose repeats all reached the same outcome
    cost_usd_per_case: dict[str, float]
    tokens_per_case: dict[str, float]
    seconds_per_case: dict[str, float]
    per_tag: dict[str, EvalScore]
    per_case: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        overall = asdict(self.overall)
        return {
            "dataset": self.dataset,
            "backend": self.backend,
            "repeat": self.repeat,
            "cases": self.cases,
            "runs": overall.pop("runs"),
            **overall,
            "agreement": self.agreement,
            "cost_usd_per_case": self.cost_usd_per_case,
            "tokens_per_case": self.tokens_per_case,
            "seconds_per_case": self.seconds_per_case,
            "per_tag": {tag: asdict(s) for tag, s in self.per_tag.items()},
            "per_case": self.per_case,
        }


def results(runs: list[CaseRun], *, dataset: str, backend: str, repeat: int) -> EvalResults:
    by_case: dict[str, list[CaseRun]] = {}
    for run in runs:
        by_case.setdefault(run.case.id, []).append(run)
    tags = sorted({t for run in runs for t in run.case.tags})
    per_case = []
    for case_id, case_runs in by_case.items():
        case = case_runs[0].case
        per_case.append(
            {
                "id": case_id,
                "label": case.label,
                "tags": list(case.tags),
                "outcomes": [r.outcome for r in case_runs],
                "correct": [
                    (r.outcome == "approved") == (case.label == "approve") and r.outcome != "no_verdict"
                    for r in case_runs
                ],
                "findings": [len(r.findings) for r in case_runs],
                "gold_recalled": [
                    sum(1 for g in case.gold if any(_overlaps(f, g) for f in r.findings)) for r in case_runs
                ],
                "gold": len(case.gold),
                "reasons": case_runs[0].reasons[:5],
                "cost_usd": [round(r.cost_usd, 6) for r in case_runs],
                "seconds": [round(r.seconds, 3) for r in case_runs],
            }
        )
    agree = [len({r.outcome for r in rs}) == 1 for rs in by_case.values()]
    return EvalResults(
        dataset=dataset,
        backend=backend,
        repeat=repeat,
        overall=score(runs),
        cases=len(by_case),
        agreement=_ratio(sum(agree), len(agree)) if repeat > 1 else None,
        cost_usd_per_case=_spread([r.cost_usd for r in runs], 6),
        tokens_per_case=_spread([float(r.tokens) for r in runs], 0),
        seconds_per_case=_spread([r.seconds for r in runs], 3),
        per_tag={tag: score([r for r in runs if tag in r.case.tags]) for tag in tags},
        per_case=per_case,
    )


@dataclass(frozen=True)
class Regression:
    rate: str
    baseline: float
    current: float


def compare(current: dict[str, Any], baseline: Any, max_regression: float, where: str) -> list[Regression]:
    """The rates of ``current`` that are worse than ``baseline`` by more than ``max_regression``."""
    if not isinstance(baseline, dict) or not any(key in baseline for key in RATES):
        raise UsageError(
            "not an eval JSON result", where=where, fix="pass a file written by `agentflow eval verifier --format json`"
        )
    found = []
    for rate, higher_is_better in RATES.items():
        old, new = baseline.get(rate), current.get(rate)
        if not isinstance(old, (int, float)) or not isinstance(new, (int, float)):
            continue
        worse = (old - new) if higher_is_better else (new - old)
        if worse > max_regression + 1e-9:
            found.append(Regression(rate, float(old), float(new)))
    return found
