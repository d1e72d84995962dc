"""The metrics report: what the team of agents did in a period (``agentflow metrics``).

Three layers, each its own module:

* ``facts``: what a source knows, as typed records (``Facts``, ``RunFact``, ``VerdictFact``,
  ``SessionFact``, ``CommitFact``): ``facts_from_ledger`` reads the ledger plus git's agentflow
  commits, ``facts_from_git`` reads commits, trailers and verdict notes alone (a fresh clone in CI).
* ``compute``: pure functions from facts and a ``Period`` (``period``) to the typed report.
* ``model``: the typed report (``MetricsReport`` and its parts); its field names are the JSON keys,
  a public contract (docs/metrics.md defines every figure).

Rendering (text, Markdown, JSON, HTML) lives in ``agentflow.report`` and reads the report's attributes.
"""

from __future__ import annotations

from pathlib import Path

from agentflow.metrics.compute import compute, compute_period
from agentflow.metrics.facts import (
    CommitFact,
    Facts,
    RunFact,
    SessionFact,
    VerdictFact,
    facts_from_git,
    facts_from_ledger,
    load_facts,
)
from agentflow.metrics.model import MetricsReport
from agentflow.metrics.period import Period, parse_period


def metrics_report(root: Path, period: Period, *, from_git: bool = False) -> MetricsReport:
    """The metrics report of the repository at ``root``; see ``compute``."""
    return compute(load_facts(root, from_git=from_git, since=period.previous().start, until=period.end), period)


__all__ = [
    "CommitFact",
    "Facts",
    "MetricsReport",
    "Period",
    "RunFact",
    "SessionFact",
    "VerdictFact",
    "compute",
    "compute_period",
    "facts_from_git",
    "facts_from_ledger",
    "load_facts",
    "metrics_report",
    "parse_period",
]
