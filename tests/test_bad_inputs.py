"""Bad input is exit 2 with one line naming the file, the problem and the fix, and loses nothing
(issue 17 item 13): the cases found by feeding each command what a user gets wrong, beyond the
ones tests/test_new_user_day.py reproduces from the issue."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.build_helpers import builder_session, verifier_session, write_plan, write_script
from tests.helpers import git, need_tool, one_line_exit_2

# -- files that are not UTF-8 text, or not files ----------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            lambda r: (r / "CLAUDE.md").write_bytes(b"# P\xe9tterns\n"),
            "CLAUDE.md: not UTF-8 text (save the file as UTF-8)",
        ),
        (lambda r: (r / "CLAUDE.md").mkdir(), "CLAUDE.md: is a directory, not a file"),
        (
            lambda r: (r / ".plans" / "2-latin.md").write_bytes(b"---\nid: 2\ntitle: caf\xe9\n---\n"),
            ".plans/2-latin.md: not UTF-8 text (save the file as UTF-8)",
        ),
        (
            lambda r: (r / ".plans" / "2-nul.md").write_bytes(b"---\nid: 2\ntitle: a\0b\n---\n"),
            ".plans/2-nul.md: malformed YAML in front matter: special characters are not allowed",
        ),
    ],
    ids=["patterns-latin1", "patterns-directory", "plan-latin1", "plan-nul-byte"],
)
def test_plan_check_names_an_unreadable_file(repo: Path, cli, setup, expected) -> None:
    write_plan(repo)
    setup(repo)
    result = cli("plan", "check")
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "codec can't decode" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("script.yaml", "builder: [\n", "script.yaml:2: invalid YAML: expected the node content"),
        ("script.json", '{\n  "builder": [,]\n}\n', "script.json:2: invalid JSON: Expecting value"),
    ],
)
def test_a_script_with_a_syntax_error_is_one_line_with_its_line(repo: Path, cli, name, text, expected) -> None:
    write_plan(repo)
    script = repo.parent / name
    script.write_text(text)
    one_line_exit_2(cli("build", "1", "--script", str(script)), expected, "(fix the ")
    assert git(repo, "branch", "--list") == "* main"  # nothing created


def test_a_since_beyond_the_calendar_is_a_usage_error(repo: Path, cli) -> None:
    one_line_exit_2(cli("metrics", "--since", "99999999999d"), "reaches back before the year 1")


# -- ledger rows agentflow cannot read --------------------------------------------------------------


def _ledger_with_one_run(repo: Path) -> Path:
    from agentflow.events import RunStarted, SessionStarted
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
        ledger.append(SessionStarted(run_id="r-1", session_id="s-1", role="builder", backend="scripted", model="m"))
    return repo / ".agentflow" / "ledger.db"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{broken", "the ledger holds an event agentflow cannot read (its body is not a JSON object)"),
        (
            '{"kind": "session_started", "run_id": "r-1"}',
            "a 'session_started' event agentflow cannot read (session_id:",
        ),
    ],
    ids=["not-json", "missing-field"],
)
def test_a_damaged_ledger_row_names_what_is_wrong(repo: Path, cli, body: str, expected: str) -> None:
    path = _ledger_with_one_run(repo)
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET body = ? WHERE kind = 'session_started'", (body,))
    db.commit()
    db.close()
    before = path.read_bytes()
    one_line_exit_2(cli("log"), expected, "changed outside agentflow")
    assert "validation error for tagged-union" not in cli("log").stderr
    assert path.read_bytes() == before


# -- a ledger the user cannot write: real permissions, not a simulation ----------------------------


def _without_root_powers(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m agentflow ARGS`` as root without the capabilities that let root ignore file
    modes (the test suite runs as root, where chmod 444 alone stops nothing)."""
    setpriv = need_tool("setpriv")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    drop = ["--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"]
    command = [setpriv, *drop] if os.geteuid() == 0 else []
    return subprocess.run(
        [*command, sys.executable, "-m", "agentflow", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_ledger_that_cannot_be_written_stops_a_build_before_anything_is_created(repo: Path, what: str) -> None:
    path = _ledger_with_one_run(repo)
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    before = path.read_bytes()
    target = path if what == "file" else path.parent
    mode = target.stat().st_mode
    target.chmod(0o444 if what == "file" else 0o555)
    try:
        for args in (("build", "1", "--script", str(script)), ("verify", "--base", "HEAD~1", "--script", str(script))):
            proc = _without_root_powers(*args, cwd=repo)
            assert proc.returncode == 2, proc.stderr
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "(make " in lines[0] and "writable" in lines[0], proc.stderr
            assert "the ledger is read-only" in lines[0] or "cannot create the folder" in lines[0]
    finally:
        target.chmod(mode)
    assert path.read_bytes() == before  # the record is as it was
    assert git(repo, "branch", "--list") == "* main"  # no plan branch
    assert git(repo, "worktree", "list").count("\n") == 0  # no worktree left behind


# -- init writes all of its files or none ----------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "where"),
    [
        (lambda r: (r / "CLAUDE.md").mkdir(), "CLAUDE.md: is in the way: agentflow init writes CLAUDE.md"),
        (lambda r: (r / ".plans").write_text("x\n"), ".plans: is in the way: agentflow init writes .plans/1-"),
        (lambda r: (r / ".gitignore").mkdir(), ".gitignore: is in the way"),
    ],
    ids=["patterns-folder", "plans-file", "gitignore-folder"],
)
def test_init_with_something_in_the_way_creates_nothing(repo: Path, cli, setup, where: str) -> None:
    setup(repo)
    before = sorted(p.name for p in repo.iterdir())
    one_line_exit_2(cli("init", "--force"), where, "move it aside")
    assert sorted(p.name for p in repo.iterdir()) == before  # no agentflow.yaml, no half of it


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ('[{run: "pytest", junit: maybe}]', "agentflow.yaml:1: checks: checks[0].junit: must be true or false"),
        ("[{run: 1}]", "agentflow.yaml:1: checks: checks[0].run: the command must be a non-empty string"),
    ],
)
def test_a_malformed_check_object_is_one_problem_not_a_union_of_two(
    repo: Path, cli, checks: str, expected: str
) -> None:
    (repo / "agentflow.yaml").write_text(f"checks: {checks}\n")
    one_line_exit_2(cli("status"), expected)


@pytest.mark.parametrize("value", ["2.5", "[1]", "{a: 1}"])
def test_a_plan_id_that_is_neither_number_nor_slug_is_said_once(repo: Path, cli, value: str) -> None:
    (repo / ".plans").mkdir()
    (repo / ".plans" / "2-x.md").write_text(f"---\nid: {value}\ntitle: x\n---\n\n## Acceptance criteria\n- works\n")
    one_line_exit_2(cli("plan", "check"), ".plans/2-x.md:2: id: ", "is not a number or slug")
