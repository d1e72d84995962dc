"""Small text policies shared by every writer of output: one-line messages, Markdown cells and code spans
(no agentflow imports: gate start-up)."""

from __future__ import annotations

import re


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
