"""A session's first request goes out before the run has made what only its tools need (the
builder's worktree, the verifier's checkout, the git snapshot): the model thinks meanwhile (#19
item 5). When making them fails, the run fails as it did, and the reply is never used."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agentflow.errors import GitError
from agentflow.events import GitSnapshotTaken, ModelCalled, RunEnded, RunStarted, SessionStarted
from agentflow.ledger import Ledger
from agentflow.models.base import ModelRequest, ModelResponse, ToolUseBlock
from agentflow.session import EarlyCall, RunBudget, SessionLimits, SessionSpec, first_request, run_session
from agentflow.session import send_first_call as send_first
from agentflow.tools import Toolbox
from tests.build_helpers import git, notes, run_events, verdict, write_plan
from tests.fakeapi import FakeAnthropic, fake_anthropic, message, tool_use

__all__ = ["fake_anthropic"]  # the fixture, imported for pytest


def _replies(fake: FakeAnthropic) -> None:
    fake.add(
        message(tool_use("write_file", {"path": "src/app.py", "content": "def farewell():\n    return 'bye'\n"})),
        message(tool_use("finish", {"summary": "done"})),
        message(tool_use("read_file", {"path": "src/app.py"})),
        message(tool_use("submit_verdict", verdict())),
    )


def _wait_for_requests(fake: FakeAnthropic, count: int) -> int:
    """Block (up to 20 s, a synchronisation, not a timing assertion) until ``count`` requests came."""
    deadline = time.monotonic() + 20
    while len(fake.requests) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(fake.requests)


def test_the_builders_first_request_is_on_its_way_while_the_worktree_is_made(
    repo, cli, fake_anthropic: FakeAnthropic, monkeypatch
):
    from agentflow.orchestration import build_runs

    write_plan(repo)
    _replies(fake_anthropic)
    seen: list[int] = []
    original = build_runs.prepare_worktree

    def prepare(*args: Any, **kwargs: Any) -> Path:
        seen.append(_wait_for_requests(fake_anthropic, 1))  # nothing of the worktree exists yet
        seen.append(int(Path(args[3]).exists()))
        return original(*args, **kwargs)

    monkeypatch.setattr(build_runs, "prepare_worktree", prepare)
    result = cli("build", "1", "--backend", "anthropic")

    assert result.exit_code == 0, result.output
    assert seen == [1, 0]  # the request came before the worktree was made
    assert len(fake_anthropic.requests) == 4  # and was not sent twice
    events = run_events(repo)
    kinds = [type(e) for e in events]
    # recorded in the same order as ever: the run, the snapshot, the session, then its first call
    assert kinds.index(RunStarted) < kinds.index(GitSnapshotTaken) < kinds.index(SessionStarted)
    assert kinds.index(SessionStarted) < kinds.index(ModelCalled)
    assert sum(k is ModelCalled for k in kinds) == 4
    assert run_events(repo, RunEnded)[0].outcome == "approved"


def test_a_worktree_that_cannot_be_made_after_the_first_request_fails_the_run_with_nothing_made(
    repo, cli, fake_anthropic: FakeAnthropic, monkeypatch
):
    from agentflow.orchestration import build_runs

    write_plan(repo)
    _replies(fake_anthropic)

    def refuse(*args: Any, **kwargs: Any) -> Path:
        _wait_for_requests(fake_anthropic, 1)
        raise GitError("cannot add the worktree", fix="look at git worktree list")

    monkeypatch.setattr(build_runs, "prepare_worktree", refuse)
    result = cli("build", "1", "--backend", "anthropic")

    assert result.exit_code == 2, result.output
    assert "cannot add the worktree" in result.output
    assert len(fake_anthropic.requests) == 1  # sent early, its reply dropped
    with Ledger.open(repo) as ledger:
        assert ledger.events(kinds=["run_started", "model_called", "session_started"]) == []
    assert git(repo, "branch", "--list", "agentflow/*") == ""
    assert not (repo / ".agentflow" / "worktrees" / "1-farewell").exists()


def test_a_verifier_checkout_that_cannot_be_made_after_its_first_request_ends_the_run_without_a_verdict(
    repo, cli, fake_anthropic: FakeAnthropic, monkeypatch
):
    from agentflow.orchestration import run as run_module

    write_plan(repo)
    _replies(fake_anthropic)
    original = run_module.add_detached_worktree

    def add(repo_: Any, commit: str, path: Path) -> Path:
        if path.name.startswith("verifier-"):
            _wait_for_requests(fake_anthropic, 3)
            raise GitError("cannot check out the verifier's tree")
        return original(repo_, commit, path)

    monkeypatch.setattr(run_module, "add_detached_worktree", add)
    result = cli("build", "1", "--backend", "anthropic")

    assert result.exit_code != 0, result.output
    assert len(fake_anthropic.requests) == 3  # the verifier's first went out; its reply is not used
    ended = run_events(repo, RunEnded)[0]
    assert ended.outcome == "no_verdict" and "cannot check out the verifier's tree" in (ended.reason or "")
    assert [e.role for e in run_events(repo, SessionStarted)] == ["builder"]
    assert len(run_events(repo, ModelCalled)) == 2  # the builder's two calls only
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert notes(repo, head) == []  # no verdict, no note
    assert not [p for p in (repo / ".agentflow" / "worktrees").iterdir() if p.name.startswith("verifier-")]


def test_the_checks_checkout_is_removed_once_the_verifiers_first_request_is_on_its_way(
    repo, cli, fake_anthropic: FakeAnthropic, monkeypatch
):
    """Its removal was the last step before the verifier's first request (#19 item 5): it now comes
    after that request and before the verifier's own checkout is made; nothing is left after the run."""
    from agentflow.orchestration import run as run_module

    write_plan(repo, checks=["true"])
    _replies(fake_anthropic)
    seen: list[tuple[str, int, bool]] = []
    original = run_module.add_detached_worktree
    checks = repo / ".agentflow" / "worktrees"

    def add(repo_: Any, commit: str, path: Path) -> Path:
        if path.name.startswith("verifier-"):
            left = any(p.name.startswith("checks-") for p in checks.iterdir())
            seen.append(("verifier", _wait_for_requests(fake_anthropic, 3), left))
        return original(repo_, commit, path)

    monkeypatch.setattr(run_module, "add_detached_worktree", add)
    discarded = run_module.Run.discard_checkout

    def discard(self: Any, label: str) -> None:
        if label.startswith("checks-") and self.checkout_path(label).exists():
            seen.append((label, _wait_for_requests(fake_anthropic, 3), True))  # before it: 2 after 20 s
        discarded(self, label)

    monkeypatch.setattr(run_module.Run, "discard_checkout", discard)
    result = cli("build", "1", "--backend", "anthropic")

    assert result.exit_code == 0, result.output
    assert seen == [("checks-c1", 3, True), ("verifier", 3, False)]  # after the request, before the checkout
    assert [p.name for p in checks.iterdir()] == ["1-farewell"]


