"""``agentflow evaluate``: find architectural violations in application event logs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentflow.cli import _common


def evaluate(
    logs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="LOG",
            help="Event logs: JSON Lines (also .gz) or JSON arrays (URIs for --emit-sql). Default: events.paths.",
            show_default=False,
        ),
    ] = None,
    emit_sql: Annotated[
        str | None,
        typer.Option(
            "--emit-sql",
            metavar="duckdb|trino|clickhouse|bigquery",
            help="Print the profile query over the LOGs (or --table) for this engine and exit.",
        ),
    ] = None,
    table: Annotated[
        str | None,
        typer.Option("--table", metavar="NAME", help="--emit-sql: read this table (one column `event`, the JSON)."),
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option("--profile", metavar="FILE", help="Analyse a profile (JSON Lines) an engine produced."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option("--engine", metavar="builtin|duckdb", help="duckdb: run the profile query in-process."),
    ] = "builtin",
    type_field: Annotated[
        str | None,
        typer.Option(
            "--type-field",
            metavar="PATH",
            help="Dotted path of the event type field (default: detail-type, type, event_type).",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="text|json|md", help="Output format.")] = "text",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout.")
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on",
            metavar="none|low|medium|high|critical",
            help="Exit 1 when a finding is at or above this severity.",
        ),
    ] = "high",
    baseline: Annotated[
        Path | None, typer.Option("--baseline", metavar="FILE", help="Report drift against a saved baseline.")
    ] = None,
    save_baseline: Annotated[
        Path | None, typer.Option("--save-baseline", metavar="FILE", help="Save the inferred schemas as a baseline.")
    ] = None,
    plan_out: Annotated[
        Path | None,
        typer.Option("--plan-out", metavar="DIR", help="Write a remediation plan per group of high/critical findings."),
    ] = None,
    llm: Annotated[
        bool, typer.Option("--llm", help="Add an Evaluator model session over the schemas and findings.")
    ] = False,
    no_record: Annotated[bool, typer.Option("--no-record", help="Do not store the findings in the ledger.")] = False,
    allow_empty: Annotated[
        bool,
        typer.Option("--allow-empty", help="A log without any parsable event is not an error (default: exit 2)."),
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, metavar="N", help="Processes for large plain JSON Lines files (default: CPU count)."
        ),
    ] = None,
) -> None:
    """Infer event schemas from logs and report findings such as missing isolation fields.

    Exit code 1 when a finding is at or above --fail-on (default high), 2 for unusable input.

    Examples:

      agentflow evaluate events.jsonl

      agentflow evaluate logs/*.jsonl.gz --format json --output findings.json

      agentflow evaluate eventbridge.json --fail-on critical --plan-out .plans

      agentflow evaluate events.jsonl --save-baseline .agentflow/schema.json

      agentflow evaluate events.jsonl --baseline .agentflow/schema.json --format md

      agentflow evaluate events.jsonl --llm

      agentflow evaluate maybe-empty.jsonl --allow-empty

      agentflow evaluate --emit-sql clickhouse 's3://logs/2026/*.jsonl.gz' > profile.sql

      agentflow evaluate --emit-sql trino --table events_raw

      agentflow evaluate --profile profile.jsonl

      agentflow evaluate logs/*.parquet --engine duckdb
    """
    from agentflow.errors import GitError, UsageError
    from agentflow.evaluator.report import FORMATS, render, summary_line
    from agentflow.evaluator.runner import EvaluationRequest, run_evaluation

    if emit_sql is not None:
        from agentflow.evaluator.profile import emit_sql as profile_query

        _common.write_output(profile_query(emit_sql, list(logs or []), table=table, type_field=type_field), output)
        return

    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}", fix="e.g. --format json")
    try:
        root = _common.repo().root
        in_repo = True
    except GitError:
        root, in_repo = Path.cwd(), False
    record = not no_record and in_repo
    if not no_record and not in_repo:
        _common.err("not in a git repository: findings are not recorded in a ledger")
    if record:
        _common.require_writable_ledger(root)  # before plans and baselines are written, not after
    request = EvaluationRequest(
        logs=[Path(log) for log in logs or []],
        root=root,
        type_field=type_field,
        baseline=baseline,
        save_baseline=save_baseline,
        plan_out=plan_out,
        fail_on=fail_on,
        record=record,
        workers=workers,
        llm=llm,
        allow_empty=allow_empty,
        profile=profile,
        engine=engine,
        in_repo=in_repo,
    )
    result = run_evaluation(request, _common.config(root))
    _common.write_output(render(result.analysis, fmt), output)
    for note in result.notes:
        _common.err(note)
    for path in result.plans:
        _common.err(f"wrote plan {path}")
    if output is not None or fmt != "text":
        for warning in result.analysis.warnings:
            _common.err(warning)
        _common.err(summary_line(result.analysis))
    if result.llm_error is not None:
        raise result.llm_error
    _common.exit_with(result.exit_code)


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
