"""Small text policies shared by every writer of output: one-line messages, Markdown cells and code spans
(no agentflow imports: gate start-up)."""

from __future__ import annotations

import re

# What a terminal interprets rather than shows: C0 controls but newline and tab (ESC starts cursor
# moves, line erases and OSC 52 clipboard writes; CR overwrites a line), DEL, C1 (CSI and OSC in
# one byte), and the bidirectional overrides and isolates (text shown in another order than read).
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: str) -> str:
    """``text`` as a terminal or CI log must show it, never interpret it: every control character (see
    ``_TERMINAL_CONTROLS``) as ``\\xNN`` or ``\\uNNNN``. Model text, a change's file names and a note's
    reason reached the terminal raw: an ``ESC [ 1A ESC [ 2K`` erased a "gate closed" line, an OSC 52
    wrote the clipboard (tests/test_attacks_terminal_escapes.py)."""
    if not _TERMINAL_CONTROLS.search(text):
        return text
    return _TERMINAL_CONTROLS.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


def one_line(text: str, limit: int | None = None) -> str:
    """Text from a model or a note (messages, reasons) folded onto one line, cut to ``limit``."""
    line = " ".join(str(text).split())
    if limit is not None and len(line) > limit:
        return line[: limit - 1] + "…"
    return line


def markdown_cell(text: object) -> str:
    """Outside text for a Markdown table cell or inline line: backslashes and pipes escaped (a
    ``\\|`` cannot end the cell early), CR and LF flattened to spaces, ``<`` and ``>`` as entities
    (no raw HTML in a PR comment), ``[`` and ``]`` escaped (no link or image: a link's text can say
    anything, an image loads an outside URL; docs/security.md); None is empty."""
    text = "" if text is None else str(text)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    text = text.replace("[", "\\[").replace("]", "\\]")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def markdown_code(text: object) -> str:
    """Outside text as an inline code span in a table cell or line (commands, refs): shown as written,
    since HTML and entities are literal inside code, so only CR/LF are flattened and pipes escaped
    (with any backslashes before them doubled, as ``markdown_cell`` does); the fence is one backtick
    longer than the longest run in the text, so a backtick cannot close the span early."""
    text = "" if text is None else str(text)
    text = re.sub(r"(\\*)\|", lambda m: m.group(1) * 2 + "\\|", text.replace("\r", " ").replace("\n", " "))
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"
