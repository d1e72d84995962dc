"""``agentflow metrics``, ``show``, ``status`` and ``log`` without typer: a read view's plain command line, parsed by a table (#19 item 1).

Importing typer (with its vendored click, its completion machinery and the stdlib modules it pulls
in) is about 100 ms of every command, more than half of a view at 100k events. ``agentflow.__main__``
asks ``run(argv)`` first: a command line made only of a ``FAST`` command's own options (and its one
argument, ``show RUN``), each in a
form that has one reading (``--since 7d``, ``--since=7d``, ``-f json``, a flag alone), a value that
is not empty and does not begin with ``-``, a choice among its choices, is run here, by the very
function the typer command calls (``metrics`` and ``show`` below; ``agentflow.cli.metrics`` calls
them too). Anything else (``--help``, a root option such as ``-C``, an unknown or repeated option, a
second positional, ``--``, shell completion) returns None and typer parses the command line as always,
with its own help and errors. ``tests/test_cli_fast.py`` checks the table against the click
command typer builds (names, options, defaults, choices) and the parse against click's on many
command lines, and that what the two print and exit with is the same.

``status`` and ``log`` compute their lines here (``status_lines``, ``log_lines``, which their typer
commands call too); the typer commands print each line through click's ``echo`` (``cli._common.out``),
the fast path through ``echo_lines``: the same bytes (tested against the typer commands' output),
written into Python's buffer and flushed once instead of once per line.

Errors are reported as ``agentflow.cli`` reports them (its ``failure``: one line, the documented
exit code), importing typer then: only a failing command pays for it.

No typer, click, rich or pydantic here: the module is imported before any of them.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class Option:
    """One spelling of a command's option: the parameter it sets and how its value is read."""

    __slots__ = ("choices", "dest", "flag", "path")

    def __init__(self, dest: str, *, flag: bool = False, choices: tuple[str, ...] = (), path: bool = False) -> None:
        self.dest = dest  # the command function's parameter
        self.flag = flag  # takes no value (``True`` when given)
        self.choices = choices  # the values a choice takes (an enum's values), exact case
        self.path = path  # converted to a ``Path``


class Command:
    """A ``FAST`` command: every spelling of every option (``--format`` and ``-f``), the defaults, the
    function. Plain classes, not NamedTuples: every ``agentflow`` command imports this module first."""

    __slots__ = ("defaults", "options", "positional", "run")

    def __init__(
        self,
        options: dict[str, Option],
        defaults: dict[str, Any],
        run: Callable[..., None],
        positional: str | None = None,
    ) -> None:
        self.options, self.defaults, self.run = options, defaults, run
        self.positional = positional  # the one required argument's parameter (``show RUN``), if any


def write_output(text: str, output: Path | None) -> None:
    """Print ``text`` or write it to ``output`` (creating parent folders)."""
    from agentflow.text import terminal_text  # model and change text: shown, never interpreted

    if output is None:
        sys.stdout.write(terminal_text(text if text.endswith("\n") else text + "\n"))
        return
    from agentflow.files import write_report_file  # never through a link the change committed (docs/security.md)

    write_report_file(output, text if text.endswith("\n") else text + "\n")
    from agentflow.cli._common import err  # click's echo, as every message of the CLI (typer imported then)

    err(f"wrote {output}")


def metrics(since: str, until: str | None, fmt: str, output: Path | None, from_git: bool) -> None:
    """``agentflow metrics``: the report of the repository of the current directory."""
    from agentflow.git import Repo
    from agentflow.metrics import metrics_report, parse_period
    from agentflow.report import render_metrics

    root = Repo.find(Path.cwd()).root
    report = metrics_report(root, parse_period(since, until), from_git=from_git)
    write_output(render_metrics(report, fmt), output)


