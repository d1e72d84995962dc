"""``agentflow evaluate`` as a domain function: analyse, compare, write plans, record, decide the exit code.

The CLI only parses options, calls ``run_evaluation`` and prints what it returns.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from agentflow.errors import UsageError
from agentflow.evaluator.analysis import Analysis
from agentflow.verdict import severity_rank  # one severity scale for verdicts and evaluator

FAIL_ON = ("none", "low", "medium", "high", "critical")  # info never fails
ENGINES = ("builtin", "duckdb")


@dataclass
class EvaluationRequest:
    logs: list[Path]
    root: Path
    type_field: str | None = None
    baseline: Path | None = None
    save_baseline: Path | None = None
    plan_out: Path | None = None
    fail_on: str = "high"
    record: bool = True
    workers: int | None = None
    llm: bool = False
    allow_empty: bool = False  # a log without any parsable event is not an error
    profile: Path | None = None  # analyse this profile (evaluator.profile) instead of logs
    engine: str = "builtin"  # builtin, or duckdb: the profile query run in-process over the logs
    in_repo: bool = True  # False: no ledger at root (the --llm session then records into a temporary one)


@dataclass
class EvaluationResult:
    analysis: Analysis
    logs: list[Path]
    plans: list[Path] = field(default_factory=list)
    recorded: bool = False
    exit_code: int = 0
    notes: list[str] = field(default_factory=list)
    llm_error: Exception | None = None  # raised by the CLI after the report is out


def resolve_logs(logs: list[Path], root: Path, configured: list[str]) -> list[Path]:
    """The logs named on the command line, else ``events.paths`` from the config (globs allowed)."""
    if logs:
        return logs
    found: list[Path] = []
    for pattern in configured:
        base = pattern if Path(pattern).is_absolute() else str(root / pattern)
        matches = sorted(glob.glob(base, recursive=True))
        found += [Path(m) for m in matches] if glob.has_magic(pattern) else [Path(base)]
    if not found:
        raise UsageError(
            "no event logs to evaluate",
            fix="name them (`agentflow evaluate events.jsonl`) or set events.paths in agentflow.yaml",
        )
    return found


def display_name(path: Path, root: Path, in_repo: bool) -> str:
    """How a log is named in reports, the ledger and plans.

    Inside a repository: relative to its root (``logs/events.jsonl``), which is what the user
    typed from the root, what ``events.paths`` says, and what a builder can run in its worktree.
    Elsewhere, or for a file outside the repository: as given.
    """
    if in_repo:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except (OSError, ValueError):
            pass
    return str(path)


def threshold_reached(analysis: Analysis, fail_on: str) -> bool:
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {fail_on!r} is not one of {', '.join(FAIL_ON)}", fix="e.g. --fail-on high")
    if fail_on == "none":
        return False
    return any(severity_rank(f.severity) >= severity_rank(fail_on) for f in analysis.findings)


def run_evaluation(request: EvaluationRequest, config: object) -> EvaluationResult:
    """Analyse the logs with the rules of ``config.events`` and act on the result (``config.Config``)."""
    from agentflow.evaluator import evaluate
    from agentflow.evaluator.baseline import load_baseline
    from agentflow.evaluator.rules import RuleConfig

    if request.fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {request.fail_on!r} is not one of {', '.join(FAIL_ON)}", fix="e.g. --fail-on high")
    if request.llm:
        from agentflow.evaluator.llm import check_available

        check_available(config)
    events_config = config.events  # type: ignore[attr-defined]
    if request.engine not in ENGINES:
        raise UsageError(f"--engine {request.engine!r} is not one of {', '.join(ENGINES)}", fix="e.g. --engine duckdb")
    baseline = load_baseline(request.baseline) if request.baseline else None
    type_field = request.type_field or getattr(events_config, "type_field", None)
    if request.profile is not None or request.engine == "duckdb":
        analysis, logs, names = _profile_analysis(request, events_config, type_field, baseline)
        return _act(request, config, events_config, analysis, logs, names)
    logs = resolve_logs(request.logs, request.root, list(getattr(events_config, "paths", [])))
    names = [display_name(p, request.root, request.in_repo) for p in logs]
    analysis = evaluate(
        logs,
        rules=RuleConfig.from_events(events_config),
        type_field=type_field,
        baseline=baseline,
        baseline_source=str(request.baseline) if request.baseline else "baseline",
        workers=request.workers,
        names=names,
        allow_empty=request.allow_empty,
    )
    return _act(request, config, events_config, analysis, logs, names)


def _profile_analysis(request: EvaluationRequest, events_config: object, type_field: str | None, baseline):
    """The analysis of a profile: read from --profile FILE, or computed by DuckDB over the logs."""
    from agentflow.evaluator import evaluate_profile
    from agentflow.evaluator.profile import load_profile, run_duckdb
    from agentflow.evaluator.rules import RuleConfig

    if request.profile is not None:
        rows, logs = load_profile(request.profile), [request.profile]
    else:
        logs = resolve_logs(request.logs, request.root, list(getattr(events_config, "paths", [])))
        rows = run_duckdb(logs, type_field=type_field)
    names = [display_name(p, request.root, request.in_repo) for p in logs]
    analysis = evaluate_profile(
        rows,
        rules=RuleConfig.from_events(events_config),
        files=names,
        baseline=baseline,
        baseline_source=str(request.baseline) if request.baseline else "baseline",
    )
    if analysis.events == 0 and not request.allow_empty:
        raise UsageError("no event in these logs", where=logs[0], fix="name event logs, or pass --allow-empty")
    return analysis, logs, names


def _act(request: EvaluationRequest, config: object, events_config: object, analysis: Analysis, logs, names):
    from agentflow.evaluator.baseline import save_baseline
    from agentflow.evaluator.rules import RuleConfig

    result = EvaluationResult(analysis, logs)
    if request.llm:
        result.llm_error = _llm_review(analysis, request, config, RuleConfig.from_events(events_config))
    if request.save_baseline:
        save_baseline(analysis, request.save_baseline)
        result.notes.append(f"saved the baseline to {request.save_baseline}")
    if request.plan_out:
        from agentflow.evaluator.remediation import write_plans
        from agentflow.patterns import load_patterns, patterns_path

        result.plans = write_plans(
            analysis.findings,
            request.plan_out,
            names,
            patterns=load_patterns(request.root, config),
            rules=RuleConfig.from_events(events_config),
            patterns_file=patterns_path(request.root, config).name,
        )
    if request.record:
        record(request.root, analysis, names)
        result.recorded = True
    result.exit_code = 1 if threshold_reached(analysis, request.fail_on) else 0
    return result


def _llm_review(analysis: Analysis, request: EvaluationRequest, config: object, rules: object) -> Exception | None:
    """The --llm session; its failure is returned (reported after the deterministic report)."""
    import tempfile

    from agentflow.errors import BackendError
    from agentflow.evaluator.llm import review
    from agentflow.ledger import Ledger

    with tempfile.TemporaryDirectory() as scratch:
        ledger_root = request.root if request.in_repo else Path(scratch)
        with Ledger.open(ledger_root) as ledger:
            try:
                analysis.review = review(analysis, request.root, config, ledger, rules)
            except BackendError as exc:
                return exc
    return None


def record(root: Path, analysis: Analysis, logs: list[str]) -> None:
    """Append the findings to the ledger; the latest record is the open set (Ledger.open_findings)."""
    from agentflow.events import FindingsRecorded
    from agentflow.ledger import Ledger

    with Ledger.open(root) as ledger:
        ledger.append(
            FindingsRecorded(source="evaluator", logs=list(logs), findings=[f.to_json() for f in analysis.findings])
        )
