"""Memory stays flat as the log grows: it depends on types x fields, not on the number of events."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from agentflow.evaluator import evaluate
from tests.evaluator_helpers import ALL_TYPES, demo_event, write_jsonl


def _write(path: Path, n: int) -> Path:
    # Vary the optional fields so there is more than one shape per type.
    events = []
    for i in range(n):
        event = demo_event(i, ALL_TYPES[i % len(ALL_TYPES)])
        if i % 3 == 0:
            event["payload"]["note"] = None
        events.append(event)
    return write_jsonl(path, events)


def _peak(path: Path) -> int:
    tracemalloc.start()
    try:
        analysis = evaluate([path], workers=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert analysis.bad_lines == 0
    return peak


def test_peak_memory_does_not_grow_with_the_number_of_events(tmp_path, monkeypatch):
    from agentflow.evaluator import reader

    monkeypatch.setattr(reader, "BLOCK", 1 << 18)  # both logs span several blocks
    small = _write(tmp_path / "small.jsonl", 10_000)
    large = _write(tmp_path / "large.jsonl", 100_000)
    assert large.stat().st_size > 9 * small.stat().st_size
    peak_small, peak_large = _peak(small), _peak(large)
    # 10x the events: a linear implementation would need ~10x the memory.
    assert peak_large < 1.5 * peak_small, (peak_small, peak_large)
    assert peak_large < large.stat().st_size  # never holds the whole file


def test_the_garbage_collector_is_paused_while_reading_and_restored_after(tmp_path, monkeypatch):
    # evaluate() turns Python's cyclic collector off while it reads and analyses (its full passes
    # over the kept shapes and classes cost more than the reading), and back on after, also when the
    # reading fails; a caller that had it off keeps it off.
    import gc

    import pytest

    from agentflow.errors import UsageError
    from agentflow.evaluator import reader

    seen = []
    original = reader.read_logs

    def spying(*args, **kwargs):
        seen.append(gc.isenabled())
        return original(*args, **kwargs)

    monkeypatch.setattr(reader, "read_logs", spying)
    path = _write(tmp_path / "log.jsonl", 50)
    assert gc.isenabled()
    evaluate([path], workers=1)
    with pytest.raises(UsageError):
        evaluate([tmp_path / "missing.jsonl"], workers=1)
    assert seen == [False, False] and gc.isenabled()
    gc.disable()
    try:
        evaluate([path], workers=1)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_what_the_analysis_made_is_left_old_not_walked_by_the_next_young_collection(tmp_path):
    # After evaluate() the objects it made are in the oldest generation (a young collection right
    # after would walk them all: 0.1-0.16 s with 2,000 types); nothing stays frozen in a process
    # that froze nothing, and what a process froze itself (the CLI's start-up) stays frozen.
    import gc

    path = _write(tmp_path / "log.jsonl", 2000)
    gc.collect()
    assert gc.get_freeze_count() == 0
    analysis = evaluate([path], workers=1)
    assert gc.get_freeze_count() == 0
    fields = analysis.types[0].fields  # made while reading: in the oldest generation already
    young = gc.get_objects(generation=0) + gc.get_objects(generation=1)
    assert len(young) < 10_000 and not any(o is fields for o in young)
    kept = object.__new__(type("Kept", (), {}))  # tracked: a frozen object of the process's own
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        evaluate([path], workers=1)
        assert gc.get_freeze_count() >= frozen and gc.is_tracked(kept)
    finally:
        gc.unfreeze()
