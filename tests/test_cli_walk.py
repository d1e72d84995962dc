"""A demanding new user's walk through every command: what each bad input did, kept as tests.

Each test is one thing a user ran that printed too much, too little, a traceback or the wrong exit
code, or left something behind; the fix made the behaviour the README and DESIGN.md promise (one
line naming the file, the problem and the fix; the documented exit code; nothing half-created)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest

from agentflow.events import (
    Event,
    GitChecked,
    GitSnapshotTaken,
    RunResumed,
    RunStarted,
    SessionEnded,
    SessionStarted,
)
from agentflow.ledger import Ledger, ledger_path
from agentflow.report.lines import KEY_FIELDS
from tests.helpers import git, need_tool


def _kinds() -> list[str]:
    (union, _discriminator) = get_args(Event)
    return [get_args(cls.model_fields["kind"].annotation)[0] for cls in get_args(union)]


def test_every_event_kind_has_its_key_fields_in_the_log() -> None:
    """A kind without an entry printed every field, a dict as its repr: one line of `agentflow log`
    was the whole git snapshot (every ref, hook and file hash, thousands of characters)."""
    assert sorted(set(_kinds()) - set(KEY_FIELDS)) == []


def test_the_log_line_of_a_git_snapshot_is_short(repo: Path, cli) -> None:
    files = {f".git/hooks/hook-{n}.sample": "ab" * 32 for n in range(40)}
    snapshot = {"workdir": str(repo), "refs": {"refs/heads/main": "c" * 40}, "files": files, "paths": files}
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
        ledger.append(GitSnapshotTaken(run_id="r-1", role="builder", snapshot=snapshot))
        ledger.append(GitChecked(run_id="r-1", role="builder", changes=["refs/heads/main moved"]))
    result = cli("log", "--run", "r-1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1].endswith(" r-1 git_snapshot cycle=1 role=builder refs=1 files=40")
    assert lines[2].endswith(" r-1 git_checked cycle=1 role=builder changes='refs/heads/main moved'")
    assert all(len(line) < 200 for line in lines), lines


# -- a read-only .agentflow/ (real permissions: as root without the powers that ignore file modes) --


def _as_user(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    setpriv = need_tool("setpriv")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    drop = [setpriv, "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*drop, sys.executable, "-m", "agentflow", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@contextlib.contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    paths = [folder, *folder.rglob("*")]
    modes = {path: path.lstat().st_mode for path in paths}
    for path in reversed(paths):
        if not path.is_symlink():
            path.chmod(modes[path] & ~0o222)
    try:
        yield
    finally:
        for path in paths:
            if not path.is_symlink():
                path.chmod(modes[path])


def _merged_plan_worktree(repo: Path) -> Path:
    from agentflow.locks import plan_lock

    worktree = repo / ".agentflow" / "worktrees" / "1-farewell"
    git(repo, "worktree", "add", "-q", "-b", "agentflow/1-farewell", str(worktree))
    with plan_lock(repo, "agentflow/1-farewell"):  # the lock file a build leaves behind
        pass
    return worktree


def test_clean_dry_run_in_a_read_only_state_folder_says_what_it_would_do(repo: Path) -> None:
    """`clean --dry-run` was exit 3, "internal error: PermissionError" on the plan's lock file,
    which it opened for writing only to ask whether a build holds it."""
    _merged_plan_worktree(repo)
    with _read_only(repo / ".agentflow"):
        proc = _as_user("clean", "--dry-run", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "would remove worktree .agentflow/worktrees/1-farewell and branch agentflow/1-farewell (merged into main)"
    ]


def test_clean_that_cannot_remove_a_worktree_is_one_line_and_keeps_its_branch(repo: Path) -> None:
    """`clean` was exit 3 with a PermissionError; now exit 2 naming the worktree and the fix, the
    branch kept (its worktree is still there), and a second `clean` once writable finishes the job."""
    worktree = _merged_plan_worktree(repo)
    with _read_only(repo / ".agentflow"):
        proc = _as_user("clean", cwd=repo)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "agentflow: error: .agentflow/worktrees/1-farewell: cannot remove the worktree: Permission denied (make "
        ".agentflow/worktrees writable (chmod -R u+w), or run agentflow as its owner, then `agentflow clean` again)"
    ]
    assert "agentflow/1-farewell" in git(repo, "branch", "--list")
    again = _as_user("clean", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert not worktree.exists() and git(repo, "branch", "--list") == "* main"


@pytest.mark.parametrize("target", [".", "sub/..", ".plans", "outside"])
def test_a_report_written_to_a_folder_is_refused_and_writes_nothing(repo: Path, cli, target: str) -> None:
    """`agentflow metrics -o .` said "wrote ." and wrote a file named like the repository's folder
    inside it (`repo/repo`); a folder of the repository was "not a regular file: refused (... remove
    the link ...)", about a link there is none of."""
    (repo / ".plans").mkdir()
    if target == "outside":
        target = str(repo.parent)
    before = sorted(p.name for p in repo.iterdir())
    outside = sorted(p.name for p in repo.parent.iterdir())
    for args in (["metrics", "-o", target], ["metrics", "--format", "json", "--output", target]):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == [
            f"agentflow: error: {target}: is a folder, not a file (name a file, e.g. {Path(target) / 'report.md'})"
        ]
        assert result.stdout == ""
    assert sorted(p.name for p in repo.iterdir()) == before
    assert sorted(p.name for p in repo.parent.iterdir()) == outside


