"""CLAUDE.md patterns: parsing, linting, and choosing the ones a plan needs.

A pattern is a heading (level >= 2) documenting one convention, with the parts *When to use*,
*Pattern*, *Anti-patterns* and *Rationale* as sub-headings or bold lead-ins. Sub-headings that are
parts belong to their pattern; a heading that only groups other patterns is not a pattern itself.

Selection is explicit first (the plan's ``patterns:`` list) and otherwise by word overlap with the
plan within a token budget; every selected pattern carries the reason it was chosen, so agentflow
can show what it inferred.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentflow.errors import UsageError
from agentflow.files import read_text_file
from agentflow.markdown import Heading, code_mask, headings, normalise, slugify

if TYPE_CHECKING:
    from agentflow.config import Config
    from agentflow.plans import Plan

PART_NAMES: dict[str, str] = {
    "when": "When to use",
    "pattern": "Pattern",
    "anti-patterns": "Anti-patterns",
    "rationale": "Rationale",
}
_PART_ALIASES: dict[str, set[str]] = {
    "when": {
        "when to use",
        "when",
        "use when",
        "use it when",
        "when to apply",
        "applies when",
        "applies to",
        "scope",
        "usage",
        "when to use it",
    },
    "pattern": {
        "pattern",
        "the pattern",
        "example",
        "examples",
        "code",
        "how",
        "how to",
        "do",
        "do this",
        "implementation",
        "pattern (code example)",
        "code example",
    },
    "anti-patterns": {
        "anti-pattern",
        "anti-patterns",
        "antipattern",
        "antipatterns",
        "anti patterns",
        "anti pattern",
        "avoid",
        "don't",
        "dont",
        "do not",
        "don'ts",
        "not this",
        "pitfalls",
    },
    "rationale": {"rationale", "why", "reason", "reasons", "reasoning", "motivation", "because"},
}
_BOLD_LEAD = re.compile(r"^\s*(?:[-*+]\s+)?(?:\*\*|__)(.+?)(?:\*\*|__)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STOPWORDS = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "that",
        "this",
        "from",
        "into",
        "when",
        "then",
        "than",
        "must",
        "should",
        "will",
        "have",
        "has",
        "are",
        "was",
        "were",
        "not",
        "any",
        "all",
        "each",
        "every",
        "use",
        "using",
        "used",
        "can",
        "may",
        "its",
        "our",
        "your",
        "their",
        "them",
        "they",
        "you",
        "one",
        "two",
        "new",
        "add",
        "make",
        "also",
        "only",
        "more",
        "most",
        "such",
        "some",
        "what",
        "which",
        "who",
        "how",
        "why",
        "where",
        "does",
        "done",
        "after",
        "before",
        "over",
        "under",
        "about",
        "between",
        "there",
        "here",
        "these",
        "those",
        "been",
        "being",
        "very",
        "just",
        "like",
        "want",
        "need",
        "needs",
        "file",
        "files",
        "code",
    ]
)
CHARS_PER_TOKEN = 4


def part_of(title: str) -> str | None:
    """The part a heading or bold lead-in names (``"Why"`` -> ``"rationale"``), or None."""
    text = normalise(title)
    for part, aliases in _PART_ALIASES.items():
        if text in aliases:
            return part
    return None


@dataclass(frozen=True)
class Pattern:
    id: str
    title: str
    level: int
    body: str
    parts: frozenset[str] = frozenset()
    line: int = 0
    source: str = "CLAUDE.md"

    @property
    def missing_parts(self) -> list[str]:
        return [name for key, name in PART_NAMES.items() if key not in self.parts]

    @property
    def text(self) -> str:
        return f"{'#' * self.level} {self.title}\n\n{self.body.strip()}\n"

    @property
    def tokens(self) -> int:
        """A rough token count (~4 characters per token): good enough for a budget."""
        return math.ceil(len(self.text) / CHARS_PER_TOKEN)


@dataclass
class _Node:
    heading: Heading
    end: int  # exclusive line index where its subtree ends
    part: str | None = None
    children: list[_Node] = field(default_factory=list)


def _tree(lines: list[str]) -> list[_Node]:
    """Headings of level >= 2 as a forest; a level-1 heading (the document title) closes every section."""
    all_headings = headings(lines)
    roots: list[_Node] = []
    stack: list[_Node] = []
    for position, heading in enumerate(all_headings):
        if heading.level == 1:
            stack.clear()
            continue
        following = (h.index for h in all_headings[position + 1 :] if h.level <= heading.level)
        node = _Node(heading, next(following, len(lines)))
        while stack and stack[-1].heading.level >= heading.level:
            stack.pop()
        if stack:
            node.part = part_of(heading.title)
            stack[-1].children.append(node)
        else:
            roots.append(node)
        stack.append(node)
    return roots


def _own_lines(node: _Node, lines: list[str]) -> list[int]:
    """Indexes of the node's body lines, part sub-sections included, other sub-sections excluded."""
    excluded: set[int] = set()
    for child in node.children:
        if child.part is None:
            excluded.update(range(child.heading.index, child.end))
    return [i for i in range(node.heading.index + 1, node.end) if i not in excluded]


