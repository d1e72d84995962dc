"""One run's timeline (``agentflow show RUN``): a typed ``Timeline`` projected from the run's events.

Per cycle: the builder's summary and commit (diff stat), the checks, the verifier's verdict with
criteria and findings; per session: status, tokens and cost; optionally the full transcripts.
Field names are the keys of ``Timeline.to_dict()`` (like ``metrics.model.MetricsReport``). The
renderers read attributes; rendering lives in ``agentflow.report.show``.

The run's events are read as stored JSON (``Ledger.records``), not through the pydantic event
classes (#19 item 1: ``show`` starts without pydantic): each field the timeline reads is taken as it
is when it has the type agentflow writes (``_READS``); when one is missing or of another type (a
run recorded before the field existed, a row agentflow did not write), the whole run is read
through the event classes instead, which fill defaults and word errors as before. Like ``log``,
the fields and kinds the timeline does not read are not validated.

Three parts stay plain data on purpose: a check is the dict every report reads through
``report.verify.evidence_text``/``check_status`` (the same shape as ``VerifyReport.checks``), and a
verdict's criteria and findings are the verdict JSON's own entries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from agentflow.errors import UsageError
from agentflow.ledger import Ledger
from agentflow.notes import OUTCOMES


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
    interrupted: str | None = None  # not ended, its last session interrupted: "the builder session of cycle 1"


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
    known = ledger.recent_run_ids(5)  # as `log --run` says it
    hint = f"recent runs: {', '.join(known)}" if known else "no runs yet"
    raise UsageError(f"no run {ref!r} in the ledger", fix=f"{hint}; list them with `agentflow log`")


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat(timespec="seconds") if ts else None


# What the timeline reads of each kind, with the type agentflow writes it as: anything else sends
# the run through the event classes. Literal values must equal agentflow.events' (a test checks).
MODES = ("build", "verify")
ROLES = ("builder", "verifier", "evaluator")
STATUSES = ("completed", "failed", "limits", "interrupted")
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


class _Other(Exception):
    """A field not as agentflow writes it: the event classes read this run."""


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _Other
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if type(value) is not int:
        raise _Other
    return value


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _float(value: Any) -> float:
    if type(value) not in (int, float):
        raise _Other
    return float(value)  # what the classes' float fields make of a JSON integer


def _opt_float(value: Any) -> float | None:
    return None if value is None else _float(value)


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _Other
    return value


def _ts(value: Any) -> datetime:
    if type(value) is not str or not _TS.fullmatch(value):
        raise _Other
    return datetime.fromisoformat(value)


def _one_of(values: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in values:
            raise _Other
        return value

    return check


def _str_list(value: Any) -> list[str]:
    if type(value) is not list:
        raise _Other
    return [_str(item) for item in value]


def _opt_dict(value: Any) -> dict[str, Any] | None:
    if value is not None and type(value) is not dict:
        raise _Other
    return value


def _usage(value: Any) -> dict[str, int]:
    if type(value) is not dict:
        raise _Other
    return {name: _int(value[name]) for name in ("input_tokens", "output_tokens", "cache_read", "cache_write")}


def _results(value: Any) -> list[SimpleNamespace]:
    if type(value) is not list:
        raise _Other
    return [_record(item, _CHECK) for item in value]


def _check_passed(check: Any) -> bool:
    """``agentflow.events.CheckResult.passed`` (a test compares the two)."""
    return check.exit_code == 0 and not (check.junit and (check.evidence or check.tests is None))


_CHECK: dict[str, Callable[[Any], Any]] = {
    "command": _str,
    "exit_code": _opt_int,
    "duration_s": _float,
    "output_tail": _str,
    "junit": _bool,
    **dict.fromkeys(("tests", "failures", "errors", "skipped"), _opt_int),
    "evidence": _opt_str,
}
_SESSION = {"ts": _ts, "session_id": _str, "role": _one_of(ROLES), "cycle": _int}
_READS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "run_started": {
        "ts": _ts,
        "mode": _one_of(MODES),
        **dict.fromkeys(("plan_id", "plan_title", "plan_path", "branch", "base", "base_commit"), _opt_str),
        "estimate_hours": _opt_float,
        "max_cycles": _int,
    },
    "session_started": {**_SESSION, "backend": _str, "model": _str},
    "session_ended": {
        **_SESSION,
        "status": _one_of(STATUSES),
        "reason": _opt_str,
        "turns": _int,
        "usage": _usage,
        "cost_usd": _float,
        "summary": _opt_str,
    },
    "builder_committed": {
        "cycle": _int,
        "commit": _opt_str,
        **dict.fromkeys(("files_changed", "insertions", "deletions"), _int),
        "out_of_scope": _str_list,
    },
    "checks_ran": {"cycle": _int, "results": _results},
    "verdict_recorded": {
        "ts": _ts,
        "cycle": _int,
        "commit": _opt_str,
        "outcome": _one_of(OUTCOMES),
        "decision": _opt_str,
        "reason": _opt_str,
        "verdict": _opt_dict,
        "override": _bool,
        "signed": _bool,
    },
    "run_resumed": {"ts": _ts},
    "run_ended": {"ts": _ts, "outcome": _one_of(OUTCOMES), "reason": _opt_str, "commit": _opt_str, "cycles": _int},
}


def _record(data: Any, reads: dict[str, Callable[[Any], Any]]) -> SimpleNamespace:
    if type(data) is not dict:
        raise _Other
    try:
        return SimpleNamespace(**{name: check(data[name]) for name, check in reads.items()})
    except KeyError:  # recorded before the field existed: the classes know its default
        raise _Other from None


def _stored_events(ledger: Ledger, run_id: str) -> list[Any] | None:
    """The run's events the timeline reads, from their stored JSON; None when one of them is not
    as agentflow writes it (then ``ledger.events`` reads them, as every other command does)."""
    events = []
    for data in ledger.records(run_id=run_id):
        reads = _READS.get(data["kind"])
        if reads is None:
            continue  # model and tool calls, git checks...: nothing of them is shown
        try:
            event = _record(data, reads)
        except _Other:
            return None
        event.kind = data["kind"]
        events.append(event)
    return events


def _session(start: Any | None, end: Any | None) -> Session:
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
        tokens=(end.usage if isinstance(end.usage, dict) else end.usage.model_dump()) if end else {},
        cost_usd=round(end.cost_usd, 6) if end else 0.0,
        summary=end.summary if end else None,
    )


def _verdict(event: Any) -> Verdict:
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
    events = _stored_events(ledger, run_id)
    if events is None:
        events = ledger.events(run_id=run_id)
    start = events[0]
    assert start.kind == "run_started"
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
    starts: dict[str, Any] = {}
    sessions: dict[str, Session] = {}
    overrides: list[Verdict] = []
    for event in events:
        if event.kind == "session_started":
            starts[event.session_id] = event
            sessions[event.session_id] = _session(event, None)
        elif event.kind == "session_ended":
            sessions[event.session_id] = _session(starts.get(event.session_id), event)
            if event.status == "interrupted":
                run.interrupted = f"the {event.role} session of cycle {event.cycle}"
        elif event.kind == "builder_committed":
            _cycle(cycles, event.cycle).commit = Commit(
                commit=event.commit,
                files=event.files_changed,
                insertions=event.insertions,
                deletions=event.deletions,
                out_of_scope=list(event.out_of_scope),
            )
        elif event.kind == "checks_ran":
            _cycle(cycles, event.cycle).checks = [
                {
                    "command": c.command,
                    "exit_code": c.exit_code,
                    "passed": _check_passed(c),
                    "duration_s": round(c.duration_s, 2),
                    "output_tail": c.output_tail,
                    **{k: getattr(c, k) for k in ("junit", "tests", "failures", "errors", "skipped", "evidence")},
                }
                for c in event.results
            ]
        elif event.kind == "verdict_recorded":
            if event.override:
                overrides.append(_verdict(event))
            else:
                _cycle(cycles, event.cycle).verdict = _verdict(event)
        elif event.kind == "run_resumed":
            run.resumed.append(_iso(event.ts))
            run.interrupted = None
        elif event.kind == "run_ended":
            run.ended, run.outcome, run.reason, run.commit = _iso(event.ts), event.outcome, event.reason, event.commit
            run.cycles = max(run.cycles, event.cycles)
            run.interrupted = None
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
