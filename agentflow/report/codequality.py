"""The gate as a GitLab code-quality report (Code Climate JSON): ``agentflow gate --format codequality``."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from agentflow.redact import redact
from agentflow.text import one_line

if TYPE_CHECKING:
    from agentflow.gate import GateResult

_CODE_QUALITY_SEVERITY = {"critical": "critical", "high": "major", "medium": "minor", "low": "minor", "info": "info"}


def gate_codequality(result: GateResult) -> str:
    """A GitLab code-quality report (Code Climate JSON): the closed gate, and the deciding verdict's findings."""
    issues: list[dict[str, Any]] = []

    def issue(check: str, description: str, severity: str, path: str = ".", line: int = 1) -> None:
        fingerprint = hashlib.sha256(f"{check}\0{path}\0{line}\0{description}".encode()).hexdigest()
        issues.append(
            {
                "type": "issue",
                "check_name": check,
                "description": description,
                "severity": severity,
                "fingerprint": fingerprint,
                "location": {"path": path, "lines": {"begin": line}},
            }
        )

    if not result.open:
        issue(f"agentflow-gate-{result.status.value}", "; ".join([result.headline(), *result.reasons]), "blocker")
    for finding in result.note.findings if result.note and not result.open else []:
        issue(
            f"agentflow-{finding.get('pattern') or 'finding'}",
            f"{finding.get('id', '?')}: {finding.get('message') or finding.get('severity', '')}",
            _CODE_QUALITY_SEVERITY.get(str(finding.get("severity")), "info"),
            one_line(str(finding.get("file") or ".")),
            _line_number(finding.get("line")),
        )
    return redact(json.dumps(issues, indent=2))


def _line_number(value: Any) -> int:
    """A note's line number if it is a positive integer, else 1 (notes are untrusted input)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1
