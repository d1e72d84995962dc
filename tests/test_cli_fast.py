"""``agentflow.fastcli`` (#19 item 1): a plain ``agentflow metrics`` or ``show`` command line runs without typer,
read as click reads it, printing and exiting as the typer command does; anything else goes to typer."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from enum import Enum
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentflow import fastcli
from agentflow.cli import COMMANDS, app, module_commands
from agentflow.cli.metrics import MetricsFormat, ShowFormat
from agentflow.errors import UsageError
from agentflow.ledger import ledger_path

PROGRAM = (  # the program as installed, reporting its exit and what it imported
    "import gc, json, runpy, sys\n"
    "sys.argv = ['agentflow', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('agentflow', run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'rich', 'pydantic'))\n"
    "    print(json.dumps([exc.code or 0, heavy, gc.isenabled(), gc.get_freeze_count()]), file=sys.stderr)\n"
)


def _program(repo: Path, *args: str) -> tuple[int, str, str, list[str], bool, int]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, *args], cwd=repo, capture_output=True, text=True, env=env, check=False
    )
    *lines, last = out.stderr.splitlines()
    code, heavy, enabled, frozen = json.loads(last)
    return code, out.stdout, "".join(line + "\n" for line in lines), heavy, enabled, frozen


def _click_command(name: str):
    return module_commands(COMMANDS[name], only=name)[name]


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


@pytest.mark.parametrize("name", sorted(fastcli.FAST))
def test_the_table_is_the_click_command_typer_builds(name: str) -> None:
    command = _click_command(name)
    table = fastcli.FAST[name]
    spellings: dict[str, str] = {}
    for param in command.params:
        if param.name == "help":
            continue
        if param.param_type_name == "argument":
            assert table.positional == param.name and param.required and param.nargs == 1
            continue
        for opt in (*param.opts, *param.secondary_opts):
            spellings[opt] = param.name
        option = table.options[param.opts[0]]
        assert option.dest == param.name
        assert option.flag == param.is_flag
        assert not param.multiple and param.nargs == 1 and not param.envvar and not param.count
        kind, info = param.type_descriptor.annotation, param.type_descriptor.parameter_info
        assert info.parser is None and info.callback is None
        if isinstance(kind, type) and issubclass(kind, Enum):  # a choice, exact case
            assert option.choices == tuple(member.value for member in kind) and info.case_sensitive
        else:
            assert option.choices == () and kind in (str, Path, bool, str | None, Path | None)
        assert option.path == (kind in (Path, Path | None))
        assert table.defaults[param.name] == _plain(param.default)
    assert {opt: option.dest for opt, option in table.options.items()} == spellings
    assert set(table.defaults) == set(spellings.values())
    assert table.positional is None or any(p.name == table.positional for p in command.params)
    assert tuple(f.value for f in MetricsFormat) == fastcli.METRICS_FORMATS
    assert tuple(f.value for f in ShowFormat) == fastcli.SHOW_FORMATS


READ_AS_CLICK_DOES = [
    ["metrics"],
    ["metrics", "--since", "7d"],
    ["metrics", "--since=2w"],
    ["metrics", "--since", "2026-11-01", "--until", "2026-11-30", "-f", "json"],
    ["metrics", "--format=md", "--output", "out/report.md"],
    ["metrics", "-o", "r.html", "--from-git", "--format", "html"],
    ["metrics", "--until=2026-11-30T10:00:00", "--since", "24h"],
    ["metrics", "--since", "a=b"],
    ["show", "r-1"],
    ["show", "r-1", "--format", "md"],
    ["show", "--format=html", "r-1", "--transcripts"],
    ["show", "-f", "text", "-o", "run.html", "r-20261127-a1"],
    ["status"],
    ["status", "--json"],
    ["log"],
    ["log", "--json"],
    ["log", "--run", "r-1"],
    ["log", "--run=r-20261127-a1", "--json"],
    ["log", "--json", "--run", "r-1"],
]
LEFT_TO_TYPER = [
    [],
    ["status", "--json", "--json"],
    ["status", "--jsn"],
    ["status", "extra"],
    ["status", "--json=1"],
    ["status", "--help"],
    ["log", "--run"],
    ["log", "--run", ""],
    ["log", "--run", "-r"],
    ["log", "--run", "r-1", "--run", "r-2"],
    ["log", "r-1"],
    ["log", "-h"],
    ["plan", "list"],
    ["metrics", "--help"],
    ["metrics", "-h"],
    ["--version"],
    ["-C", "sub", "metrics"],
    ["metrics", "extra"],
    ["metrics", "--"],
    ["metrics", "--since"],
    ["metrics", "--since", ""],
    ["metrics", "--since="],
    ["metrics", "--since", "-3d"],
    ["metrics", "--since", "7d", "--since", "2w"],
    ["metrics", "--from-git", "--from-git"],
    ["metrics", "--from-git=yes"],
    ["metrics", "-f", "xml"],
    ["metrics", "-f", "JSON"],
    ["metrics", "-fjson"],
    ["metrics", "-f=json"],
    ["metrics", "--form", "json"],
    ["metrics", "--sinc", "7d"],
    ["metrics", "-o"],
    ["show"],
    ["show", ""],
    ["show", "r-1", "r-2"],
    ["show", "-f", "json", "r-1"],
    ["show", "--format", "md"],
    ["show", "r-1", "--since", "7d"],
    ["show", "-r-1"],
    ["show", "r-1", "--transcripts=1"],
    ["show", "r-1", "-h"],
    ["show", "--", "r-1"],
]


@pytest.mark.parametrize("argv", READ_AS_CLICK_DOES)
def test_a_plain_command_line_is_read_as_click_reads_it(argv: list[str]) -> None:
    parsed = fastcli.parse(argv)
    assert parsed is not None
    command, params = parsed
    ctx = _click_command(argv[0]).make_context(argv[0], list(argv[1:]))
    assert params == {name: _plain(value) for name, value in ctx.params.items()}
    assert command is fastcli.FAST[argv[0]]


@pytest.mark.parametrize("argv", LEFT_TO_TYPER)
def test_anything_else_is_left_to_typer(argv: list[str]) -> None:
    assert fastcli.parse(argv) is None


def test_the_program_asks_the_fast_path_for_its_commands_only() -> None:
    import agentflow.__main__

    assert tuple(fastcli.FAST) == agentflow.__main__.FAST


def test_shell_completion_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_AGENTFLOW_COMPLETE", "complete_zsh")
    assert fastcli.run(["metrics"]) is None


@pytest.fixture
def history(repo: Path) -> Path:
    from tests.metrics_helpers import build_history

    build_history(repo)
    return repo


@pytest.mark.parametrize(
    "args",
    [
        ["--since", "2026-11-16", "--until", "2026-11-22", "--format", "json"],
        ["--since", "2026-11-16", "--until", "2026-11-22"],
        ["--since=2026-11-01", "--until=2026-11-30", "-f", "md"],
        ["--since", "2026-11-16", "--until", "2026-11-22", "-f", "html"],
    ],
)
def test_the_program_prints_what_the_typer_command_prints_without_importing_typer(
    history: Path, args: list[str]
) -> None:
    code, out, err, heavy, enabled, frozen = _program(history, "metrics", *args)
    typer_run = CliRunner().invoke(app, ["metrics", *args])
    assert (code, out, err) == (typer_run.exit_code, typer_run.stdout, typer_run.stderr) == (0, typer_run.stdout, "")
    assert heavy == []  # nor click, rich or pydantic
    assert not enabled and frozen > 1_000  # start-up frozen; the collector off (no cyclic garbage: below)


def test_a_report_written_to_a_file_is_the_typer_commands(history: Path) -> None:
    args = ["--since", "2026-11-16", "--until", "2026-11-22", "-f", "json", "-o", "out/fast.json"]
    code, out, err, _, _, _ = _program(history, "metrics", *args)
    typer_run = CliRunner().invoke(app, ["metrics", *args[:-1], "out/typer.json"])
    assert (code, out, err) == (0, "", "wrote out/fast.json\n")
    assert (typer_run.exit_code, typer_run.stderr) == (0, "wrote out/typer.json\n")
    assert (history / "out" / "fast.json").read_text() == (history / "out" / "typer.json").read_text()
    assert json.loads((history / "out" / "fast.json").read_text())["period"]


def test_a_broken_chain_is_refused_as_the_typer_command_refuses_it(history: Path) -> None:
    """Fail closed on the fast path too: an edited event of a reported run is exit 2 with the chain's
    line, and no report."""
    db = sqlite3.connect(ledger_path(history))
    changed = db.execute(
        "UPDATE events SET body = replace(body, '\"cycle\":1', '\"cycle\":1 ') WHERE kind = 'session_ended' "
        "AND run_id = 'r-101a'"
    ).rowcount
    db.commit()
    db.close()
    assert changed
    args = ["--since", "2026-11-16", "--until", "2026-11-22", "-f", "json"]
    code, out, err, heavy, _, _ = _program(history, "metrics", *args)
    typer_run = CliRunner().invoke(app, ["metrics", *args])
    assert (code, out, err) == (typer_run.exit_code, "", typer_run.stderr)
    assert code == 2 and "ledger chain of run r-101a is broken" in err and "(session_ended)" in err
    assert heavy  # the error is reported by agentflow.cli (typer's echo): only a failing command imports it


def test_outside_a_repository_the_error_is_the_typer_commands(tmp_path: Path) -> None:
    code, out, err, _, _, _ = _program(tmp_path, "metrics")
    assert (code, out) == (2, "")
    assert (
        err
        == f"agentflow: error: {tmp_path}: not a git repository (run agentflow inside a git repository, or `git init` one)\n"
    )


def test_a_usage_error_goes_to_typer(history: Path) -> None:
    code, out, err, heavy, _, _ = _program(history, "metrics", "-f", "xml")
    assert code == 2 and out == "" and "Invalid value for '--format'" in err and "typer" in heavy


def _failing(exc: BaseException) -> fastcli.Command:
    def run(**_: object) -> None:
        raise exc

    metrics = fastcli.FAST["metrics"]
    return fastcli.Command(metrics.options, metrics.defaults, run)


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (UsageError("a problem", fix="the fix"), 2, "agentflow: error: a problem (the fix)\n"),
        (KeyboardInterrupt(), 130, "agentflow: interrupted\n"),
        (
            RuntimeError("boom"),
            3,
            "agentflow: internal error: RuntimeError: boom (set AGENTFLOW_DEBUG=1 for the traceback and report it)\n",
        ),
    ],
)
def test_what_a_command_raises_is_reported_as_the_cli_reports_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException, code: int, message: str
) -> None:
    import gc

    monkeypatch.setitem(fastcli.FAST, "metrics", _failing(exc))
    try:
        assert fastcli.run(["metrics"]) == code
    finally:
        gc.unfreeze()
    assert capsys.readouterr().err == message


def test_typers_exit_raised_inside_a_command_is_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import typer

    monkeypatch.setitem(fastcli.FAST, "metrics", _failing(typer.Exit(4)))
    try:
        assert fastcli.run(["metrics"]) == 4
    finally:
        gc.unfreeze()


def test_the_report_shows_control_characters_never_sends_them(repo: Path) -> None:
    """A plan title with a cursor-up and line-erase sequence (a model or a change wrote it) is shown
    as text on the fast path too, as the typer command shows it (``agentflow.text.terminal_text``)."""
    from agentflow.events import RunEnded, RunStarted
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1", plan_title="Evil\x1b[1A\x1b[2K title", estimate_hours=1.0))
        ledger.append(RunEnded(run_id="r-1", outcome="approved", cycles=1))
    code, out, err, heavy, _, _ = _program(repo, "metrics", "--since", "2d")
    typer_run = CliRunner().invoke(app, ["metrics", "--since", "2d"])
    assert (code, err, heavy) == (0, "", [])
    assert "Evil\\x1b[1A\\x1b[2K title" in out and "\x1b" not in out
    assert out.split("\n", 1)[1] == typer_run.stdout.split("\n", 1)[1]  # the first line has the time of the run


@pytest.mark.parametrize("fmt", fastcli.METRICS_FORMATS)
def test_a_report_makes_no_cyclic_garbage_so_the_collector_can_stay_off(history: Path, fmt: str) -> None:
    """Why the fast path leaves the collector off: what a report allocates is freed by reference
    counting; a collection after it finds next to nothing (a few dozen objects).

    The collector counts every thread's garbage, and in one full-suite run a window found 123
    objects (not reproduced alone; a daemon thread an earlier test left running, such as a warm-up
    still importing, is the likely source). The report's own garbage is in every window, so the
    quietest of three is what it makes."""
    import gc

    from agentflow.metrics import metrics_report, parse_period
    from agentflow.report import render_metrics

    period = parse_period("2026-11-16", "2026-11-22")
    render_metrics(metrics_report(history, period), fmt)  # imports and caches: made once
    enabled = gc.isenabled()
    gc.disable()
    try:
        found = []
        for _ in range(3):
            gc.collect()
            assert render_metrics(metrics_report(history, period), fmt)
            found.append(gc.collect())
        assert min(found) < 100, found
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize("args", [[], ["--format", "md"], ["-f", "html"], ["--transcripts"], ["r-101"]])
def test_show_prints_what_the_typer_command_prints_without_importing_typer(history: Path, args: list[str]) -> None:
    argv = ["show", *args] if args == ["r-101"] else ["show", "r-101a", *args]
    code, out, err, heavy, enabled, frozen = _program(history, *argv)
    typer_run = CliRunner().invoke(app, argv)
    assert (code, out, err) == (typer_run.exit_code, typer_run.stdout, typer_run.stderr) == (0, typer_run.stdout, "")
    assert "r-101a" in out
    assert heavy == [] and not enabled and frozen > 1_000


@pytest.mark.parametrize("run", ["r-nosuch", "r-10"])  # unknown; ambiguous
def test_show_of_no_such_run_is_the_typer_commands_error(history: Path, run: str) -> None:
    code, out, err, _, _, _ = _program(history, "show", run)
    typer_run = CliRunner().invoke(app, ["show", run])
    assert (code, out, err) == (typer_run.exit_code, "", typer_run.stderr)
    assert code == 2 and err.startswith("agentflow: error: ")


def test_show_without_a_ledger_is_the_typer_commands_error(repo: Path) -> None:
    code, out, err, _, _, _ = _program(repo, "show", "r-1")
    assert (code, out) == (2, "")
    assert err == "agentflow: error: no run 'r-1': this repository has no ledger yet (list runs with `agentflow log`)\n"
    assert not ledger_path(repo).exists()


def test_show_refuses_a_broken_chain_on_the_fast_path(history: Path) -> None:
    db = sqlite3.connect(ledger_path(history))
    db.execute("UPDATE events SET body = replace(body, '\"cycle\":1', '\"cycle\":1 ') WHERE run_id = 'r-101a'")
    db.commit()
    db.close()
    code, out, err, _, _, _ = _program(history, "show", "r-101a")
    assert (code, out) == (2, "")
    assert "ledger chain of run r-101a is broken" in err


@pytest.mark.parametrize("args", [["--transcripts"], ["-f", "html", "--transcripts"], ["-f", "md"]])
def test_show_makes_no_cyclic_garbage_either(history: Path, args: list[str]) -> None:
    import gc

    from agentflow.ledger import Ledger
    from agentflow.report.show import render_show
    from agentflow.show import run_timeline

    fmt = args[args.index("-f") + 1] if "-f" in args else "text"

    def once() -> str:
        with Ledger.open(history) as ledger:
            timeline = run_timeline(ledger, "r-101a", transcripts="--transcripts" in args)
        return render_show(timeline, fmt)

    once()
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        assert once()
        assert gc.collect() < 100
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["log"],
        ["log", "--run", "r-103a"],
        ["log", "--run", "r-10"],  # an ambiguous prefix: the typer command's error
        ["log", "--run", "r-nope"],
        ["log", "--json"],
        ["log", "--run=r-103a", "--json"],
    ],
)
def test_status_and_log_print_what_click_prints_without_importing_typer(history: Path, args: list[str]) -> None:
    """Byte for byte what the typer command prints through click's echo, line by line (cli._common.out)."""
    code, out, err, heavy, enabled, frozen = _program(history, *args)
    typer_run = CliRunner().invoke(app, args)
    assert (code, out, err) == (typer_run.exit_code, typer_run.stdout, typer_run.stderr)
    assert code or out.count("\n") > 3
    if code == 0:  # an error is reported through agentflow.cli (typer imported then, as for metrics)
        assert heavy == ([] if "--json" not in args or args[0] == "status" else ["pydantic", *heavy[1:]])
        assert not [m for m in heavy if m.split(".")[0] in ("typer", "click", "rich")]  # log --json: events typed
    assert not enabled and frozen > 1_000