def show(run: str, fmt: str, transcripts: bool, output: Path | None) -> None:
    """``agentflow show RUN``: one run's timeline from the ledger of the current directory's repository."""
    from agentflow.git import Repo
    from agentflow.ledger import Ledger, ledger_path
    from agentflow.report.show import render_show
    from agentflow.show import run_timeline

    root = Repo.find(Path.cwd()).root
    if not ledger_path(root).exists():
        from agentflow.errors import UsageError

        raise UsageError(f"no run {run!r}: this repository has no ledger yet", fix="list runs with `agentflow log`")
    with Ledger.open(root) as ledger:
        timeline = run_timeline(ledger, run, transcripts=transcripts)
    write_output(render_show(timeline, fmt), output)


def status_lines(as_json: bool) -> tuple[list[str], list[str]]:
    """``agentflow status``'s lines for stdout and its plan errors (``status`` below and the typer
    command print them, each its own way: the same bytes)."""
    import json

    from agentflow.configfile import load_config_view
    from agentflow.git import Repo
    from agentflow.planfiles import status_plans
    from agentflow.records import plan_states, status_rows
    from agentflow.report.lines import status_table  # not report.text: status starts fast

    root = Repo.find(Path.cwd()).root
    load_config_view(root)  # a misspelt or broken config is an error here too, not only when building
    plans, errors = status_plans(root)  # check_plans(find_plans(root), root), cached by content
    rows = status_rows(plans, plan_states(root))
    if as_json:
        lines = [json.dumps([row.to_dict() for row in rows], indent=2)]
    elif rows:
        lines = status_table(rows)
    else:
        lines = ['no plans yet: agentflow plan new "Title"']
    return lines, [f"agentflow: error: {error}" for error in errors]


def plan_errors(errors: list[str]) -> None:
    """``status``'s end when plans cannot be read: their lines on stderr, then exit 2 (``PlanError``)."""
    if errors:
        from agentflow.cli._common import err  # click's echo, as every message of the CLI (typer imported then)
        from agentflow.errors import PlanError

        for line in errors:
            err(line)
        raise PlanError(
            f"{len(errors)} plan file{' is' if len(errors) == 1 else 's are'} invalid",
            fix="see above; `agentflow plan check` validates them",
        )


def status(as_json: bool) -> None:
    """``agentflow status`` on the fast path: the typer command's output (``cli.project.status``)."""
    lines, errors = status_lines(as_json)
    echo_lines(lines)
    plan_errors(errors)


EMPTY_LOG = "the ledger is empty: runs appear here once `agentflow build` or `agentflow verify` ran"


def log_lines(run: str | None, as_json: bool) -> list[str]:
    """``agentflow log``'s lines (``log`` below and the typer command print them, each its own way)."""
    from agentflow.git import Repo

    root = Repo.find(Path.cwd()).root
    if as_json:  # complete typed events (defaults filled in for events recorded before a field existed)
        import json

        from agentflow.ledger import dump_event
        from agentflow.records import read_events

        return [json.dumps(dump_event(event), separators=(",", ":")) for event in read_events(root, run)]
    from agentflow.records import read_records
    from agentflow.report.lines import event_line

    return [event_line(event) for event in read_records(root, run)]  # stored JSON: `log` builds no event class


def log(run: str | None, as_json: bool) -> None:
    """``agentflow log`` on the fast path: the typer command's output (``cli.records.log``)."""
    lines = log_lines(run, as_json)
    if not lines and not as_json:
        from agentflow.cli._common import err

        err(EMPTY_LOG)
    echo_lines(lines)


def echo_lines(lines: list[str]) -> None:
    """``lines`` as click's ``echo`` prints each (``cli._common.out``): control characters shown, never
    sent (``terminal_text``), a newline after each; flushed, so a closed pipe is reported here (141)
    and stderr never overtakes it. One write per line into Python's buffer, not click's flush per
    line (the same bytes). A stdout that cannot encode a line (``PYTHONIOENCODING=ascii``) gets it
    from click, which writes such a stream as UTF-8."""
    from agentflow.text import terminal_text

    out = sys.stdout
    for line in lines:
        try:
            out.write(terminal_text(line) + "\n")
        except UnicodeEncodeError:
            from agentflow.cli._common import out as echo

            out.flush()  # what is buffered first: click writes to the same file through a wrapper of its own
            echo(line)
    out.flush()


