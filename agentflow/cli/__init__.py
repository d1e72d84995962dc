"""The ``agentflow`` command line: parse, call a domain function, print, exit.

Command groups live in sibling modules (``agentflow.cli.<area>``), each exposing ``register(app)``.
They import domain modules inside the command functions so that ``agentflow --help`` and
``agentflow --version`` stay fast and never import the anthropic SDK. Only the module of the
command being run is imported, and only that command made into a click command (``COMMANDS`` names
each command's module; ``agentflow --help`` builds them all), and their options are converted without pydantic
(``agentflow.cli._coerce``): start-up is most of what ``status``, ``show`` and ``log`` cost (#19).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import traceback
from collections.abc import Iterator, MutableMapping
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any

import typer

try:  # typer vendors click since 0.2x; its exceptions are what it raises for usage errors
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - a typer that depends on click instead
    from click.exceptions import ClickException  # type: ignore[no-redef]
from typer.core import TyperArgument, TyperGroup, TyperOption

from agentflow import __version__
from agentflow.errors import AgentflowError, ExitCode


def _value_name(display_type_rich: Any) -> Any:
    """typer 0.29's rich help names every value by its Python type: `--version <bool>` reads as an
    option that takes a value, `PLAN <list[str]>` and `--jobs <int range>` as annotations. Here a
    flag (on/off, not a counter) shows nothing and every other option its metavar, in capitals
    (`--jobs N`, `--script FILE`); an argument's metavar is already its name, so it shows no type.
    A parameter without a metavar keeps typer's label, and a test (tests/test_docs.py) finds it."""

    def shown(self: Any, ctx: Any) -> str | None:
        if isinstance(self, TyperArgument) or (self.is_flag and not self.count and self.metavar is None):
            return None
        return display_type_rich(self, ctx)

    return shown


TyperOption.display_type_rich = _value_name(TyperOption.display_type_rich)  # type: ignore[method-assign]
TyperArgument.display_type_rich = _value_name(TyperArgument.display_type_rich)  # type: ignore[method-assign]


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
# Every top-level command and the module of agentflow.cli whose register(app) adds it, in the order
# `agentflow --help` lists them (typer's: commands in registration order, then groups), which is
# what registering COMMAND_MODULES in order gives (a test compares the two).
COMMANDS = {
    "init": "project",
    "status": "project",
    "log": "records",
    "build": "run",
    "verify": "run",
    "evaluate": "evaluate",
    "gate": "gate",
    "merge": "gate",
    "approve": "gate",
    "metrics": "metrics",
    "show": "metrics",
    "demo": "demo",
    "clean": "clean",
    "plan": "plans",
    "patterns": "patterns",
    "hooks": "gate",
    "notes": "gate",
    "eval": "eval",
    "ledger": "ledger",
}


_PROGRAM = {"starting": False}  # True from main() until the command runs: this process is the agentflow program


def _command_starts() -> None:
    """The program's start-up is over (the command is about to run, or it exits while parsing):
    every object start-up made (modules, classes, the command line) lives until the process exits,
    so it is frozen out of the garbage collector (``gc.freeze``), which ``python -m agentflow``
    kept off while starting, and the collector is on again for the command. No collection, the
    final one at exit included, walks those objects again: about a tenth of a view's CPU (#19).
    Only the program does this (``main``), never a process that imports the CLI (tests, hosts)."""
    if _PROGRAM["starting"]:
        _PROGRAM["starting"] = False
        gc.freeze()
        gc.enable()


def _debug() -> bool:
    return os.environ.get("AGENTFLOW_DEBUG", "") not in ("", "0")


def module_commands(module: str, parent: typer.Typer | None = None, only: str | None = None) -> dict[str, Any]:
    """The click commands ``agentflow.cli.<module>``'s ``register`` adds, by name, with light
    option conversion; built as typer builds them for the app ``parent`` (``app``) has. With
    ``only``, just that command (typer inspects no other command's signature), or every one when
    the module adds none of that name."""
    from typer.main import get_command_name, get_group

    from agentflow.cli._coerce import lighten

    parent = parent or app
    sub = typer.Typer(
        rich_markup_mode=parent.rich_markup_mode,
        pretty_exceptions_short=parent.pretty_exceptions_short,
        suggest_commands=parent.suggest_commands,
    )
    import_module(f"agentflow.cli.{module}").register(sub)
    if only is not None:
        commands = [c for c in sub.registered_commands if (c.name or get_command_name(c.callback.__name__)) == only]
        groups = [g for g in sub.registered_groups if g.name == only]
        if commands or groups:
            sub.registered_commands, sub.registered_groups = commands, groups
    group = get_group(sub)
    lighten(group)
    reflow_help(group)
    return dict(group.commands)


