"""``agentflow plan new | check``: write plan files from a template and validate them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentflow.cli import _common

plan_app = typer.Typer(
    help=(
        "Create and validate plan files (.plans/<id>-<slug>.md).\n\n"
        "Examples:\n\n"
        '  agentflow plan new "Enforce capsule isolation"\n\n'
        "  agentflow plan check"
    ),
    no_args_is_help=True,
)


def _root() -> Path:
    return _common.repo().root


@plan_app.command("new")
def new(
    title: Annotated[str, typer.Argument(help="The plan's title; the file name is made from it.")],
    plan_id: Annotated[
        str | None, typer.Option("--id", help="The plan id (a number or slug); default: the next free number.")
    ] = None,
) -> None:
    """Write a new plan file from the template (never overwrites an existing plan).

    Examples:

      agentflow plan new "Add rate limiting to the API"

      agentflow plan new "Enforce capsule isolation" --id 348
    """
    from agentflow.plans import display_path, new_plan

    path = new_plan(_root(), title, plan_id)
    _common.out(f"created {display_path(path)}")


@plan_app.command("check")
def check(
    plans: Annotated[
        list[Path] | None, typer.Argument(help="Plan files to check; default: every plan under .plans/.")
    ] = None,
) -> None:
    """Validate plan files: front matter, ids (unique across .plans/), patterns (in CLAUDE.md),
    estimate, acceptance criteria.

    Prints OK per valid plan; exit 2 when any plan is invalid, one line per problem (every problem
    of every file, not only the first).

    Examples:

      agentflow plan check

      agentflow plan check .plans/348-capsule-isolation.md
    """
    from agentflow.config import load_config
    from agentflow.errors import PlanError
    from agentflow.patterns import load_patterns
    from agentflow.plans import check_plans, display_path, find_plans, plan_warnings

    root = _root()
    paths = list(plans) if plans else find_plans(root)
    if not paths:
        raise PlanError("no plan files under .plans/", fix='create one with `agentflow plan new "Title"`')
    known = {pattern.id for pattern in load_patterns(root, load_config(root))}
    checked, errors = check_plans(paths, root, known)
    for plan in checked:
        criteria = f"{len(plan.criteria)} acceptance criteria"
        _common.out(f"OK {display_path(plan.path)}: {plan.id} {plan.title!r} ({criteria})")
        for warning in plan_warnings(plan):
            _common.err(f"agentflow: warning: {display_path(plan.path)}: {warning}")
    for error in errors:
        _common.err(f"agentflow: error: {error}")
    _common.exit_with(2 if errors else 0)


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
