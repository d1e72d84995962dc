"""The little Markdown structure plans and patterns need: headings, sections and list items.

Not a Markdown parser: it knows ATX headings (``## Title``), fenced code blocks (whose content is
never taken for structure) and list items. That is all plan files and CLAUDE.md patterns use, and it
keeps line numbers exact so that errors can name them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ITEM = re.compile(r"^( {0,3})(?:[-*+]|\d{1,9}[.)])[ \t]+(.*)$")


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    index: int  # 0-based index of the heading line in the text's lines

    @property
    def line(self) -> int:
        return self.index + 1


@dataclass(frozen=True)
class ListItem:
    text: str
    line: int  # 1-based


def slugify(text: str, max_length: int | None = None) -> str:
    """``"Enforce capsule isolation!"`` -> ``"enforce-capsule-isolation"`` (ASCII, lower case)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if max_length is not None and len(slug) > max_length:
        cut = slug[:max_length]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut
    return slug


def code_mask(lines: list[str]) -> list[bool]:
    """``True`` for each line inside (or delimiting) a fenced code block."""
    mask: list[bool] = []
    fence: str | None = None
    for line in lines:
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                mask.append(True)
                continue
            mask.append(False)
        else:
            mask.append(True)
            if (
                match
                and match.group(1)[0] == fence[0]
                and len(match.group(1)) >= len(fence)
                and (line.strip() == match.group(1))
            ):
                fence = None
    return mask


def headings(lines: list[str]) -> list[Heading]:
    """The ATX headings outside code blocks, in order."""
    mask = code_mask(lines)
    found = []
    for index, (line, in_code) in enumerate(zip(lines, mask, strict=True)):
        if not in_code and (match := _HEADING.match(line)):
            found.append(Heading(len(match.group(1)), match.group(2).strip(), index))
    return found


def section_range(lines: list[str], heading: Heading, all_headings: list[Heading]) -> tuple[int, int]:
    """Line indexes ``[start, end)`` of the body under ``heading`` (up to the next heading at its level or above)."""
    end = len(lines)
    for other in all_headings:
        if other.index > heading.index and other.level <= heading.level:
            end = other.index
            break
    return heading.index + 1, end


def find_section(lines: list[str], names: set[str]) -> tuple[Heading, int, int] | None:
    """The first heading whose normalised title is in ``names``, with its body range."""
    all_headings = headings(lines)
    for heading in all_headings:
        if normalise(heading.title) in names:
            start, end = section_range(lines, heading, all_headings)
            return heading, start, end
    return None


def normalise(title: str) -> str:
    """Lower case, markup and trailing punctuation removed: ``"**Why?**"`` -> ``"why"``."""
    text = re.sub(r"[*_`]", "", title).strip().lower()
    text = re.sub(r"\s+", " ", text)
    return text.rstrip(":.?! ").strip()


def list_items(lines: list[str], start: int, end: int) -> list[ListItem]:
    """Top-level list items in ``lines[start:end]``; indented continuation lines join their item."""
    mask = code_mask(lines)
    items: list[ListItem] = []
    current: list[str] | None = None
    current_line = 0
    for index in range(start, end):
        line = lines[index]
        match = None if mask[index] else _ITEM.match(line)
        if match:
            if current is not None:
                items.append(ListItem(" ".join(current).strip(), current_line))
            current, current_line = [match.group(2).strip()], index + 1
        elif current is not None and line.strip() and line[:1] in (" ", "\t"):
            current.append(line.strip())
        elif current is not None and not line.strip():
            continue
        elif current is not None:
            items.append(ListItem(" ".join(current).strip(), current_line))
            current = None
    if current is not None:
        items.append(ListItem(" ".join(current).strip(), current_line))
    return items
