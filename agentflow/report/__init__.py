"""Every renderer of agentflow, one module per output format.

Domain code builds the reports: the typed ``MetricsReport`` (``agentflow.metrics``), one run's
timeline (``agentflow.show``), one verification's ``VerifyReport`` (``report.verify``), the gate's
``GateResult`` (``agentflow.gate``), status rows and events (``agentflow.records``, ``agentflow.ledger``);
this package only formats them.

* ``text``: metrics, verify, show, gate; ``lines``: the status table and log lines (plain text too,
  apart so that ``status`` and ``log`` import nothing heavy; ``text`` re-exports them).
* ``markdown``: metrics, verify, show.  ``html``: metrics and show (Jinja2 templates in
  ``templates/``, autoescaped, inline SVG from ``charts``: one self-contained file, no network).
* ``jsonout``: metrics, verify, gate.  ``github``: verify and gate (annotations, safe log lines,
  step summaries).  ``sarif``, ``junit``: verify.  ``codequality``: the gate for GitLab.
* Shared pieces: ``figures`` (every metrics figure, labelled and formatted once), ``show`` (the
  timeline's pieces and ``render_show``), ``verify`` (``VerifyReport``, ``render``, ``report_targets``).

``render_metrics``, ``report.show.render_show`` and ``report.verify.render`` pick the format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from agentflow.metrics.model import MetricsReport

MetricsFormat = Literal["text", "md", "json", "html"]
FORMATS: tuple[str, ...] = ("text", "md", "json", "html")


def render_metrics(report: MetricsReport, fmt: str) -> str:
    """The metrics report in ``fmt`` (one of ``FORMATS``)."""
    if fmt == "json":
        from agentflow.report.jsonout import metrics_json

        return metrics_json(report)
    if fmt == "text":
        from agentflow.report.text import metrics_text

        return metrics_text(report)
    if fmt == "md":
        from agentflow.report.markdown import metrics_markdown

        return metrics_markdown(report)
    if fmt == "html":
        from agentflow.report.html import metrics_html

        return metrics_html(report)
    raise ValueError(f"unknown format {fmt!r}")
