"""Read-side views of the ledger for people: plan status rows and one-line event summaries.

Pure functions over plans and events so that ``agentflow status`` and ``agentflow log`` stay thin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agentflow.events import Event
from agentflow.ledger import ImportResult, Ledger, PlanState, dump_event, ledger_path
from agentflow.plans import Plan, display_path

# Fields that say most about an event, in the order they are shown; anything else is left to --json.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "run_started": ("mode", "plan_id", "plan_title", "branch", "base", "max_cycles"),
    "run_resumed": (),
    "session_started": ("role", "cycle", "backend", "model", "session_id"),
    "model_called": ("session_id", "turn", "model", "cost_usd", "stop_reason"),
    "tool_called": ("session_id", "turn", "tool", "is_error"),
    "session_ended": ("role", "cycle", "status", "reason", "turns", "cost_usd"),
    "builder_committed": ("cycle", "commit", "files_changed", "insertions", "deletions", "out_of_scope"),
    "checks_ran": ("cycle", "commit"),
    "verdict_recorded": ("cycle", "outcome", "decision", "reason", "commit", "override", "signed"),
    "run_ended": ("outcome", "cycles", "reason", "commit"),
    "merged": ("plan_id", "branch", "into", "commit"),
    "findings_recorded": ("source",),
}
_SKIP = {"v", "ts", "run_id", "kind"}


@dataclass(frozen=True)
class StatusRow:
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
        return asdict(self)


def open_ledger_if_any(root: Path) -> Ledger | None:
    """The ledger, or None when no run ever happened here (reading never creates one)."""
    return Ledger.open(root) if ledger_path(root).exists() else None


def plan_states(root: Path) -> dict[str, PlanState]:
    ledger = open_ledger_if_any(root)
    if ledger is None:
        return {}
    with ledger:
        return ledger.plan_states()


def status_rows(plans: list[Plan], states: dict[str, PlanState]) -> list[StatusRow]:
    """One row per plan file, then one per plan that has runs but no file any more."""
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


def format_table(rows: list[StatusRow], title_width: int = 44) -> list[str]:
    """A plain aligned table (no colour, no box drawing: it must read well in CI logs and pipes)."""
    header = ("ID", "TITLE", "STATE", "LAST OUTCOME", "CYCLES", "COST")
    cells = [
        (r.id, _clip(r.title, title_width), r.state, r.last_outcome or "-", str(r.cycles), f"${r.cost_usd:.2f}")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    right = {4, 5}

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False))
        ).rstrip()

    return [line(header), *(line(c) for c in cells)]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "[]"
    text = str(value)
    if len(text) > 12 and all(c in "0123456789abcdef" for c in text):
        return text[:12]  # commit ids
    return repr(text) if " " in text else text


def event_line(event: Event) -> str:
    """``2026-11-27T22:10:03Z r-20261127-abc123 session_ended role=builder status=completed ...``."""
    data = dump_event(event)
    fields = KEY_FIELDS.get(event.kind)
    names = fields if fields is not None else tuple(k for k in data if k not in _SKIP)
    parts = [f"{name}={_value(data[name])}" for name in names if data.get(name) not in (None, False, "", [])]
    if event.kind == "checks_ran":
        results = data.get("results", [])
        passed = sum(1 for r in results if r.get("exit_code") == 0)
        parts.append(f"passed={passed}/{len(results)}")
    elif event.kind == "findings_recorded":
        parts.append(f"findings={len(data.get('findings', []))}")
    ts = event.ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    return " ".join([ts, event.run_id or "-", event.kind, *parts])


def read_events(root: Path, run_id: str | None = None) -> list[Event]:
    """The ledger's events (of one run); an unknown run is an error (exit 2)."""
    from agentflow.errors import LedgerError

    ledger = open_ledger_if_any(root)
    if ledger is None:
        if run_id is not None:
            raise LedgerError(f"no run {run_id!r}: the ledger is empty", fix="start one with `agentflow build PLAN`")
        return []
    with ledger:
        events = ledger.events(run_id=run_id)
        if run_id is not None and not events:
            known = ledger.run_ids()[-5:]
            hint = f"recent runs: {', '.join(known)}" if known else "no runs yet"
            raise LedgerError(f"no run {run_id!r} in the ledger", fix=f"{hint}; list them with `agentflow log`")
        if run_id is not None:
            ledger.verify_run(run_id, strict=False, legacy_ok=True)
        return events


def export_run(root: Path, run_id: str) -> list[str]:
    """The JSON Lines of ``agentflow ledger export``; an unknown run is exit 2."""
    from agentflow.errors import LedgerError

    ledger = open_ledger_if_any(root)
    if ledger is None:
        raise LedgerError(f"no run {run_id!r}: the ledger is empty", fix="start one with `agentflow build PLAN`")
    with ledger:
        return ledger.export_run(run_id)


def import_runs(root: Path, files: list[Path]) -> ImportResult:
    """Merge files written by ``ledger export`` into the ledger at ``root`` (created if missing)."""
    from agentflow.errors import UsageError

    sources = []
    for file in files:
        try:
            sources.append((str(file), file.read_text(encoding="utf-8").splitlines()))
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(
                f"cannot read: {getattr(exc, 'strerror', None) or exc}",
                where=file,
                fix="pass files written by `agentflow ledger export`",
            ) from None
    with Ledger.open(root) as ledger:
        return ledger.import_lines(sources)


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
