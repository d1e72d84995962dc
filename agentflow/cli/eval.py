"""``agentflow eval verifier``: measure the verifier on labelled changes (docs/eval.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentflow.cli import _common

eval_app = typer.Typer(
    help="Measure agentflow's judges on labelled changes.\n\nExamples:\n\n  agentflow eval verifier --builtin",
    no_args_is_help=True,
)
FORMATS = ("text", "json", "md", "html")


@eval_app.command("verifier")
def verifier(
    dataset: Annotated[
        Path | None, typer.Argument(metavar="DATASET", help="JSON Lines dataset (docs/eval.md).")
    ] = None,
    builtin: Annotated[
        bool, typer.Option("--builtin", help="The built-in dataset on the demo project (offline).")
    ] = False,
    backend: Annotated[
        str | None, typer.Option("--backend", metavar="NAME", help="anthropic, scripted or claude-code.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", metavar="NAME", help="Verifier model name.")] = None,
    script: Annotated[
        Path | None,
        typer.Option("--script", metavar="FILE", help="Scripted verifier: one session per case and repeat, in order."),
    ] = None,
    repeat: Annotated[int, typer.Option("--repeat", min=1, metavar="N", help="Verify every case N times.")] = 1,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, metavar="N", help="Cases verified at once.")] = 1,
    fmt: Annotated[str, typer.Option("--format", metavar="text|json|md|html", help="Output format.")] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write the report to FILE.")
    ] = None,
    record: Annotated[Path | None, typer.Option("--record", metavar="DIR", help="Record every model exchange.")] = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", metavar="DIR", help="Serve model exchanges from DIR, no network.")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option("--baseline", metavar="FILE", help="An earlier JSON result: exit 1 on a regression.")
    ] = None,
    max_regression: Annotated[
        float, typer.Option("--max-regression", metavar="RATE", help="Largest tolerated worsening of a rate (0..1).")
    ] = 0.05,
    record_ledger: Annotated[
        bool, typer.Option("--record-ledger", help="Also import the verify runs into this repository's ledger.")
    ] = False,
) -> None:
    """Verify every case of DATASET as `agentflow verify` does, in temporary clones, and print the figures.

    Exit 0, or 1 when --baseline shows a rate regressed by more than --max-regression; 2 for a bad
    dataset; 3 when a replayed request is not in the cassette.

    Examples:

      agentflow eval verifier --builtin

      agentflow eval verifier cases.jsonl --backend anthropic --model claude-sonnet-4-5 --record cassettes/

      agentflow eval verifier cases.jsonl --replay cassettes/ --format json -o eval.json

      agentflow eval verifier cases.jsonl --replay cassettes/ --baseline eval.json
    """
    from agentflow.errors import UsageError
    from agentflow.eval.api import eval_verifier
    from agentflow.eval.report import RENDERERS
    from agentflow.eval.runner import EvalOptions

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: unknown format", fix=f"use one of {', '.join(FORMATS)}")
    options = EvalOptions(backend=backend, model=model, repeat=repeat, jobs=jobs, record=record, replay=replay)
    result = eval_verifier(
        dataset,
        builtin=builtin,
        options=options,
        script=script,
        baseline=baseline,
        max_regression=max_regression,
        ledger_root=_common.repo().root if record_ledger else None,
    )
    _common.write_output(RENDERERS[fmt](result.data), output)
    if record_ledger:
        _common.err(f"recorded {result.recorded_runs} verify run(s) in the ledger")
    for reg in result.regressions:
        _common.err(f"regressed: {reg.rate} {reg.baseline:.3f} -> {reg.current:.3f} (more than {max_regression:g})")
    _common.exit_with(1 if result.regressions else 0)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