def test_demo_into_a_file_is_a_usage_error(tmp_path: Path, cli) -> None:
    """`agentflow demo --dir FILE` was "internal error: NotADirectoryError", exit 3."""
    (tmp_path / "notes.txt").write_text("mine\n")
    result = cli("demo", "--dir", str(tmp_path / "notes.txt"))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"agentflow: error: {tmp_path / 'notes.txt'}: is not a directory (name a new or empty directory)"
    ]
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("made", [True, False], ids=["new", "empty"])
def test_demo_where_it_cannot_write_is_a_usage_error_and_leaves_nothing(tmp_path: Path, made: bool) -> None:
    """`agentflow demo --dir ro/x` under a read-only folder was "internal error: PermissionError", exit 3."""
    parent = tmp_path / "ro"
    parent.mkdir()
    target = parent / "capsulary"
    if not made:
        target.mkdir()
    with _read_only(parent):
        proc = _as_user("demo", "--dir", str(target), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"agentflow: error: {target}: cannot create the sample project: ")
    assert "Permission denied" in proc.stderr and proc.stderr.endswith(
        "(name a new or empty directory in a folder you can write to)\n"
    )
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
    assert [p.name for p in parent.iterdir()] == ([] if made else ["capsulary"])
    assert made or list(target.iterdir()) == []


def test_approve_of_an_unknown_revision_makes_no_ledger(repo: Path, cli) -> None:
    """`agentflow approve --override --reason x nosuch` said "unknown revision" after creating
    .agentflow/ledger.db (in a repository without `agentflow init`, an untracked folder)."""
    result = cli("approve", "--override", "--reason", "hotfix", "nosuch")
    assert result.exit_code == 2, result.output
    assert "unknown revision 'nosuch'" in result.stderr
    assert not (repo / ".agentflow").exists()


def test_approve_with_a_read_only_ledger_writes_no_note(repo: Path) -> None:
    """The override's note was written (the gate open) before the ledger refused to record it: the
    command said error, exit 2, and the approval was in effect, unrecorded."""
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
    path = ledger_path(repo)
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    path.chmod(0o444)  # the file alone: it opens and reads, and refuses the first write
    try:
        proc = _as_user("approve", "--override", "--reason", "hotfix", cwd=repo)
    finally:
        path.chmod(0o644)
    assert proc.returncode == 2, proc.stderr
    assert "the ledger is read-only" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert git(repo, "notes", "--ref", "agentflow", "list") == ""
    gate = _as_user("gate", cwd=repo)
    assert gate.returncode == 1, gate.stdout


@contextlib.contextmanager
def _read_only_ledger(repo: Path) -> Iterator[None]:
    path = ledger_path(repo)
    if not path.exists():
        with Ledger.open(repo) as ledger:
            ledger.append(RunStarted(run_id="r-1", plan_id="1"))
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    path.chmod(0o444)  # the file alone: it opens and reads, and refuses the first write
    try:
        yield
    finally:
        path.chmod(0o644)


