"""verify output formats: text, json, md, github annotations, SARIF 2.1.0, JUnit XML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from agentflow.errors import UsageError
from agentflow.report.github import (
    ANNOTATIONS_PER_LEVEL,
    escape_data,
    escape_property,
    github_step_summary,
    to_github,
    workflow_command,
)
from agentflow.report.junit import to_junit
from agentflow.report.sarif import to_sarif
from agentflow.report.verify import VerifyReport, render
from tests.helpers import command_in_fresh_process, github_sarif_problems, shared_schema, validate_junit, validate_sarif


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


def located(**changes) -> VerifyReport:
    r = report(**changes)
    r.plan_path = ".plans/348-capsule-isolation.md"
    r.criteria[1]["line"] = 14
    r.checks[0].update(file="agentflow.yaml", line=3)
    return r


@pytest.mark.parametrize("outcome", ["approved", "changes_requested", "no_verdict"])
def test_sarif_is_valid_sarif_2_1_0_and_github_accepts_it(outcome):
    sarif = json.loads(to_sarif(located(outcome=outcome)))
    validate_sarif(sarif)  # the official schema and GitHub's upload requirements
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    results = run["results"]
    by_id = {r["properties"]["findingId"]: r for r in results if "findingId" in r.get("properties", {})}
    f1 = by_id["F1"]
    assert f1["level"] == "error" and f1["ruleId"] == "pattern/capsule-isolation"
    assert rules[f1["ruleIndex"]]["id"] == f1["ruleId"]
    assert f1["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "src/role.rs"},
        "region": {"startLine": 9},
    }
    # a finding without a file points at the plan; a failed check at the line declaring it; an
    # unmet criterion at its line in the plan: GitHub rejects results without a location
    assert by_id["F2"]["level"] == "note"
    assert (
        by_id["F2"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == ".plans/348-capsule-isolation.md"
    )
    [check] = [r for r in results if r["ruleId"] == "agentflow/check"]
    assert check["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "agentflow.yaml"},
        "region": {"startLine": 3},
    }
    [criterion] = [r for r in results if r["ruleId"] == "agentflow/criterion"]
    assert criterion["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": ".plans/348-capsule-isolation.md"},
        "region": {"startLine": 14},
    }
    assert {r["ruleId"] for r in results} == {
        "pattern/capsule-isolation",
        "agentflow/finding",
        "agentflow/check",
        "agentflow/criterion",
    }
    for rule in rules:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
    assert run["automationDetails"]["id"] == "agentflow/plan-348/"
    assert run["invocations"][0]["executionSuccessful"] is (outcome != "no_verdict")


def test_sarif_fingerprints_are_stable_across_runs_and_distinct_within_one():
    first = json.loads(to_sarif(located()))["runs"][0]["results"]
    again = located(run_id="r-20261128-999999", head="c" * 40)
    again.findings[1]["message"] = "naming, reworded by the next verifier"
    second = json.loads(to_sarif(again))["runs"][0]["results"]
    prints = [r["partialFingerprints"]["agentflowFindingId/v1"] for r in first]
    assert prints == [r["partialFingerprints"]["agentflowFindingId/v1"] for r in second]
    assert len(set(prints)) == len(prints)
    other_plan = json.loads(to_sarif(located(plan_id="349")))["runs"][0]
    assert other_plan["automationDetails"]["id"] == "agentflow/plan-349/"
    assert other_plan["results"][0]["partialFingerprints"] != first[0]["partialFingerprints"]


def test_sarif_without_a_plan_points_at_the_patterns_file():
    r = report(plan_id=None, plan_title=None, criteria=[])
    r.patterns_path = "CLAUDE.md"
    sarif = json.loads(to_sarif(r))
    validate_sarif(sarif)
    uris = {res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for res in sarif["runs"][0]["results"]}
    assert uris == {"src/role.rs", "CLAUDE.md"}
    assert sarif["runs"][0]["automationDetails"]["id"] == "agentflow/plan-patterns-only/"


def test_github_sarif_helper_catches_what_github_rejects():
    """The requirements helper itself: each violation GitHub documents is reported."""
    sarif = json.loads(to_sarif(located()))
    assert github_sarif_problems(sarif) == []
    run = sarif["runs"][0]
    del run["results"][0]["locations"]
    run["results"][1]["ruleId"] = "agentflow/undefined"
    run["results"][2]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = "/abs/path.py"
    del run["tool"]["driver"]["rules"][0]["help"]
    del run["results"][3]["partialFingerprints"]
    problems = "\n".join(github_sarif_problems(sarif))
    assert "results[0].locations: at least one location is required" in problems
    assert "'agentflow/undefined' is not defined in tool.driver.rules" in problems
    assert "'/abs/path.py' is not relative to the repository root" in problems
    assert "rules[0].help.text is missing" in problems
    assert "results[3].partialFingerprints is missing" in problems


def test_sarif_official_schema_rejects_invented_properties():
    schema = json.loads(shared_schema("sarif-schema-2.1.0.json").read_text())
    sarif = json.loads(to_sarif(located()))
    sarif["runs"][0]["results"][0]["severity"] = "high"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(sarif)


def test_junit_validates_against_the_jenkins_schema_as_pytests_own_report_does(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\ndef test_ok():\n    pass\n\ndef test_bad():\n    assert 0\n\n"
        "@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n"
    )
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={tmp_path / 'py.xml'}"],
        cwd=tmp_path,
        capture_output=True,
    )
    validate_junit((tmp_path / "py.xml").read_bytes())  # the yardstick: pytest's own report passes
    for r in (report(), report(outcome="approved", reasons=[]), report(plan_id=None, criteria=[])):
        validate_junit(to_junit(r))


def test_junit_schema_helper_rejects_a_skipped_attribute_on_testsuites():
    import xmlschema

    bad = to_junit(report()).replace("<testsuites ", '<testsuites skipped="1" ', 1)
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        validate_junit(bad)


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
    assert (root.get("tests"), root.get("failures")) == ("6", "3")
    assert sum(int(s.get("skipped")) for s in root.findall("testsuite")) == 1
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
    from agentflow.report.markdown import verify_markdown as to_markdown
    from agentflow.report.text import verify_text as to_text

    sample = report(outcome="changes_requested", reasons=["high finding F1: a\nb"])
    assert "- high finding F1: a b" in to_markdown(sample)
    assert "- high finding F1: a b" in to_text(sample)


def test_sarif_locations_outside_the_repository_fall_back_to_the_plan():
    r = located()
    r.findings = [
        {"id": "F1", "severity": "high", "file": "./src/a.py", "line": 2, "message": "m"},
        {"id": "F2", "severity": "high", "file": "/etc/passwd", "line": 1, "message": "m"},
        {"id": "F3", "severity": "high", "file": "../other/x.py", "message": "m"},
    ]
    sarif = json.loads(to_sarif(r))
    validate_sarif(sarif)
    uris = [res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for res in sarif["runs"][0]["results"]]
    assert uris[:3] == ["src/a.py", ".plans/348-capsule-isolation.md", ".plans/348-capsule-isolation.md"]


def test_sarif_rule_findings_get_their_rule_described():
    from agentflow.rules import registry

    rule = registry()[0]
    r = located()
    r.findings = [
        {
            "id": f"{rule.id}:tests/test_x.py:3",
            "severity": "high",
            "file": "tests/test_x.py",
            "line": 3,
            "pattern": rule.id,
            "rule": rule.id,
            "message": "m",
            "suggestion": "s",
        }
    ]
    sarif = json.loads(to_sarif(r))
    validate_sarif(sarif)
    [described] = [x for x in sarif["runs"][0]["tool"]["driver"]["rules"] if x["id"] == f"rule/{rule.id}"]
    assert rule.message in described["fullDescription"]["text"]


@pytest.mark.parametrize("fmt", ["text", "json", "github", "codequality"])
def test_the_gate_renderers_load_no_metrics_or_html_code(repo: Path, fmt: str) -> None:
    """The gate's renderers live in report/ next to the metrics and show renderers of the same format,
    and still load none of their code (the gate runs in every pre-push hook and CI job)."""
    ran = command_in_fresh_process(repo, ["gate", "HEAD", "--format", fmt], ("agentflow.metrics", "jinja2"))
    assert ran == (1, [])  # closed (no verdict), nothing else loaded
