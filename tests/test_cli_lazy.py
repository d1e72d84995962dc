"""The lazily built command line (#19 item 1): `agentflow X` builds only X's module, converts option
values without pydantic, and still behaves, helps and fails exactly like the app built whole."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer.core import TyperGroup, _TyperParameter
from typer.testing import CliRunner

import agentflow.cli as cli_module
from agentflow.cli import COMMAND_MODULES, COMMANDS, app
from tests.helpers import command_in_fresh_process


class _EagerGroup(cli_module.AgentflowGroup):
    """agentflow's group (errors as one line) with typer's own commands dict and conversion."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        TyperGroup.__init__(self, *args, **kwargs)
        cli_module.reflow_help(self)  # what module_commands does to the commands it builds

    def list_commands(self, ctx: Any) -> list[str]:
        return TyperGroup.list_commands(self, ctx)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return TyperGroup.parse_args(self, ctx, args)


def _eager_app() -> typer.Typer:
    """The app as it was built before: every module registered on it, typer's own conversion."""
    eager = copy.copy(app)
    eager.info = copy.copy(app.info)
    eager.info.cls = _EagerGroup
    eager.registered_commands, eager.registered_groups = [], []
    for name in COMMAND_MODULES:
        import_module(f"agentflow.cli.{name}").register(eager)
    return eager


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _walk(sub, (*path, name))
    return found


EAGER = typer.main.get_command(_eager_app())
EVERY_COMMAND = [path for path, _ in _walk(EAGER)]


def test_the_command_table_is_what_the_modules_register_in_help_order() -> None:
    assert list(EAGER.commands) == list(COMMANDS)
    for name, module in COMMANDS.items():
        assert name in cli_module.module_commands(module), (name, module)


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=lambda p: " ".join(p) or "agentflow")
def test_every_help_is_the_eager_apps_and_has_examples(path: tuple[str, ...]) -> None:
    lazy = CliRunner().invoke(app, [*path, "--help"])
    eager = CliRunner().invoke(_eager_app(), [*path, "--help"])
    assert lazy.exit_code == eager.exit_code == 0, lazy.output
    assert lazy.output == eager.output
    assert "<bool>" not in lazy.output  # a flag takes no value (agentflow.cli._value_name)
    command = dict(_walk(EAGER))[path]
    if not command.hidden:  # `hooks run` is what the installed hook scripts call
        assert "Examples" in lazy.output and "agentflow " in lazy.output


@pytest.mark.parametrize(
    "args",
    [
        ["stauts"],
        ["plan", "nwe"],
        ["status", "--jsn"],
        ["show"],
        ["gate", "HEAD", "--format", "xml"],
        ["metrics", "--format", "JSON", "--since", "zz"],
        ["build", "--max-parallel", "zero"],
        ["-C", "/nonexistent-agentflow-dir", "status"],
        [],
    ],
)
def test_usage_errors_are_the_eager_apps(repo: Path, args: list[str]) -> None:
    lazy = CliRunner().invoke(app, args)
    eager = CliRunner().invoke(_eager_app(), args)
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)


SAMPLES: list[Any] = [
    None,
    "",
    "x",
    "a b",
    "-",
    "0",
    "5",
    "-5",
    "007",
    "+5",
    " 5 ",
    "1_000",
    "1.5",
    "-0.25",
    "1e3",
    "nan",
    "\u0665",
    "\udcff",
    "9" * 30,
    5,
    0,
    1.5,
    True,
    False,
    ("a", "b"),
    ["x"],
    (),
    "text",
    "TEXT",
    "json",
    "md",
    "github",
]


