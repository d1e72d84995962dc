"""A hostile verifier's summary or finding, or a file name of the change, rendered in the step
summary or a PR comment (``verify --format md``) must not become a link or an image: a link's
text can say anything (``[Approved by security, re-run here](https://evil)``) and an image
loads an outside URL whenever the page is viewed."""

from __future__ import annotations

import re

from agentflow.report.markdown import verify_markdown
from agentflow.report.verify import VerifyReport
from agentflow.text import markdown_cell

HOSTILE = "[Approved by security: re-run here](https://evil.example/x) ![t](https://evil.example/p.png)"

# a Markdown link or image: an unescaped "[" ... unescaped "](" (CommonMark: a backslash-escaped
# bracket opens or closes no link)
LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\(")


def _report() -> VerifyReport:
    return VerifyReport(
        run_id="r1",
        outcome="rejected",
        decision="reject",
        reasons=[HOSTILE],
        summary=HOSTILE,
        base="main",
        base_commit="a" * 40,
        head="b" * 40,
        plan_id="p1",
        plan_title=HOSTILE,
        criteria=[{"id": "c1", "text": HOSTILE, "status": "met", "evidence": HOSTILE}],
        findings=[{"id": "f1", "severity": "high", "file": "x.py", "line": 1, "pattern": None, "message": HOSTILE}],
    )


def test_markdown_cell_opens_no_link_or_image():
    assert not LINK.search(markdown_cell(HOSTILE))
    assert "evil.example" in markdown_cell(HOSTILE)  # still shown, as text


def test_verify_markdown_has_no_link_from_model_text():
    out = verify_markdown(_report())
    assert out.count("evil.example/x") >= 5
    assert not LINK.search(out), out


def test_reference_style_link_is_text_too():
    assert not re.search(r"(?<!\\)\[[^\]]*(?<!\\)\]\[", markdown_cell("[click][1]"))
    assert not re.search(r"(?<!\\)\[", markdown_cell("[1]: https://evil.example"))
