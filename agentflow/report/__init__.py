"""Rendering of reports: the metrics report (text, Markdown, JSON, HTML) and one run's timeline.

Domain code builds plain dictionaries (``agentflow.metrics``, ``agentflow.show``); this package only
formats them. HTML comes from Jinja2 templates shipped in ``templates/`` (autoescaped) with inline
SVG charts, so a report is one self-contained file that needs no network.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from agentflow.metrics.model import MetricsReport

MetricsFormat = Literal["text", "md", "json", "html"]
FORMATS: tuple[str, ...] = ("text", "md", "json", "html")


def render_metrics(report: MetricsReport, fmt: str) -> str:
    """The metrics report in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "text":
        from agentflow.report.text import render_text

        return render_text(report)
    if fmt == "md":
        from agentflow.report.markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from agentflow.report.html import render_html

        return render_html(report)
    raise ValueError(f"unknown format {fmt!r}")