def test_merge_with_a_read_only_ledger_merges_nothing(repo: Path, cli) -> None:
    """`agentflow merge` merged, then failed to record the merge: exit 2 with main already moved."""
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "f.txt").write_text("f\n")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-q", "-m", "f")
    git(repo, "checkout", "-q", "main")
    assert cli("approve", "--override", "--reason", "reviewed", "feature").exit_code == 0
    main = git(repo, "rev-parse", "main")
    with _read_only_ledger(repo):
        proc = _as_user("merge", "feature", cwd=repo)
    assert proc.returncode == 2, proc.stderr
    assert "the ledger is read-only" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert git(repo, "rev-parse", "main") == main
    assert cli("merge", "feature").exit_code == 0  # once writable, the merge and its record
    assert "merged branch=feature into=main" in cli("log").stdout


def test_evaluate_with_a_read_only_ledger_writes_no_file(repo: Path) -> None:
    """`agentflow evaluate --save-baseline/--plan-out` wrote its files, then failed to record the
    findings: exit 2 with the files there."""
    (repo / "events.jsonl").write_text('{"type": "A", "tenant_id": "t"}\n' * 3)
    with _read_only_ledger(repo):
        proc = _as_user("evaluate", "events.jsonl", "--save-baseline", "baseline.json", cwd=repo)
    assert proc.returncode == 2, proc.stderr
    assert "the ledger is read-only" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert not (repo / "baseline.json").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "limits:\n  max_cycles: 0\n",
            "agentflow.yaml:2: limits.max_cycles: Input should be greater than or equal to 1 (the default is `3`)",
        ),
        ("base: [main]\n", "agentflow.yaml:1: base: Input should be a valid string (the default is `main`)"),
        (
            "gate: {require_signature: maybe}\n",
            "agentflow.yaml:1: gate.require_signature: Input should be a valid boolean, unable to interpret input "
            "(the default is `false`)",
        ),
        (
            "models:\n  evaluator: {model: 3}\n",
            "agentflow.yaml:2: models.evaluator.model: Input should be a valid string (the default is `claude-haiku-5-5`)",
        ),
        (
            "limits: 3\n",
            "agentflow.yaml:1: limits: a section: its keys go below it, e.g. `limits: {max_cycles: ...}` "
            "(see `agentflow init`)",
        ),
        (
            "checks: pytest -q\n",
            "agentflow.yaml:1: checks: Input should be a valid list (write a list, e.g. `[first, second]`)",
        ),
        (  # a hint of its own already: no default added
            "sandbox: {mode: bwarp}\n",
            "agentflow.yaml:1: sandbox.mode: Input should be 'auto', 'bwrap' or 'off' (did you mean `bwrap`?)",
        ),
    ],
    ids=["bound", "type", "boolean", "role-model", "section", "list", "did-you-mean"],
)
def test_a_bad_config_value_says_what_to_write(repo: Path, cli, text: str, expected: str) -> None:
    """A bad value was pydantic's words alone ("limits: Input should be a valid dictionary or instance
    of Limits", "max_cycles: Input should be greater than or equal to 1"): a problem without a fix."""
    (repo / "agentflow.yaml").write_text(text)
    result = cli("status")
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [f"agentflow: error: {expected}"]


def test_hooks_uninstall_says_what_it_removed(repo: Path, cli) -> None:
    """A second `agentflow hooks uninstall` said "removed" for hooks that were not there."""
    assert cli("hooks", "install").exit_code == 0
    first = cli("hooks", "uninstall")
    assert first.stdout.splitlines() == ["pre-merge-commit: removed", "pre-commit: removed", "pre-push: removed"]
    second = cli("hooks", "uninstall")
    assert second.exit_code == 0
    assert second.stdout.splitlines() == [
        "pre-merge-commit: not installed",
        "pre-commit: not installed",
        "pre-push: not installed",
    ]


def test_one_criterion_and_one_turn_are_singular(repo: Path, cli) -> None:
    """`plan check` said "(1 acceptance criteria)", `show` "1 turns", `status` "1 plan file(s) are invalid"."""
    assert cli("plan", "new", "One thing").exit_code == 0
    assert "(1 acceptance criterion)" in cli("plan", "check").stdout
    (repo / ".plans" / "9-x.md").write_text("---\nid: 9\n")
    for args in (["status"], ["plan", "list"]):
        assert "agentflow: error: 1 plan file is invalid (" in cli(*args).stderr
    (repo / ".plans" / "9-x.md").unlink()
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
        ledger.append(SessionStarted(run_id="r-1", session_id="s-1", role="verifier", backend="scripted", model="m"))
        ledger.append(SessionEnded(run_id="r-1", session_id="s-1", role="verifier", status="completed", turns=1))
    shown = cli("show", "r-1").stdout
    assert "verifier  completed, 1 turn, $0.00" in shown
    assert "completed   1 turn   $0.00" in shown and "1 turns" not in shown


