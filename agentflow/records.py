"""Read-side views of the ledger: plan status rows, a run's events, export/import, the CI plan matrix.

Plain data for ``agentflow status``, ``log``, ``ledger`` and ``plan matrix``, so the commands stay
thin; printing them is ``agentflow.report.text`` (``status_table``, ``event_line``).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from agentflow.files import read_text_file
from agentflow.ledger import ImportResult, Ledger, PlanState, ledger_path

if TYPE_CHECKING:  # plans (config, pydantic) and events load only where used: `log` imports neither
    from collections.abc import Iterator

    from agentflow.events import Event
    from agentflow.plans import Plan


class StatusRow(NamedTuple):  # not a frozen dataclass: `log` imports this module too (#19 item 1)
    id: str
    title: str
    path: str | None
    declared: str | None  # the plan's own status: draft | ready
    state: str
    last_outcome: str | None
    last_run: str | None
    runs: int
    cycles: int
    cost_usd: float

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def open_ledger_if_any(root: Path) -> Ledger | None:
    """The ledger, or None when no run ever happened here (reading never creates one)."""
    return Ledger.open(root) if ledger_path(root).exists() else None


def plan_states(root: Path) -> dict[str, PlanState]:
    ledger = open_ledger_if_any(root)
    if ledger is None:
        return {}
    with ledger:
        states = ledger.plan_states()
        for plan_id, state in states.items():  # a run stopped by Ctrl-C is not running: say so
            if state.state == "in progress" and state.last_run and ledger.interrupted(state.last_run):
                states[plan_id] = replace(state, state="interrupted")
        return states


def status_rows(plans: list[Plan], states: dict[str, PlanState]) -> list[StatusRow]:
    """One row per plan file, then one per plan that has runs but no file any more."""
    from agentflow.planfiles import display_path  # not agentflow.plans: status reads no plan models

    rows = []
    for plan in plans:
        state = states.get(plan.id, PlanState(plan_id=plan.id))
        rows.append(_row(plan.id, plan.title, display_path(plan.path), plan.status, state))
    known = {plan.id for plan in plans}
    for plan_id, state in states.items():
        if plan_id not in known:
            rows.append(_row(plan_id, "(plan file not found)", None, None, state))
    return rows


def _row(plan_id: str, title: str, path: str | None, declared: str | None, state: PlanState) -> StatusRow:
    return StatusRow(
        id=plan_id,
        title=title,
        path=path,
        declared=declared,
        state=state.state,
        last_outcome=state.last_outcome,
        last_run=state.last_run,
        runs=state.runs,
        cycles=state.cycles,
        cost_usd=round(state.cost_usd, 4),
    )


def read_events(root: Path, run_id: str | None = None) -> list[Event]:
    """The ledger's typed events (of one run), as ``log --json`` prints them; see ``read_records``."""
    return _read(root, run_id, typed=True)


