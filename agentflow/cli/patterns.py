"""``agentflow patterns list | show | lint``: the conventions in CLAUDE.md, as agentflow reads them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agentflow.cli import _common

if TYPE_CHECKING:
    from agentflow.config import Config
    from agentflow.patterns import Pattern

patterns_app = typer.Typer(
    help=(
        "Read the project's patterns from CLAUDE.md.\n\n"
        "Examples:\n\n"
        "  agentflow patterns list\n\n"
        "  agentflow patterns show capsule-isolation\n\n"
        "  agentflow patterns lint\n\n"
        "  agentflow patterns list --plan 348"
    ),
    no_args_is_help=True,
)


def _load() -> tuple[Path, Config, list[Pattern]]:
    """The repository root, its config and its patterns (a missing CLAUDE.md is exit 2)."""
    from agentflow.patterns import require_patterns

    root = _common.repo().root
    cfg = _common.config(root)
    return root, cfg, require_patterns(root, cfg)


@patterns_app.command("list")
def list_(
    plan: Annotated[
        str | None,
        typer.Option("--plan", metavar="PLAN", help="Show the patterns chosen for this plan (path or id), and why."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the patterns: id, parts present, size in tokens; with --plan, the ones chosen for it and why.

    Examples:

      agentflow patterns list

      agentflow patterns list --plan .plans/348-capsule-isolation.md
    """
    from agentflow.patterns import PART_NAMES, choose_patterns
    from agentflow.plans import resolve_plan

    root, cfg, patterns = _load()
    if plan is None:
        rows = [(p, "") for p in patterns]
    else:
        chosen = choose_patterns(patterns, resolve_plan(root, plan), cfg.patterns.token_budget)
        rows = [(s.pattern, s.reason) for s in chosen]
    if as_json:
        data = [
            {"id": p.id, "title": p.title, "line": p.line, "parts": sorted(p.parts), "tokens": p.tokens}
            | ({"reason": reason} if plan is not None else {})
            for p, reason in rows
        ]
        _common.out(json.dumps(data, indent=2))
        return
    if not rows:
        _common.out("no patterns" + (" relevant to this plan" if plan is not None else " in " + cfg.patterns.file))
        return
    width = max(len(p.id) for p, _ in rows)
    for p, reason in rows:
        parts = "".join(name[0] if key in p.parts else "-" for key, name in PART_NAMES.items())
        _common.out(f"{p.id:<{width}}  {parts}  {p.tokens:>5} tok  {reason or p.title}")


@patterns_app.command("show")
def show(
    pattern_id: Annotated[str, typer.Argument(metavar="ID", help="The pattern id (see `patterns list`).")],
) -> None:
    """Print one pattern as agentflow passes it to the builder and verifier.

    Examples:

      agentflow patterns show error-handling
    """
    from agentflow.patterns import find_pattern

    _, cfg, patterns = _load()
    _common.out(find_pattern(patterns, pattern_id, where=cfg.patterns.file).text.rstrip())


@patterns_app.command("lint")
def lint() -> None:
    """Report patterns missing When to use, Pattern, Anti-patterns or Rationale; exit 1 if any.

    Examples:

      agentflow patterns lint
    """
    from agentflow.patterns import lint_patterns

    _, cfg, patterns = _load()
    if not patterns:
        _common.err(f"{cfg.patterns.file}: no patterns (a pattern is a ## heading with its parts)")
        _common.exit_with(1)
    problems = lint_patterns(patterns)
    for problem in problems:
        _common.out(str(problem))
    if not problems:
        _common.out(f"OK {len(patterns)} patterns in {cfg.patterns.file}")
    _common.exit_with(1 if problems else 0)


def register(app: typer.Typer) -> None:
    app.add_typer(patterns_app, name="patterns")
