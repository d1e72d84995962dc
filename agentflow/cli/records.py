"""``agentflow log``: the ledger's events, one line each or as JSON Lines."""

from __future__ import annotations

from typing import Annotated

import typer

from agentflow.cli import _common


def log(
    run: Annotated[str | None, typer.Option("--run", metavar="ID", help="Only the events of this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON Lines: one event object per line.")] = False,
) -> None:
    """Print the ledger's events in order: time, run, kind and the key fields.

    Examples:

      agentflow log

      agentflow log --run r-20261127-a1b2c3

      agentflow log --json | jq 'select(.kind == "verdict_recorded")'
    """
    root = _common.repo().root
    if as_json:  # complete typed events (defaults filled in for events recorded before a field existed)
        import json

        from agentflow.ledger import dump_event
        from agentflow.records import read_events

        for event in read_events(root, run):
            _common.out(json.dumps(dump_event(event), separators=(",", ":")))
        return
    from agentflow.records import read_records
    from agentflow.report.lines import event_line

    events = read_records(root, run)  # stored JSON, not validated: `log` builds no event class
    if not events:
        _common.err("the ledger is empty: runs appear here once `agentflow build` or `agentflow verify` ran")
    for event in events:
        _common.out(event_line(event))


def register(app: typer.Typer) -> None:
    app.command()(log)