def reflow_help(command: Any) -> None:
    """Join the lines of each paragraph of ``command``'s help (and its subcommands'): typer keeps a
    docstring's line breaks, so at 80 columns (a pipe, CI logs, ``| less``) every source line of
    about 100 characters became a full line and a short one. Indented paragraphs (the examples) and
    ``\\b`` ones are kept as written."""
    import inspect

    text = getattr(command, "help", None)
    if isinstance(text, str) and "\n" in text:
        paragraphs = inspect.cleandoc(text).split("\n\n")
        command.help = "\n\n".join(
            p if p.startswith("\b") or any(line[:1].isspace() for line in p.splitlines()) else " ".join(p.split("\n"))
            for p in paragraphs
        )
    for sub in (getattr(command, "commands", None) or {}).values():
        reflow_help(sub)


class _LazyCommands(MutableMapping):
    """The root group's commands: every name of ``COMMANDS``; a command is built when looked up
    (that one alone, not the others of its module)."""

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            module = COMMANDS[name]  # KeyError: no such command (click says so, with suggestions)
            self._built.update(module_commands(module, only=name))
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:  # click's add_command
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError("agentflow's commands are fixed")

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._built if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for name in self._built if name not in COMMANDS)


class AgentflowGroup(TyperGroup):
    """Builds only the command being run; turns every error into one line on stderr and the
    documented exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lazy = _LazyCommands()
        lazy.update(self.commands)  # any added to ``app`` directly (none in agentflow itself)
        self.commands = lazy

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names alone: help and completion look each one up

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from agentflow.cli._coerce import lighten

        lighten(self)  # the root options, typer's completion options among them
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        _command_starts()
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, SystemExit, ClickException):  # usage errors: click reports them
            raise
        except BaseException as exc:
            code = failure(exc)
            if code is None:
                raise
            raise typer.Exit(code) from None


def failure(exc: BaseException) -> int | None:
    """Report what a command raised as the CLI does, and return its exit code: an agentflow error as
    its lines on stderr and its documented code, Ctrl-C 130, a reader gone away (``agentflow log |
    head``) quietly 141, anything else one line of internal error, 3 (the last line of defence: fail
    closed). None: not the CLI's to report (it goes on up)."""
    if isinstance(exc, FileNotFoundError) and _cwd_gone():  # os.getcwd() of a deleted folder: bad input, not ours
        exc = AgentflowError(
            "the current directory no longer exists (it was deleted or moved)",
            fix="cd into the repository again, or pass -C DIR",
        )
    if isinstance(exc, AgentflowError):
        if _debug():
            traceback.print_exc()
        from agentflow.text import terminal_text  # an error may quote a note's or a change's text

        for line in str(exc).splitlines():
            typer.echo(terminal_text(f"agentflow: error: {line}"), err=True)
        return int(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        typer.echo("agentflow: interrupted", err=True)
        return int(ExitCode.INTERRUPTED)
    if isinstance(exc, BrokenPipeError):  # stop quietly like other tools
        with contextlib.suppress(OSError, ValueError):  # later flushes at exit must not raise again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    if isinstance(exc, Exception):
        if _debug():
            traceback.print_exc()
        name = type(exc).__name__
        from agentflow.text import terminal_text

        typer.echo(
            terminal_text(
                f"agentflow: internal error: {name}: {exc} (set AGENTFLOW_DEBUG=1 for the traceback and report it)"
            ),
            err=True,
        )
        return int(ExitCode.BACKEND)
    return None


def _cwd_gone() -> bool:
    try:
        os.getcwd()
    except FileNotFoundError:
        return True
    return False


def exit_code_of(exc: BaseException) -> int:
    """What the program exits with when a command ``agentflow.fastcli`` ran (outside click) raised
    ``exc``: as if click had run it (``failure``; click's own exceptions as its standalone mode
    reports them)."""
    if isinstance(exc, typer.Exit):
        return int(exc.exit_code)
    if isinstance(exc, typer.Abort):
        typer.echo("Aborted!", err=True)
        return 1
    if isinstance(exc, ClickException):
        exc.show()
        return int(exc.exit_code)
    code = failure(exc)
    if code is None:
        raise exc
    return code


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


def main() -> None:
    """The ``agentflow`` program (``agentflow.__main__``, which also keeps the garbage collector off
    while agentflow and typer are imported)."""
    _PROGRAM["starting"] = True
    try:
        app()
    except KeyboardInterrupt:  # raised outside a command (e.g. while parsing)
        sys.exit(int(ExitCode.INTERRUPTED))
    finally:  # --version, --help, a usage error: it exits while parsing, nothing but start-up ran
        _command_starts()
