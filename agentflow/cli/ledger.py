"""``agentflow ledger export|import``: move runs' records between ledgers (CI fan-out, #15 item 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentflow.cli import _common

ledger_app = typer.Typer(
    help=(
        "Export and import runs' ledger events (JSON Lines) between ledgers.\n\n"
        "Examples:\n\n"
        '  agentflow ledger export --run "$RUN_ID" -o ledger-7.jsonl\n\n'
        "  agentflow ledger import ledger-*.jsonl"
    ),
    no_args_is_help=True,
)


@ledger_app.command("export")
def export(
    run: Annotated[
        str, typer.Option("--run", metavar="RUN", help="The run to export (its id or an unambiguous prefix).")
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Write a run's events as JSON Lines, exactly as recorded (ids and hash chain included).

    Examples:

      agentflow ledger export --run r-20261127-a1b2c3

      agentflow ledger export --run "$RUN_ID" -o ledger-7.jsonl
    """
    from agentflow.records import export_run

    lines = export_run(_common.repo().root, run)
    _common.write_output("".join(line + "\n" for line in lines), output)


@ledger_app.command("import")
def import_(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Files written by `ledger export`.")],
) -> None:
    """Merge exported runs into this repository's ledger, idempotently (by event id).

    Every run's hash chain is checked first; a broken chain, or a run whose events differ from this
    ledger's own run of that id (a foreign chain), refuses the whole import (exit 2, one line).

    Examples:

      agentflow ledger import ledger-*.jsonl

      agentflow ledger import runner-a.jsonl runner-b.jsonl && agentflow metrics --since 7d
    """
    from agentflow.records import import_runs

    result = import_runs(_common.repo().root, files)
    _common.out(f"imported {result.added} events of {result.runs} runs ({result.skipped} already present)")


def register(app: typer.Typer) -> None:
    app.add_typer(ledger_app, name="ledger")
