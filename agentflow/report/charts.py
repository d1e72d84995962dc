"""Small inline SVG charts for the HTML report: no JavaScript, no network, readable when printed.

Every chart is a function from plain numbers to ``Markup`` (an SVG element). Text is escaped
here, so the templates can insert the markup as is. Each bar carries a ``<title>`` so a browser
shows the exact figure on hover, and every chart has an ``aria-label``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

OUTCOME_COLORS = {
    "approved": "#2e7d32",
    "changes_requested": "#e0a100",
    "rejected": "#c62828",
    "no_verdict": "#757575",
    "capped": "#6a1b9a",
    "in progress": "#90a4ae",
}
SEVERITY_COLORS = {"critical": "#7f0000", "high": "#d32f2f", "medium": "#f57c00", "low": "#fbc02d", "info": "#90a4ae"}
ROLE_COLORS = {"builder": "#1e88e5", "verifier": "#8e24aa", "evaluator": "#00897b"}
FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, sans-serif'"
TEXT = "#263238"
MUTED = "#607d8b"


@dataclass(frozen=True)
class Segment:
    value: float
    color: str
    name: str


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _empty(width: int, label: str, message: str) -> Markup:
    return Markup(
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='60' viewBox='0 0 {width} 60' "
        f"role='img' aria-label='{escape(label)}' {FONT}>"
        f"<text x='{width / 2}' y='34' text-anchor='middle' font-size='13' fill='{MUTED}'>{escape(message)}</text></svg>"
    )


def legend(items: Sequence[tuple[str, str]], *, x: float, y: float, width: float) -> tuple[str, int]:
    """A legend starting at ``x, y``, wrapped to ``width``; returns the markup and its number of lines."""
    parts, cx, cy, lines = [], x, y, 1
    for name, color in items:
        label = name.replace("_", " ")
        span = 18 + 7 * len(label) + 14
        if cx + span > x + width and cx > x:
            cx, cy, lines = x, cy + 18, lines + 1
        parts.append(
            f"<rect x='{cx:.1f}' y='{cy - 9:.1f}' width='11' height='11' rx='2' fill='{color}'/>"
            f"<text x='{cx + 16:.1f}' y='{cy:.1f}' font-size='12' fill='{TEXT}'>{escape(label)}</text>"
        )
        cx += span
    return "".join(parts), lines


def hbar_chart(
    rows: Sequence[tuple[str, Sequence[Segment]]],
    *,
    label: str,
    value_format: Callable[[float], str] = _num,
    legend_items: Sequence[tuple[str, str]] = (),
    width: int = 520,
    empty_message: str = "Nothing in this period",
) -> Markup:
    """Horizontal bars, one per row, each a stack of segments; the total is printed after the bar."""
    if not rows or all(sum(s.value for s in segs) == 0 for _, segs in rows):
        return _empty(width, label, empty_message)
    label_w, value_w, row_h, bar_h = 196, 56, 26, 16
    bar_area = width - label_w - value_w
    key, key_lines = legend(legend_items, x=label_w, y=14, width=bar_area + value_w) if legend_items else ("", 0)
    top = 8 + 18 * key_lines if legend_items else 6
    height = top + row_h * len(rows) + 6
    largest = max(sum(s.value for s in segs) for _, segs in rows) or 1
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"role='img' aria-label='{escape(label)}' {FONT}>"
    ]
    out.append(key)
    for index, (name, segments) in enumerate(rows):
        y = top + index * row_h
        out.append(
            f"<text x='{label_w - 8}' y='{y + bar_h - 3}' text-anchor='end' font-size='12' fill='{TEXT}'>"
            f"<title>{escape(name)}</title>{escape(_shorten(name, 27))}</text>"
        )
        x = float(label_w)
        for seg in segments:
            if seg.value <= 0:
                continue
            w = max(seg.value / largest * bar_area, 1.5)
            out.append(
                f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='{bar_h}' fill='{seg.color}'>"
                f"<title>{escape(name)}: {escape(seg.name.replace('_', ' '))} {escape(value_format(seg.value))}</title></rect>"
            )
            x += w
        total = sum(s.value for s in segments)
        out.append(
            f"<text x='{x + 6:.1f}' y='{y + bar_h - 3}' font-size='12' font-weight='600' fill='{TEXT}'>"
            f"{escape(value_format(total))}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at or above ``value`` (axis maximum)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def stacked_columns(
    columns: Sequence[tuple[str, Sequence[Segment]]],
    *,
    label: str,
    value_format: Callable[[float], str] = _num,
    legend_items: Sequence[tuple[str, str]] = (),
    width: int = 520,
    height: int = 250,
    empty_message: str = "Nothing in this period",
) -> Markup:
    """Vertical stacked columns (e.g. cost per role per day) with a y axis and gridlines."""
    totals = [sum(s.value for s in segs) for _, segs in columns]
    if not columns or max(totals, default=0) == 0:
        return _empty(width, label, empty_message)
    left, right, bottom = 58, 10, 34
    key, key_lines = legend(legend_items, x=left, y=14, width=width - left - right) if legend_items else ("", 0)
    top = 12 + 18 * key_lines
    plot_w, plot_h = width - left - right, height - top - bottom
    axis_max = _nice_ceiling(max(totals))
    slot = plot_w / len(columns)
    col_w = max(min(slot * 0.7, 48), 2)
    every = max(1, math.ceil(len(columns) / 10))  # at most ~10 x labels
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' viewBox='0 0 {width} {height}' "
        f"role='img' aria-label='{escape(label)}' {FONT}>",
        key,
    ]
    for tick in range(5):
        value = axis_max * tick / 4
        y = top + plot_h - plot_h * tick / 4
        out.append(
            f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#cfd8dc' "
            f"stroke-width='{1 if tick else 1.5}'/>"
            f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end' font-size='11' fill='{MUTED}'>"
            f"{escape(value_format(value))}</text>"
        )
    for index, (name, segments) in enumerate(columns):
        x = left + slot * index + (slot - col_w) / 2
        y = float(top + plot_h)
        for seg in segments:
            if seg.value <= 0:
                continue
            h = seg.value / axis_max * plot_h
            y -= h
            out.append(
                f"<rect x='{x:.1f}' y='{y:.1f}' width='{col_w:.1f}' height='{h:.1f}' fill='{seg.color}'>"
                f"<title>{escape(name)} {escape(seg.name)}: {escape(value_format(seg.value))}</title></rect>"
            )
        if index % every == 0:
            out.append(
                f"<text x='{x + col_w / 2:.1f}' y='{top + plot_h + 16}' text-anchor='middle' font-size='11' "
                f"fill='{MUTED}'>{escape(name)}</text>"
            )
    out.append("</svg>")
    return Markup("".join(out))
