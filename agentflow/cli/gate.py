"""``agentflow gate | merge | approve --override | hooks | notes``: the merge gate and sharing verdicts."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated

import typer

from agentflow.cli import _common


class GateFormat(StrEnum):
    text = "text"
    json = "json"
    github = "github"
    codequality = "codequality"


def gate(
    ref: Annotated[str, typer.Argument(metavar="REF", help="The commit, branch or tag to check.")] = "HEAD",
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            metavar="BASE",
            help="The target REF merges into: binds the approval, recognises a clean rebase (default: config base).",
        ),
    ] = None,
    fmt: Annotated[
        GateFormat,
        typer.Option("--format", help="text, json, github (annotations + step summary), codequality (GitLab report)."),
    ] = GateFormat.text,
) -> None:
    """Exit 0 only if REF carries an approval bound to exactly its content; otherwise exit 1 and say why.

    The approval must be the latest of every verdict ever recorded on the commit (a later rejection
    revokes it, even if someone deleted it from the notes), its tree must equal REF's tree (any change
    makes it stale), REF's base must have the approved base tree (the approved tree re-parented onto a
    newer base is stale), and, when a signing key is configured (AGENTFLOW_SIGNING_KEY or
    AGENTFLOW_SIGNING_KEY_FILE) or gate.require_signature is true, it must carry a valid signature. A
    merge-queue commit (merges of approved heads onto --base) passes when every merge is clean.

    Examples:

      agentflow gate

      agentflow gate agentflow/348-capsule-isolation --base main

      agentflow gate HEAD --format github

      agentflow gate HEAD --base "$MERGE_GROUP_BASE_SHA" --format github

      agentflow gate HEAD --format codequality > gl-code-quality-report.json
    """
    from agentflow.gate import evaluate_gate
    from agentflow.inputs import gate_inputs

    repo = _common.repo()
    config, target = gate_inputs(repo, ref, base)  # the base's config, and REF and the base resolved once
    result = evaluate_gate(repo, ref, base=base, config=config, target=target)
    # only the renderer of the format asked for is imported: the gate runs in hooks and on every push
    if fmt is GateFormat.json:
        from agentflow.report.jsonout import gate_json

        _common.out(gate_json(result))
    elif fmt is GateFormat.codequality:
        from agentflow.report.codequality import gate_codequality

        _common.out(gate_codequality(result))
    elif fmt is GateFormat.github:
        from agentflow.report.github import gate_annotation, gate_log, gate_step_summary

        _common.out(gate_annotation(result))
        _common.out(gate_log(result))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(gate_step_summary(result))
    else:
        from agentflow.report.lines import gate_text

        _common.out(gate_text(result))
    _common.exit_with(result.exit_code)


def merge(
    target: Annotated[str, typer.Argument(metavar="PLAN|BRANCH", help="A plan file or id, or a branch name.")],
    into: Annotated[
        str | None, typer.Option("--into", metavar="BRANCH", help="Branch to merge into (default: config base).")
    ] = None,
) -> None:
    """Merge an approved plan branch (--no-ff); refuse with the gate's reasons otherwise.

    The target branch need not be checked out. If it is, its working tree must be clean. A conflict
    changes nothing: rebase the plan branch onto the target, re-verify, and merge again. The plan's
    build worktree is removed after the merge. Exit 0 merged; 1 the gate is closed or the merge
    conflicts (nothing changed); 2 bad input (an unknown plan or branch, a dirty target checkout,
    a ledger that cannot record the merge).

    Examples:

      agentflow merge 348

      agentflow merge .plans/348-capsule-isolation.md --into release

      agentflow merge agentflow/348-capsule-isolation
    """
    from agentflow.merge import merge_branch

    repo = _common.repo()
    config = _common.config(repo.root)
    _common.require_writable_ledger(repo.root)  # a ledger that cannot record the merge: refused before it
    result = merge_branch(repo, target, into=into, config=config)
    _common.out(f"merged {result.branch} into {result.into}: {result.commit[:12]} ({result.gate.headline()})")
    if result.removed_worktree is not None:
        _common.out(f"removed worktree {result.removed_worktree}")
    for warning in result.warnings:
        _common.err(f"agentflow: warning: {warning}")


def approve(
    ref: Annotated[str, typer.Argument(metavar="REF", help="The commit to approve.")] = "HEAD",
    override: Annotated[
        bool, typer.Option("--override", help="Required: this is a human override of the verifier.")
    ] = False,
    reason: Annotated[
        str | None, typer.Option("--reason", metavar="TEXT", help="Why; recorded with your git identity.")
    ] = None,
) -> None:
    """Approve REF by hand, as an explicit, recorded human override of the verifier.

    Writes a verdict note marked as an override (reason, your git identity, REF's tree; signed when
    AGENTFLOW_SIGNING_KEY is set) and records it in the ledger. The gate accepts it and says it is
    an override; any later change to the code makes it stale like any approval. Exit 0 recorded;
    1 refused by gate.override_not_by_author; 2 bad input (no --override or --reason, an unknown
    REF, a signing key required but not set, a ledger that cannot record it).

    Examples:

      agentflow approve --override --reason "hotfix for INC-42, reviewed by Ana" HEAD
    """
    from agentflow.errors import UsageError
    from agentflow.override import approve_override

    if not override:
        raise UsageError(
            "approvals come from the verifier; a human approval must be explicit",
            fix='run `agentflow verify`, or `agentflow approve --override --reason "..."`',
        )
    if reason is None:
        raise UsageError("an override needs a reason", fix='pass --reason "why this is approved without a verifier"')
    repo = _common.repo()
    config = _common.config(repo.root)
    from agentflow.records import ledger_unless_refused

    commit = repo.rev(ref)  # an unknown REF: exit 2 before a ledger is made
    with ledger_unless_refused(repo.root) as ledger:  # a refusal below leaves no ledger it made
        ledger.require_writable()  # before the note: a note the ledger cannot record would open the gate unrecorded
        result = approve_override(repo, commit, reason, config=config, ledger=ledger)
    signed = "signed" if result.signed else "unsigned"
    note = result.note
    _common.out(f"override approval recorded on {result.commit[:12]} ({signed}) by {note.by}: {note.reason}")


hooks_app = typer.Typer(
    help=(
        "Install git hooks that refuse unapproved merges and pushes to protected branches.\n\n"
        "Hooks are advisory (--no-verify skips them); the CI gate is the real enforcement.\n\n"
        "Examples:\n\n"
        "  agentflow hooks install\n\n"
        "  agentflow hooks uninstall"
    ),
    no_args_is_help=True,
)


@hooks_app.command("install")
def hooks_install() -> None:
    """Install pre-merge-commit, pre-commit and pre-push hooks (idempotent; existing hooks keep running first).

    Examples:

      agentflow hooks install
    """
    from agentflow.hooks import install

    for line in install(_common.repo()):
        _common.out(line)


@hooks_app.command("uninstall")
def hooks_uninstall() -> None:
    """Remove agentflow's hooks and restore the hooks they replaced.

    Examples:

      agentflow hooks uninstall
    """
    from agentflow.hooks import uninstall

    for line in uninstall(_common.repo()):
        _common.out(line)


@hooks_app.command("run", hidden=True)
def hooks_run(
    hook: Annotated[str, typer.Argument(metavar="HOOK", help="pre-merge-commit, pre-commit or pre-push.")],
    args: Annotated[list[str] | None, typer.Argument(metavar="ARG...", help="The hook's arguments from git.")] = None,
) -> None:
    """Run one hook's check (called by the installed hook scripts)."""
    from agentflow.hooks import outdated, run_hook
    from agentflow.report.lines import gate_text

    repo = _common.repo()
    if (warning := outdated(repo, hook)) is not None:
        _common.err(f"agentflow {hook}: warning: {warning}")
    stdin = sys.stdin.read() if hook == "pre-push" else ""
    checks = run_hook(repo, hook, _common.config_view(repo.root), stdin)
    closed = [check for check in checks if not check.result.open]
    for check in closed:
        _common.err(f"agentflow {hook}: refusing: {check.subject}")
        _common.err(gate_text(check.result))
    if closed:
        if hook == "pre-push":
            _common.err(
                "agentflow pre-push: code reaches a protected branch approved: `agentflow build PLAN` then "
                "`agentflow merge PLAN`, or a pull request that CI's `agentflow gate` passes; commits that change "
                "only .plans/*.md are pushed as they are, so commit plan files on their own"
            )
        _common.err("(local hooks are advisory: `git push --no-verify` skips them; the CI gate enforces the same rule)")
        raise typer.Exit(1)


