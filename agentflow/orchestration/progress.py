"""The run projection: a run's events folded into per-cycle state.

A build run is driven by its own events (``BuildDriver.step`` reads this projection to work out
what is left to do), so a fresh run and a resumed one take the same path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentflow.errors import UsageError
from agentflow.events import (
    BuilderCommitted,
    ChecksRan,
    Event,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionStarted,
    TamperingDetected,
    VerdictRecorded,
)


@dataclass
class CycleState:
    """What one cycle has done so far, as its events say."""

    number: int
    builder: SessionEnded | None = None  # the last builder session that ended
    committed: BuilderCommitted | None = None
    checks: ChecksRan | None = None
    verifier: SessionEnded | None = None
    verdict: VerdictRecorded | None = None


@dataclass
class RunProgress:
    start: RunStarted
    cycles: dict[int, CycleState]
    ended: RunEnded | None
    cost_usd: float
    events: list[Event]
    tampered: TamperingDetected | None = None  # a session changed the git data: the run ends no_verdict

    @property
    def current(self) -> CycleState:
        number = max(self.cycles) if self.cycles else 1
        return self.cycles.setdefault(number, CycleState(number))

    def verdicts(self) -> list[VerdictRecorded]:
        return [c.verdict for _, c in sorted(self.cycles.items()) if c.verdict is not None]


def project_progress(events: list[Event]) -> RunProgress:
    """Fold a run's events into per-cycle state (what ``next_step`` needs)."""
    start = events[0]
    if not isinstance(start, RunStarted):
        raise UsageError("the run's first event is not run_started", fix="start a new build")
    cycles: dict[int, CycleState] = {}
    ended: RunEnded | None = None
    tampered: TamperingDetected | None = None
    cost = 0.0

    def cycle(number: int) -> CycleState:
        return cycles.setdefault(number, CycleState(number))

    for event in events:
        if isinstance(event, SessionStarted) and event.role == "builder":
            cycle(event.cycle)  # a builder that started opens its cycle, ended or not
        elif isinstance(event, SessionEnded):
            cost += event.cost_usd
            if event.role == "builder":
                cycle(event.cycle).builder = event
            elif event.role == "verifier":
                cycle(event.cycle).verifier = event
        elif isinstance(event, BuilderCommitted):
            cycle(event.cycle).committed = event
        elif isinstance(event, ChecksRan):
            cycle(event.cycle).checks = event
        elif isinstance(event, VerdictRecorded):
            cycle(event.cycle).verdict = event
        elif isinstance(event, RunEnded):
            ended = event
        elif isinstance(event, TamperingDetected) and tampered is None:
            tampered = event
    return RunProgress(start, cycles, ended, cost, events, tampered)


def reopened_findings(verdicts: Sequence[VerdictRecorded]) -> dict[str, int]:
    """How often each finding id came back after a rework cycle was asked to fix it."""
    seen: set[str] = set()
    counts: dict[str, int] = {}
    for verdict in verdicts:
        ids = {str(f.get("id")) for f in (verdict.verdict or {}).get("findings", []) if f.get("id")}
        for finding_id in ids & seen:
            counts[finding_id] = counts.get(finding_id, 0) + 1
        seen |= ids
    return counts
