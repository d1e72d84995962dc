"""The event-log evaluator: infer schemas from application event logs and find architectural violations.

Entry points:

- ``evaluate(paths, ...) -> Analysis``: stream the logs, infer per-type schemas, run the rules.
- ``relevant_findings(findings, plan) -> list[dict]``: the open findings that concern a plan, for the
  builder and verifier prompts.
- ``render(analysis, fmt)``, ``write_plans(...)``, ``save_baseline``/``load_baseline``: output.

This package never imports typer or rich; the CLI (``agentflow.cli.evaluate``) is a thin wrapper.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agentflow.evaluator.analysis import Analysis, Finding, TypeSchema
from agentflow.evaluator.relevance import relevant_findings
from agentflow.evaluator.rules import RuleConfig
from agentflow.verdict import SEVERITIES, severity_rank  # one severity scale for verdicts and evaluator

__all__ = [
    "SEVERITIES",
    "Analysis",
    "Finding",
    "RuleConfig",
    "TypeSchema",
    "evaluate",
    "evaluate_profile",
    "relevant_findings",
    "severity_rank",
]


def evaluate(
    paths: list[Path],
    *,
    rules: RuleConfig | None = None,
    type_field: str | None = None,
    baseline: dict[str, Any] | None = None,
    baseline_source: str = "baseline",
    workers: int | None = None,
    names: list[str] | None = None,
    allow_empty: bool = False,
) -> Analysis:
    """Analyse ``paths`` (JSON Lines, gzip, JSON arrays) and return schemas, errors and findings.

    ``allow_empty``: a file without any event is not an error (``reader.read_logs``).
    ``names`` are how the files appear in the report, sample lines and errors (one per path;
    default ``str(path)``): the CLI passes repository-relative names so that reports, ledger
    records and plans do not depend on where the repository is checked out.
    """
    from agentflow.evaluator.analysis import build_analysis
    from agentflow.evaluator.baseline import drift
    from agentflow.evaluator.caps import cap_findings
    from agentflow.evaluator.reader import read_logs
    from agentflow.evaluator.rules import run_rules, sort_findings, unmatched_fields

    rules = rules or RuleConfig()
    if type_field and not rules.type_field:
        rules.type_field = type_field
    if names is not None and len(names) != len(paths):
        raise ValueError("evaluate: one name per path")
    with collector_paused():
        aggregator = read_logs(paths, type_field=type_field, workers=workers, allow_empty=allow_empty)
        analysis = build_analysis(aggregator, names if names is not None else [str(p) for p in paths])
        findings = run_rules(analysis, rules)
    analysis.isolation_fields = list(rules.isolation_fields)
    analysis.inferred_scope = list(rules.inferred)
    analysis.warnings = unmatched_fields(analysis, rules)
    if baseline is not None:
        findings = sort_findings(findings + drift(analysis, baseline, rules, baseline_source))
    analysis.findings = cap_findings(findings)
    return analysis


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while logs are read and analysed, back as it was after.

    Reading and analysing build no reference cycles per event (decoded events, shape keys and
    Struct instances are freed by reference counting; the cycles of compiled schemas are bounded by
    ``schema.MAX_COMPILES``), but every object they keep (shapes, compiled types and their classes)
    makes the collector's full passes longer: with 2,000 types compiled, 9 full passes took 1.65 s
    of a 7.9 s run; 0.2 s of 2.2 s with 5 types (benchmarks/README.md).

    What was made meanwhile is moved to the oldest generation on the way out (``freeze`` then
    ``unfreeze``: two list splices, no traversal), otherwise the first young collection after
    ``enable`` walks every object the analysis keeps (0.1-0.16 s with 2,000 types); garbage cycles
    among them are collected by the next full collection instead. When the process has frozen
    objects of its own (the CLI freezes what start-up made), they stay frozen: then what the
    analysis made is frozen with them until the process ends (a command, then exit)."""
    enabled = gc.isenabled()
    frozen = gc.get_freeze_count()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if not frozen:
            gc.unfreeze()
        if enabled:
            gc.enable()


def evaluate_profile(
    rows: list[dict[str, Any]],
    *,
    rules: RuleConfig | None = None,
    files: list[str] | None = None,
    baseline: dict[str, Any] | None = None,
    baseline_source: str = "baseline",
) -> Analysis:
    """The rules over a profile (``agentflow.evaluator.profile``) instead of raw logs."""
    from agentflow.evaluator.baseline import drift
    from agentflow.evaluator.caps import cap_findings
    from agentflow.evaluator.profile import analysis_from_profile
    from agentflow.evaluator.rules import run_rules, sort_findings, unmatched_fields

    rules = rules or RuleConfig()
    analysis = analysis_from_profile(rows, files or [])
    findings = run_rules(analysis, rules)
    if baseline is not None:
        findings = sort_findings(findings + drift(analysis, baseline, rules, baseline_source))
    analysis.findings = cap_findings(findings)
    analysis.isolation_fields = list(rules.isolation_fields)
    analysis.inferred_scope = list(rules.inferred)
    analysis.warnings = unmatched_fields(analysis, rules)
    return analysis