METRICS_FORMATS = ("text", "md", "json", "html")  # ``agentflow.cli.metrics.MetricsFormat``'s values (a test)
SHOW_FORMATS = ("text", "md", "html")  # ``agentflow.cli.metrics.ShowFormat``'s values (a test)
_FORMAT = Option("fmt", choices=METRICS_FORMATS)
_SHOW_FORMAT = Option("fmt", choices=SHOW_FORMATS)
_OUTPUT = Option("output", path=True)
FAST: dict[str, Command] = {
    "metrics": Command(
        {
            "--since": Option("since"),
            "--until": Option("until"),
            "--format": _FORMAT,
            "-f": _FORMAT,
            "--output": _OUTPUT,
            "-o": _OUTPUT,
            "--from-git": Option("from_git", flag=True),
        },
        {"since": "7d", "until": None, "fmt": "text", "output": None, "from_git": False},
        metrics,
    ),
    "show": Command(
        {
            "--format": _SHOW_FORMAT,
            "-f": _SHOW_FORMAT,
            "--transcripts": Option("transcripts", flag=True),
            "--output": _OUTPUT,
            "-o": _OUTPUT,
        },
        {"fmt": "text", "transcripts": False, "output": None},
        show,
        positional="run",
    ),
    "status": Command({"--json": Option("as_json", flag=True)}, {"as_json": False}, status),
    "log": Command(
        {"--run": Option("run"), "--json": Option("as_json", flag=True)}, {"run": None, "as_json": False}, log
    ),
}


def parse(argv: list[str]) -> tuple[Command, dict[str, Any]] | None:
    """The command and its parameters when ``argv`` is a plain command line of a ``FAST`` command
    (read as click reads it); None for anything else (typer parses it)."""
    if not argv or argv[0] not in FAST:
        return None
    command = FAST[argv[0]]
    params = dict(command.defaults)
    given: set[str] = set()
    rest = iter(argv[1:])
    for arg in rest:
        if command.positional and arg and not arg.startswith("-"):
            if command.positional in params:
                return None  # a second argument: click's error
            params[command.positional] = arg  # before or after the options, as click takes it
            continue
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        option = command.options.get(name)
        if option is None or option.dest in given:
            return None  # not an option of the command (a positional, --help, --), or given twice
        given.add(option.dest)
        if option.flag:
            if eq:
                return None  # click refuses a value for a flag: its error
            params[option.dest] = True
            continue
        value = inline if eq else next(rest, None)
        if not value or value.startswith("-") or (option.choices and value not in option.choices):
            return None  # missing, empty, option-like or not a choice: click's reading or its error
        params[option.dest] = Path(value) if option.path else value
    if command.positional and command.positional not in params:
        return None  # the argument missing (or empty): click's error
    return command, params


def run(argv: list[str]) -> int | None:
    """Run ``argv`` here when it is a plain command line of a ``FAST`` command: its exit code. None:
    typer must parse it (nothing was run).

    What start-up made is frozen out of the garbage collector (``gc.freeze``), as ``agentflow.cli``
    does, but the collector, which ``agentflow.__main__`` turned off, stays off: a ``FAST`` command
    is a read view that makes no cyclic garbage to speak of (a report in every format leaves a few
    dozen objects, ``tests/test_cli_fast.py``), so its collections only walked the window's objects
    for nothing (6.5M instructions, 1.2% of ``metrics --since 7d`` at 100k events; the peak is the
    same). Everything is freed by reference counting as before."""
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ):
        return None  # shell completion asks click
    parsed = parse(argv)
    if parsed is None:
        return None
    command, params = parsed
    gc.freeze()
    try:
        command.run(**params)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - reported as the CLI reports it, or raised again
        from agentflow.cli import exit_code_of

        return exit_code_of(exc)
    return 0
