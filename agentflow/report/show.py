"""Rendering of one run's timeline (``agentflow.show.run_timeline``) as text, Markdown or HTML."""

from __future__ import annotations

import json
from typing import Any

from agentflow.report.figures import NA, fmt_hours, fmt_int, fmt_usd


def _tokens(tokens: dict[str, int]) -> str:
    if not tokens:
        return NA
    return (
        f"in {tokens.get('input_tokens', 0):,} / out {tokens.get('output_tokens', 0):,} / "
        f"cache r {tokens.get('cache_read', 0):,} w {tokens.get('cache_write', 0):,}"
    )


def _diffstat(commit: dict[str, Any] | None) -> str:
    if not commit:
        return NA
    if not commit.get("commit"):
        return "no change committed"
    files = f"{commit['files']} file{'' if commit['files'] == 1 else 's'}"
    text = f"{commit['commit'][:10]}: {files} changed, +{commit['insertions']} -{commit['deletions']}"
    if commit.get("out_of_scope"):
        text += f" (out of scope: {', '.join(commit['out_of_scope'])})"
    return text


def _evidence_cell(check: dict[str, Any]) -> str:
    from agentflow.formats import evidence_text

    evidence = evidence_text(check)
    return f" ({evidence})" if evidence else ""


def _check_line(check: dict[str, Any]) -> str:
    status = (
        "pass"
        if check["passed"]
        else ("timed out" if check["exit_code"] is None else f"fail (exit {check['exit_code']})")
    )
    from agentflow.formats import evidence_text

    evidence = evidence_text(check)
    return f"{status}  {check['command']}  ({check['duration_s']:.1f}s)" + (f"  [{evidence}]" if evidence else "")


def _finding_line(finding: dict[str, Any]) -> str:
    where = finding.get("file") or ""
    if where and finding.get("line"):
        where += f":{finding['line']}"
    pattern = f" [{finding['pattern']}]" if finding.get("pattern") else ""
    head = f"{finding.get('id', '?')} {finding.get('severity', '?')}{pattern}"
    return f"{head} {where}: {finding.get('message', '')}".replace(" :", ":")


def transcript_entries(messages: list[Any] | None) -> list[tuple[str, str]]:
    """(heading, text) per message block, for any transcript shape the model layer saved."""
    if not messages:
        return [("(none)", "no transcript was saved for this session")]
    entries: list[tuple[str, str]] = []
    for message in messages:
        if not isinstance(message, dict):
            entries.append(("message", json.dumps(message, ensure_ascii=False, default=str)))
            continue
        role = str(message.get("role", "message"))
        if "content" not in message:  # e.g. the command backend's {"role": "command", "exit_code": ...}
            rest = {k: v for k, v in message.items() if k != "role"}
            entries.append((role, json.dumps(rest, ensure_ascii=False, indent=2, default=str)))
            continue
        content = message.get("content")
        blocks = content if isinstance(content, list) else [content]
        for block in blocks:
            entries.append(_block_entry(role, block))
    return entries


def _block_entry(role: str, block: Any) -> tuple[str, str]:
    if isinstance(block, str):
        return role, block
    if not isinstance(block, dict):
        return role, json.dumps(block, ensure_ascii=False, default=str)
    kind = block.get("type")
    if kind == "text":
        return role, str(block.get("text", ""))
    if kind == "tool_use":
        return f"{role} → {block.get('name')}", json.dumps(block.get("input", {}), ensure_ascii=False, indent=2)
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            content = "\n".join(str(c.get("text", c)) if isinstance(c, dict) else str(c) for c in content)
        label = f"{role} ← result" + (" (error)" if block.get("is_error") else "")
        return label, str(content)
    return role, json.dumps(block, ensure_ascii=False, default=str)


def _header(run: dict[str, Any]) -> list[tuple[str, str]]:
    plan = " ".join(str(x) for x in (run["plan_id"], run["plan_title"]) if x) or NA
    return [
        ("Plan", plan + (f" ({run['plan_path']})" if run.get("plan_path") else "")),
        ("Mode", run["mode"]),
        ("Branch", run.get("branch") or NA),
        ("Started", run["started"] or NA),
        ("Ended", run["ended"] or "still running (or killed: `agentflow build --resume`)"),
        ("Outcome", (run["outcome"] or "in progress") + (f": {run['reason']}" if run.get("reason") else "")),
        ("Cycles", f"{run['cycles']} of at most {run['max_cycles']}"),
        ("Estimate", fmt_hours(run.get("estimate_hours"))),
        ("Cost", fmt_usd(run["cost_usd"])),
    ]


