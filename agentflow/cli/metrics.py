"""``agentflow metrics`` (the periodic report) and ``agentflow show RUN`` (one run's timeline)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

# Help texts: one line per paragraph, because the help formatter keeps line breaks as they are.
METRICS_HELP = (
    "Report what the agents did in a period, compared with the period before.\n\n"
    "Plans built/approved/merged, rework cycles and the first-pass approval rate, verdict outcomes, "
    "findings by severity and by CLAUDE.md pattern, tokens and cost per role and per approved plan, "
    "agentflow commits, and time against the plans' estimates. An empty period says so and exits 0. "
    "Definitions of every figure: docs/metrics.md.\n\n"
    "--from-git reads commits, trailers and the verdict notes alone (fetch refs/notes/agentflow first); "
    "sessions, tokens and cost are then unknown.\n\n"
    "Examples:\n\n"
    "  agentflow metrics\n\n"
    "  agentflow metrics --since 2w --format md\n\n"
    "  agentflow metrics --since 2026-11-01 --until 2026-11-30 --format json\n\n"
    "  agentflow metrics --from-git --format html --output metrics.html"
)
SHOW_HELP = (
    "Show one run's timeline: the plan, each cycle's builder summary and diff stat, the checks, the verdict "
    "with criteria and findings, and the cost of every session.\n\n"
    "RUN is a run id or an unambiguous prefix of one. Exit 2 when the ledger has no such run.\n\n"
    "Examples:\n\n"
    "  agentflow show r-20261127-a1b2c3\n\n"
    "  agentflow show r-20261127-a1 --transcripts\n\n"
    "  agentflow show r-20261127-a1b2c3 --format html --output run.html"
)


class MetricsFormat(StrEnum):
    text = "text"
    md = "md"
    json = "json"
    html = "html"


class ShowFormat(StrEnum):
    text = "text"
    md = "md"
    html = "html"


def metrics(
    since: Annotated[
        str,
        typer.Option(
            "--since", metavar="WHEN", help="Start: a duration back from --until (24h, 7d, 2w) or an ISO date."
        ),
    ] = "7d",
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="WHEN",
            help="End: an ISO date (that whole day is included) or date-time; default: now.",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[MetricsFormat, typer.Option("--format", "-f", help="Output format.")] = MetricsFormat.text,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.", show_default=False
        ),
    ] = None,
    from_git: Annotated[
        bool,
        typer.Option("--from-git", help="Use commits, trailers and verdict notes alone (CI on a fresh clone)."),
    ] = False,
) -> None:
    """The metrics report of the current repository (help text: ``METRICS_HELP``)."""
    from agentflow.fastcli import metrics as run  # the same function runs a plain command line without typer

    run(since, until, fmt.value, output, from_git)


def show(
    run: Annotated[
        str,
        typer.Argument(metavar="RUN", help="The run id (or a unique prefix of it); list runs with `agentflow log`."),
    ],
    fmt: Annotated[ShowFormat, typer.Option("--format", "-f", help="Output format.")] = ShowFormat.text,
    transcripts: Annotated[
        bool, typer.Option("--transcripts", help="Add the full transcript of every session.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE instead of stdout.", show_default=False),
    ] = None,
) -> None:
    """One run's timeline from the ledger (help text: ``SHOW_HELP``)."""
    from agentflow.fastcli import show as run_show  # the same function runs a plain command line without typer

    run_show(run, fmt.value, transcripts, output)


def register(app: typer.Typer) -> None:
    app.command("metrics", help=METRICS_HELP)(metrics)
    app.command("show", help=SHOW_HELP)(show)