@pytest.mark.parametrize("mode", ["build", "verify"])
def test_show_of_an_interrupted_run_says_so_and_how_to_go_on(repo: Path, cli, mode: str) -> None:
    """A run stopped with Ctrl-C was "Ended: still running (or killed ...)", "Outcome: in progress"."""
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1", mode=mode))
        ledger.append(RunStarted(run_id="r-2", plan_id="2", mode=mode))
        for run in ("r-1", "r-2"):
            ledger.append(SessionStarted(run_id=run, session_id=f"s-{run}", role="builder", backend="x", model="m"))
        ledger.append(SessionEnded(run_id="r-1", session_id="s-r-1", role="builder", status="interrupted"))
    again = "`agentflow build --resume r-1`" if mode == "build" else "run `agentflow verify` again"
    shown = cli("show", "r-1").stdout.splitlines()
    assert f"  Ended:    interrupted during the builder session of cycle 1; continue with {again}" in shown
    assert "  Outcome:  interrupted" in shown
    running = cli("show", "r-2").stdout.splitlines()  # its session has not ended: running, or killed
    assert f"  Ended:    still running (or killed: {again.replace('r-1', 'r-2')})" in running
    assert "  Outcome:  in progress" in running


def test_log_and_export_take_a_run_prefix_as_show_does(repo: Path, cli) -> None:
    """`show r-20261203-b` worked, then `log --run r-20261203-b` was "no run" listing that very run."""
    with Ledger.open(repo) as ledger:
        for run in ("r-20261203-be4838", "r-20261203-e411b6"):
            ledger.append(RunStarted(run_id=run, plan_id="1"))
    assert cli("show", "r-20261203-b").exit_code == 0
    log = cli("log", "--run", "r-20261203-b")
    assert log.exit_code == 0, log.output
    assert log.stdout.split()[1:3] == ["r-20261203-be4838", "run_started"]
    assert '"run_id":"r-20261203-be4838"' in cli("log", "--run", "r-20261203-b", "--json").stdout
    assert '"run_id":"r-20261203-be4838"' in cli("ledger", "export", "--run", "r-20261203-b").stdout
    for args in (["log", "--run", "r-2026"], ["ledger", "export", "--run", "r-2026"]):
        result = cli(*args)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            "agentflow: error: run 'r-2026' is ambiguous: r-20261203-be4838, r-20261203-e411b6 (give more of the run id)"
        ]


def _built_commands() -> list[tuple[str, object]]:
    from agentflow.cli import COMMANDS, module_commands

    found: list[tuple[str, object]] = []

    def walk(name: str, command: object) -> None:
        found.append((name, command))
        for sub_name, sub in (getattr(command, "commands", None) or {}).items():
            walk(f"{name} {sub_name}", sub)

    for name, module in COMMANDS.items():
        walk(name, module_commands(module, only=name)[name])
    return found


BUILT = dict(_built_commands())


@pytest.mark.parametrize("name", list(BUILT))
def test_help_paragraphs_are_reflowed_to_the_terminal(name: str) -> None:
    """typer keeps a docstring's line breaks: at 80 columns (a pipe, a CI log) each ~100-character
    source line of `agentflow merge --help` printed as a full line and a stub of two words."""
    for paragraph in (BUILT[name].help or "").split("\n\n"):
        if not any(line[:1].isspace() for line in paragraph.splitlines()) and not paragraph.startswith("\b"):
            assert "\n" not in paragraph, (name, paragraph)


def test_help_at_80_columns_has_no_stub_lines(cli) -> None:
    result = cli("clean", "--help", env={"COLUMNS": "80"})
    text = [line.strip() for line in result.stdout.splitlines()]
    start = text.index("Remove plan worktrees and branches nobody will build or merge again.")
    prose = text[start + 2 : text.index("Examples:")]
    assert prose[0].startswith("Removed: checkouts left by killed runs, plan branches merged into the base and")
    assert all(len(line) > 60 for line in prose[:-2] if line), prose


