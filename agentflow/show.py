"""One run's timeline (``agentflow show RUN``): a typed ``Timeline`` projected from the run's events.

Per cycle: the builder's summary and commit (diff stat), the checks, the verifier's verdict with
criteria and findings; per session: status, tokens and cost; optionally the full transcripts.
Field names are the keys of ``Timeline.to_dict()`` (like ``metrics.model.MetricsReport``). The
renderers read attributes; rendering lives in ``agentflow.report.show``.

Three parts stay plain data on purpose: a check is the dict every report reads through
``report.verify.evidence_text``/``check_status`` (the same shape as ``VerifyReport.checks``), and a
verdict's criteria and findings are the verdict JSON's own entries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from agentflow.errors import UsageError
from agentflow.events import (
    BuilderCommitted,
    ChecksRan,
    RunEnded,
    RunResumed,
    RunStarted,
    SessionEnded,
    SessionStarted,
    VerdictRecorded,
)
from agentflow.ledger import Ledger


@dataclass
class Session:
    session_id: str
    role: str
    cycle: int
    backend: str | None
    model: str | None
    started: str | None
    ended: str | None
    status: str
    reason: str | None
    turns: int
    tokens: dict[str, int]
    cost_usd: float
    summary: str | None


@dataclass
class Commit:
    commit: str | None
    files: int
    insertions: int
    deletions: int
    out_of_scope: list[str]


@dataclass
class Verdict:
    ts: str | None
    cycle: int
    commit: str | None
    outcome: str
    decision: str | None
    reason: str | None
    summary: str | None
    criteria: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    override: bool
    signed: bool


@dataclass
class Cycle:
    cycle: int
    builder: Session | None = None
    commit: Commit | None = None
    checks: list[dict[str, Any]] | None = None  # None: no checks ran; []: none configured
    verifier: Session | None = None
    verdict: Verdict | None = None


@dataclass
class RunHeader:
    run_id: str
    mode: str
    plan_id: str | None
    plan_title: str | None
    plan_path: str | None
    branch: str | None
    base: str | None
    base_commit: str | None
    estimate_hours: float | None
    max_cycles: int
    started: str | None
    ended: str | None = None
    outcome: str | None = None
    reason: str | None = None
    cycles: int = 0
    commit: str | None = None
    resumed: list[str] = field(default_factory=list)
    cost_usd: float = 0.0


@dataclass
class Timeline:
    run: RunHeader
    cycles: list[Cycle]
    sessions: list[Session]
    overrides: list[Verdict]
    transcripts: dict[str, Any] | None  # session id -> saved messages, with --transcripts only

    def to_dict(self) -> dict[str, Any]:
        """Field names are the keys, in field order."""
        return asdict(self)


def resolve_run_id(ledger: Ledger, ref: str) -> str:
    """The run ``ref`` names: an exact run id or an unambiguous prefix of one (through the index)."""
    matches = ledger.match_runs(ref)
    if matches == [ref]:
        return ref
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise UsageError(f"run {ref!r} is ambiguous: {shown}", fix="give more of the run id")
    raise UsageError(f"no run {ref!r} in the ledger", fix="list runs with `agentflow log`")


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat(timespec="seconds") if ts else None


def _session(start: SessionStarted | None, end: SessionEnded | None) -> Session:
    anchor = end or start
    assert anchor is not None
    return Session(
        session_id=anchor.session_id,
        role=anchor.role,
        cycle=anchor.cycle,
        backend=start.backend if start else None,
        model=start.model if start else None,
        started=_iso(start.ts) if start else None,
        ended=_iso(end.ts) if end else None,
        status=end.status if end else "running",
        reason=end.reason if end else None,
        turns=end.turns if end else 0,
        tokens=end.usage.model_dump() if end else {},
        cost_usd=round(end.cost_usd, 6) if end else 0.0,
        summary=end.summary if end else None,
    )


def _verdict(event: VerdictRecorded) -> Verdict:
    data = event.verdict or {}
    return Verdict(
        ts=_iso(event.ts),
        cycle=event.cycle,
        commit=event.commit,
        outcome=event.outcome,
        decision=event.decision,
        reason=event.reason,
        summary=data.get("summary"),
        criteria=list(data.get("criteria") or []),
        findings=list(data.get("findings") or []),
        override=event.override,
        signed=event.signed,
    )


def _cycle(timeline: dict[int, Cycle], number: int) -> Cycle:
    return timeline.setdefault(number, Cycle(cycle=number))


def run_timeline(ledger: Ledger, ref: str, *, transcripts: bool = False) -> Timeline:
    """The timeline of the run ``ref`` names (see ``resolve_run_id``)."""
    run_id = resolve_run_id(ledger, ref)
    ledger.verify_run(run_id, strict=False, legacy_ok=True)  # ChainBroken (exit 2) names the first bad event
    events = ledger.events(run_id=run_id)
    start = events[0]
    assert isinstance(start, RunStarted)
    run = RunHeader(
        run_id=run_id,
        mode=start.mode,
        plan_id=start.plan_id,
        plan_title=start.plan_title,
        plan_path=start.plan_path,
        branch=start.branch,
        base=start.base,
        base_commit=start.base_commit,
        estimate_hours=start.estimate_hours,
        max_cycles=start.max_cycles,
        started=_iso(start.ts),
    )
    cycles: dict[int, Cycle] = {}
    starts: dict[str, SessionStarted] = {}
    sessions: dict[str, Session] = {}
    overrides: list[Verdict] = []
    for event in events:
        if isinstance(event, SessionStarted):
            starts[event.session_id] = event
            sessions[event.session_id] = _session(event, None)
        elif isinstance(event, SessionEnded):
            sessions[event.session_id] = _session(starts.get(event.session_id), event)
        elif isinstance(event, BuilderCommitted):
            _cycle(cycles, event.cycle).commit = Commit(
                commit=event.commit,
                files=event.files_changed,
                insertions=event.insertions,
                deletions=event.deletions,
                out_of_scope=list(event.out_of_scope),
            )
        elif isinstance(event, ChecksRan):
            _cycle(cycles, event.cycle).checks = [
                {
                    "command": c.command,
                    "exit_code": c.exit_code,
                    "passed": c.passed,
                    "duration_s": round(c.duration_s, 2),
                    "output_tail": c.output_tail,
                    **{k: getattr(c, k) for k in ("junit", "tests", "failures", "errors", "skipped", "evidence")},
                }
                for c in event.results
            ]
        elif isinstance(event, VerdictRecorded):
            if event.override:
                overrides.append(_verdict(event))
            else:
                _cycle(cycles, event.cycle).verdict = _verdict(event)
        elif isinstance(event, RunResumed):
            run.resumed.append(_iso(event.ts))
        elif isinstance(event, RunEnded):
            run.ended, run.outcome, run.reason, run.commit = _iso(event.ts), event.outcome, event.reason, event.commit
            run.cycles = max(run.cycles, event.cycles)
    for session in sessions.values():
        if session.role in ("builder", "verifier"):
            setattr(_cycle(cycles, session.cycle), session.role, session)  # the last session of a role wins
    run.cycles = max([run.cycles, *cycles])
    run.cost_usd = round(sum(s.cost_usd for s in sessions.values()), 6)
    return Timeline(
        run=run,
        cycles=[cycles[n] for n in sorted(cycles)],
        sessions=list(sessions.values()),
        overrides=overrides,
        transcripts=({sid: ledger.transcript(sid) for sid in sessions} if transcripts else None),
    )