def _outcome(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        result = runtime.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # noqa: BLE001 - the error is part of what must match
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        return f"raised {type(exc).__name__}", message
    return type(result).__name__, repr(result)  # repr: nan equals nan


def test_light_conversion_returns_what_typers_own_does_for_every_parameter(tmp_path: Path) -> None:
    from typer._click import Context
    from typer._coercion import build_runtime_param

    from agentflow.cli._coerce import LightRuntimeParam

    (tmp_path / "file.md").write_text("x")
    paths = [str(tmp_path / "file.md"), str(tmp_path), str(tmp_path / "missing"), tmp_path / "file.md"]
    compared = converted_light = 0
    for _, command in _walk(typer.main.get_command(_eager_app())):
        ctx = Context(command)
        for param in [*command.params, command.get_help_option(ctx)]:
            if not isinstance(param, _TyperParameter) or param.type_descriptor.file_annotation is not None:
                continue
            descriptor = param.type_descriptor
            full = build_runtime_param(descriptor)
            light = LightRuntimeParam(
                annotation=descriptor.annotation, parameter_info=descriptor.parameter_info, descriptor=descriptor
            )
            for value in [*SAMPLES, *paths, param.default]:
                expected = _outcome(full, value, param, ctx)
                probe = copy.copy(param)  # the light converter swaps in typer's own when it hands over
                assert _outcome(light, value, probe, ctx) == expected, (command.name, param.name, value)
                compared += 1
                converted_light += probe._runtime_param is None
    assert compared > 2000 and converted_light > 1000  # most values never needed pydantic


def test_a_command_builds_only_itself() -> None:
    group = typer.main.get_command(app)
    assert group.commands._built == {}
    assert group.get_command(None, "status") is not None
    assert set(group.commands._built) == {"status"}  # not `init`, agentflow.cli.project's other command
    assert group.get_command(None, "show") is not None
    assert set(group.commands._built) == {"status", "show"}  # not `metrics`
    assert group.get_command(None, "plan") is not None  # a group, with its subcommands
    assert set(group.commands._built) == {"status", "show", "plan"}
    assert group.get_command(None, "no-such-command") is None


@pytest.mark.parametrize(("name", "module"), list(COMMANDS.items()))
def test_each_command_built_alone_is_the_one_built_with_its_module(name: str, module: str) -> None:
    alone = cli_module.module_commands(module, only=name)
    assert list(alone) == [name]
    whole = cli_module.module_commands(module)[name]

    def shape(command: Any) -> list[Any]:
        params = [(p.name, p.opts, p.secondary_opts, p.default, p.required, p.help) for p in command.params]
        subs = {sub: shape(c) for sub, c in getattr(command, "commands", {}).items()}
        return [command.name, command.help, params, subs]

    assert shape(alone[name]) == shape(whole)


def _views_repo(repo: Path) -> None:
    from agentflow.events import RunStarted
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))


HEAVY = ("pydantic", "typer._adapters", "anthropic", "git")  # git: GitPython
OTHER_COMMANDS = tuple(f"agentflow.cli.{m}" for m in COMMAND_MODULES)


@pytest.mark.parametrize(
    ("args", "module"),
    [
        (["log", "--run", "r-1"], "records"),
        (["log"], "records"),
        (["status"], "project"),
        (["status", "--json"], "project"),
        (["show", "r-1"], "metrics"),
        (["show", "r-1", "--format", "html", "-o", "out.html"], "metrics"),
    ],
)
def test_a_view_imports_no_pydantic_and_no_other_command(repo: Path, args: list[str], module: str) -> None:
    _views_repo(repo)
    exit_code, loaded = command_in_fresh_process(repo, args, HEAVY + OTHER_COMMANDS)
    assert exit_code == 0
    assert loaded == [f"agentflow.cli.{module}"]


def test_version_builds_no_command(repo: Path) -> None:
    exit_code, loaded = command_in_fresh_process(repo, ["--version"], HEAVY + OTHER_COMMANDS)
    assert (exit_code, loaded) == (0, [])


def _config_and_commit(repo: Path) -> None:
    from agentflow.project import CONFIG_TEMPLATE
    from tests.helpers import git

    (repo / "agentflow.yaml").write_text(CONFIG_TEMPLATE)
    git(repo, "add", "agentflow.yaml")
    git(repo, "commit", "-q", "-m", "config")


@pytest.mark.parametrize(
    ("args", "exit_code"), [(["gate", "HEAD"], 1), (["hooks", "run", "pre-commit"], 0), (["log", "--run", "r-1"], 0)]
)
def test_gate_and_hooks_read_a_plain_config_without_pydantic(repo: Path, args: list[str], exit_code: int) -> None:
    _config_and_commit(repo)
    _views_repo(repo)
    got, loaded = command_in_fresh_process(repo, args, ("pydantic", "agentflow.config", "agentflow.plans"))
    assert (got, loaded) == (exit_code, [])


