"""How every report writes a value: counts, money, time, percentages, changes, a check's JUnit counts.

Apart from ``report.figures`` and ``report.verify`` (which re-export them) because it defines no
class: ``agentflow show`` formats with these and builds none of the metrics' or verification's
dataclasses (each costs about 1 ms at start-up, #19 item 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

NA = "—"
Formatter = Callable[[Any], str]


def fmt_int(value: Any) -> str:
    return NA if value is None else f"{int(value):,}"


def fmt_float(value: Any) -> str:
    return NA if value is None else f"{value:,.2f}"


def fmt_pct(value: Any) -> str:
    return NA if value is None else f"{value * 100:.1f}%"


def fmt_usd(value: Any) -> str:
    return NA if value is None else f"${value:,.2f}"


def fmt_hours(value: Any) -> str:
    """Time in the unit that fits: seconds below a minute, minutes below an hour, else hours (an agent
    run is often seconds or minutes, an estimate days)."""
    if value is None:
        return NA
    if 0 <= value < 1:
        seconds = value * 3600
        if seconds < 59.5:
            return f"{seconds:.0f} s"
        return f"{seconds / 60:.0f} min"
    return f"{value:,.2f} h"


def fmt_speedup(value: Any) -> str:
    if value is None:
        return NA
    return f"{value:,.0f}×" if value >= 100 else f"{value:,.2f}×"


def _signed(value: float, text: str) -> str:
    if round(value, 6) == 0:
        return "0"
    return f"+{text}" if value > 0 else f"−{text}"


def fmt_delta(kind: str, now: Any, before: Any) -> str:
    """The change from ``before`` to ``now``; empty when either is unknown."""
    if not isinstance(now, (int, float)) or not isinstance(before, (int, float)):
        return ""
    diff = now - before
    match kind:
        case "int":
            return _signed(diff, f"{abs(int(diff)):,}")
        case "pct":
            return _signed(diff, f"{abs(diff) * 100:.1f} pts")
        case "usd":
            return _signed(diff, f"${abs(diff):,.2f}")
        case "hours":
            return _signed(diff, fmt_hours(abs(diff)))
        case "speedup":
            return _signed(diff, f"{abs(diff):,.2f}×")
        case _:
            return _signed(diff, f"{abs(diff):,.2f}")


FORMATTERS: dict[str, Formatter] = {
    "int": fmt_int,
    "float": fmt_float,
    "pct": fmt_pct,
    "usd": fmt_usd,
    "hours": fmt_hours,
    "speedup": fmt_speedup,
}


def evidence_text(check: Mapping[str, Any]) -> str:
    """A JUnit check's counts ("12 tests, 0 failures, 0 errors, 1 skipped"), or why it has none; "" for
    a check without ``junit: true``."""
    if not check.get("junit"):
        return ""
    if check.get("tests") is None:
        return f"no JUnit counts: {check.get('evidence') or 'no report'}"
    counts = ", ".join(f"{check.get(k) or 0} {k}" for k in ("tests", "failures", "errors", "skipped"))
    return counts + (f": {check['evidence']}" if check.get("evidence") else "")
