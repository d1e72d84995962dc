"""``agentflow init`` and ``agentflow status``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from agentflow.cli import _common


def init(
    ci: Annotated[
        str | None, typer.Option("--ci", metavar="PROVIDER", help="Also write a CI workflow; PROVIDER: github.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite agentflow.yaml, CLAUDE.md, the example plan and the workflow.")
    ] = False,
) -> None:
    """Set up agentflow in this git repository.

    Creates agentflow.yaml (commented defaults), .plans/ with an example plan, a CLAUDE.md skeleton
    showing the pattern format, and adds .agentflow/ to .gitignore. Existing files are kept unless
    --force is given. With --ci github, also .github/workflows/agentflow.yml, which runs
    `agentflow verify` and `agentflow gate` on every pull request and uploads SARIF.

    Examples:

      agentflow init

      agentflow init --ci github

      agentflow init --force
    """
    from agentflow.project import init_project

    root = _common.repo().root
    for action in init_project(root, ci=ci, force=force):
        _common.out(str(action))
    _common.out('next: agentflow plan new "Your change"  then  agentflow build .plans/<file>.md')


def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every plan under .plans/ with its state from the ledger, last outcome, cycles and cost.

    A plan without runs is "not started". Plans that cannot be read are reported (exit 2) after the
    table; a broken agentflow.yaml is exit 2 before it.

    Examples:

      agentflow status

      agentflow status --json
    """
    from agentflow.config import load_config
    from agentflow.errors import PlanError
    from agentflow.plans import check_plans, find_plans
    from agentflow.records import format_table, plan_states, status_rows

    root = _common.repo().root
    load_config(root)  # a misspelt or broken config is an error here too, not only when building
    plans, errors = check_plans(find_plans(root), root)
    rows = status_rows(plans, plan_states(root))
    if as_json:
        _common.out(json.dumps([row.to_dict() for row in rows], indent=2))
    elif rows:
        for line in format_table(rows):
            _common.out(line)
    else:
        _common.out('no plans yet: agentflow plan new "Title"')
    for error in errors:
        _common.err(f"agentflow: error: {error}")
    if errors:
        raise PlanError(
            f"{len(errors)} plan file(s) are invalid", fix="see above; `agentflow plan check` validates them"
        )


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(status)