def test_a_bad_until_suggests_what_until_takes(repo: Path, cli) -> None:
    """`metrics --until 2h` was refused with "use e.g. --until 7d, 2w, 24h": durations it refuses."""
    result = cli("metrics", "--since", "1h", "--until", "2h")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "agentflow: error: --until '2h' is not an ISO date (use e.g. --until 2026-11-30 or --until 2026-11-30T12:00)"
    ]
    assert "neither a duration" in cli("metrics", "--since", "yesterday").stderr  # --since takes both


def test_an_empty_plan_list_says_why_on_stderr(repo: Path, cli) -> None:
    """`agentflow plan list` printed nothing at all with no plans, or none matching its filters."""
    result = cli("plan", "list")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == 'no plans yet under .plans/: agentflow plan new "Title"\n'
    assert cli("plan", "new", "One thing").exit_code == 0
    ready = cli("plan", "list", "--status", "ready", "--unbuilt")
    assert (ready.exit_code, ready.stdout, ready.stderr) == (0, "", "no plan matches --status ready --unbuilt\n")
    assert cli("plan", "list", "--json", "--status", "ready").stdout == "[]\n"  # the matrix: nothing else said
    assert cli("plan", "list", "--json", "--status", "ready").stderr == ""


def test_status_of_a_plan_whose_run_was_interrupted_says_so(repo: Path, cli) -> None:
    """After Ctrl-C, `agentflow status` said "in progress" for a run nothing was running."""
    import json

    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
        ledger.append(SessionStarted(run_id="r-1", session_id="s-1", role="builder", backend="x", model="m"))
        ledger.append(SessionEnded(run_id="r-1", session_id="s-1", role="builder", status="interrupted"))
        ledger.append(RunStarted(run_id="r-2", plan_id="2"))  # running (or killed: nothing says which)
        ledger.append(SessionStarted(run_id="r-2", session_id="s-2", role="builder", backend="x", model="m"))
    rows = {row["id"]: row for row in json.loads(cli("status", "--json").stdout)}
    assert (rows["1"]["state"], rows["1"]["last_outcome"]) == ("interrupted", None)
    assert rows["2"]["state"] == "in progress"
    assert "interrupted" in cli("status").stdout.splitlines()[1]
    with Ledger.open(repo) as ledger:
        ledger.append(RunResumed(run_id="r-1"))  # `build --resume r-1` at work again
    assert json.loads(cli("status", "--json").stdout)[0]["state"] == "in progress"


def test_a_refused_import_leaves_no_ledger_behind(repo: Path, cli, tmp_path: Path) -> None:
    """`agentflow ledger import` of a broken file in a repository without a ledger said "refused"
    and left an empty .agentflow/ledger.db (an untracked folder where `agentflow init` never ran)."""
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\n')
    result = cli("ledger", "import", str(tmp_path / "bad.jsonl"))
    assert result.exit_code == 2
    assert "an exported event needs the string fields" in result.stderr
    assert not (repo / ".agentflow").exists()
    with Ledger.open(repo) as ledger:  # an existing ledger stays, as it was
        ledger.append(RunStarted(run_id="r-1", plan_id="1"))
    assert cli("ledger", "import", str(tmp_path / "bad.jsonl")).exit_code == 2
    assert cli("log", "--run", "r-1").exit_code == 0


def test_an_override_refused_for_its_signature_leaves_no_ledger(repo: Path, cli) -> None:
    """With gate.require_signature and no key, `approve --override` refused after making the ledger."""
    (repo / "agentflow.yaml").write_text("gate: {require_signature: true}\n")
    result = cli("approve", "--override", "--reason", "hotfix")
    assert result.exit_code == 2
    assert "gate.require_signature is true but AGENTFLOW_SIGNING_KEY is not set" in result.stderr
    assert not (repo / ".agentflow").exists()
    assert git(repo, "notes", "--ref", "agentflow", "list") == ""


@pytest.mark.parametrize("args", [["status"], ["log"], ["metrics"], ["plan", "list"], ["gate"]])
def test_a_deleted_current_directory_is_a_usage_error(tmp_path: Path, args: list[str]) -> None:
    """Run from a folder deleted meanwhile (a removed worktree, `rm -rf` in another shell): exit 3,
    "internal error: FileNotFoundError", on the fast path and typer's alike."""
    gone = tmp_path / "gone"
    gone.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = f"import os, runpy, sys; os.chdir({str(gone)!r}); os.rmdir({str(gone)!r}); runpy.run_module('agentflow', run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        "agentflow: error: the current directory no longer exists (it was deleted or moved) "
        "(cd into the repository again, or pass -C DIR)\n"
    )


