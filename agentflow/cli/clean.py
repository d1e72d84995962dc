"""``agentflow clean``: remove abandoned plan worktrees and branches."""

from __future__ import annotations

from typing import Annotated

import typer

from agentflow.cli import _common


def clean(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Say what would be removed; remove nothing.")
    ] = False,
    unmerged: Annotated[
        bool, typer.Option("--unmerged", help="Also remove plan branches not merged into the base (drops their work).")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Also remove worktrees with uncommitted changes.")] = False,
) -> None:
    """Remove plan worktrees and branches nobody will build or merge again.

    Removed: checkouts left by killed runs, plan branches merged into the base and branches whose
    plan file is gone, each with its worktree under .agentflow/worktrees/. Kept, with the reason:
    unmerged plan branches (unless --unmerged), worktrees with uncommitted changes (unless --force),
    and any plan being built right now. Verdict notes are never touched.

    Examples:

      agentflow clean --dry-run

      agentflow clean

      agentflow clean --unmerged --force
    """
    from agentflow.clean import clean as remove
    from agentflow.clean import survey

    repo = _common.repo()
    items = survey(repo, _common.config(repo.root), unmerged=unmerged, force=force)
    for item in items:  # each said once done: a removal that fails leaves the ones before it reported
        if item.remove and not dry_run:
            remove(repo, [item])
        _common.out(item.describe(repo.root, dry_run))
    if not items:
        _common.out("nothing to clean")


def register(app: typer.Typer) -> None:
    app.command()(clean)
