"""One run's timeline (``agentflow.show.run_timeline``): the pieces every format shows the same way.

``render_show`` picks the format; the renderers are ``show_text`` (here, re-exported by ``report.text``:
the text timeline imports no metrics or verification classes),
``report.markdown.show_markdown`` and ``report.html.show_html``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agentflow.report.fmt import NA, evidence_text, fmt_hours, fmt_int, fmt_usd

if TYPE_CHECKING:
    from agentflow.show import Commit, Cycle, RunHeader, Timeline, Verdict


def tokens_text(tokens: dict[str, int]) -> str:
    if not tokens:
        return NA
    return (
        f"in {tokens.get('input_tokens', 0):,} / out {tokens.get('output_tokens', 0):,} / "
        f"cache r {tokens.get('cache_read', 0):,} w {tokens.get('cache_write', 0):,}"
    )


def diffstat(commit: Commit | None) -> str:
    if commit is None:
        return NA
    if not commit.commit:
        return "no change committed"
    files = f"{commit.files} file{'' if commit.files == 1 else 's'}"
    text = f"{commit.commit[:10]}: {files} changed, +{commit.insertions} -{commit.deletions}"
    if commit.out_of_scope:
        text += f" (out of scope: {', '.join(commit.out_of_scope)})"
    return text


def evidence_cell(check: dict[str, Any]) -> str:
    evidence = evidence_text(check)
    return f" ({evidence})" if evidence else ""


def check_line(check: dict[str, Any]) -> str:
    status = (
        "pass"
        if check["passed"]
        else ("timed out" if check["exit_code"] is None else f"fail (exit {check['exit_code']})")
    )
    evidence = evidence_text(check)
    return f"{status}  {check['command']}  ({check['duration_s']:.1f}s)" + (f"  [{evidence}]" if evidence else "")


def finding_line(finding: dict[str, Any]) -> str:
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


def header_rows(run: RunHeader) -> list[tuple[str, str]]:
    plan = " ".join(str(x) for x in (run.plan_id, run.plan_title) if x) or NA
    return [
        ("Plan", plan + (f" ({run.plan_path})" if run.plan_path else "")),
        ("Mode", run.mode),
        ("Branch", run.branch or NA),
        ("Started", run.started or NA),
        ("Ended", run.ended or _not_ended(run)),
        (
            "Outcome",
            (run.outcome or ("interrupted" if run.interrupted else "in progress"))
            + (f": {run.reason}" if run.reason else ""),
        ),
        ("Cycles", f"{run.cycles} of at most {run.max_cycles}"),
        ("Estimate", fmt_hours(run.estimate_hours)),
        ("Cost", fmt_usd(run.cost_usd)),
    ]


def _not_ended(run: RunHeader) -> str:
    again = f"`agentflow build --resume {run.run_id}`" if run.mode == "build" else "run `agentflow verify` again"
    if run.interrupted:
        return f"interrupted during {run.interrupted}; continue with {again}"
    return f"still running (or killed: {again})"


# -- one run's timeline (`agentflow show`) --------------------------------------------------------


def _verdict_lines(verdict: Verdict) -> list[str]:
    lines = [f"  verdict   {verdict.outcome} (decision: {verdict.decision or NA})"]
    if verdict.summary:
        lines.append(f"            {verdict.summary}")
    if verdict.reason and verdict.outcome != "approved":
        lines.append(f"            why: {verdict.reason}")
    for c in verdict.criteria:
        lines.append(
            f"            {c.get('id')}: {c.get('status')}" + (f" ({c['evidence']})" if c.get("evidence") else "")
        )
    lines += [f"            finding {finding_line(f)}" for f in verdict.findings]
    return lines


def _cycle_lines(cycle: Cycle) -> list[str]:
    lines = ["", f"cycle {cycle.cycle}"]
    builder = cycle.builder
    if builder:
        lines.append(f"  builder   {builder.status}, {_turns(builder.turns)}, {fmt_usd(builder.cost_usd)}")
        if builder.summary:
            lines += [f"            {line}" for line in builder.summary.splitlines()]
    lines.append(f"  commit    {diffstat(cycle.commit)}")
    if cycle.checks is not None:
        lines += [
            "  checks    " + (check_line(c) if i == 0 else "            " + check_line(c))
            for i, c in enumerate(cycle.checks)
        ] or ["  checks    none configured"]
    verifier = cycle.verifier
    if verifier:
        lines.append(f"  verifier  {verifier.status}, {_turns(verifier.turns)}, {fmt_usd(verifier.cost_usd)}")
    if cycle.verdict:
        lines += _verdict_lines(cycle.verdict)
    return lines


def show_text(timeline: Timeline) -> str:
    run = timeline.run
    lines = [f"run {run.run_id}"]
    lines += [f"  {k + ':':<9} {v}" for k, v in header_rows(run)]
    for cycle in timeline.cycles:
        lines += _cycle_lines(cycle)
    for override in timeline.overrides:
        lines += ["", f"override  {override.outcome} at {override.ts}: {override.reason or ''}"]
    lines += ["", "sessions"]
    for s in timeline.sessions:
        lines.append(
            f"  {s.session_id}  {s.role:<9} cycle {s.cycle}  {s.status:<11} {fmt_int(s.turns)} {'turn ' if s.turns == 1 else 'turns'}  "
            f"{fmt_usd(s.cost_usd)}  {tokens_text(s.tokens)}  {s.backend or ''} {s.model or ''}".rstrip()
        )
    for sid, messages in (timeline.transcripts or {}).items():
        lines += ["", f"transcript {sid}", "-" * 60]
        for heading, text in transcript_entries(messages):
            lines += [f"[{heading}]", text, ""]
    return "\n".join(lines) + "\n"


def render_show(timeline: Timeline, fmt: str) -> str:
    """The timeline in ``fmt``: text, md or html."""
    if fmt == "text":
        return show_text(timeline)
    if fmt == "md":
        from agentflow.report.markdown import show_markdown

        return show_markdown(timeline)
    if fmt == "html":
        from agentflow.report.html import show_html

        return show_html(timeline)
    raise ValueError(f"unknown format {fmt!r}")


def _turns(count: int) -> str:
    return f"{count} turn" if count == 1 else f"{count} turns"
