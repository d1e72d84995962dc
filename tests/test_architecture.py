"""The layering CLAUDE.md promises, read from the source: domain modules never import typer, rich or
click; the graph of module-level imports is a DAG; the module map names every module."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "agentflow"
CLAUDE_MD = PACKAGE.parent / "CLAUDE.md"
FRONT_ENDS = ("agentflow.cli", "agentflow.__main__")  # where typer and rich may be imported


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, module level?) for every import in ``path``; ``if TYPE_CHECKING``
    blocks are skipped (they never run)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def walk(node: ast.AST, top: bool) -> Iterator[tuple[str, int, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            here = top and not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                yield from ((alias.name, child.lineno, here) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base, child.lineno, here
                yield from ((f"{base}.{alias.name}", child.lineno, here) for alias in child.names)
            yield from walk(child, here)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")), True)


def _internal(target: str, modules: dict[str, Path]) -> str | None:
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def test_domain_modules_never_import_typer_rich_or_click() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
        for name, path in _modules().items()
        if not name.startswith(FRONT_ENDS)
        for target, line, _ in _imports(name, path)
        if target.split(".")[0] in ("typer", "rich", "click")
    ]
    assert offenders == []


def test_module_level_imports_form_a_dag() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _, top in _imports(name, path):
            found = _internal(target, modules) if top and target.startswith("agentflow") else None
            # a package's __init__ is run before its submodules: importing a parent is no edge back
            if found and found != name and not name.startswith(f"{found}."):
                graph[name].add(found)
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_checker_sees_a_cycle_and_a_domain_typer_import(tmp_path: Path, monkeypatch) -> None:
    """The two checks above, on a planted package, fail as they should (they are not vacuous)."""
    package = tmp_path / "agentflow"
    (package / "cli").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cli" / "__init__.py").write_text("import typer\n")
    (package / "a.py").write_text("from agentflow import b\n")
    (package / "b.py").write_text("import rich\nfrom . import a\n\ndef lazy():\n    from agentflow import c\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agentflow import b\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", package)
    try:
        test_module_level_imports_form_a_dag()
    except AssertionError as exc:
        assert "agentflow.a -> agentflow.b -> agentflow.a" in str(exc)
    else:
        raise AssertionError("the planted cycle a -> b -> a was not found")
    try:
        test_domain_modules_never_import_typer_rich_or_click()
    except AssertionError as exc:
        assert "agentflow/b.py:1 imports rich" in str(exc) and "cli" not in str(exc)
    else:
        raise AssertionError("the planted rich import in a domain module was not found")


def test_claude_md_module_map_names_every_module() -> None:
    """A newcomer reads the map first (CLAUDE.md): every top-level module and package is on it."""
    text = CLAUDE_MD.read_text(encoding="utf-8")
    block = re.search(r"Module map.*?```text\n(.*?)```", text, re.S)
    assert block, "CLAUDE.md has no ```text module map block after 'Module map'"
    named = set(re.findall(r"[A-Za-z_]+(?:\.py|/)", block.group(1)))
    missing = [
        entry
        for path in sorted(PACKAGE.iterdir())
        if (entry := f"{path.name}/" if path.is_dir() else path.name) not in named
        and path.name not in ("__init__.py", "__pycache__")
        and (path.suffix == ".py" or (path / "__init__.py").exists())
    ]
    assert missing == [], f"CLAUDE.md's module map does not name {', '.join(missing)}: add a line for each"