def read_records(root: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    """The ledger's events (of one run) as stored JSON objects, not validated (``log``)."""
    return _read(root, run_id, typed=False)


def _read(root: Path, run_id: str | None, *, typed: bool) -> list[Any]:
    """An unknown run is an error (exit 2); the run's chain is checked."""
    from agentflow.errors import LedgerError

    ledger = open_ledger_if_any(root)
    if ledger is None:
        if run_id is not None:
            raise LedgerError(f"no run {run_id!r}: the ledger is empty", fix="start one with `agentflow build PLAN`")
        return []
    with ledger, ledger.snapshot():  # the rows printed are the rows checked
        events = ledger.events(run_id=run_id) if typed else ledger.records(run_id=run_id)
        if run_id is not None and not events and (full := _prefixed(ledger, run_id)) != run_id:
            run_id = full  # a prefix, as `show` takes one
            events = ledger.events(run_id=run_id) if typed else ledger.records(run_id=run_id)
        if run_id is not None and not events:
            known = ledger.recent_run_ids(5)
            hint = f"recent runs: {', '.join(known)}" if known else "no runs yet"
            raise LedgerError(f"no run {run_id!r} in the ledger", fix=f"{hint}; list them with `agentflow log`")
        if run_id is not None:
            ledger.verify_run(run_id, strict=False, legacy_ok=True, elsewhere_ok=True)
        else:  # the whole log: every run's chain (runs from CI with only a merge here too) and the
            # run-less events' chain, as `show` and `metrics` check theirs
            ledger.verify_runs(ledger.chained_run_ids(), strict=False, legacy_ok=True, elsewhere_ok=True)
            ledger.verified_runless(ledger.runless_seqs(), strict=False, legacy_ok=True)
        return events


def export_run(root: Path, run_id: str) -> list[str]:
    """The JSON Lines of ``agentflow ledger export``; an unknown run is exit 2."""
    from agentflow.errors import LedgerError

    ledger = open_ledger_if_any(root)
    if ledger is None:
        raise LedgerError(f"no run {run_id!r}: the ledger is empty", fix="start one with `agentflow build PLAN`")
    with ledger:
        run_id = _prefixed(ledger, run_id)
        if not ledger.match_runs(run_id):
            known = ledger.recent_run_ids(5)
            hint = f"recent runs: {', '.join(known)}" if known else "no runs yet"
            raise LedgerError(f"no run {run_id!r} in the ledger", fix=f"{hint}; list them with `agentflow log`")
        return ledger.export_run(run_id)


def _prefixed(ledger: Ledger, ref: str) -> str:
    """The run id ``ref`` is, or the one run it is a prefix of (``show``'s reading); ``ref`` itself when
    it names none (the caller says so). Several: exit 2 listing them."""
    from agentflow.errors import LedgerError

    matches = ledger.match_runs(ref)
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise LedgerError(f"run {ref!r} is ambiguous: {shown}", fix="give more of the run id")
    return matches[0] if matches else ref


def import_runs(root: Path, files: list[Path]) -> ImportResult:
    """Merge files written by ``ledger export`` into the ledger at ``root`` (created if missing)."""

    sources = []
    for file in files:
        text = read_text_file(file, fix="pass files written by `agentflow ledger export`")
        sources.append((str(file), text.splitlines()))
    with ledger_unless_refused(root) as ledger:
        return ledger.import_lines(sources)


@contextlib.contextmanager
def ledger_unless_refused(root: Path) -> Iterator[Ledger]:
    """The ledger at ``root``, opened (made when missing) for a command that may still refuse: on an
    ``AgentflowError`` (the command wrote nothing) a ledger this made is removed again, with the
    ``.agentflow/`` folder it made, so a refusal leaves nothing behind."""
    from agentflow.errors import AgentflowError

    path = ledger_path(root)
    made_folder, made_file = not path.parent.exists(), not path.exists()
    try:
        with Ledger.open(root) as ledger:
            yield ledger
    except AgentflowError:
        if made_file:
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)
        if made_folder:
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only when empty
        raise


def plan_matrix(
    plans: list[Plan], states: dict[str, PlanState], root: Path, *, status: str | None = None, unbuilt: bool = False
) -> list[dict[str, str]]:
    """A CI job matrix, one entry per plan: ``{"id", "path", "title", "branch"}``, the path relative
    to ``root``. ``status`` keeps plans whose front matter says so (draft | ready); ``unbuilt`` keeps
    plans with no run in the ledger yet (a fan-out builds each plan once)."""
    from agentflow.plans import branch_name

    entries = []
    for plan in plans:
        if status is not None and plan.status != status:
            continue
        if unbuilt and states.get(plan.id, PlanState(plan_id=plan.id)).runs > 0:
            continue
        try:
            path = plan.path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            path = str(plan.path)
        entries.append({"id": plan.id, "path": path, "title": plan.title, "branch": branch_name(plan)})
    return entries
