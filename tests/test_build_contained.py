"""Several plans in one build: one plan's crash is that plan's ``no_verdict``, never the others' loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentflow.errors import GitError
from agentflow.events import RunEnded, RunStarted
from agentflow.models.base import ModelRequest
from agentflow.models.scripted import FunctionModel
from agentflow.orchestration import BuildOptions, NullReporter, build, build_runs
from tests.build_helpers import builder_session, finding, run_events, verifier_session, write_plan, write_script


def crash_plan_2_on_commit(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    real_commit = build_runs.BuildDriver.commit

    def commit(self, n, builder):  # type: ignore[no-untyped-def]
        if self.plan.id == "2":
            raise error
        return real_commit(self, n, builder)

    monkeypatch.setattr(build_runs.BuildDriver, "commit", commit)


def two_plans(repo: Path) -> None:
    write_plan(repo, "1", "Add farewell", "farewell")
    write_plan(repo, "2", "Add greeting", "greeting")


@pytest.mark.parametrize("jobs", ["2", "1"])
def test_a_crashing_plan_is_no_verdict_and_the_others_still_report(repo, cli, monkeypatch, jobs):
    two_plans(repo)
    crash_plan_2_on_commit(monkeypatch, RuntimeError("disk on fire\nsecond line"))
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})

    result = cli("build", "1", "2", "-j", jobs, "--script", str(script))

    assert result.exit_code == 3, result.output  # the worst: no verdict for plan 2
    assert "plan 1 (Add farewell): APPROVED after 1 cycle(s)" in result.stdout
    assert "plan 2 (Add greeting): NO_VERDICT after 1 cycle(s)" in result.stdout
    assert "  why: internal error: RuntimeError: disk on fire\n" in result.stdout  # one line
    assert "second line" not in result.stdout
    assert "1 of 2 plan(s) approved" in result.stdout
    assert "plan 2: the build failed: internal error: RuntimeError: disk on fire" in result.stderr
    # the crashed run is ended in the ledger as what the summary says
    plan_of = {e.run_id: e.plan_id for e in run_events(repo, RunStarted)}
    ended = {plan_of[e.run_id]: e for e in run_events(repo, RunEnded)}
    assert ended["1"].outcome == "approved"
    assert (ended["2"].outcome, ended["2"].reason) == ("no_verdict", "internal error: RuntimeError: disk on fire")
    run_2 = next(run for run, plan in plan_of.items() if plan == "2")
    assert f"next: agentflow show {run_2}" in result.stdout


def test_not_approved_and_crashed_plans_exit_with_the_worst(repo, cli, monkeypatch):
    two_plans(repo)
    crash_plan_2_on_commit(monkeypatch, GitError("worktree is locked", fix="unlock it"))
    script = write_script(
        repo,
        {
            "builder": [builder_session()],
            "verifier": [verifier_session(decision="request_changes", findings=[finding()])],
        },
    )
    result = cli("build", "1", "2", "-j", "2", "--script", str(script), "--max-cycles", "1")
    assert result.exit_code == 3
    assert "plan 1 (Add farewell): CAPPED" in result.stdout
    assert "why: worktree is locked (unlock it)" in result.stdout  # an agentflow error keeps its own words


def test_a_crash_before_the_run_started_names_no_run(repo, monkeypatch):
    two_plans(repo)
    real_open = build_runs._open_run

    def open_run(root, config, plan, *args, **kwargs):  # type: ignore[no-untyped-def]
        if plan.id == "2":
            raise OSError(28, "No space left on device")
        return real_open(root, config, plan, *args, **kwargs)

    monkeypatch.setattr(build_runs, "_open_run", open_run)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    messages: list[str] = []

    class Collect(NullReporter):
        def on_message(self, message: str) -> None:
            messages.append(message)

    first, second = build(repo, ["1", "2"], BuildOptions(script=script, jobs=2), Collect())

    assert (first.outcome, first.exit_code) == ("approved", 0)
    assert (second.outcome, second.exit_code, second.run_id) == ("no_verdict", 3, "")
    assert second.reason == "internal error: OSError: [Errno 28] No space left on device"
    assert second.next_command == "fix the cause above, then `agentflow build .plans/2-greeting.md`"
    assert [e.plan_id for e in run_events(repo, RunStarted)] == ["1"]
    assert any("plan 2: the build failed" in m for m in messages)


def test_a_model_bug_in_one_parallel_plan_is_contained(repo):
    """A non-model exception inside a session (a bug) ends that session failed and is re-raised;
    with several plans it becomes that plan's no_verdict."""
    two_plans(repo)

    def factory(role: str, cycle: int) -> FunctionModel:
        def reply(request: ModelRequest) -> dict[str, Any]:
            text = str(request.messages[0].content)
            if "Add greeting" in text:
                raise KeyError("tool_use_id")
            turns = builder_session() if role == "builder" else verifier_session()
            return turns[sum(1 for m in request.messages if m.role == "assistant")]

        return FunctionModel(reply)

    results = build(repo, ["1", "2"], BuildOptions(models=factory, jobs=2))

    assert [r.outcome for r in results] == ["approved", "no_verdict"]
    assert results[1].reason == "internal error: KeyError: 'tool_use_id'"
    assert results[1].run_id and results[1].cycles == 1


def test_one_plan_still_raises(repo, cli, monkeypatch):
    """A single plan keeps the error's own exit code and message: nothing else to protect."""
    write_plan(repo, "2", "Add greeting", "greeting")
    crash_plan_2_on_commit(monkeypatch, GitError("worktree is locked", fix="unlock it"))
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    result = cli("build", "2", "--script", str(script))
    assert result.exit_code == 2 and "worktree is locked (unlock it)" in result.stderr
    # the run it interrupted is ended, not left "in progress" forever (issue 17, item 3)
    (ended,) = run_events(repo, RunEnded)
    assert (ended.outcome, ended.reason) == ("no_verdict", "worktree is locked (unlock it)")
    assert '"state": "no_verdict"' in cli("status", "--json").stdout
