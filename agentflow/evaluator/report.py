"""Rendering an analysis as text, JSON (the contract) or Markdown."""

from __future__ import annotations

import json
from typing import Any

from agentflow.evaluator.analysis import Analysis
from agentflow.text import markdown_cell, markdown_code
from agentflow.verdict import severity_rank  # one severity scale for verdicts and evaluator

FORMATS = ("text", "json", "md")
MAX_ERRORS_SHOWN = 20


def render(analysis: Analysis, fmt: str) -> str:
    if fmt == "json":
        return render_json(analysis.to_json())
    if fmt == "md":
        return render_markdown(analysis)
    return render_text(analysis)


def render_json(data: Any, sort_keys: bool = False) -> str:
    """The JSON report, indented: orjson (a report of 100,000 fields took 36 s with the standard
    library), the standard library only for what orjson refuses (an integer beyond 64 bits kept as
    an example value). Non-ASCII text is written as UTF-8, not as ``\\u`` escapes."""
    import orjson

    option = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(data, default=str, option=option).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(data, indent=2, default=str, ensure_ascii=False, sort_keys=sort_keys)


def _value_text(value: Any) -> str:
    """A compact human rendering of an evidence value: lists joined, mappings as ``k v`` pairs."""
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value[:5]) + (" ..." if len(value) > 5 else "")
    if isinstance(value, dict):
        return "; ".join(
            f"{k} ({v})" if isinstance(v, int | float) else f"{k.replace('_', ' ')}: {_value_text(v)}"
            for k, v in value.items()
        )
    return str(value)


def _evidence_lines(evidence: dict[str, Any]) -> list[str]:
    return [f"{key.replace('_', ' ')}: {_value_text(value)}" for key, value in evidence.items()]


def summary_line(analysis: Analysis) -> str:
    counts: dict[str, int] = {}
    for finding in analysis.findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    by_severity = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda i: -severity_rank(i[0])))
    return (
        f"{analysis.events} events, {len(analysis.types)} types, {analysis.bad_lines} bad lines, "
        f"{len(analysis.findings)} findings" + (f" ({by_severity})" if by_severity else "")
    )


def scope_lines(analysis: Analysis) -> list[str]:
    """The configured and inferred scope, and the warnings about the configuration."""
    configured = ", ".join(analysis.isolation_fields) or "(none)"
    inferred = ", ".join(analysis.inferred_scope) or "(none)"
    return [f"isolation fields: {configured}; inferred scope: {inferred}", *analysis.warnings]


def render_text(analysis: Analysis) -> str:
    lines = [summary_line(analysis), *scope_lines(analysis), ""]
    if analysis.review:
        lines += ["Evaluator review:", f"  {analysis.review}", ""]
    lines.append("Event types:")
    for schema in analysis.types:
        unanalysed = f" (+{schema.unanalysed} not analysed: too many shapes)" if schema.unanalysed else ""
        lines.append(f"  {schema.name}: {schema.count} events{unanalysed}, {len(schema.fields)} fields")
        for path, counts in schema.key_templates.items():
            for template, n in sorted(counts.items(), key=lambda i: -i[1])[:3]:
                lines.append(f"    {path} template: {template} ({n})")
    if analysis.findings:
        lines += ["", "Findings:"]
        for f in analysis.findings:
            lines.append(f"  {f.id} [{f.severity}] {f.rule}: {f.message}")
            lines += [f"      {line}" for line in _evidence_lines(f.evidence)]
    else:
        lines += ["", "No findings."]
    lines += _errors_text(analysis)
    return "\n".join(lines) + "\n"


def _errors_text(analysis: Analysis) -> list[str]:
    out: list[str] = []
    if analysis.unanalysed:
        out += ["", f"{analysis.unanalysed} events not analysed: too many distinct shapes (see docs/evaluator.md)"]
    if analysis.bad_lines:
        out += ["", f"Bad lines ({analysis.bad_lines}):"]
        for error in analysis.errors[:MAX_ERRORS_SHOWN]:
            out.append(f"  {error.file}:{error.line}: {error.message}")
        hidden = analysis.bad_lines - min(len(analysis.errors), MAX_ERRORS_SHOWN)
        if hidden > 0:
            out.append(f"  ... and {hidden} more (use --format json for the list)")
    return out


def render_markdown(analysis: Analysis) -> str:
    lines = ["# Event-log evaluation", "", summary_line(analysis), "", *scope_lines(analysis), ""]
    if analysis.review:
        lines += ["## Evaluator review", "", analysis.review, ""]
    lines += ["## Findings", ""]
    if analysis.findings:
        lines += ["| id | severity | rule | event type | field | message |", "|---|---|---|---|---|---|"]
        for f in analysis.findings:
            lines.append(
                f"| {f.id} | {f.severity} | {f.rule} | {markdown_cell(f.event_type)} | {markdown_cell(f.field or '')} | "
                f"{markdown_cell(f.message)} |"
            )
    else:
        lines.append("No findings.")
    lines += ["", "## Event types", "", "| type | events | fields | key templates |", "|---|---|---|---|"]
    for schema in analysis.types:
        templates = "; ".join(
            f"{markdown_code(path)}: {markdown_code(t)}"
            for path, counts in schema.key_templates.items()
            for t in list(counts)[:3]
        )
        lines.append(f"| {markdown_cell(schema.name)} | {schema.count} | {len(schema.fields)} | {templates} |")
    if analysis.bad_lines:
        lines += ["", f"## Bad lines ({analysis.bad_lines})", ""]
        lines += [
            f"- {markdown_code(f'{e.file}:{e.line}')}: {markdown_cell(e.message)}"
            for e in analysis.errors[:MAX_ERRORS_SHOWN]
        ]
    return "\n".join(lines) + "\n"
