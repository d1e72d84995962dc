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


def test_root_only_files_are_scanned_once_when_runs_ask_at_the_same_moment(monkeypatch):
    """The first sandboxes of -j runs come together: one scan, the others wait for its answer."""
    from agentflow import sandbox

    scans: list[str] = []
    started = threading.Event()

    def slow_scan(root: str, depth: int) -> list[tuple[str, bool]]:
        scans.append(root)
        started.set()
        threading.Event().wait(0.05)  # long enough for every thread to arrive meanwhile
        return [(f"{root}/secret", False)]

    monkeypatch.setattr(sandbox, "_scan", slow_scan)
    monkeypatch.setattr(sandbox, "ROOT_ONLY_ROOTS", ("/etc",))
    sandbox.root_only_paths.cache_clear()
    try:
        answers: list[tuple[tuple[str, bool], ...]] = []
        threads = [threading.Thread(target=lambda: answers.append(sandbox.root_only())) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sandbox.root_only_paths.cache_clear()
    assert scans == ["/etc"]
    assert answers == [(("/etc/secret", False),)] * 4


def test_the_warm_up_scans_root_only_files_only_for_a_sandboxed_build_as_root(repo, monkeypatch):
    from agentflow import sandbox

    calls: list[str] = []
    ours: set[int] = set()  # earlier tests' warm-ups may still be waiting (up to 30 s) and scan meanwhile
    monkeypatch.setattr(sandbox, "root_only", lambda: threading.get_ident() in ours and calls.append("scan") or ())
    monkeypatch.setattr(build_runs.os, "geteuid", lambda: 0)
    done = threading.Event()
    real_thread = build_runs.threading.Thread

    def thread(*args, **kwargs):  # the warm-up's thread, joined here
        target = kwargs["target"]

        def run() -> None:
            ours.add(threading.get_ident())
            try:
                target()
            finally:
                done.set()

        kwargs["target"] = run
        return real_thread(*args, **kwargs)

    monkeypatch.setattr(build_runs.threading, "Thread", thread)
    for sandboxed, expected in ((False, []), (True, ["scan"])):
        done.clear()
        waiting = threading.Event()
        waiting.set()
        build_runs.warm_up(repo, waiting, sandboxed=sandboxed)
        assert done.wait(30)
        assert calls == expected


def test_ledger_connections_of_one_file_share_one_lock_and_lose_no_append(repo):
    """Each -j run has its own connection; their transactions take turns on one lock per file."""
    from agentflow.events import RunStarted

    ledgers = [Ledger.open(repo) for _ in range(4)]
    try:
        assert all(ledger._lock is ledgers[0]._lock for ledger in ledgers)
        other = repo / "other"
        other.mkdir()
        with Ledger.open(other) as elsewhere:
            assert elsewhere._lock is not ledgers[0]._lock

        def append(ledger: Ledger, n: int) -> None:
            for i in range(20):
                ledger.append(RunStarted(run_id=f"r-{n}-{i}"))

        threads = [threading.Thread(target=append, args=(ledger, n)) for n, ledger in enumerate(ledgers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(ledgers[0].events(kinds=["run_started"])) == 80
    finally:
        for ledger in ledgers:
            ledger.close()


def test_no_warm_up_outlives_its_build(repo, cli):
    """A build that ends before its runs wait for their model (here: an unknown plan) ends its warm-up:
    left waiting its 30 s, it then scanned and imported in a later test, which had patched what it called."""
    before = {t for t in threading.enumerate() if t.name == "agentflow-warm-up"}

    result = cli("build", "no-such-plan")

    assert result.exit_code == 2, result.output
    assert [t for t in threading.enumerate() if t.name == "agentflow-warm-up" and t not in before] == []