def parse_patterns(text: str, source: str = "CLAUDE.md") -> list[Pattern]:
    """Every pattern in a CLAUDE.md text, in document order."""
    lines = text.splitlines()
    mask = code_mask(lines)
    patterns: list[Pattern] = []

    def visit(node: _Node) -> None:
        own = _own_lines(node, lines)
        parts = {child.part for child in node.children if child.part}
        parts |= {p for i in own if not mask[i] and (m := _BOLD_LEAD.match(lines[i])) and (p := part_of(m.group(1)))}
        pattern_children = [child for child in node.children if child.part is None]
        own_text = "\n".join(lines[i] for i in own).strip()
        is_group = pattern_children and not parts
        if not is_group and (own_text or not pattern_children):
            patterns.append(
                Pattern(
                    id=slugify(node.heading.title) or f"line-{node.heading.line}",
                    title=node.heading.title,
                    level=node.heading.level,
                    body=own_text,
                    parts=frozenset(parts),
                    line=node.heading.line,
                    source=source,
                )
            )
        for child in pattern_children:
            visit(child)

    for root in _tree(lines):
        visit(root)
    return patterns


def patterns_path(root: Path, cfg: Config | None = None) -> Path:
    return root / (cfg.patterns.file if cfg is not None else "CLAUDE.md")


def load_patterns(root: Path, cfg: Config | None = None) -> list[Pattern]:
    """The patterns of the repository at ``root``; an empty list when it has no CLAUDE.md."""
    path = patterns_path(root, cfg)
    if not path.exists():
        return []
    return parse_patterns(read_text_file(path, where=path.name), source=path.name)


def require_patterns(root: Path, cfg: Config | None = None) -> list[Pattern]:
    """Like ``load_patterns`` but a missing file is an error (exit 2) naming the fix."""
    path = patterns_path(root, cfg)
    if not path.is_file():
        raise UsageError("no such file", where=path.name, fix="run `agentflow init` to create a CLAUDE.md skeleton")
    return load_patterns(root, cfg)


def find_pattern(patterns: list[Pattern], name: str, where: str = "CLAUDE.md") -> Pattern:
    """The pattern with id (or title) ``name``; an error suggesting the closest id otherwise."""
    wanted = slugify(name)
    for pattern in patterns:
        if pattern.id == wanted:
            return pattern
    close = difflib.get_close_matches(wanted, [p.id for p in patterns], n=1)
    fix = f"did you mean `{close[0]}`?" if close else "list them with `agentflow patterns list`"
    raise UsageError(f"patterns: unknown pattern {name!r}", where=where, fix=fix)


