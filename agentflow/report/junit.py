"""A verification as JUnit XML: one testcase per acceptance criterion and per check, plus one for the verdict."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from agentflow.report.verify import VerifyReport, check_status, evidence_text, location

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: Any) -> str:
    return _XML_ILLEGAL.sub("", str(text if text is not None else ""))


def _suite(parent: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(parent, "testsuite", name=name)


def _case(suite: ET.Element, name: str, time: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=suite.get("name", ""), name=_xml(name), time=f"{time:.3f}")


def _finish_suite(suite: ET.Element) -> tuple[int, int, int]:
    cases = suite.findall("testcase")
    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    return len(cases), failures, skipped


def to_junit(report: VerifyReport) -> str:
    root = ET.Element("testsuites", name="agentflow verify")
    verdict = _suite(root, "agentflow.verdict")
    case = _case(verdict, f"outcome ({report.plan_id or 'patterns only'})")
    if not report.passed:
        body = "\n".join(
            [
                report.summary,
                *report.reasons,
                *(f"[{f['severity']}] {f['id']} {location(f)}: {f['message']}" for f in report.findings),
            ]
        )
        failure = ET.SubElement(case, "failure", message=_xml(report.outcome), type=_xml(report.outcome))
        failure.text = _xml(body)
    criteria = _suite(root, "agentflow.criteria")
    for criterion in report.criteria:
        case = _case(criteria, f"{criterion['id']}: {criterion.get('text', '')}".rstrip(": "))
        status = criterion["status"]
        if status in ("unmet", "unanswered"):
            failure = ET.SubElement(case, "failure", message=_xml(status), type=_xml(status))
            failure.text = _xml(criterion.get("evidence", ""))
        elif status == "unclear":
            ET.SubElement(case, "skipped", message=_xml(f"unclear: {criterion.get('evidence', '')}"))
    checks = _suite(root, "agentflow.checks")
    for check in report.checks:
        case = _case(checks, check["command"], float(check.get("duration_s") or 0.0))
        if not check.get("passed"):
            failure = ET.SubElement(case, "failure", message=_xml(check_status(check)), type="check")
            failure.text = _xml(check.get("output_tail", ""))
        out = ET.SubElement(case, "system-out")
        evidence = evidence_text(check)
        out.text = _xml((f"[JUnit report: {evidence}]\n" if evidence else "") + str(check.get("output_tail", "")))
    totals = [_finish_suite(s) for s in (verdict, criteria, checks)]
    root.set("tests", str(sum(t[0] for t in totals)))
    root.set("failures", str(sum(t[1] for t in totals)))
    root.set("errors", "0")
    # no `skipped` on <testsuites>: the Jenkins JUnit schema (junit-10.xsd) has it on <testsuite> only
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