def test_a_checks_checkout_is_removed_when_the_verify_step_fails_before_its_session(
    repo, cli, fake_anthropic: FakeAnthropic, monkeypatch
):
    from agentflow.orchestration import run as run_module

    write_plan(repo, checks=["true"])
    _replies(fake_anthropic)

    def context(*args: Any, **kwargs: Any) -> Any:
        raise GitError("cannot read the diff")

    monkeypatch.setattr(run_module.Run, "verifier_context", context)
    result = cli("build", "1", "--backend", "anthropic")

    assert result.exit_code != 0, result.output
    assert run_events(repo, RunEnded)[0].outcome == "no_verdict"
    assert [p.name for p in (repo / ".agentflow" / "worktrees").iterdir()] == ["1-farewell"]


class _Model:
    early_calls = True
    name = "m"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.prompts.append(request.messages[0].content[0].text)  # type: ignore[union-attr]
        return ModelResponse(
            content=[ToolUseBlock(id="t1", name="finish", input={"summary": "ok"})], stop_reason="tool_use"
        )


def _spec(root: Path, prompt: str, budget: float = 100.0) -> SessionSpec:
    return SessionSpec(
        role="builder",
        cycle=1,
        run_id="r-1",
        root=root,
        system="SYSTEM",
        prompt=prompt,
        limits=SessionLimits(),
        budget=RunBudget(limit_usd=budget),
        backend="anthropic",
        model_name="m",
    )


def test_a_session_takes_the_early_reply_only_for_its_own_first_request(repo: Path) -> None:
    model = _Model()
    same = send_first(_spec(repo, "PLAN"), model)  # type: ignore[arg-type]
    assert same is not None
    with Ledger.open(repo) as ledger:
        first = run_session(_spec(repo, "PLAN"), model, Toolbox(repo, "builder"), ledger, early=same)  # type: ignore[arg-type]
        assert model.prompts == ["PLAN"]  # the early one, not sent again
        other = EarlyCall(first_request(_spec(repo, "ANOTHER PLAN")), model)  # type: ignore[arg-type]
        second = run_session(_spec(repo, "PLAN"), model, Toolbox(repo, "builder"), ledger, early=other)  # type: ignore[arg-type]
        calls = ledger.events(kinds=["model_called"])
    other._thread.join()  # its call made (and dropped) by now
    assert first.status == second.status == "completed"
    assert sorted(model.prompts) == ["ANOTHER PLAN", "PLAN", "PLAN"]  # the other's reply dropped, PLAN asked
    assert len(calls) == 2 and other.dropped