def render_show_text(timeline: dict[str, Any]) -> str:
    run = timeline["run"]
    lines = [f"run {run['run_id']}"]
    lines += [f"  {k + ':':<9} {v}" for k, v in _header(run)]
    for cycle in timeline["cycles"]:
        lines += ["", f"cycle {cycle['cycle']}"]
        builder = cycle["builder"]
        if builder:
            lines.append(f"  builder   {builder['status']}, {builder['turns']} turns, {fmt_usd(builder['cost_usd'])}")
            if builder.get("summary"):
                lines += [f"            {line}" for line in builder["summary"].splitlines()]
        lines.append(f"  commit    {_diffstat(cycle['commit'])}")
        if cycle["checks"] is not None:
            lines += [
                "  checks    " + (_check_line(c) if i == 0 else "            " + _check_line(c))
                for i, c in enumerate(cycle["checks"])
            ] or ["  checks    none configured"]
        verifier = cycle["verifier"]
        if verifier:
            lines.append(
                f"  verifier  {verifier['status']}, {verifier['turns']} turns, {fmt_usd(verifier['cost_usd'])}"
            )
        verdict = cycle["verdict"]
        if verdict:
            lines.append(f"  verdict   {verdict['outcome']} (decision: {verdict['decision'] or NA})")
            if verdict.get("summary"):
                lines.append(f"            {verdict['summary']}")
            if verdict.get("reason") and verdict["outcome"] != "approved":
                lines.append(f"            why: {verdict['reason']}")
            for c in verdict["criteria"]:
                lines.append(
                    f"            {c.get('id')}: {c.get('status')}"
                    + (f" ({c['evidence']})" if c.get("evidence") else "")
                )
            lines += [f"            finding {_finding_line(f)}" for f in verdict["findings"]]
    for override in timeline["overrides"]:
        lines += ["", f"override  {override['outcome']} at {override['ts']}: {override.get('reason') or ''}"]
    lines += ["", "sessions"]
    for s in timeline["sessions"]:
        lines.append(
            f"  {s['session_id']}  {s['role']:<9} cycle {s['cycle']}  {s['status']:<11} {fmt_int(s['turns'])} turns  "
            f"{fmt_usd(s['cost_usd'])}  {_tokens(s['tokens'])}  {s['backend'] or ''} {s['model'] or ''}".rstrip()
        )
    for sid, messages in (timeline.get("transcripts") or {}).items():
        lines += ["", f"transcript {sid}", "-" * 60]
        for heading, text in transcript_entries(messages):
            lines += [f"[{heading}]", text, ""]
    return "\n".join(lines) + "\n"


def _md(text: Any) -> str:
    """Text for a Markdown table cell or line: no raw HTML, no broken tables."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def render_show_markdown(timeline: dict[str, Any]) -> str:
    run = timeline["run"]
    lines = [f"## agentflow run `{run['run_id']}`", "", "| | |", "|:--|:--|"]
    lines += [f"| {k} | {_md(v)} |" for k, v in _header(run)]
    for cycle in timeline["cycles"]:
        lines += ["", f"### Cycle {cycle['cycle']}", ""]
        if cycle["builder"]:
            lines.append(
                f"**Builder** ({cycle['builder']['status']}, {fmt_usd(cycle['builder']['cost_usd'])}): "
                f"{_md(cycle['builder'].get('summary') or NA)}"
            )
            lines.append("")
        lines += [f"**Commit:** {_diffstat(cycle['commit'])}", ""]
        if cycle["checks"]:
            lines += ["| Check | Result | Seconds |", "|:--|:--|--:|"]
            lines += [
                f"| `{_md(c['command'])}` | {'pass' if c['passed'] else 'fail'}{_md(_evidence_cell(c))} "
                f"| {c['duration_s']:.1f} |"
                for c in cycle["checks"]
            ]
            lines.append("")
        verdict = cycle["verdict"]
        if verdict:
            lines.append(
                f"**Verdict:** {verdict['outcome']} (decision: {verdict['decision'] or NA}). "
                f"{_md(verdict.get('summary') or '')}"
            )
            if verdict["criteria"]:
                lines += ["", "| Criterion | Status | Evidence |", "|:--|:--|:--|"]
                lines += [
                    f"| {_md(c.get('id'))} | {_md(c.get('status'))} | {_md(c.get('evidence', ''))} |"
                    for c in verdict["criteria"]
                ]
            if verdict["findings"]:
                lines += ["", "| Finding | Severity | Pattern | Where | Message |", "|:--|:--|:--|:--|:--|"]
                lines += [
                    f"| {_md(f.get('id'))} | {_md(f.get('severity'))} | {_md(f.get('pattern') or '')} | "
                    f"{_md(f.get('file') or '')}{':' + str(f['line']) if f.get('line') else ''} | "
                    f"{_md(f.get('message', ''))} |"
                    for f in verdict["findings"]
                ]
    for override in timeline["overrides"]:
        lines += ["", f"**Override** ({override['ts']}): {override['outcome']}: {_md(override.get('reason') or '')}"]
    lines += [
        "",
        "### Sessions",
        "",
        "| Session | Role | Cycle | Status | Turns | Tokens | Cost |",
        "|:--|:--|--:|:--|--:|:--|--:|",
    ]
    lines += [
        f"| `{s['session_id']}` | {s['role']} | {s['cycle']} | {s['status']} | {s['turns']} | "
        f"{_tokens(s['tokens'])} | {fmt_usd(s['cost_usd'])} |"
        for s in timeline["sessions"]
    ]
    for sid, messages in (timeline.get("transcripts") or {}).items():
        lines += ["", f"<details><summary>Transcript {sid}</summary>", ""]
        for heading, text in transcript_entries(messages):
            lines += [f"**{heading}**", "", "```", text.replace("```", "`\u200b``"), "```", ""]
        lines.append("</details>")
    return "\n".join(lines) + "\n"


def render_show_html(timeline: dict[str, Any]) -> str:
    from agentflow.report.html import environment

    transcripts = {sid: transcript_entries(m) for sid, m in (timeline.get("transcripts") or {}).items()}
    return (
        environment()
        .get_template("show.html.j2")
        .render(
            t=timeline,
            header=_header(timeline["run"]),
            diffstat=_diffstat,
            check_line=_check_line,
            usd=fmt_usd,
            tokens=_tokens,
            transcripts=transcripts,
            na=NA,
        )
    )


def render_show(timeline: dict[str, Any], fmt: str) -> str:
    if fmt == "text":
        return render_show_text(timeline)
    if fmt == "md":
        return render_show_markdown(timeline)
    if fmt == "html":
        return render_show_html(timeline)
    raise ValueError(f"unknown format {fmt!r}")
