"""Small text policies shared by every writer of line-oriented output (no imports: gate start-up)."""

from __future__ import annotations


def one_line(text: str, limit: int | None = None) -> str:
    """Text from a model or a note (messages, reasons) folded onto one line, cut to ``limit``."""
    line = " ".join(str(text).split())
    if limit is not None and len(line) > limit:
        return line[: limit - 1] + "…"
    return line
