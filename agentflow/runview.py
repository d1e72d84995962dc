"""One run projected from its typed events: ``Ledger.run`` and ``Ledger.runs`` (the full replay
that ``Ledger.plan_states_replay``, the reference for the derived tables, is computed from).

Apart from ``agentflow.ledger`` because no read-side view needs it: ``status``, ``log``, ``show`` and
``metrics`` import the ledger, and each dataclass costs a module about 1 ms at import (#19 item 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentflow.events import Event, VerdictRecorded


@dataclass
class SessionView:
    session_id: str
    role: str
    cycle: int
    backend: str
    model: str
    started: datetime
    status: str = "running"
    reason: str | None = None
    turns: int = 0
    cost_usd: float = 0.0
    tokens: dict[str, int] = field(default_factory=dict)
    summary: str | None = None


@dataclass
class RunView:
    run_id: str
    mode: str
    plan_id: str | None
    plan_title: str | None
    started: datetime
    ended: datetime | None = None
    outcome: str | None = None
    reason: str | None = None
    cycles: int = 0
    cost_usd: float = 0.0
    commit: str | None = None
    sessions: list[SessionView] = field(default_factory=list)
    verdicts: list[VerdictRecorded] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def state(self) -> str:
        return self.outcome if self.outcome else "in progress"


def project_run(events: list[Event]) -> RunView:
    from agentflow.events import RunEnded, RunStarted, SessionEnded, SessionStarted, VerdictRecorded

    start = events[0]
    assert isinstance(start, RunStarted)
    run = RunView(start.run_id or "", start.mode, start.plan_id, start.plan_title, start.ts, events=events)
    sessions: dict[str, SessionView] = {}
    for event in events:
        if isinstance(event, SessionStarted):
            view = SessionView(event.session_id, event.role, event.cycle, event.backend, event.model, event.ts)
            sessions[event.session_id] = view
            run.sessions.append(view)
            run.cycles = max(run.cycles, event.cycle)
        elif isinstance(event, SessionEnded):
            view = sessions.get(event.session_id) or SessionView(
                event.session_id, event.role, event.cycle, "?", "?", event.ts
            )
            view.status, view.reason, view.turns = event.status, event.reason, event.turns
            view.cost_usd, view.summary = event.cost_usd, event.summary
            view.tokens = event.usage.model_dump()
            run.cost_usd += event.cost_usd
        elif isinstance(event, VerdictRecorded):
            run.verdicts.append(event)
        elif isinstance(event, RunEnded):
            run.ended, run.outcome, run.reason = event.ts, event.outcome, event.reason
            run.commit = event.commit
            run.cycles = max(run.cycles, event.cycles)
    return run