def test_a_config_the_models_must_read_still_fails_the_gate_closed(repo: Path) -> None:
    from tests.helpers import git

    (repo / "agentflow.yaml").write_text("gate:\n  require_signatur: true\n")
    git(repo, "add", "agentflow.yaml")
    git(repo, "commit", "-q", "-m", "config")
    result = CliRunner().invoke(app, ["gate", "HEAD"])
    assert result.exit_code == 2
    assert "agentflow.yaml:2: gate.require_signatur: unknown key (did you mean `require_signature`?)" in result.output


@pytest.mark.parametrize(("words", "incomplete"), [("agentflow ", ""), ("agentflow pl", "pl"), ("agentflow plan ", "")])
def test_shell_completion_is_the_eager_apps(words: str, incomplete: str) -> None:
    env = {"_AGENTFLOW_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": words}
    env["_TYPER_COMPLETE_WORD_TO_COMPLETE"] = incomplete
    lazy = CliRunner().invoke(app, [], prog_name="agentflow", env=env)
    eager = CliRunner().invoke(_eager_app(), [], prog_name="agentflow", env=env)
    assert (lazy.exit_code, lazy.output) == (eager.exit_code, eager.output)
    assert lazy.exit_code == 0 and ('"plan"' in lazy.output or '"new"' in lazy.output)


UNUSED_BY_VIEWS = ("secrets", "random", "agentflow.runview")  # event ids come from os.urandom; Ledger.run(s)


@pytest.mark.parametrize(
    ("args", "unused"),
    [
        (["status"], ()),
        (["log", "--run", "r-102a"], ()),
        (["show", "r-102a"], ("agentflow.report.figures", "agentflow.report.verify", "agentflow.report.text")),
        (["metrics", "--since", "2026-11-01", "--until", "2026-11-30"], ("agentflow.report.verify",)),
    ],
)
def test_a_view_imports_no_module_it_does_not_use(repo: Path, args: list[str], unused: tuple[str, ...]) -> None:
    from tests.metrics_helpers import build_history

    build_history(repo)  # runs with sessions, checks, verdicts and merges: every part of each view is shown
    exit_code, loaded = command_in_fresh_process(repo, args, UNUSED_BY_VIEWS + unused)
    assert (exit_code, loaded) == (0, [])


_PROGRAM_GC = (
    "import functools, gc, json, runpy, sys\n"
    "sys.argv = ['agentflow', *sys.argv[1:]]\n"
    "seen = []\n"
    "import agentflow.cli.records as records\n"
    "log = records.log\n"
    "@functools.wraps(log)\n"
    "def spy(*args, **kwargs):\n"
    "    seen.append(gc.isenabled())\n"
    "    return log(*args, **kwargs)\n"
    "records.log = spy\n"
    "try:\n"
    "    runpy.run_module('agentflow', run_name='__main__')\n"
    "except SystemExit as exc:\n"
    "    print(json.dumps([exc.code, seen, gc.isenabled(), gc.get_freeze_count()]), file=sys.stderr)\n"
)


def _python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, env=env)


@pytest.mark.parametrize(
    ("args", "exit_code", "during"),
    [(["-C", ".", "log"], 0, [True]), (["--version"], 0, []), (["stauts"], 2, [])],  # -C: typer's, not fastcli's
)
def test_the_program_freezes_what_start_up_made_and_runs_the_command_with_the_collector_on(
    repo: Path, args: list[str], exit_code: int, during: list[bool]
) -> None:
    out = _python(_PROGRAM_GC, *args, cwd=repo)
    code, seen, enabled, frozen = json.loads(out.stderr.strip().splitlines()[-1])
    assert (code or 0, seen, enabled) == (exit_code, during, True), out.stderr
    assert frozen > 10_000  # the modules' and the command line's objects: no collection walks them again


def test_a_process_that_imports_the_cli_keeps_its_collector_as_it_was() -> None:
    code = (
        "import gc\nfrom typer.testing import CliRunner\nimport agentflow.cli\n"
        "r = CliRunner().invoke(agentflow.cli.app, ['--version'])\n"
        "r2 = CliRunner().invoke(agentflow.cli.app, ['log'])\n"
        "print(r.exit_code, gc.isenabled(), gc.get_freeze_count())\n"
    )
    out = _python(code)
    assert out.stdout.split() == ["0", "True", "0"], out.stderr
