"""``agentflow log``: the ledger's events, one line each or as JSON Lines."""

from __future__ import annotations

from typing import Annotated

import typer

from agentflow.cli import _common

# Help text: one line per paragraph, because the help formatter keeps line breaks as they are.
LOG_HELP = (
    "Print the ledger's events in order: time, run, kind and the key fields.\n\n"
    "Only what the ledger's hash chains vouch for is printed: with --run that run's chain, without it every "
    "run's chain and that of the events of no run (merges, evaluations, overrides). A row edited, deleted or "
    "inserted outside agentflow (a broken chain) is exit 2 with one line naming the chain and its first bad "
    "event, and nothing is printed. An unknown run id is exit 2.\n\n"
    "Examples:\n\n"
    "  agentflow log\n\n"
    "  agentflow log --run r-20261127-a1b2c3\n\n"
    "  agentflow log --json | jq 'select(.kind == \"verdict_recorded\")'"
)


def log(
    run: Annotated[
        str | None,
        typer.Option("--run", metavar="ID", help="Only the events of this run (its id or an unambiguous prefix)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON Lines: one event object per line.")] = False,
) -> None:
    """The ledger's events, each line or JSON object (help text: ``LOG_HELP``)."""
    from agentflow.fastcli import EMPTY_LOG, log_lines  # what a plain command line runs without typer

    lines = log_lines(run, as_json)
    if not lines and not as_json:
        _common.err(EMPTY_LOG)
    for line in lines:
        _common.out(line)


def register(app: typer.Typer) -> None:
    app.command("log", help=LOG_HELP)(log)