def test_status_with_unreadable_plans_is_the_typer_commands(history: Path) -> None:
    (history / ".plans").mkdir(exist_ok=True)
    (history / ".plans" / "9-x.md").write_text("---\nid: 9\n")
    code, out, err, _, _, _ = _program(history, "status")
    typer_run = CliRunner().invoke(app, ["status"])
    assert (code, out, err) == (typer_run.exit_code, typer_run.stdout, typer_run.stderr)
    assert code == 2 and ".plans/9-x.md:1: front matter is not closed" in err


def test_an_empty_log_says_so_on_stderr_as_the_typer_command_does(repo: Path) -> None:
    code, out, err, heavy, _, _ = _program(repo, "log")
    typer_run = CliRunner().invoke(app, ["log"])
    assert (code, out, err) == (typer_run.exit_code, typer_run.stdout, typer_run.stderr) == (0, "", err)
    assert err == f"{fastcli.EMPTY_LOG}\n"


def test_a_line_stdout_cannot_encode_is_written_as_click_writes_it(history: Path) -> None:
    """PYTHONIOENCODING=ascii: click writes such a stream as UTF-8; the fast path hands it the line."""
    (history / ".plans").mkdir(exist_ok=True)
    (history / ".plans" / "7-e.md").write_text("---\nid: 7\ntitle: caf\u00e9 " + "x" * 60 + "\n---\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "PYTHONIOENCODING": "ascii"}
    runs = [
        subprocess.run([sys.executable, "-m", "agentflow", *args], cwd=history, capture_output=True, env=env)
        for args in (["status"], ["-C", ".", "status"])  # the fast path, and typer's (a root option)
    ]
    assert runs[0].returncode == runs[1].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout and "café".encode() in runs[0].stdout
