"""A build's start-up overlapped (#19 item 5): what every run shares is primed on a thread from the
build's start, while the runs do their first git work, and each run waits for it before its first
event (else each ``-j`` run built its own validator and secret patterns at the same moment)."""

from __future__ import annotations

import threading

from agentflow.ledger import Ledger
from agentflow.orchestration import build_runs
from tests.build_helpers import builder_session, verifier_session, write_plan, write_script


def test_the_runs_start_while_priming_and_wait_for_it_before_their_first_event(repo, cli, monkeypatch):
    write_plan(repo, "1", scope=["src/a.py"])
    write_plan(repo, "2", title="Second", slug="second", scope=["src/b.py"])
    script = write_script(
        repo,
        {
            "builder": [builder_session(path="src/a.py"), builder_session(path="src/b.py")],
            "verifier": [verifier_session(), verifier_session()],
        },
    )
    reached = threading.Event()  # a run got to its first event while the priming was still going
    primed: list[bool] = []
    real_await = build_runs._await_primed

    def prime() -> threading.Thread:
        def body() -> None:
            reached.wait(30)  # finishes only once a run waits for it
            primed.append(True)

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        build_runs._PRIMING[:] = [thread]
        return thread

    def await_primed() -> None:
        reached.set()
        real_await()

    appended_before_priming: list[object] = []
    real_append = Ledger.append_many

    def append_many(self, events):
        if not primed:
            appended_before_priming.extend(events)
        return real_append(self, events)

    monkeypatch.setattr(build_runs, "_prime_shared_state", prime)
    monkeypatch.setattr(build_runs, "_await_primed", await_primed)
    monkeypatch.setattr(Ledger, "append_many", append_many)
    result = cli("build", "1", "2", "-j", "2", "--script", str(script))
    assert result.exit_code == 0, result.output
    assert primed and reached.is_set()
    assert appended_before_priming == []
