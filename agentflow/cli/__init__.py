"""The ``agentflow`` command line: parse, call a domain function, print, exit.

Command groups live in sibling modules (``agentflow.cli.<area>``), each exposing ``register(app)``.
They import domain modules inside the command functions so that ``agentflow --help`` and
``agentflow --version`` stay fast and never import the anthropic SDK.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer vendors click since 0.2x; its exceptions are what it raises for usage errors
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - a typer that depends on click instead
    from click.exceptions import ClickException  # type: ignore[no-redef]
from typer.core import TyperGroup

from agentflow import __version__
from agentflow.errors import AgentflowError, ExitCode

BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away
COMMAND_MODULES = (
    "project",
    "plans",
    "patterns",
    "records",
    "run",
    "evaluate",
    "gate",
    "metrics",
    "eval",
    "demo",
    "ledger",
    "clean",
)


def _debug() -> bool:
    return os.environ.get("AGENTFLOW_DEBUG", "") not in ("", "0")


class AgentflowGroup(TyperGroup):
    """Turns every error into one line on stderr and the documented exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AgentflowError as exc:
            if _debug():
                traceback.print_exc()
            for line in str(exc).splitlines():
                typer.echo(f"agentflow: error: {line}", err=True)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            typer.echo("agentflow: interrupted", err=True)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except BrokenPipeError:  # `agentflow log | head`: the reader left; stop quietly like other tools
            with contextlib.suppress(OSError, ValueError):  # later flushes at exit must not raise again
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(BROKEN_PIPE) from None
        except (typer.Exit, typer.Abort, SystemExit, ClickException):  # usage errors: click reports them
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, fail closed
            if _debug():
                traceback.print_exc()
            name = type(exc).__name__
            typer.echo(
                f"agentflow: internal error: {name}: {exc} (set AGENTFLOW_DEBUG=1 for the traceback and report it)",
                err=True,
            )
            raise typer.Exit(int(ExitCode.BACKEND)) from None


app = typer.Typer(
    cls=AgentflowGroup,
    name="agentflow",
    help=(
        "Run AI builder and verifier sessions on plan files, record every verdict, and gate merges on "
        "approvals bound to the exact content.\n\n"
        "Examples:\n\n"
        "  agentflow init --ci github\n\n"
        "  agentflow build .plans/348-capsule-isolation.md\n\n"
        "  agentflow verify --base origin/main --format github\n\n"
        "  agentflow gate HEAD\n\n"
        "  agentflow metrics --since 7d"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    directory: Annotated[
        Path | None, typer.Option("-C", "--dir", help="Run as if agentflow was started in DIR.", show_default=False)
    ] = None,
) -> None:
    if directory is not None:
        try:
            os.chdir(directory)
        except OSError as exc:
            raise AgentflowError(
                f"cannot change into {directory}: {exc.strerror}", fix="name an existing directory"
            ) from None


for _name in COMMAND_MODULES:
    import_module(f"agentflow.cli.{_name}").register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # raised outside a command (e.g. while parsing)
        sys.exit(int(ExitCode.INTERRUPTED))
