"""The plain-text status table and the log's event lines (``agentflow status``, ``agentflow log``).

Split from ``agentflow.report.text`` (which re-exports them) because it imports nothing heavy: no
metrics, git or event classes, so those two commands start fast (#19 item 1). Event lines read
the event's JSON object as stored (``Ledger.records``), never validated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentflow.gate import GateResult
    from agentflow.records import StatusRow

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
    "tampering_detected": ("cycle", "role", "reason", "changes", "restored"),
    "git_snapshot": ("cycle", "role"),  # the snapshot itself (every ref, hook and file hash) is --json's
    "git_checked": ("cycle", "role", "changes"),
    "builder_commits_folded": ("cycle", "commits", "onto"),
}
_SKIP = {"v", "ts", "run_id", "kind"}


def status_table(rows: list[StatusRow], title_width: int = 44) -> list[str]:
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
        return ",".join(_value(v) if isinstance(v, str) else str(v) for v in value) or "[]"
    if isinstance(value, dict):
        return f"{{{len(value)} keys}}"  # a kind with no KEY_FIELDS entry yet: its content is --json's
    text = str(value)
    if len(text) > 12 and all(c in "0123456789abcdef" for c in text):
        return text[:12]  # commit ids
    return repr(text) if " " in text else text


def event_line(data: dict[str, Any]) -> str:
    """``2026-11-27T22:10:03Z r-20261127-abc123 session_ended role=builder status=completed ...``.

    ``data`` is the event's JSON object as stored (``Ledger.records``; ``dump_event`` of a typed one
    gives the same)."""
    kind = data["kind"]
    fields = KEY_FIELDS.get(kind)
    names = fields if fields is not None else tuple(k for k in data if k not in _SKIP)
    parts = [f"{name}={_value(data[name])}" for name in names if data.get(name) not in (None, False, "", [])]
    if kind == "checks_ran":
        results = data.get("results", [])
        passed = sum(1 for r in results if r.get("exit_code") == 0)
        parts.append(f"passed={passed}/{len(results)}")
    elif kind == "findings_recorded":
        parts.append(f"findings={len(data.get('findings', []))}")
    elif kind == "git_snapshot":
        snapshot = data.get("snapshot") or {}
        parts.extend(f"{name}={len(snapshot.get(name) or ())}" for name in ("refs", "files"))
    ts = data["ts"][:19] + "Z"  # stored as pydantic writes it: YYYY-MM-DDTHH:MM:SS[.ffffff]Z
    return " ".join([ts, data.get("run_id") or "-", kind, *parts])


def gate_text(result: GateResult) -> str:
    """One line verdict, then the reasons indented (each folded onto one line, redacted)."""
    from agentflow.redact import redact
    from agentflow.text import one_line

    return redact("\n".join([one_line(result.headline()), *(f"  {one_line(reason)}" for reason in result.reasons)]))