@pytest.mark.parametrize("command", ["push", "fetch"])
def test_notes_sync_with_a_remote_that_is_not_there_names_the_cause(repo: Path, cli, tmp_path: Path, command) -> None:
    """The error quoted git's last line only: "... of the notes failed: and the repository exists."."""
    assert cli("approve", "--override", "--reason", "reviewed").exit_code == 0  # a note to push
    git(repo, "remote", "add", "origin", str(tmp_path / "nowhere.git"))
    result = cli("notes", command)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"agentflow: error: {repo}: `git {command} origin` of the notes failed: '{tmp_path / 'nowhere.git'}' does "
        "not appear to be a git repository"
    ]


def test_the_views_read_a_ledger_in_a_folder_the_user_cannot_write(repo: Path, cli) -> None:
    """A teammate's checkout, a read-only mount: `status`, `log`, `show`, `metrics` were exit 2 "the
    ledger is read-only": SQLite could not make the WAL's shared-memory file there, even to read.
    They read it now, print what they print on a writable one, and every write is still refused."""
    from tests.metrics_helpers import build_history

    build_history(repo).ledger.close()
    path = ledger_path(repo)
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    for leftover in (path.with_name("ledger.db-wal"), path.with_name("ledger.db-shm")):
        leftover.unlink(missing_ok=True)
    views = [
        ["status", "--json"],
        ["log", "--run", "r-103a"],
        ["show", "r-103a"],
        ["metrics", "--since", "2026-11-16", "--until", "2026-11-22", "-f", "json"],
    ]
    cli("status")  # the projection's tables made while writable, as any view makes them
    expected = [(cli(*args).exit_code, cli(*args).stdout) for args in views]
    before = path.read_bytes()
    with _read_only(repo / ".agentflow"):
        got = [_as_user(*args, cwd=repo) for args in views]
        refused = _as_user("approve", "--override", "--reason", "hotfix", cwd=repo)
    assert [(proc.returncode, proc.stdout) for proc in got] == expected, [proc.stderr for proc in got]
    assert all(code == 0 for code, _ in expected)
    assert refused.returncode == 2 and "the ledger is read-only" in refused.stderr
    assert path.read_bytes() == before


def test_the_gate_checks_a_ledger_in_a_folder_the_user_cannot_write(repo: Path, cli) -> None:
    """The gate closed on an approved commit: "the ledger ... cannot be read to check run ...:
    attempt to write a readonly database". It reads it now; an edited run still closes it."""
    from tests.build_helpers import builder_session, verifier_session, write_script

    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("def farewell():\n    return 'bye'\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "farewell")
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("verify", "--base", "HEAD~1", "--script", str(script)).exit_code == 0
    path = ledger_path(repo)
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    for leftover in (path.with_name("ledger.db-wal"), path.with_name("ledger.db-shm")):
        leftover.unlink(missing_ok=True)
    with _read_only(repo / ".agentflow"):
        gate = _as_user("gate", "HEAD", cwd=repo)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    db = sqlite3.connect(path)
    db.execute("UPDATE events SET body = replace(body, 'completed', 'COMPLETED') WHERE kind = 'session_ended'")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for leftover in (path.with_name("ledger.db-wal"), path.with_name("ledger.db-shm")):
        leftover.unlink(missing_ok=True)
    with _read_only(repo / ".agentflow"):
        closed = _as_user("gate", "HEAD", cwd=repo)
    assert closed.returncode == 1 and "chain" in closed.stdout, closed.stdout


def test_every_unknown_run_names_the_recent_runs(repo: Path, cli) -> None:
    """`log --run nope` named the recent runs; `show nope` and `ledger export --run nope` did not."""
    with Ledger.open(repo) as ledger:
        for run in ("r-20261203-be4838", "r-20261203-e411b6"):
            ledger.append(RunStarted(run_id=run, plan_id="1"))
    for args in (["show", "nope"], ["log", "--run", "nope"], ["ledger", "export", "--run", "nope"]):
        result = cli(*args)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            "agentflow: error: no run 'nope' in the ledger (recent runs: r-20261203-be4838, r-20261203-e411b6; "
            "list them with `agentflow log`)"
        ], args
