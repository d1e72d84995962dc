"""Every command a user can run is in the README's command table and in a page of docs/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from agentflow.cli import app

ROOT = Path(__file__).resolve().parents[1]


def _commands(group, path=()):
    for name, command in getattr(group, "commands", {}).items():
        if not command.hidden:
            yield (*path, name)
            yield from _commands(command, (*path, name))


COMMANDS = sorted(_commands(typer.main.get_command(app)))


def _mentions(line: str, path: tuple[str, ...]) -> bool:
    """``agentflow hooks install | uninstall`` names both subcommands: the line names the command
    and each word of the rest of its path."""
    head = re.search(rf"agentflow {re.escape(path[0])}\b(.*)", line)
    return head is not None and all(re.search(rf"\b{re.escape(word)}\b", head.group(1)) for word in path[1:])


def test_the_walk_finds_the_commands() -> None:
    assert {("build",), ("gate",), ("hooks", "uninstall"), ("ledger", "import")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_command_is_in_the_readme_table_and_the_docs(path: tuple[str, ...]) -> None:
    table = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `agentflow")]
    assert any(_mentions(line, path) for line in table), f"README.md's command table lacks `agentflow {' '.join(path)}`"
    pages = [
        page
        for page in sorted((ROOT / "docs").glob("*.md"))
        if any(_mentions(line, path) for line in page.read_text().splitlines())
    ]
    assert pages, f"no page in docs/ names `agentflow {' '.join(path)}`"
