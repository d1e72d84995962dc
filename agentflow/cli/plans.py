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
        "  agentflow plan check\n\n"
        "  agentflow plan list --json --status ready --unbuilt"
    ),
    no_args_is_help=True,
)


def _root() -> Path:
    return _common.repo().root


@plan_app.command("new")
def new(
    title: Annotated[str, typer.Argument(metavar="TITLE", help="The plan's title; the file name is made from it.")],
    plan_id: Annotated[
        str | None,
        typer.Option("--id", metavar="ID", help="The plan id (a number or slug); default: the next free number."),
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
        list[Path] | None,
        typer.Argument(metavar="PLAN...", help="Plan files to check; default: every plan under .plans/."),
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
        count = len(plan.criteria)
        criteria = f"{count} acceptance criteri{'on' if count == 1 else 'a'}"
        _common.out(f"OK {display_path(plan.path)}: {plan.id} {plan.title!r} ({criteria})")
        for warning in plan_warnings(plan):
            _common.err(f"agentflow: warning: {display_path(plan.path)}: {warning}")
    for error in errors:
        _common.err(f"agentflow: error: {error}")
    _common.exit_with(2 if errors else 0)


@plan_app.command("list")
def list_plans(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON job matrix (for CI fan-out).")] = False,
    status: Annotated[
        str | None, typer.Option("--status", metavar="STATUS", help="Only plans whose status is STATUS: draft, ready.")
    ] = None,
    unbuilt: Annotated[bool, typer.Option("--unbuilt", help="Only plans with no run in the ledger yet.")] = False,
) -> None:
    """List the plans under .plans/: id, branch, title; with --json a CI job matrix.

    The JSON is a list of {"id", "path", "title", "branch"}, one per plan, for a matrix job
    (`fromJSON(...)` in GitHub Actions). Exit 2 when a plan file is invalid.

    Examples:

      agentflow plan list

      agentflow plan list --json --status ready --unbuilt
    """
    import json

    from agentflow.errors import PlanError, UsageError
    from agentflow.plans import check_plans, find_plans
    from agentflow.records import plan_matrix, plan_states

    if status is not None and status not in ("draft", "ready"):
        raise UsageError(f"--status {status}: unknown plan status", fix="use draft or ready")
    root = _root()
    plans, errors = check_plans(find_plans(root), root)
    for error in errors:
        _common.err(f"agentflow: error: {error}")
    if errors:
        raise PlanError(
            f"{len(errors)} plan file{' is' if len(errors) == 1 else 's are'} invalid",
            fix="`agentflow plan check` shows every problem",
        )
    entries = plan_matrix(plans, plan_states(root), root, status=status, unbuilt=unbuilt)
    if as_json:
        _common.out(json.dumps(entries))
        return
    for entry in entries:
        _common.out(f"{entry['id']:>6}  {entry['branch']:<40}  {entry['title']}")
    if not entries:  # stderr: stdout stays the list (empty), for scripts
        filters = " ".join(f for f in (f"--status {status}" if status else "", "--unbuilt" if unbuilt else "") if f)
        _common.err(f"no plan matches {filters}" if plans else 'no plans yet under .plans/: agentflow plan new "Title"')


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")
