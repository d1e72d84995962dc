"""``agentflow init`` and ``agentflow status``."""

from __future__ import annotations

from typing import Annotated

import typer

from agentflow.cli import _common


def init(
    ci: Annotated[
        str | None,
        typer.Option("--ci", metavar="PROVIDER", help="Also write CI files; PROVIDER: github or gitlab."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite agentflow.yaml, CLAUDE.md, the example plan and the CI files.")
    ] = False,
    action: Annotated[
        str | None,
        typer.Option(
            "--action", metavar="OWNER/REPO@REF", help="The agentflow GitHub Action the CI files use, at an exact ref."
        ),
    ] = None,
    install: Annotated[
        str | None,
        typer.Option(
            "--install",
            metavar="SPEC",
            help="Instead of the action: a pinned pip requirement (VCS URL @commit, a file, or NAME==VERSION).",
        ),
    ] = None,
    fanout: Annotated[
        bool, typer.Option("--fanout", help="Also write the fan-out workflow: one runner per ready plan (github).")
    ] = False,
    max_parallel: Annotated[
        int | None, typer.Option("--max-parallel", metavar="N", help="Fan-out: plans built at once (default 4).")
    ] = None,
) -> None:
    """Set up agentflow in this git repository.

    Creates agentflow.yaml (commented defaults), .plans/ with an example plan, a CLAUDE.md skeleton
    showing the pattern format, and adds .agentflow/ to .gitignore. Existing files are kept unless
    --force is given.

    With --ci github, also .github/workflows/agentflow.yml: `agentflow verify` (SARIF to code
    scanning) and `agentflow gate` on every pull request, and the checks plus the gate on every
    merge-queue group; --fanout adds .github/workflows/agentflow-fanout.yml. With --ci gitlab,
    .gitlab-ci.yml with a code-quality report. The CI files run an exact agentflow: --action, else
    the commit this agentflow was installed from (pip's direct_url.json), else --install SPEC;
    never a bare package name (the name on the package index belongs to another project).

    Examples:

      agentflow init

      agentflow init --ci github --action acme/agentflow@v0.1.0

      agentflow init --ci github --fanout --max-parallel 8 --action acme/agentflow@3f2c...

      agentflow init --ci gitlab --install 'git+https://gitlab.example.com/tools/agentflow@<sha>'

      agentflow init --force
    """
    from agentflow.project import init_project

    root = _common.repo().root
    results = init_project(
        root, ci=ci, force=force, action=action, install=install, fanout=fanout, max_parallel=max_parallel
    )
    for done in results:
        _common.out(str(done))
    _common.out('next: agentflow plan new "Your change"  then  agentflow build .plans/<file>.md')


def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every plan under .plans/ with its state from the ledger, last outcome, cycles and cost.

    A plan without runs is "not started"; one whose last run was stopped during a session (Ctrl-C)
    is "interrupted" (continue it with `agentflow build --resume RUN`). Plans that cannot be read are
    reported (exit 2) after the table; a broken agentflow.yaml is exit 2 before it.

    Examples:

      agentflow status

      agentflow status --json
    """
    from agentflow.fastcli import plan_errors, status_lines  # what a plain command line runs without typer

    lines, errors = status_lines(as_json)
    for line in lines:
        _common.out(line)
    plan_errors(errors)


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(status)