def test_no_early_request_past_the_budget_and_the_session_reports_the_limit(repo: Path) -> None:
    from agentflow.models.anthropic import AnthropicModel

    model = AnthropicModel("claude-sonnet-5-5", api_key="sk-test", base_url="http://127.0.0.1:9")
    assert send_first(_spec(repo, "PLAN", budget=0.0), model) is None  # nothing sent: no server is asked
    assert send_first(_spec(repo, "PLAN"), None) is None
    with Ledger.open(repo) as ledger:
        result = run_session(_spec(repo, "PLAN", budget=0.0), model, Toolbox(repo, "builder"), ledger)
    assert result.status == "limits" and "run budget" in (result.reason or "")


def test_the_verify_steps_own_reads_are_made_while_the_builder_and_the_checks_run_and_not_again(repo, cli, monkeypatch):
    """The base note's counts are read while the builder's model thinks (before the commit step), the
    change's own findings while the checks run; each once."""
    from agentflow.orchestration import build_runs
    from agentflow.orchestration import run as run_module
    from tests.build_helpers import builder_session, verifier_session, write_script

    write_plan(repo, checks=["true"])
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    calls: list[str] = []
    for owner, name in (
        (build_runs.BuildDriver, "scope_findings"),
        (run_module.Run, "base_note_counts"),
        (run_module.Run, "patch_id"),
    ):
        original = getattr(owner, name)

        def counted(self: Any, *args: Any, _original: Any = original, _name: str = name) -> Any:
            calls.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(owner, name, counted)

    def after(name: str, wanted: str, original: Any) -> Any:
        def step(*args: Any, **kwargs: Any) -> Any:
            deadline = time.monotonic() + 20  # the reader is at work meanwhile (a synchronisation)
            while wanted not in calls and time.monotonic() < deadline:
                time.sleep(0.01)
            calls.append(name)
            return original(*args, **kwargs)

        return step

    monkeypatch.setattr(
        build_runs.BuildDriver, "commit", after("commit", "base_note_counts", build_runs.BuildDriver.commit)
    )
    monkeypatch.setattr(run_module, "run_checks", after("checks", "scope_findings", run_module.run_checks))
    result = cli("build", "1", "--script", str(script))

    assert result.exit_code == 0, result.output
    # read once each: the base's counts before the commit, the change's findings before the checks
    # finished; the note's patch id once, before the verdict
    assert calls[:4] == ["base_note_counts", "commit", "scope_findings", "checks"], calls
    assert calls.count("scope_findings") == calls.count("base_note_counts") == 1, calls
    assert calls.count("patch_id") >= 1
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    [note] = notes(repo, head)
    assert note["outcome"] == "approved" and note["patch_id"] == _patch_id(repo, note["base"], head)


def _patch_id(repo: Path, base: str, head: str) -> str:
    import subprocess

    diff = subprocess.run(["git", "diff", base, head], cwd=repo, capture_output=True, check=True).stdout
    out = subprocess.run(["git", "patch-id", "--verbatim"], cwd=repo, input=diff, capture_output=True, check=True)
    return out.stdout.decode().split()[0]


def test_a_run_waits_for_its_first_request_to_be_sent_and_never_for_good(repo: Path) -> None:
    """``wait_sending`` (what a run does before making its worktree or checkout) returns once the model
    is ready to send (the SDK client made), or when its time is up, or when the call failed."""
    import threading

    release = threading.Event()

    class Slow(_Model):
        def ready(self) -> None:
            release.wait(20)  # the SDK client still being made

    class Broken(_Model):
        def ready(self) -> None:
            raise RuntimeError("no client")

    call = EarlyCall(first_request(_spec(repo, "PLAN")), Slow())  # type: ignore[arg-type]
    assert call.wait_sending(0.01) is False  # not sent yet: the run goes on after its time is up
    release.set()
    assert call.wait_sending(20) is True
    assert call.result()[0].stop_reason == "tool_use"
    broken = EarlyCall(first_request(_spec(repo, "PLAN")), Broken())  # type: ignore[arg-type]
    assert broken.wait_sending(20) is True  # over: nothing to wait for
