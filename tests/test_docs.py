"""Every command a user can run is in the README's command table and in a page of docs/, and every
option README.md and docs/ give a command is one its --help lists."""

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


DOCS = sorted(
    [ROOT / "README.md", ROOT / "CLAUDE.md", ROOT / "benchmarks" / "README.md", *(ROOT / "docs").glob("*.md")]
)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered from -1."""
    seen: dict[str, int] = {}
    for line in _FENCE.sub("", page.read_text()).splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        if count:
            seen[f"{slug}-{count}"] = 1
    return set(seen)


def test_the_link_check_reads_github_anchors(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Run integrity (git)\n## `agentflow clean`\n```\n# not a heading\n```\n## Notes\n## Notes\n")
    assert _anchors(page) == {"run-integrity-git", "agentflow-clean", "notes", "notes-1"}


@pytest.mark.parametrize("page", DOCS, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_link_between_the_docs_leads_somewhere(page: Path) -> None:
    broken = []
    for target in _LINK.findall(_FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:: not ours to check offline
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {', '.join(broken)}"


def _documented_options() -> dict[tuple[str, ...], set[str]]:
    """The options README.md and docs/ write after `agentflow <command>` (in code spans, tables and
    command lines; a shell comment after `#` is not agentflow's)."""
    root = typer.main.get_command(app)
    found: dict[tuple[str, ...], set[str]] = {}
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in page.read_text().splitlines():
            line = re.sub(r"\s#\s.*", "", line)  # `agentflow merge 2   # ... merge --no-ff`: git's option
            for match in re.finditer(r"agentflow((?: [a-z][a-z-]*)+)([^`|\n]*)", line):
                command, path = root, []
                words = match.group(1).split()
                for word in words:
                    sub = getattr(command, "commands", {}).get(word)
                    if sub is None:
                        break
                    command, path = sub, [*path, word]
                if not path or getattr(command, "commands", None):
                    continue
                tail = " ".join(words[len(path) :]) + match.group(2)
                found.setdefault(tuple(path), set()).update(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", tail))
    return found


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_the_docs_give_a_command_is_in_its_help(path: tuple[str, ...]) -> None:
    from typer.testing import CliRunner

    command = typer.main.get_command(app)
    for word in path:
        command = command.commands[word]
    if getattr(command, "commands", None):
        return  # a group: its subcommands are checked
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "Examples" in result.output, result.output
    options = {name for param in command.params for name in (*param.opts, *param.secondary_opts)}
    missing = _documented_options().get(path, set()) - options - {"--help"}
    assert not missing, f"README.md or docs/ give `agentflow {' '.join(path)}` options it does not have: {missing}"
    assert all(option in result.output for option in options if option.startswith("--") and not command.hidden)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_value_is_named_not_typed(path: tuple[str, ...]) -> None:
    """typer's own labels read as Python: `PLAN <list[str]>`, `--jobs <int range>`, `--backend
    <str>`. Each option that takes a value names it in capitals (`--jobs N`, `--script FILE`), and
    an argument's name is its metavar (agentflow.cli._value_name)."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    panels = [line for line in result.output.splitlines() if line.startswith("│")]
    typed = [line.strip("│ ") for line in panels if re.search(r"<[a-z][a-z\[\], ]*>", line)]
    assert not typed, f"`agentflow {' '.join(path)} --help` shows Python types: {typed}"
    lower = [line.strip("│ ") for line in panels if re.match(r"│ [* ]\s+[a-z][a-z_]*\s", line)]
    assert not lower, f"`agentflow {' '.join(path)} --help` names an argument in lower case: {lower}"
