"""verify output formats: text, json, md, github annotations, SARIF 2.1.0, JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from agentflow.errors import UsageError
from agentflow.formats import (
    ANNOTATIONS_PER_LEVEL,
    VerifyReport,
    escape_data,
    escape_property,
    github_step_summary,
    render,
    to_github,
    to_junit,
    to_sarif,
    workflow_command,
)

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0-subset.schema.json").read_text())


def report(**changes) -> VerifyReport:
    base = VerifyReport(
        run_id="r-20261127-abcdef",
        outcome="changes_requested",
        decision="approve",
        reasons=["check failed: pytest -q", "criterion AC2 unmet", "high finding F1: leak"],
        summary="Mostly right, 100% of the 'happy' path.\nOne leak.",
        base="main",
        base_commit="a" * 40,
        head="b" * 40,
        plan_id="348",
        plan_title="Capsule isolation",
        criteria=[
            {"id": "AC1", "text": "compiles", "status": "met", "evidence": "src/lib.rs:3"},
            {"id": "AC2", "text": "has capsule_id", "status": "unmet", "evidence": "src/role.rs:9"},
            {"id": "AC3", "text": "docs", "status": "unclear", "evidence": ""},
        ],
        findings=[
            {
                "id": "F1",
                "severity": "high",
                "file": "src/role.rs",
                "line": 9,
                "pattern": "capsule-isolation",
                "message": "RoleAssignment lacks capsule_id, 50% of tenants: a, b",
                "suggestion": "add it",
            },
            {"id": "F2", "severity": "low", "message": "naming"},
        ],
        checks=[
            {
                "command": "pytest -q",
                "exit_code": 1,
                "duration_s": 1.5,
                "output_tail": "1 failed\x1b[0m <boom>",
                "passed": False,
            },
            {"command": "ruff check", "exit_code": 0, "duration_s": 0.2, "output_tail": "", "passed": True},
        ],
        cost_usd=0.1234,
        models={"verifier": "anthropic:claude-sonnet-5-5"},
    )
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_escaping_follows_githubs_rules():
    assert escape_data("50%\r\nnext: a,b") == "50%25%0D%0Anext: a,b"
    assert escape_property("src/a:b,c%\n") == "src/a%3Ab%2Cc%25%0A"
    line = workflow_command("error", "a: b, 100%\nline 2", file="src/x,y.py", line=3, title="F1: high")
    assert line == "::error file=src/x%2Cy.py,line=3,title=F1%3A high::a: b, 100%25%0Aline 2"
    assert workflow_command("notice", "m", file=None, title="") == "::notice::m"


def test_github_annotations_for_outcome_checks_criteria_and_findings():
    lines = to_github(report()).splitlines()
    assert all(line.startswith("::") for line in lines)
    assert lines[0].startswith("::error title=agentflow%3A changes_requested::Mostly right, 100%25 of")
    assert any(line.startswith("::error title=check failed%3A pytest -q::") for line in lines)
    assert any("title=criterion AC2" in line for line in lines)
    f1 = next(line for line in lines if "title=F1" in line)
    assert f1.startswith("::error file=src/role.rs,line=9,title=F1 (high) [capsule-isolation]::")
    assert "50%25 of tenants: a, b" in f1  # message: only % CR LF escaped
    assert any(line.startswith("::notice title=F2 (low)::naming") for line in lines)
    assert all("\n" not in line for line in lines)


def test_github_annotations_are_capped_per_level_and_folded():
    findings = [{"id": f"F{i}", "severity": "high", "message": f"problem {i}"} for i in range(25)]
    findings += [{"id": f"W{i}", "severity": "medium", "message": "w"} for i in range(3)]
    lines = to_github(report(findings=findings)).splitlines()
    levels = [line.split(" ", 1)[0].split("::")[1] for line in lines]
    assert levels.count("error") == ANNOTATIONS_PER_LEVEL
    assert levels.count("warning") == 3
    assert levels.count("notice") <= ANNOTATIONS_PER_LEVEL
    folded = lines[-1]
    # 1 outcome + 1 check + 1 criterion + 25 findings = 28 errors; 10 shown, 18 folded
    assert folded.startswith("::notice title=agentflow%3A more findings::18 more annotation(s)")
    assert "F24" in folded


def test_step_summary_is_appended_when_set(tmp_path):
    target = tmp_path / "summary.md"
    target.write_text("# earlier step\n")
    assert github_step_summary(report(), {"GITHUB_STEP_SUMMARY": str(target)}) == target
    text = target.read_text()
    assert text.startswith("# earlier step\n")
    assert "## ❌ agentflow verify: `changes_requested`" in text
    assert "| AC2 | has capsule_id | unmet | src/role.rs:9 |" in text
    assert github_step_summary(report(), {}) is None


@pytest.mark.parametrize("outcome", ["approved", "changes_requested", "no_verdict"])
def test_sarif_is_valid_sarif_2_1_0(outcome):
    sarif = json.loads(to_sarif(report(outcome=outcome)))
    jsonschema.validate(sarif, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    f1 = next(r for r in results if r.get("partialFingerprints", {}).get("agentflowFindingId/v1") == "F1")
    assert f1["level"] == "error" and f1["ruleId"] == "pattern/capsule-isolation"
    assert rules[f1["ruleIndex"]]["id"] == f1["ruleId"]
    assert f1["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "src/role.rs"},
        "region": {"startLine": 9},
    }
    f2 = next(r for r in results if r.get("partialFingerprints", {}).get("agentflowFindingId/v1") == "F2")
    assert f2["level"] == "note" and "locations" not in f2
    assert {r["ruleId"] for r in results} == {
        "pattern/capsule-isolation",
        "agentflow/finding",
        "agentflow/check",
        "agentflow/criterion",
    }
    assert run["invocations"][0]["executionSuccessful"] is (outcome != "no_verdict")
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_sarif_schema_subset_rejects_invented_properties():
    sarif = json.loads(to_sarif(report()))
    sarif["runs"][0]["results"][0]["severity"] = "high"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(sarif, SCHEMA)


def test_junit_has_one_testcase_per_criterion_and_check():
    xml = to_junit(report())
    root = ET.fromstring(xml.encode())  # parses: control characters were removed
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"agentflow.verdict", "agentflow.criteria", "agentflow.checks"}
    criteria = suites["agentflow.criteria"].findall("testcase")
    assert [c.get("name") for c in criteria] == ["AC1: compiles", "AC2: has capsule_id", "AC3: docs"]
    assert criteria[0].find("failure") is None
    assert criteria[1].find("failure").get("message") == "unmet"
    assert criteria[2].find("skipped") is not None
    checks = suites["agentflow.checks"].findall("testcase")
    assert [(c.get("name"), c.get("time")) for c in checks] == [("pytest -q", "1.500"), ("ruff check", "0.200")]
    assert checks[0].find("failure").text == "1 failed[0m <boom>"
    assert checks[1].find("failure") is None
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("6", "3", "1")
    verdict = suites["agentflow.verdict"].find("testcase")
    assert verdict.find("failure").get("message") == "changes_requested"


def test_junit_approved_has_no_verdict_failure():
    root = ET.fromstring(to_junit(report(outcome="approved", reasons=[])).encode())
    verdict = root.find("testsuite[@name='agentflow.verdict']/testcase")
    assert verdict is not None and verdict.find("failure") is None


def test_text_json_and_markdown():
    text = render(report(), "text")
    assert "agentflow verify: changes_requested (plan 348: Capsule isolation)" in text
    assert "FAIL pytest -q (failed (exit 1)" in text
    assert "HIGH     F1 src/role.rs:9 [capsule-isolation]" in text
    assert "Not approved because:" in text
    data = json.loads(render(report(), "json"))
    assert data["outcome"] == "changes_requested" and data["approved"] is False
    assert data["findings"][0]["id"] == "F1"
    md = render(report(), "md")
    assert "| `pytest -q` | failed (exit 1) | 1.5s |" in md
    with pytest.raises(UsageError):
        render(report(), "xml")


def test_patterns_only_report_has_no_criteria_suite_cases():
    r = report(plan_id=None, plan_title=None, criteria=[], outcome="approved", reasons=[])
    assert "no plan (patterns only)" in render(r, "text")
    root = ET.fromstring(to_junit(r).encode())
    assert root.find("testsuite[@name='agentflow.criteria']").get("tests") == "0"


def test_multi_line_reasons_stay_one_list_item_in_markdown_and_text():
    from agentflow.formats import to_markdown, to_text

    sample = report(outcome="changes_requested", reasons=["high finding F1: a\nb"])
    assert "- high finding F1: a b" in to_markdown(sample)
    assert "- high finding F1: a b" in to_text(sample)