notes_app = typer.Typer(
    help=(
        "Share verdict notes (refs/notes/agentflow) with a remote without ever dropping local ones.\n\n"
        "Examples:\n\n"
        "  agentflow notes fetch\n\n"
        "  agentflow notes push --remote origin"
    ),
    no_args_is_help=True,
)

RemoteOption = Annotated[str, typer.Option("--remote", metavar="REMOTE", help="The git remote.")]


@notes_app.command("fetch")
def notes_fetch(remote: RemoteOption = "origin") -> None:
    """Fetch the remote's verdict notes and merge them into yours (no local note is lost).

    Examples:

      agentflow notes fetch
    """
    from agentflow.notesync import fetch_notes, tracking_ref

    result = fetch_notes(_common.repo(), remote)
    if not result.found:
        _common.out(f"{remote} has no agentflow notes yet")
    else:
        state = "merged into refs/notes/agentflow" if result.merged else "already up to date"
        _common.out(f"fetched {remote}'s notes into {tracking_ref(remote)}: {state}")


@notes_app.command("push")
def notes_push(remote: RemoteOption = "origin") -> None:
    """Push your verdict notes; if someone pushed first, fetch, merge and retry.

    Examples:

      agentflow notes push
    """
    from agentflow.notesync import push_notes

    result = push_notes(_common.repo(), remote)
    if result.up_to_date:
        _common.out(f"{remote} already has these notes")
    else:
        retried = f" after {result.attempts - 1} merge(s) with notes pushed by others" if result.attempts > 1 else ""
        _common.out(f"pushed refs/notes/agentflow to {remote}{retried}")


def register(app: typer.Typer) -> None:
    app.command()(gate)
    app.command()(merge)
    app.command()(approve)
    app.add_typer(hooks_app, name="hooks")
    app.add_typer(notes_app, name="notes")
