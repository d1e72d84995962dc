"""Interrupted and killed runs resume from their events without repeating finished sessions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentflow.errors import ExitCode
from agentflow.events import BuilderCommitted, ChecksRan, RunEnded, RunResumed, RunStarted, SessionStarted
from agentflow.ledger import Ledger
from agentflow.models.base import ModelRequest
from agentflow.models.scripted import FunctionModel
from agentflow.orchestration import BuildOptions, RunInterrupted, build
from tests.build_helpers import (
    builder_session,
    first_prompt,
    git,
    notes,
    run_events,
    sessions,
    trailers,
    verdict,
    verifier_session,
    write_plan,
    write_script,
)


def _turn(request: ModelRequest) -> int:
    return sum(1 for m in request.messages if m.role == "assistant")


def interrupting(role_turns: dict[str, list[dict[str, Any] | None]]) -> BuildOptions:
    """Models replaying ``role_turns``; a ``None`` turn raises KeyboardInterrupt (Ctrl-C mid-session)."""

    def factory(role: str, cycle: int) -> FunctionModel:
        def reply(request: ModelRequest) -> dict[str, Any]:
            turn = role_turns[role][_turn(request)]
            if turn is None:
                raise KeyboardInterrupt
            return turn

        return FunctionModel(reply, name=f"fn-{role}")

    return BuildOptions(models=factory)


def test_interrupted_mid_builder_then_resumed(repo, cli):
    write_plan(repo, checks=["test -f src/app.py"])
    first_turn = builder_session()[0]
    options = interrupting({"builder": [first_turn, None], "verifier": []})

    with pytest.raises(RunInterrupted) as caught:
        build(repo, ["1"], options)

    assert caught.value.exit_code == ExitCode.INTERRUPTED
    run_id = run_events(repo, RunStarted)[0].run_id
    assert f"agentflow build --resume {run_id}" in str(caught.value)
    assert "builder session" in str(caught.value)
    assert sessions(repo) == [("builder", 1, "interrupted")]
    assert run_events(repo, BuilderCommitted) == [] and run_events(repo, RunEnded) == []

    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    result = cli("build", "--resume", run_id, "--script", str(script))

    assert result.exit_code == 0, result.output
    assert sessions(repo) == [("builder", 1, "interrupted"), ("builder", 1, "completed"), ("verifier", 1, "completed")]
    assert len(run_events(repo, RunResumed)) == 1
    assert len(run_events(repo, BuilderCommitted)) == 1
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert trailers(repo, head)["Agentflow-Run"] == run_id
    assert notes(repo, head)[0]["outcome"] == "approved"


def test_interrupted_verifier_resumes_without_rerunning_builder_or_checks(repo, cli):
    write_plan(repo, checks=["test -f src/app.py"])
    options = interrupting({"builder": builder_session(), "verifier": [None]})
    with pytest.raises(RunInterrupted):
        build(repo, ["1"], options)
    run_id = run_events(repo, RunStarted)[0].run_id
    assert sessions(repo) == [("builder", 1, "completed"), ("verifier", 1, "interrupted")]

    # the resumed run has a script with NO builder session: running one would fail the run
    script = write_script(repo, {"builder": [], "verifier": [verifier_session()]})
    result = cli("build", "--resume", run_id, "--script", str(script))

    assert result.exit_code == 0, result.output
    assert sessions(repo) == [("builder", 1, "completed"), ("verifier", 1, "interrupted"), ("verifier", 1, "completed")]
    assert len(run_events(repo, BuilderCommitted)) == 1
    assert len(run_events(repo, ChecksRan)) == 1
    assert run_events(repo, RunEnded)[0].outcome == "approved"


def test_resume_in_the_second_cycle_keeps_the_rework_context(repo, cli):
    write_plan(repo)
    rework = {
        "decision": "request_changes",
        "findings": [{"id": "F7", "severity": "high", "message": "MARKER-F7 missing test"}],
    }
    cycle_one = interrupting(
        {
            "builder": builder_session(),
            "verifier": [{"tool_calls": [{"name": "submit_verdict", "input": verdict(**rework)}]}],
        }
    ).models
    interrupted = interrupting({"builder": [None], "verifier": []}).models
    assert cycle_one is not None and interrupted is not None
    calls: list[tuple[str, int]] = []

    def factory(role: str, cycle: int) -> FunctionModel:
        calls.append((role, cycle))
        return (interrupted if cycle == 2 else cycle_one)(role, cycle)

    with pytest.raises(RunInterrupted):
        build(repo, ["1"], BuildOptions(models=factory, max_cycles=3))
    assert calls == [("builder", 1), ("verifier", 1), ("builder", 2)]
    run_id = run_events(repo, RunStarted)[0].run_id

    script = write_script(
        repo, {"builder": [builder_session(path="src/test_app.py", content="ok\n")], "verifier": [verifier_session()]}
    )
    result = cli("build", "--resume", run_id, "--script", str(script))
    assert result.exit_code == 0, result.output
    assert sessions(repo) == [
        ("builder", 1, "completed"),
        ("verifier", 1, "completed"),
        ("builder", 2, "interrupted"),
        ("builder", 2, "completed"),
        ("verifier", 2, "completed"),
    ]
    assert "MARKER-F7" in first_prompt(repo, "builder", 2)


def test_resume_refuses_finished_and_unknown_runs(repo, cli):
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    run_id = run_events(repo, RunStarted)[0].run_id
    finished = cli("build", "--resume", run_id, "--script", str(script))
    assert finished.exit_code == 2 and "already ended (approved)" in finished.output
    assert cli("build", "--resume", "r-nope", "--script", str(script)).exit_code == 2
    assert cli("build", "1", "--resume", run_id).exit_code == 2


def start_slow_build(repo: Path, **popen: Any) -> subprocess.Popen:
    """`agentflow build 1` in a child process, returned once its builder made its first model call
    (and is inside a 5 s command); the child is killed if it never gets there."""
    write_plan(repo)
    slow = write_script(
        repo,
        {
            "builder": [
                [
                    {"tool_calls": [{"name": "run_command", "input": {"command": "sleep 5"}}]},
                    {"tool_calls": [{"name": "finish", "input": {"summary": "x"}}]},
                ]
            ],
            "verifier": [verifier_session()],
        },
        name="slow.yaml",
    )
    proc = subprocess.Popen([sys.executable, "-m", "agentflow", "build", "1", "--script", str(slow)], cwd=repo, **popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (repo / ".agentflow/ledger.db").exists():
            with Ledger.open(repo) as ledger:
                if ledger.events(kinds=["model_called"]):
                    return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    pytest.fail("the build never reached its first model call")


def test_killed_process_is_resumed_to_completion(repo, cli):
    """A real kill -9 mid-builder: the session never ended; resume re-runs only that session."""
    proc = start_slow_build(repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run_id = run_events(repo, RunStarted)[0].run_id
    assert sessions(repo) == []  # the builder session never ended: it was killed
    assert len(run_events(repo, SessionStarted)) == 1

    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    result = cli("build", "--resume", run_id, "--script", str(script))

    assert result.exit_code == 0, result.output
    assert [(e.role, e.cycle) for e in run_events(repo, SessionStarted)] == [
        ("builder", 1),
        ("builder", 1),
        ("verifier", 1),
    ]
    assert sessions(repo) == [("builder", 1, "completed"), ("verifier", 1, "completed")]
    assert run_events(repo, RunEnded)[0].outcome == "approved"


def test_ctrl_c_during_parallel_builds_stops_every_run_resumably(repo, cli, monkeypatch):
    """Ctrl-C lands in the main thread; each worker stops at its next turn and can be resumed."""
    import threading

    from agentflow.config import load_config
    from agentflow.orchestration import NullReporter, build_runs, load_build_plans

    write_plan(repo, "1", "Add farewell", "farewell")
    write_plan(repo, "2", "Add greeting", "greeting")
    cancel = threading.Event()
    both_started = threading.Barrier(3, timeout=20)
    real_wait = build_runs.wait

    def ctrl_c_once(futures):
        if not cancel.is_set():
            both_started.wait()
            raise KeyboardInterrupt
        return real_wait(futures)

    def factory(role: str, cycle: int) -> FunctionModel:
        def reply(request: ModelRequest) -> dict[str, Any]:
            if _turn(request) == 0:
                both_started.wait()
                cancel.wait(20)  # the main thread has handled Ctrl-C
            return builder_session()[_turn(request)]

        return FunctionModel(reply)

    monkeypatch.setattr(build_runs, "wait", ctrl_c_once)
    plans = load_build_plans(repo, ["1", "2"])
    with pytest.raises(RunInterrupted) as caught:
        build_runs._build_parallel(
            repo, plans, BuildOptions(models=factory, jobs=2), NullReporter(), load_config(repo), cancel
        )
    run_ids = [e.run_id for e in run_events(repo, RunStarted)]
    assert len(run_ids) == 2 and all(run_id in str(caught.value) for run_id in run_ids)
    assert sorted(sessions(repo)) == [("builder", 1, "interrupted")] * 2
    assert run_events(repo, RunEnded) == []

    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    for run_id in run_ids:
        result = cli("build", "--resume", run_id, "--script", str(script))
        assert result.exit_code == 0, result.output
    assert [e.outcome for e in run_events(repo, RunEnded)] == ["approved", "approved"]


def test_killed_between_commit_and_its_event_records_the_existing_commit(repo, cli, monkeypatch):
    from agentflow.orchestration.run import Run

    write_plan(repo)
    rework = verdict(decision="request_changes", findings=[{"id": "F1", "severity": "high", "message": "m"}])
    options = interrupting(
        {"builder": builder_session(), "verifier": [{"tool_calls": [{"name": "submit_verdict", "input": rework}]}]}
    )
    cycle_one = options.models
    assert cycle_one is not None
    cycle_two = interrupting(
        {"builder": builder_session(path="src/test_app.py", content="ok\n"), "verifier": []}
    ).models
    assert cycle_two is not None
    real_emit = Run.emit

    def emit(self, event):
        if isinstance(event, BuilderCommitted) and event.cycle == 2:
            raise KeyboardInterrupt  # the commit exists in git, its event was never written
        real_emit(self, event)

    monkeypatch.setattr(Run, "emit", emit)
    with pytest.raises(RunInterrupted):
        build(
            repo, ["1"], BuildOptions(models=lambda role, cycle: (cycle_two if cycle == 2 else cycle_one)(role, cycle))
        )
    monkeypatch.setattr(Run, "emit", real_emit)
    run_id = run_events(repo, RunStarted)[0].run_id
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert trailers(repo, head)["Agentflow-Cycle"] == "2"

    script = write_script(repo, {"builder": [], "verifier": [verifier_session()]})
    result = cli("build", "--resume", run_id, "--script", str(script))
    assert result.exit_code == 0, result.output
    committed = run_events(repo, BuilderCommitted)
    assert [(c.cycle, c.commit) for c in committed][-1] == (2, head)
    assert committed[-1].files_changed == 1


def test_verdict_of_a_finished_verifier_is_recovered_on_resume(repo, cli, monkeypatch):
    """Killed after the verifier submitted but before the verdict was recorded: no new session."""
    from agentflow.orchestration.run import Run

    write_plan(repo)
    options = interrupting(
        {"builder": builder_session(), "verifier": [{"tool_calls": [{"name": "submit_verdict", "input": verdict()}]}]}
    )
    real_record = Run.record_verdict

    def killed(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "record_verdict", killed)
    with pytest.raises(RunInterrupted) as caught:
        build(repo, ["1"], options)
    assert "recording the verdict" not in str(caught.value)  # it died inside the verifier step
    monkeypatch.setattr(Run, "record_verdict", real_record)
    run_id = run_events(repo, RunStarted)[0].run_id
    assert sessions(repo) == [("builder", 1, "completed"), ("verifier", 1, "completed")]

    script = write_script(repo, {"builder": [], "verifier": []})  # any new session would fail
    result = cli("build", "--resume", run_id, "--script", str(script))
    assert result.exit_code == 0, result.output
    assert sessions(repo) == [("builder", 1, "completed"), ("verifier", 1, "completed")]
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert notes(repo, head)[0]["outcome"] == "approved"


def test_ctrl_c_on_the_command_line_exits_130_and_names_the_resume_command(repo, cli, ctrl_c):
    """A real SIGINT to `agentflow build`: the session is recorded as interrupted, exit 130."""
    proc = start_slow_build(repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    run_id = run_events(repo, RunStarted)[0].run_id
    assert proc.returncode == 130, stderr
    assert f"agentflow build --resume {run_id}" in stderr
    assert sessions(repo) == [("builder", 1, "interrupted")]
    # the printed command, exactly as printed, resumes with the run's recorded backend and script
    # (issue 17, item 4): no --script needed, the interrupted session is played again
    printed = stderr.split("`agentflow ", 1)[1].split("`", 1)[0].split()
    result = cli(*printed)
    assert "builder session (scripted:slow.yaml)" in result.output
    assert sessions(repo) == [("builder", 1, "interrupted"), ("builder", 1, "completed")]
    assert run_events(repo, RunEnded)[0].reason == "the builder changed nothing"  # slow.yaml writes no file


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the printed one
def test_ctrl_c_that_python_ignores_in_a_finalizer_still_stops_the_build(repo, cli, monkeypatch, ctrl_c):
    """A SIGINT whose KeyboardInterrupt is raised inside a ``__del__`` (Python only prints it: the
    once-flaky Ctrl-C test) still stops the build at its next step, resumably: exit 130."""
    from agentflow.orchestration.run import Run

    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    swallowed: list[str] = []

    class Finalizer:
        def __del__(self) -> None:
            try:
                os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, inside __del__
                time.sleep(5)
            except KeyboardInterrupt:
                swallowed.append("KeyboardInterrupt")
                raise  # leaves __del__: Python prints it and carries on

    real_guard = Run.guard

    def guard(self, before, role, cycle, raising=True):
        real_guard(self, before, role, cycle, raising)
        if role == "builder":
            Finalizer()  # collected at once: its __del__ gets the Ctrl-C

    monkeypatch.setattr(Run, "guard", guard)
    result = cli("build", "1", "--script", str(script))
    assert swallowed == ["KeyboardInterrupt"]
    assert result.exit_code == ExitCode.INTERRUPTED, result.output
    run_id = run_events(repo, RunStarted)[0].run_id
    assert f"agentflow build --resume {run_id}" in result.output
    assert run_events(repo, RunEnded) == [] and sessions(repo) == [("builder", 1, "completed")]
    monkeypatch.setattr(Run, "guard", real_guard)
    assert cli("build", "--resume", run_id, "--script", str(script)).exit_code == 0
    assert run_events(repo, RunEnded)[0].outcome == "approved"


def test_resume_from_a_subdirectory(repo, cli, monkeypatch):
    write_plan(repo)
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    options = interrupting({"builder": [None], "verifier": []})
    with pytest.raises(RunInterrupted):
        build(repo, ["../.plans/1-farewell.md"], options)
    [started] = run_events(repo, RunStarted)
    assert started.plan_path == ".plans/1-farewell.md"
    monkeypatch.chdir(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    assert cli("build", "--resume", started.run_id, "--script", str(script)).exit_code == 0


def test_resume_after_a_kill_ignores_other_runs_branches_made_meanwhile(repo, cli):
    """Killed mid-builder, then another plan built to the end, then resumed: the other run's branch
    and worktree, made after the killed session's snapshot, are that run's, not tampering (resume
    used to call them tampering, end the run no_verdict and delete that branch)."""
    write_plan(repo, "2", "Add greeting", "greeting")
    proc = start_slow_build(repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    run_id = run_events(repo, RunStarted)[0].run_id

    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    other = cli("build", "2", "--script", str(script))
    assert other.exit_code == 0, other.output
    second = git(repo, "rev-parse", "agentflow/2-greeting")

    result = cli("build", "--resume", run_id, "--script", str(script))
    assert result.exit_code == 0, result.output
    assert "tampering" not in result.output
    assert git(repo, "rev-parse", "agentflow/2-greeting") == second
