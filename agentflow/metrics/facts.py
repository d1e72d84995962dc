"""The facts a metrics report is computed from: typed records read from the ledger or from git.

Two sources, one shape. ``facts_from_ledger`` reads the ledger (sessions, costs, verdicts, runs)
plus git (agentflow commits); ``facts_from_git`` reads commits, trailers and verdict notes alone,
so a CI job on a fresh clone can publish the report. What a source cannot know is ``None``, never
a made-up zero. Nothing here computes a figure: that is ``agentflow.metrics.compute``.

Each reader is small on purpose: ``LedgerReader`` has one method per event kind it folds, and the
git reader is ``facts_from_git`` (commits through ``commit_facts``, notes through ``_note_lines``,
merges through ``_merged_plans``), so the source of each fact can change without touching the rest.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from agentflow.git import TRAILER_CYCLE, TRAILER_PLAN, TRAILER_RUN, Repo, TrailerCommit
from agentflow.ledger import Ledger, ledger_path
from agentflow.metrics._record import FACTORY, record
from agentflow.metrics.period import utc

RUN_MARGIN = timedelta(days=7)  # runs started this long before a report's window can still end in it


@record(frozen=True)
class Usage:
    """Token usage as the ledger records it (``agentflow.events.Usage``'s fields), without pydantic:
    metrics adds up thousands of them and imports no event class."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_write: int = 0

    def __init__(self, input_tokens: int = 0, output_tokens: int = 0, cache_read: int = 0, cache_write: int = 0):
        put = object.__setattr__  # frozen, as a frozen dataclass's __init__ sets its fields
        put(self, "input_tokens", input_tokens)
        put(self, "output_tokens", output_tokens)
        put(self, "cache_read", cache_read)
        put(self, "cache_write", cache_write)

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Usage:
        """A stored ``usage`` object's four counts (missing ones are 0, other keys ignored)."""
        if not data:
            return _NO_USAGE
        get = data.get
        return cls(
            int(get("input_tokens") or 0),
            int(get("output_tokens") or 0),
            int(get("cache_read") or 0),
            int(get("cache_write") or 0),
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )


_NO_USAGE = Usage()


@record
class VerdictFact:
    """One verification (one cycle's verdict) or a human override."""

    run_id: str
    plan_id: str | None
    cycle: int
    outcome: str
    ts: datetime
    override: bool = False
    findings: list[dict[str, Any]] = field(default_factory=list)
    commit: str | None = None  # the verified commit, when known

    def __init__(
        self,
        run_id: str,
        plan_id: str | None,
        cycle: int,
        outcome: str,
        ts: datetime,
        override: bool = False,
        findings: list[dict[str, Any]] = FACTORY,
        commit: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.plan_id = plan_id
        self.cycle = cycle
        self.outcome = outcome
        self.ts = ts
        self.override = override
        self.findings = [] if findings is FACTORY else findings
        self.commit = commit


@record
class RunFact:
    """One build or verify run, with its verdicts."""

    run_id: str
    plan_id: str | None
    plan_title: str | None = None
    mode: str = "build"
    started: datetime | None = None
    ended: datetime | None = None
    outcome: str | None = None  # the run's final outcome; None while in progress (or unknown)
    cycles: int = 0
    estimate_hours: float | None = None
    verdicts: list[VerdictFact] = field(default_factory=list)
    synthetic: bool = False  # holds verdicts that belong to no run (e.g. an override of a human commit)

    def __init__(
        self,
        run_id: str,
        plan_id: str | None,
        plan_title: str | None = None,
        mode: str = "build",
        started: datetime | None = None,
        ended: datetime | None = None,
        outcome: str | None = None,
        cycles: int = 0,
        estimate_hours: float | None = None,
        verdicts: list[VerdictFact] = FACTORY,
        synthetic: bool = False,
    ) -> None:
        self.run_id = run_id
        self.plan_id = plan_id
        self.plan_title = plan_title
        self.mode = mode
        self.started = started
        self.ended = ended
        self.outcome = outcome
        self.cycles = cycles
        self.estimate_hours = estimate_hours
        self.verdicts = [] if verdicts is FACTORY else verdicts
        self.synthetic = synthetic

    @cached_property
    def first_seen(self) -> datetime | None:
        """When the run started, or the earliest thing known about it (computed once, when the
        report is computed: the readers never ask while they still add verdicts)."""
        first = self.started
        for when in (*(v.ts for v in self.verdicts), self.ended):
            if when is not None and (first is None or when < first):
                first = when
        return first


@record
class SessionFact:
    """One agent session: its role, when it ended, what it used and cost."""

    session_id: str
    run_id: str | None
    role: str
    ts: datetime  # when it ended (or started, for a session that never ended)
    usage: Usage
    cost_usd: float

    def __init__(
        self, session_id: str, run_id: str | None, role: str, ts: datetime, usage: Usage, cost_usd: float
    ) -> None:
        self.session_id = session_id
        self.run_id = run_id
        self.role = role
        self.ts = ts
        self.usage = usage
        self.cost_usd = cost_usd


@record
class CommitFact:
    """One commit carrying agentflow trailers."""

    commit: str
    ts: datetime
    plan_id: str | None
    run_id: str | None
    cycle: int | None

    def __init__(self, commit: str, ts: datetime, plan_id: str | None, run_id: str | None, cycle: int | None) -> None:
        self.commit = commit
        self.ts = ts
        self.plan_id = plan_id
        self.run_id = run_id
        self.cycle = cycle


@record
class Facts:
    """Everything a source knows; ``None`` marks what it cannot know."""

    source: Literal["ledger", "git"]
    runs: list[RunFact] = field(default_factory=list)
    sessions: list[SessionFact] | None = None
    commits: list[CommitFact] = field(default_factory=list)
    merges: list[tuple[str, datetime]] = field(default_factory=list)  # (plan id, when)
    evaluations: list[tuple[datetime, list[dict[str, Any]]]] | None = None
    timing_known: bool = True  # False when run start times are unknown (git without run_started)

    def __init__(
        self,
        source: Literal["ledger", "git"],
        runs: list[RunFact] = FACTORY,
        sessions: list[SessionFact] | None = None,
        commits: list[CommitFact] = FACTORY,
        merges: list[tuple[str, datetime]] = FACTORY,
        evaluations: list[tuple[datetime, list[dict[str, Any]]]] | None = None,
        timing_known: bool = True,
    ) -> None:
        self.source = source
        self.runs = [] if runs is FACTORY else runs
        self.sessions = sessions
        self.commits = [] if commits is FACTORY else commits
        self.merges = [] if merges is FACTORY else merges
        self.evaluations = evaluations
        self.timing_known = timing_known


# -- from git: commits and their trailers --------------------------------------------------------


def commit_facts(repo: Repo | None, since: datetime | None = None) -> list[CommitFact]:
    """Every commit with agentflow trailers (plan, run, cycle), or those committed from ``since``
    on (``Repo.log_trailers``); none without a repository."""
    if repo is None:
        return []
    return _commit_facts(repo.log_trailers(since=since))


def _commit_facts(commits: Iterable[TrailerCommit]) -> list[CommitFact]:
    facts = []
    for c in commits:
        cycle = c.trailers.get(TRAILER_CYCLE, "")
        facts.append(
            CommitFact(
                c.commit,
                utc(c.committed),
                c.trailers.get(TRAILER_PLAN),
                c.trailers.get(TRAILER_RUN),
                int(cycle) if cycle.isdigit() else None,
            )
        )
    return facts


# -- from the ledger -----------------------------------------------------------------------------


class LedgerReader:
    """Folds ledger events into facts, one small method per event kind (see ``HANDLERS``).

    Events are their JSON objects as stored (``Ledger.window_records``, ``Ledger.records``), never
    validated (#19 item 1): each handler reads only the fields it folds, with the classes' defaults.
    """

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        self.runs: dict[str, RunFact] = {}
        self.sessions: dict[str, SessionFact] = {}
        self.ended_sessions: set[str] = set()

    def read(self, events: Iterable[dict[str, Any]]) -> Facts:
        for event in events:
            handler = self.HANDLERS.get(event["kind"])
            if handler is not None:
                handler(self, event, self.runs.get(event.get("run_id") or ""))
        self.facts.runs = list(self.runs.values())
        self.facts.sessions = list(self.sessions.values())
        return self.facts

    def run_started(self, event: dict[str, Any], run: RunFact | None) -> None:
        if event.get("run_id"):
            self.runs[event["run_id"]] = RunFact(
                event["run_id"],
                event.get("plan_id"),
                event.get("plan_title"),
                event.get("mode", "build"),
                _stamp(event),
                estimate_hours=event.get("estimate_hours"),
            )

    def verdict_recorded(self, event: dict[str, Any], run: RunFact | None) -> None:
        run_id = event.get("run_id")
        if run is None:  # an override (or a verdict) outside any run still counts
            run = self.runs.setdefault(
                run_id or f"verdict:{_stamp(event).isoformat()}",
                RunFact(run_id or "", None, mode="none", synthetic=True),
            )
        findings = list((event.get("verdict") or {}).get("findings") or [])
        run.verdicts.append(
            VerdictFact(
                run.run_id,
                run.plan_id,
                event["cycle"],
                event["outcome"],
                _stamp(event),
                event.get("override", False),
                findings,
                event.get("commit"),
            )
        )

    def run_ended(self, event: dict[str, Any], run: RunFact | None) -> None:
        if run is not None:
            run.ended, run.outcome = _stamp(event), event["outcome"]
            run.cycles = max(run.cycles, event["cycles"])

    def session_started(self, event: dict[str, Any], run: RunFact | None) -> None:
        sid = event["session_id"]
        self.sessions[sid] = SessionFact(sid, event.get("run_id"), event["role"], _stamp(event), Usage(), 0.0)
        if run is not None:  # a run that never ended still shows how far it got
            run.cycles = max(run.cycles, event.get("cycle", 1))

    def model_called(self, event: dict[str, Any], run: RunFact | None) -> None:
        sid = event["session_id"]
        session = None if sid in self.ended_sessions else self.sessions.get(sid)
        if session is not None:  # a session that never ends is still paid for, turn by turn
            session.usage = session.usage + Usage.of(event.get("usage"))
            session.cost_usd += event.get("cost_usd", 0.0)

    def session_ended(self, event: dict[str, Any], run: RunFact | None) -> None:
        sid = event["session_id"]
        self.ended_sessions.add(sid)
        self.sessions[sid] = SessionFact(
            sid,
            event.get("run_id"),
            event["role"],
            _stamp(event),
            Usage.of(event.get("usage")),
            event.get("cost_usd", 0.0),
        )

    def merged(self, event: dict[str, Any], run: RunFact | None) -> None:
        plan_id = event.get("plan_id") or (run.plan_id if run else None)
        if plan_id:
            self.facts.merges.append((plan_id, _stamp(event)))

    def findings_recorded(self, event: dict[str, Any], run: RunFact | None) -> None:
        if event.get("source", "evaluator") == "evaluator":
            self.facts.evaluations.append((_stamp(event), list(event.get("findings") or [])))  # type: ignore[union-attr]

    HANDLERS: dict[str, Any] = {
        "run_started": run_started,
        "verdict_recorded": verdict_recorded,
        "run_ended": run_ended,
        "session_started": session_started,
        "model_called": model_called,
        "session_ended": session_ended,
        "merged": merged,
        "findings_recorded": findings_recorded,
    }


def _stamp(event: dict[str, Any]) -> datetime:
    """An event's time as stored (ISO 8601 with ``Z`` or an offset), in UTC."""
    ts = datetime.fromisoformat(event["ts"])
    return ts if ts.tzinfo is UTC else utc(ts)  # agentflow writes UTC ("Z"): no conversion


def facts_from_ledger(
    ledger: Ledger | None, repo: Repo | None, since: datetime | None = None, until: datetime | None = None
) -> Facts:
    """Runs, sessions, verdicts, merges and evaluations from the ledger; commits from git.

    ``since``: only runs started from ``since`` minus ``RUN_MARGIN`` on (and before ``until``) are
    read, with the merges, evaluations and run-less events of that time (``Ledger.window_records``),
    through the indexed columns, and only the commits from ``since`` on: time stays flat in ledger
    size and history length, for a past period as for the last week. Nothing is validated: the stored JSON is folded. The window's runs are read with their
    hash chains' check (ChainBroken, exit 2, when one is broken: figures from a broken chain are not
    reported, #13 item 2); without ``since`` the caller checks (``load_facts``)."""
    facts = Facts(source="ledger", sessions=[], evaluations=[], commits=commit_facts(repo, since))
    if ledger is None:
        return facts
    if since is None:
        events = ledger.records()
    else:
        events = ledger.window_records(since - RUN_MARGIN, until, strict=False, legacy_ok=True)
    return LedgerReader(facts).read(events)


# -- from git alone: notes, trailers, merges -----------------------------------------------------


def _note_lines(repo: Repo) -> list[tuple[str, int, dict[str, Any]]]:
    """(commit, line number, parsed note) per verdict line under refs/notes/agentflow; bad lines skipped."""
    from agentflow.notes import verdict_lines  # the one parser of note lines (gate, metrics, orchestration)

    return [(commit, index, dict(note.data)) for commit, index, note in verdict_lines(repo.notes_map())]


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _merged_plans(repo: Repo, since: datetime | None, ref: str = "HEAD") -> list[tuple[str, datetime]]:
    """Plans whose commits entered ``ref``'s first-parent history through a merge, with its date.

    Only merges from ``since`` on are looked into (one ``git log`` each), so long histories stay cheap.
    """
    out = repo.git("log", "--first-parent", "--merges", "--format=%H %cI", ref, check=False)
    merges = []
    for line in out.splitlines():
        commit, _, stamp = line.partition(" ")
        when = utc(datetime.fromisoformat(stamp))
        if since is not None and when < since:
            continue
        brought = repo.log_trailers(f"{commit}^1..{commit}^2")
        plans = {c.trailers[TRAILER_PLAN] for c in brought if TRAILER_PLAN in c.trailers}
        merges += [(plan, when) for plan in sorted(plans)]
    return merges


def _run_from_notes(run_id: str, notes: list[dict[str, Any]], mode: str, plan_id: str | None) -> RunFact:
    """One run from its notes in time order: a verdict per note, cycles counted or read from the notes."""
    run = RunFact(run_id, plan_id, mode=mode, synthetic=run_id.startswith("note:"))
    cycle = 0
    for note in notes:
        ts = _parse_ts(note.get("ts"))
        if ts is None:
            continue
        override = bool(note.get("override"))
        if not override:
            cycle = int(note["cycle"]) if str(note.get("cycle", "")).isdigit() else cycle + 1
        run.verdicts.append(
            VerdictFact(
                run_id,
                plan_id,
                max(cycle, 1),
                note["outcome"],
                ts,
                override,
                list(note.get("findings") or []),
                note.get("_commit"),
            )
        )
        run.plan_title = run.plan_title or note.get("plan_title")
        run.started = run.started or _parse_ts(note.get("run_started"))
        if note.get("estimate_hours") is not None:
            run.estimate_hours = float(note["estimate_hours"])
    run.cycles = cycle
    last = next((v for v in reversed(run.verdicts) if not v.override), None)
    if last is not None:
        run.outcome, run.ended = last.outcome, last.ts
    return run


def facts_from_git(repo: Repo, since: datetime | None = None) -> Facts:
    """What commits, trailers and verdict notes alone tell (``--from-git``).

    A run is the set of notes sharing a ``run`` id; its cycles are its verdicts in time order
    (or the notes' ``cycle`` field when present); it is a build run when a commit carries its
    ``Agentflow-Run`` trailer. Git knows when a run's last verdict was written, not when the run
    ended, so that verdict stands for the run's end and its outcome for the run's outcome. A capped
    run writes a final ``capped`` line on its last verified commit, so git knows caps (notes
    written before agentflow recorded caps make such a run look like one that requested changes).
    Notes carry ``run_started``, ``cycle`` and ``estimate_hours``; without ``run_started`` (older
    notes) time-to-approval and the estimate are unknown. ``since`` bounds the search
    for merges (nothing before it is reported).
    """
    commits = commit_facts(repo)
    build_runs = {c.run_id for c in commits if c.run_id}
    plan_of_run = {c.run_id: c.plan_id for c in commits if c.run_id and c.plan_id}
    cycle_of_commit = {c.commit: c.cycle or 0 for c in commits}
    grouped: dict[str, list[tuple[tuple[datetime, int, int], dict[str, Any]]]] = defaultdict(list)
    for commit, index, note in _note_lines(repo):
        note["_commit"] = commit
        key = note.get("run") or f"note:{commit}:{note.get('ts')}"
        # note times have whole seconds: ties go by the commit's cycle trailer, then by line order
        order = (_parse_ts(note.get("ts")) or datetime.min.replace(tzinfo=UTC), cycle_of_commit.get(commit, 0), index)
        grouped[key].append((order, note))
    runs: list[RunFact] = []
    for run_id, ordered in grouped.items():
        notes = [note for _, note in sorted(ordered, key=lambda pair: pair[0])]
        plan_id = next((str(n["plan"]) for n in notes if n.get("plan")), None) or plan_of_run.get(run_id)
        synthetic = run_id.startswith("note:")
        mode = "build" if run_id in build_runs else ("none" if synthetic else "verify")
        runs.append(_run_from_notes(run_id, notes, mode, plan_id))
    timing_known = all(run.started is not None or run.synthetic for run in runs)
    return Facts(source="git", runs=runs, commits=commits, merges=_merged_plans(repo, since), timing_known=timing_known)


def load_facts(
    root: Path, *, from_git: bool = False, since: datetime | None = None, until: datetime | None = None
) -> Facts:
    """The facts of the repository at ``root``: its ledger (never created by reading), or git alone.

    ``since`` is the earliest moment the caller reports on, ``until`` the end of what it reports on;
    sources may skip work outside them.
    """
    if from_git:
        return facts_from_git(Repo(root), since)  # GitPython (#17): notes, trailers and merges, many objects
    # the commits of the period: one `git log`, no GitPython import, started before the ledger is
    # read and collected after it, so git runs alongside (the whole history when there is no ledger)
    exists = ledger_path(root).exists()
    commits = Repo(root, gitpython=False).start_log_trailers(since=since if exists else None)
    try:
        if not exists:
            facts = facts_from_ledger(None, None)
        else:
            with Ledger.open(root) as ledger:
                facts = facts_from_ledger(ledger, None, since, until)
                # figures from a broken chain are not reported (#13 item 2); a window is checked as read
                if since is None:
                    ledger.verify_runs([run.run_id for run in facts.runs], strict=False, legacy_ok=True)
    finally:
        found = commits()  # waited for even when the ledger fails (no child left behind)
    facts.commits = _commit_facts(found)
    return facts