@dataclass(frozen=True)
class Selection:
    """A chosen pattern and why it was chosen."""

    pattern: Pattern
    reason: str
    score: float = 0.0


def words(text: str) -> list[str]:
    """Content words of ``text``: lower case, CamelCase split (and kept whole), stop words and short words dropped."""
    found: list[str] = []
    for token in _WORD.findall(text):
        pieces = {token.lower(), *(p.lower() for p in _CAMEL.findall(token)), *token.lower().split("_")}
        for piece in pieces:
            if len(piece) >= 3 and piece not in STOPWORDS and not piece.isdigit():
                found.append(_stem(piece))
    return found


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def choose_patterns(patterns: list[Pattern], plan: Plan | None, token_budget: int) -> list[Selection]:
    """The patterns for ``plan`` with reasons: the ones it names, else the most relevant within the budget.

    Relevance is word overlap between the plan (title, body, scope) and each pattern, weighted by how
    rare a word is among the patterns so that words every pattern uses count little. Patterns that
    share no word with the plan are never chosen. A pattern that does not fit the remaining budget is
    skipped and smaller relevant ones may still fit.
    """
    if plan is not None and plan.patterns:
        from agentflow.plans import display_path

        where = display_path(plan.path)
        return [Selection(find_pattern(patterns, name, where=where), "named in the plan") for name in plan.patterns]
    if plan is None or not patterns:
        return []
    plan_words = Counter(words(f"{plan.title} {plan.title} {plan.body} {' '.join(plan.scope)}"))
    documents = [Counter(words(f"{p.title} {p.title} {p.body}")) for p in patterns]
    frequency = Counter(word for doc in documents for word in doc)
    scored: list[tuple[float, int, list[str]]] = []
    for index, doc in enumerate(documents):
        shared = [w for w in doc if w in plan_words]
        weights = {w: math.log(1 + len(patterns) / frequency[w]) * min(plan_words[w], 3) for w in shared}
        score = sum(weights.values())
        if score > 0:
            top = sorted(shared, key=lambda w: (-weights[w], w))[:4]
            scored.append((score, index, top))
    scored.sort(key=lambda item: (-item[0], item[1]))
    chosen: list[Selection] = []
    used = 0
    for score, index, top in scored:
        pattern = patterns[index]
        if used + pattern.tokens > token_budget:
            continue
        used += pattern.tokens
        chosen.append(Selection(pattern, f"relevant: shares {', '.join(top)}", round(score, 2)))
    return chosen


def select_patterns(patterns: list[Pattern], plan: Plan | None, token_budget: int) -> list[Pattern]:
    """The patterns for ``plan`` (see ``choose_patterns`` for how and why)."""
    return [selection.pattern for selection in choose_patterns(patterns, plan, token_budget)]


def render_patterns(patterns: list[Pattern]) -> str:
    """The patterns as Markdown for a prompt (their original text, in the given order)."""
    return "\n".join(pattern.text for pattern in patterns)


@dataclass(frozen=True)
class LintProblem:
    pattern: Pattern | None
    message: str

    def __str__(self) -> str:
        if self.pattern is None:
            return self.message
        return f"{self.pattern.source}:{self.pattern.line}: {self.pattern.id}: {self.message}"


def lint_patterns(patterns: list[Pattern]) -> list[LintProblem]:
    """Patterns missing recommended parts, and duplicate ids (which make names ambiguous)."""
    problems: list[LintProblem] = []
    seen: dict[str, Pattern] = {}
    for pattern in patterns:
        if pattern.missing_parts:
            problems.append(LintProblem(pattern, f"missing {', '.join(pattern.missing_parts)}"))
        if pattern.id in seen:
            problems.append(LintProblem(pattern, f"duplicate id (also line {seen[pattern.id].line}); rename a heading"))
        seen.setdefault(pattern.id, pattern)
    return problems
