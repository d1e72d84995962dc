"""YAML read with its source lines: where each key stands, and which keys a mapping repeats.

Plain ``yaml.safe_load`` keeps the last of two equal keys without a word and forgets line numbers;
plan front matter and ``agentflow.yaml`` need both to name the line a problem is on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str, ...]


@dataclass
class YamlSource:
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)  # key path -> 1-based line of the key
    duplicates: list[tuple[KeyPath, int, int]] = field(default_factory=list)  # (path, line, first line)

    def line(self, path: KeyPath, offset: int = 0) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one, shifted by ``offset``."""
        while path:
            if path in self.lines:
                return self.lines[path] + offset
            path = path[:-1]
        return None


def syntax_error(exc: yaml.YAMLError, *, offset: int = 0) -> tuple[int | None, str]:
    """Where a YAML syntax error is (1-based line, shifted by ``offset``) and what it is, on one line
    (``str(exc)`` spans several lines with a caret drawing)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or "malformed YAML"
    return (mark.line + 1 + offset if mark is not None else None), " ".join(str(problem).split())


# libyaml's parser when PyYAML has it: six times faster on a plan or a config, which every build
# run parses on its way to its first model call (the -j runs at the same moment, on one GIL)
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def load(text: str) -> YamlSource:
    """Parse ``text`` (raises ``yaml.YAMLError``) and map every mapping key to its line.

    Parsed by libyaml when PyYAML has it; a text it refuses is parsed again by PyYAML's own parser,
    which raises the error (its messages and lines are the ones users see) or, where the two
    disagree, reads it as before."""
    if _FAST_LOADER is not None:
        try:
            return _load(text, _FAST_LOADER)
        except yaml.YAMLError:
            pass
    return _load(text, yaml.SafeLoader)


# How many nodes a document may stand for once its aliases are expanded: a config or a plan has tens.
# Nine anchors of nine aliases each (``a1: &a1 [*a0, *a0, ...]``) stand for 387 million: the checkout's
# agentflow.yaml (a pull request's, which ``gate`` and ``status`` read) or a plan new in the change
# made agentflow walk them all, 3.4 GB after a minute (tests/test_attacks_yaml_aliases.py).
MAX_NODES = 100_000


class TooLarge(yaml.MarkedYAMLError):
    """A document whose aliases expand beyond ``MAX_NODES`` nodes, or nested deeper than Python's
    recursion limit (a YAMLError: every reader refuses it as malformed YAML, naming the line)."""


def _expanded_size(root: yaml.Node) -> int:
    """The number of nodes ``root`` stands for with every alias expanded, counted once per distinct
    node (an alias is the same node object), without recursion."""
    sizes: dict[int, int] = {}
    opened: set[int] = set()  # a node whose children are being counted: an alias back to it is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes or (not done and id(node) in opened):
            continue
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            sizes[id(node)] = 1
            continue
        if not done:
            opened.add(id(node))
            stack.append((node, True))
            stack += [(child, False) for child in children if id(child) not in sizes]
            continue
        if any(id(child) in opened and id(child) not in sizes for child in children):
            return MAX_NODES + 1  # a cycle (``&a [*a]``): stands for an endless value
        sizes[id(node)] = min(1 + sum(sizes.get(id(child), 1) for child in children), MAX_NODES + 1)
    return sizes[id(root)]


def _load(text: str, loader_class: Any) -> YamlSource:
    try:
        return _load_nodes(text, loader_class)
    except RecursionError:  # ``[[[[...]]]]`` nested thousands deep: PyYAML and the walk recurse
        raise TooLarge(problem="the document is nested too deep") from None


def _load_nodes(text: str, loader_class: Any) -> YamlSource:
    loader = loader_class(text)  # what yaml.compose and yaml.safe_load do, with one parse, not two
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node) > MAX_NODES:
            raise TooLarge(
                problem=f"the document stands for more than {MAX_NODES:,} values once its aliases are expanded",
                problem_mark=node.start_mark,
            )
        source = YamlSource(data=loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()
    if node is not None:
        _walk(node, (), source)
    return source


def _walk(node: yaml.Node, path: KeyPath, source: YamlSource) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                source.duplicates.append(((*path, key), line, seen[key]))
            else:
                seen[key] = line
                source.lines[(*path, key)] = line
            _walk(value_node, (*path, key), source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            source.lines.setdefault((*path, str(index)), item.start_mark.line + 1)
            _walk(item, (*path, str(index)), source)
