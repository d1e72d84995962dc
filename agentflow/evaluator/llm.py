"""The ``--llm`` Evaluator session: a model reviews the inferred schemas and findings, never the raw log.

The session gets read-only tools over the ``Analysis`` (the summaries the rules used) and ends with
``submit_findings``. Findings it adds carry ``rule: "llm"`` and ids derived from their content, and
they count toward ``--fail-on`` like any other finding. The session runs through the shared tool
loop (``agentflow.session.run_session``), so its model calls, tool calls, cost and transcript are
in the ledger like a builder's or verifier's.

Only API-style backends (anthropic, scripted) can run it: external coding agents (command,
claude-code) have no way to call these tools.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflow.errors import BackendError, UsageError
from agentflow.evaluator.analysis import Analysis, Finding
from agentflow.evaluator.rules import finding_id, sort_findings
from agentflow.models import API_BACKENDS
from agentflow.verdict import SEVERITIES, severity_rank  # one severity scale for verdicts and evaluator

MAX_TOOL_CHARS = 20_000


def check_available(config: Any) -> None:
    """``UsageError`` before any work when the configured evaluator backend cannot run the session."""
    backend = config.models.evaluator.backend
    if backend not in API_BACKENDS:
        raise UsageError(
            f"--llm needs an API backend for the evaluator, not {backend!r}",
            where="agentflow.yaml",
            fix="set models.evaluator.backend to anthropic or scripted",
        )


def _spec(name: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    from agentflow.models.base import ToolSpec

    schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return ToolSpec(name=name, description=description, input_schema=schema)


_FINDING_SCHEMA = {
    "type": "object",
    "properties": {
        "event_type": {"type": "string"},
        "field": {"type": ["string", "null"]},
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "message": {"type": "string"},
    },
    "required": ["event_type", "severity", "message"],
}


@dataclass
class EvaluatorToolbox:
    """Read-only queries over an analysis plus the terminal ``submit_findings`` (duck-types Toolbox)."""

    analysis: Analysis

    def specs(self) -> list[Any]:
        return [
            _spec("list_types", "Every event type with its event count, field count and key templates.", {}, []),
            _spec(
                "describe_type",
                "One event type's fields: presence, JSON types, examples; its key templates.",
                {"event_type": {"type": "string"}},
                ["event_type"],
            ),
            _spec(
                "compare_field",
                "Which event types carry a field (exact path or leaf name) and how often.",
                {"field": {"type": "string"}},
                ["field"],
            ),
            _spec(
                "list_findings",
                "The deterministic findings, optionally only at or above a severity.",
                {"min_severity": {"type": "string", "enum": list(SEVERITIES)}},
                [],
            ),
            _spec(
                "submit_findings",
                "Submit your summary and the findings you add; ends the session.",
                {"summary": {"type": "string"}, "findings": {"type": "array", "items": _FINDING_SCHEMA}},
                ["summary", "findings"],
            ),
        ]

    def call(self, name: str, input: dict[str, Any]) -> Any:
        from agentflow.tools import Submitted, ToolOutput

        handler = getattr(self, f"_tool_{name}", None)
        if handler is None:
            return ToolOutput(f"unknown tool {name!r}", is_error=True)
        try:
            result = handler(**input)
        except Submitted:
            raise
        except (TypeError, ValueError, KeyError) as exc:
            return ToolOutput(f"{name}: {exc}", is_error=True)
        text = json.dumps(result, indent=1, default=str)
        if len(text) > MAX_TOOL_CHARS:
            text = text[:MAX_TOOL_CHARS] + "\n[... cut: ask about one type or field at a time]"
        return ToolOutput(text)

    def _tool_list_types(self) -> list[dict[str, Any]]:
        return [
            {
                "type": t.name,
                "count": t.count,
                "fields": len(t.fields),
                "key_templates": t.to_json()["key_templates"][:5],
            }
            for t in self.analysis.types
        ]

    def _tool_describe_type(self, event_type: str) -> dict[str, Any]:
        schema = self.analysis.type(event_type)
        if schema is None:
            raise ValueError(f"no event type {event_type!r}; list_types names them")
        return schema.to_json()

    def _tool_compare_field(self, field: str) -> list[dict[str, Any]]:
        out = []
        for t in self.analysis.types:
            paths = [p for p in t.fields if p == field or p.rsplit(".", 1)[-1] == field]
            out.append(
                {
                    "type": t.name,
                    "events": t.count,
                    "carries": {p: round(t.fields[p].count / t.count, 4) for p in paths},
                }
            )
        return out

    def _tool_list_findings(self, min_severity: str = "info") -> list[dict[str, Any]]:
        if min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {', '.join(SEVERITIES)}")
        return [f.to_json() for f in self.analysis.findings if severity_rank(f.severity) >= severity_rank(min_severity)]

    def _tool_submit_findings(self, summary: str, findings: list[dict[str, Any]]) -> None:
        from agentflow.tools import Submitted

        if not isinstance(summary, str) or not summary.strip():
            raise ValueError("summary must be a non-empty paragraph")
        for index, finding in enumerate(findings):
            if not isinstance(finding, dict) or finding.get("severity") not in SEVERITIES:
                raise ValueError(f"findings[{index}].severity must be one of {', '.join(SEVERITIES)}")
            if not str(finding.get("event_type") or "").strip() or not str(finding.get("message") or "").strip():
                raise ValueError(f"findings[{index}] needs event_type and message")
        raise Submitted("submit_findings", {"summary": summary, "findings": findings})


def model_findings(submitted: dict[str, Any]) -> list[Finding]:
    out = []
    for item in submitted.get("findings", []):
        event_type, field = str(item["event_type"]), item.get("field") or None
        message = str(item["message"]).strip()
        out.append(
            Finding(
                "llm",
                item["severity"],
                event_type,
                field,
                message,
                {"source": "evaluator session"},
                id=finding_id("llm", event_type, field, message.lower()),
            )
        )
    return out


def render_prompt(analysis: Analysis, root: Path, rules: Any) -> tuple[str, str]:
    from agentflow import prompts
    from agentflow.evaluator.report import summary_line

    data = analysis.to_json()
    text = prompts.render(
        "evaluator",
        root,
        logs=analysis.files,
        summary=summary_line(analysis),
        types=data["types"],
        findings=data["findings"],
        isolation_fields=list(rules.isolation_fields),
        exempt_types=list(rules.exempt_types),
    )
    return prompts.split_prompt(text, "evaluator")  # the one split every role's template uses


def review(analysis: Analysis, root: Path, config: Any, ledger: Any, rules: Any) -> str:
    """Run the session; add its findings to ``analysis``; return its summary. BackendError if it fails."""
    from agentflow.events import new_id
    from agentflow.models.registry import get_model
    from agentflow.session import RunBudget, SessionLimits, SessionSpec, run_session

    check_available(config)
    role_cfg = config.models.evaluator
    system, prompt = render_prompt(analysis, root, rules)
    spec = SessionSpec(
        role="evaluator",
        cycle=1,
        run_id=new_id("ev"),
        root=root,
        system=system,
        prompt=prompt,
        limits=SessionLimits.from_config(config.limits),
        budget=RunBudget(limit_usd=config.limits.run_cost_usd),
        backend=role_cfg.backend,
        model_name=role_cfg.model,
        role_cfg=role_cfg,
    )
    model = get_model(role_cfg, root=root, role="evaluator")
    result = run_session(spec, model, EvaluatorToolbox(analysis), ledger)  # type: ignore[arg-type]
    if result.status != "completed" or result.submitted is None:
        raise BackendError(
            f"the evaluator session ended without findings ({result.status}: {result.reason})",
            fix="the deterministic report above still stands; retry --llm or run without it",
        )
    known = {f.id for f in analysis.findings}
    added = [f for f in model_findings(result.submitted) if f.id not in known]
    analysis.findings = sort_findings(analysis.findings + added)
    return str(result.submitted.get("summary", ""))
