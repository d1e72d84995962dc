"""The JSON reports: the metrics report (``MetricsReport.to_dict``), one verification (``VerifyReport``), the gate."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from agentflow.redact import redact

if TYPE_CHECKING:
    from agentflow.gate import GateResult
    from agentflow.metrics.model import MetricsReport
    from agentflow.report.verify import VerifyReport


def metrics_json(report: MetricsReport) -> str:
    """Field names are the keys, in field order (the contract of docs/metrics.md)."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def verify_json(report: VerifyReport) -> str:
    data = asdict(report)
    data["approved"] = report.approved
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def gate_json(result: GateResult) -> str:
    return redact(json.dumps(result.to_dict(), indent=2, sort_keys=True))
