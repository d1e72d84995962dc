"""``agentflow demo``: the whole story on a sample project, offline by default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentflow.cli import _common


def demo(
    directory: Annotated[
        Path | None, typer.Option("--dir", metavar="DIR", help="Create the sample project here (new or empty).")
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the sample project afterwards.")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Use the Anthropic API (needs ANTHROPIC_API_KEY) instead of the script.")
    ] = False,
) -> None:
    """Walk agentflow's whole loop on a sample multi-tenant project, offline, in under a minute.

    Evaluate an event log and find the tenant-isolation leaks, build the remediation plan
    (the builder misses one entity, the verifier catches it, the rework fixes it), open and close
    the gate, merge, and print the weekly metrics. Every step runs the real `agentflow` commands;
    only the model is scripted (or the real API with --live).

    Examples:

      agentflow demo

      agentflow demo --dir /tmp/capsulary --keep

      ANTHROPIC_API_KEY=... agentflow demo --live
    """
    import os
    import shutil

    from agentflow.demo import run_demo
    from agentflow.errors import UsageError

    if live and not os.environ.get("ANTHROPIC_API_KEY"):
        raise UsageError("--live needs ANTHROPIC_API_KEY", fix="set ANTHROPIC_API_KEY or run the offline demo")
    result = run_demo(directory, live=live, say=_common.out)
    _common.out(f"\nDemo finished in {result.seconds:.1f} s: every step behaved as expected.")
    if keep or directory is not None:
        _common.out(f"The sample project is kept in {result.root}; try `agentflow -C {result.root} status`.")
    else:
        shutil.rmtree(result.root.parent, ignore_errors=True)


def register(app: typer.Typer) -> None:
    app.command()(demo)
