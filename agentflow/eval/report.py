"""The eval reports: text and Markdown (a table of figures and a confusion matrix), and one
self-contained HTML page (figures, an inline SVG chart, every case's verdict)."""

from __future__ import annotations

import json
from typing import Any

FIGURES = (
    ("accuracy", "Accuracy"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("false_approval_rate", "False-approval rate (approved among reject)"),
    ("false_block_rate", "False-block rate (not approved among approve)"),
    ("finding_recall", "Finding recall against gold"),
    ("no_verdict_rate", "No-verdict rate"),
    ("agreement", "Agreement across repeats"),
)
OUTCOMES = ("approved", "changes_requested", "no_verdict")


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _figure_rows(data: dict[str, Any]) -> list[list[str]]:
    rows = [[label, _pct(data.get(key))] for key, label in FIGURES]
    rows.append(
        [
            "Findings per approve case",
            "n/a" if data["findings_on_approve"] is None else f"{data['findings_on_approve']:.2f}",
        ]
    )
    for key, label, unit in (
        ("cost_usd_per_case", "Cost per case", "$"),
        ("tokens_per_case", "Tokens per case", ""),
        ("seconds_per_case", "Seconds per case", "s"),
    ):
        spread = data[key]
        fmt = (
            (lambda v: f"${v:.4f}")
            if unit == "$"
            else (lambda v: f"{v:.2f} s")
            if unit == "s"
            else (lambda v: f"{v:.0f}")
        )
        rows.append([f"{label} (p50 / p95)", f"{fmt(spread['p50'])} / {fmt(spread['p95'])}"])
    return rows


def _confusion_rows(data: dict[str, Any]) -> list[list[str]]:
    return [
        [f"label {label}", *(str(data["confusion"][label][o]) for o in OUTCOMES)] for label in ("approve", "reject")
    ]


def _tag_rows(data: dict[str, Any]) -> list[list[str]]:
    return [
        [tag, str(s["runs"]), _pct(s["accuracy"]), _pct(s["false_approval_rate"]), _pct(s["false_block_rate"])]
        for tag, s in data["per_tag"].items()
    ]


def _case_rows(data: dict[str, Any]) -> list[list[str]]:
    return [
        [
            c["id"],
            c["label"],
            ", ".join(c["outcomes"]),
            "yes" if all(c["correct"]) else "NO",
            f"{min(c['gold_recalled'])}/{c['gold']}" if c["gold"] else "-",
        ]
        for c in data["per_case"]
    ]


def _head(data: dict[str, Any]) -> str:
    return f"{data['cases']} case(s) × {data['repeat']} repeat(s) of {data['dataset']}, backend {data['backend']}"


def render_text(data: dict[str, Any]) -> str:
    from agentflow.report.text import aligned_table

    out = [f"verifier eval: {_head(data)}", ""]
    out += aligned_table(["figure", "value"], _figure_rows(data))
    out += ["", "confusion matrix (runs):"]
    out += aligned_table(["", *OUTCOMES], _confusion_rows(data))
    if data["per_tag"]:
        out += ["", "per tag:"]
        out += aligned_table(["tag", "runs", "accuracy", "false approval", "false block"], _tag_rows(data))
    out += ["", "cases:"]
    out += aligned_table(["case", "label", "outcome", "right", "gold"], _case_rows(data), frozenset({0, 1, 2, 3}))
    return "\n".join(out) + "\n"


def render_markdown(data: dict[str, Any]) -> str:
    from agentflow.report.markdown import markdown_table

    out = ["# Verifier eval", "", _head(data), ""]
    out += markdown_table(["Figure", "Value"], _figure_rows(data), [":---", "---:"])
    out += ["", "## Confusion matrix", ""]
    out += markdown_table(["", *OUTCOMES], _confusion_rows(data), [":---", "---:", "---:", "---:"])
    if data["per_tag"]:
        out += ["", "## Per tag", ""]
        out += markdown_table(
            ["Tag", "Runs", "Accuracy", "False approval", "False block"],
            _tag_rows(data),
            [":---", "---:", "---:", "---:", "---:"],
        )
    out += ["", "## Cases", ""]
    out += markdown_table(["Case", "Label", "Outcome", "Right", "Gold found"], _case_rows(data), [":---"] * 5)
    return "\n".join(out) + "\n"


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def render_html(data: dict[str, Any]) -> str:
    from markupsafe import escape

    from agentflow.report.charts import OUTCOME_COLORS, Segment, hbar_chart

    chart = hbar_chart(
        [
            (f"label {label}", [Segment(float(data["confusion"][label][o]), OUTCOME_COLORS[o], o) for o in OUTCOMES])
            for label in ("approve", "reject")
        ],
        label="Outcomes per label",
        legend_items=[(o, OUTCOME_COLORS[o]) for o in OUTCOMES],
        value_format=lambda v: f"{v:.0f}",
    )

    def table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
        head = "".join(f"<th>{escape(h)}</th>" for h in header)
        body = "".join(
            f"<tr class='{cls if cls and row[3] == 'NO' else ''}'>"
            + "".join(f"<td>{escape(c)}</td>" for c in row)
            + "</tr>"
            for row in rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    kpis = "".join(
        f"<div class='kpi'><div class='v'>{escape(_pct(data.get(k)))}</div><div class='l'>{escape(label)}</div></div>"
        for k, label in FIGURES[:6]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Verifier eval</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#263238;margin:2rem auto;max-width:960px;padding:0 1rem}}
.kpis{{display:flex;flex-wrap:wrap;gap:.75rem}}.kpi{{border:1px solid #cfd8dc;border-radius:6px;padding:.6rem .9rem;min-width:130px}}
.kpi .v{{font-size:1.5rem;font-weight:600}}.kpi .l{{font-size:.8rem;color:#607d8b}}
table{{border-collapse:collapse;margin:.5rem 0 1.5rem}}td,th{{border-bottom:1px solid #eceff1;padding:.3rem .7rem;text-align:left}}
tr.wrong td{{background:#ffebee}}
</style></head><body>
<h1>Verifier eval</h1><p>{escape(_head(data))}</p>
<section class="kpis">{kpis}</section>
<h2>Outcomes per label</h2>{chart}
<h2>Figures</h2>{table(["Figure", "Value"], _figure_rows(data))}
<h2>Confusion matrix (runs)</h2>{table(["", *OUTCOMES], _confusion_rows(data))}
<h2>Per tag</h2>{table(["Tag", "Runs", "Accuracy", "False approval", "False block"], _tag_rows(data))}
<h2>Every case</h2>{table(["Case", "Label", "Outcome", "Right", "Gold found"], _case_rows(data), "wrong")}
</body></html>
"""


RENDERERS = {"text": render_text, "json": render_json, "md": render_markdown, "html": render_html}
