"""The one domain function the CLI calls: load, run, score, compare."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.errors import UsageError
from agentflow.eval.figures import Regression, compare, results
from agentflow.eval.runner import EvalOptions, run_eval


@dataclass
class EvalOutcome:
    data: dict[str, Any]
    regressions: list[Regression] = field(default_factory=list)
    recorded_runs: int = 0  # runs imported into the repository's ledger (--record-ledger)


def eval_verifier(
    dataset: Path | None,
    *,
    builtin: bool = False,
    options: EvalOptions,
    script: Path | None = None,
    baseline: Path | None = None,
    max_regression: float = 0.05,
    ledger_root: Path | None = None,
) -> EvalOutcome:
    """Verify every case of ``dataset`` (or the built-in one) and score the verifier.

    With ``ledger_root`` (``--record-ledger``) the verify runs are imported into that repository's
    ledger afterwards (``Ledger.import_lines``); otherwise nothing outside the temporary clones is written.
    """
    from agentflow.eval.dataset import load_dataset

    if builtin == (dataset is not None):
        raise UsageError(
            "give a DATASET file or --builtin, not both or neither", fix="agentflow eval verifier --builtin"
        )
    base_data = None
    if baseline is not None:
        try:
            base_data = json.loads(baseline.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"cannot read the baseline: {exc}", where=baseline, fix="pass an eval JSON result"
            ) from None
    if builtin:
        from agentflow.eval.builtin import builtin_cases, builtin_script

        cases = builtin_cases()
        if options.backend is None and script is None:
            options.backend, options.script = "scripted", builtin_script()
        name = "built-in dataset"
    else:
        assert dataset is not None
        cases = load_dataset(dataset)
        name = str(dataset)
    if script is not None:
        from agentflow.models.scripted import read_script

        options.backend, options.script = "scripted", read_script(script)
    if options.replay and options.backend is None:
        options.backend = "scripted"
    if options.backend is None:
        options.backend = "anthropic"
    options.record_ledger = ledger_root is not None
    runs = run_eval(cases, options)
    recorded = 0
    if ledger_root is not None:
        from agentflow.ledger import Ledger

        with Ledger.open(ledger_root) as ledger:
            recorded = ledger.import_lines([(f"eval case {r.case.id}", r.ledger_lines) for r in runs]).runs
    data = results(runs, dataset=name, backend=options.backend, repeat=options.repeat).to_json()
    regressions = compare(data, base_data, max_regression, str(baseline)) if baseline is not None else []
    return EvalOutcome(data, regressions, recorded)
