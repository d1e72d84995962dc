"""The event-log evaluator: rules, input formats, malformed input, baselines, CLI contract."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentflow.evaluator import RuleConfig, evaluate, relevant_findings
from agentflow.evaluator.keys import key_template
from tests.evaluator_helpers import (
    ALL_TYPES,
    LEAKY,
    SCOPED,
    demo_config,
    demo_event,
    demo_events,
    write_array,
    write_jsonl,
)

DEMO_RULES = RuleConfig(isolation_fields=["tenant_id", "capsule_id"], exempt_types=["Tenant*"])


def high(findings):
    return [f for f in findings if f.severity in ("high", "critical")]


# -- the demo scenario -------------------------------------------------------------------------------


def test_demo_log_yields_exactly_the_two_isolation_findings(tmp_path):
    log = write_jsonl(tmp_path / "events.jsonl", demo_events(700))
    analysis = evaluate([log], rules=DEMO_RULES)
    serious = high(analysis.findings)
    assert sorted((f.event_type, f.field, f.rule) for f in serious) == [
        ("RoleAssignmentCreated", "capsule_id", "missing_sibling_field"),
        ("SecurityGroupUpdated", "capsule_id", "missing_sibling_field"),
    ]
    assert all(f.severity == "critical" for f in serious)
    assert not [f for f in analysis.findings if f.event_type.startswith("Tenant")]
    # The key evidence is folded into the field finding instead of a second finding.
    role = next(f for f in serious if f.event_type == "RoleAssignmentCreated")
    assert role.evidence["key_templates"]["segment"] == "CAPSULE#"
    assert role.evidence["sample_lines"][0].endswith("events.jsonl:6")


def test_without_exemption_tenant_events_are_flagged(tmp_path):
    log = write_jsonl(tmp_path / "events.jsonl", demo_events(700))
    analysis = evaluate([log], rules=RuleConfig())
    assert "TenantCreated" in {f.event_type for f in high(analysis.findings)}


def test_finding_ids_are_stable_across_runs(tmp_path):
    log = write_jsonl(tmp_path / "events.jsonl", demo_events(700))
    first = [f.id for f in evaluate([log], rules=DEMO_RULES).findings]
    second = [f.id for f in evaluate([log], rules=DEMO_RULES).findings]
    assert first == second and len(set(first)) == len(first)


# -- rules ---------------------------------------------------------------------------------------


def test_key_segment_missing_when_field_is_present(tmp_path):
    events = [e for e in demo_events(350) if e["type"] in SCOPED]  # keyed siblings: all carry CAPSULE#
    for event in events:
        if event["type"] == "UserInvited":
            event["pk"] = f"TENANT#{event['tenant_id']}#USER#{event['id']}"  # capsule_id kept, key skips it
    analysis = evaluate([write_jsonl(tmp_path / "e.jsonl", events)], rules=DEMO_RULES)
    keyed = [f for f in analysis.findings if f.rule == "key_segment_missing"]
    assert [(f.event_type, f.field, f.severity) for f in keyed] == [("UserInvited", "pk", "high")]
    assert keyed[0].evidence["templates"] == {"TENANT#{}#USER#{}": 50}


def test_key_template_shapes():
    assert key_template("TENANT#t-1#CAPSULE#c-9#ROLE#r-3") == "TENANT#{}#CAPSULE#{}#ROLE#{}"
    assert key_template("ORDER#2024#01#15") == "ORDER#{}#{}#{}"


@pytest.mark.parametrize(
    ("key", "template"),
    [
        ("PLATFORM#TENANT#t1", "PLATFORM#TENANT#{}"),  # a bare literal prefix before a label/value pair
        ("TENANT#t1#CAPSULE#c1#ACCOUNT#a1", "TENANT#{}#CAPSULE#{}#ACCOUNT#{}"),
        ("TENANT#ACME#CAPSULE#c1", "TENANT#{}#CAPSULE#{}"),  # an upper-case value followed by a label
        ("TENANT#t1#META", "TENANT#{}#META"),
        ("TENANT#ACME", "TENANT#{}"),
    ],
)
def test_key_template_keeps_upper_case_literals_and_pairs_values(key, template):
    assert key_template(key) == template
    assert key_template(key) == template  # memoised or not, the same answer


def test_partial_null_and_type_mismatch_within_a_type(tmp_path):
    events = []
    for i in range(100):
        event = {"type": "OrderPlaced", "tenant_id": "t", "amount": i, "coupon": None if i % 4 == 0 else "X"}
        if i % 10 == 0:
            event["amount"] = str(i)  # type drift inside one type
        if i % 5:
            event["note"] = "n"
        events.append(event)
    analysis = evaluate([write_jsonl(tmp_path / "o.jsonl", events)], rules=DEMO_RULES)
    by_rule = {(f.rule, f.field): f for f in analysis.findings}
    assert by_rule[("partial_field", "note")].evidence["present"] == 80
    assert by_rule[("null_field", "coupon")].evidence["null"] == 25
    mismatch = by_rule[("type_mismatch", "amount")]
    assert mismatch.evidence["types"] == {"integer": 90, "string": 10}
    assert mismatch.severity == "medium"
    schema = analysis.type("OrderPlaced")
    assert schema.fields["note"].count == 80


def test_isolation_field_missing_in_some_events_is_high(tmp_path):
    events = [{"type": "A", "tenant_id": "t", "capsule_id": "c"} for _ in range(10)]
    events[3].pop("capsule_id")
    analysis = evaluate([write_jsonl(tmp_path / "a.jsonl", events)], rules=DEMO_RULES)
    (finding,) = analysis.findings
    assert (finding.rule, finding.severity, finding.field) == ("partial_field", "high", "capsule_id")
    assert finding.evidence["sample_lines_missing"][0].endswith("a.jsonl:4")


def test_required_fields_from_config(tmp_path):
    events = [{"type": "Audit", "tenant_id": "t", "region": "eu"} for _ in range(5)]
    events += [{"type": "Audit", "tenant_id": "t"} for _ in range(5)]
    events += [{"type": "TenantCreated", "tenant_id": "t"}]
    rules = RuleConfig(exempt_types=["Tenant*"], required={"tenant_id": ["capsule_id", "region"]})
    analysis = evaluate([write_jsonl(tmp_path / "r.jsonl", events)], rules=rules)
    required = sorted((f.event_type, f.field, f.severity) for f in analysis.findings if f.rule == "required_field")
    # Tenant* is exempt for the isolation field capsule_id but not for region.
    assert required == [
        ("Audit", "capsule_id", "critical"),
        ("Audit", "region", "high"),
        ("TenantCreated", "region", "high"),
    ]
    # The explicit rule replaces the inferred partial-presence finding on the same field.
    assert not [f for f in analysis.findings if f.rule == "partial_field" and f.field == "region"]


def test_nested_missing_parent_is_reported_once(tmp_path):
    events = []
    # One family (the name stem Account): only family members are compared for domain fields.
    for i in range(40):
        t = ["AccountA", "AccountB", "AccountC", "AccountD"][i % 4]
        e = {"type": t, "tenant_id": "t", "capsule_id": "c"}
        if t != "AccountD":
            e["meta"] = {"trace": "x", "span": "y"}
        events.append(e)
    analysis = evaluate([write_jsonl(tmp_path / "n.jsonl", events)], rules=DEMO_RULES)
    missing = [(f.event_type, f.field) for f in analysis.findings if f.rule == "missing_sibling_field"]
    assert missing == [("AccountD", "meta")]
    assert analysis.type("AccountA").fields["meta.trace"].types == {"string": 10}


# -- input formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz", "events.json"])
def test_input_formats_give_the_same_schemas(tmp_path, name):
    events = demo_events(140)
    reference = evaluate([write_jsonl(tmp_path / "ref.jsonl", events)], rules=DEMO_RULES)
    path = tmp_path / name
    if name.endswith(".json"):
        write_array(path, events)
    else:
        write_jsonl(path, events)
    analysis = evaluate([path], rules=DEMO_RULES)
    assert analysis.events == 140 and analysis.bad_lines == 0
    assert [t.to_json() for t in analysis.types] == [t.to_json() for t in reference.types]
    assert [f.id for f in analysis.findings] == [f.id for f in reference.findings]


def test_gzip_is_detected_by_content_not_name(tmp_path):
    path = tmp_path / "events.log"
    path.write_bytes(gzip.compress(b"".join(json.dumps(e).encode() + b"\n" for e in demo_events(14))))
    assert evaluate([path]).events == 14


def test_eventbridge_envelope_uses_detail(tmp_path):
    events = [
        {
            "version": "0",
            "id": f"x{i}",
            "detail-type": t,
            "source": "app",
            "account": "1",
            "detail": {k: v for k, v in demo_event(i, t).items() if k != "type"},
        }
        for i, t in enumerate(ALL_TYPES * 20)
    ]
    analysis = evaluate([write_jsonl(tmp_path / "eb.jsonl", events)], rules=DEMO_RULES)
    assert {t.name for t in analysis.types} == set(ALL_TYPES)
    assert "account" not in analysis.type("AccountCreated").fields  # the envelope is not the payload
    assert sorted(f.event_type for f in high(analysis.findings)) == sorted(LEAKY)


def test_cloudevents_use_data(tmp_path):
    events = [
        {
            "specversion": "1.0",
            "id": f"x{i}",
            "source": "/app",
            "type": t,
            "data": {k: v for k, v in demo_event(i, t).items() if k != "type"},
        }
        for i, t in enumerate(ALL_TYPES * 20)
    ]
    analysis = evaluate([write_jsonl(tmp_path / "ce.jsonl", events)], rules=DEMO_RULES)
    assert "specversion" not in analysis.type("UserInvited").fields
    assert sorted(f.event_type for f in high(analysis.findings)) == sorted(LEAKY)


def test_type_field_option(tmp_path, repo, cli):
    events = [{"meta": {"kind": e.pop("type")}, **e} for e in demo_events(70)]
    log = write_jsonl(tmp_path / "k.jsonl", events)
    demo_config(repo)
    result = cli("evaluate", str(log), "--type-field", "meta.kind", "--format", "json", "--no-record")
    data = json.loads(result.stdout)
    assert {t["type"] for t in data["types"]} == set(ALL_TYPES)
    assert sorted(f["event_type"] for f in data["findings"] if f["severity"] == "critical") == sorted(LEAKY)
    failed = cli("evaluate", str(log), "--format", "json", "--no-record")  # no event has a type: exit 2
    assert failed.exit_code == 2 and "no event could be read (70 bad lines" in failed.output
    without = json.loads(cli("evaluate", str(log), "--format", "json", "--no-record", "--allow-empty").stdout)
    assert without["bad_lines"] == 70 and without["events"] == 0


def test_parallel_ranges_match_sequential(tmp_path):
    from agentflow.evaluator.analysis import build_analysis
    from agentflow.evaluator.reader import read_logs

    log = write_jsonl(tmp_path / "p.jsonl", demo_events(3000), [b'{"broken"\n'])
    files = [str(log)]
    one = build_analysis(read_logs([log], workers=1), files)
    two = build_analysis(read_logs([log], workers=2, parallel_min_bytes=1), files)
    assert (two.events, two.bad_lines) == (one.events, one.bad_lines) == (3000, 1)
    assert [e.to_json() for e in two.errors] == [e.to_json() for e in one.errors]
    assert two.errors[0].line == 3001
    assert [t.to_json() for t in two.types] == [t.to_json() for t in one.types]
    assert [t.lines for t in two.types] == [t.lines for t in one.types]


# -- malformed input -----------------------------------------------------------------------------


def test_malformed_lines_are_counted_with_line_numbers(tmp_path):
    good = demo_events(7)
    lines = [json.dumps(e).encode() for e in good]
    lines[2] = b'{"type": "AccountCreated", "tenant_id": "t'  # truncated
    lines.insert(4, b"[1, 2]")  # not an object
    lines.insert(5, b'{"type": "A", "name": "\xff\xfe"}')  # invalid UTF-8
    lines.insert(6, b'{"tenant_id": "t"}')  # no type
    lines.insert(7, b"")  # blank lines are not errors
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines))  # no trailing newline either
    analysis = evaluate([path])
    assert analysis.events == 6
    assert analysis.bad_lines == 4
    errors = [(e.line, e.message.split(" ")[0]) for e in analysis.errors]
    assert errors == [(3, "invalid"), (5, "not"), (6, "invalid"), (7, "no")]
    assert "UTF-8" in analysis.errors[2].message


def test_broken_array_keeps_the_events_before_the_error(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n{"type": "A", "x": 1},\n{"type": "A", "x": 2},\n{"type": "A", "x": \n]\n')
    analysis = evaluate([path])
    assert analysis.events == 2
    assert analysis.bad_lines == 1 and analysis.errors[0].line == 4


def test_array_elements_that_are_not_objects(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"type": "A"}, 3, {"kind": "A"}]')
    analysis = evaluate([path])
    assert (analysis.events, analysis.bad_lines) == (1, 2)


# -- baseline ------------------------------------------------------------------------------------


def test_baseline_drift(tmp_path, repo, cli):
    demo_config(repo)
    before = write_jsonl(tmp_path / "before.jsonl", demo_events(70))
    saved = repo / "baseline.json"
    result = cli("evaluate", str(before), "--save-baseline", str(saved), "--fail-on", "none", "--no-record")
    assert result.exit_code == 0 and saved.is_file()
    events = demo_events(70)
    for e in events:
        if e["type"] == "AccountCreated":
            del e["capsule_id"]
            e["payload"]["size"] = "big"
            e["region"] = "eu"
    after = write_jsonl(tmp_path / "after.jsonl", events)
    data = json.loads(cli("evaluate", str(after), "--baseline", str(saved), "--format", "json", "--no-record").stdout)
    drift = {
        (f["rule"], f["event_type"], f["field"]): f["severity"]
        for f in data["findings"]
        if f["rule"].startswith("drift_")
    }
    assert drift == {
        ("drift_field_removed", "AccountCreated", "capsule_id"): "critical",
        ("drift_type_changed", "AccountCreated", "payload.size"): "medium",
        ("drift_field_added", "AccountCreated", "region"): "low",
    }


def test_bad_baseline_is_a_usage_error(tmp_path, repo, cli):
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(7))
    (repo / "b.json").write_text("{}")
    result = cli("evaluate", str(log), "--baseline", "b.json")
    assert result.exit_code == 2 and "not an agentflow baseline" in result.stderr


# -- CLI -----------------------------------------------------------------------------------------


def test_json_output_contract(tmp_path, repo, cli):
    demo_config(repo)
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(70), [b"oops\n"])
    result = cli("evaluate", str(log), "--format", "json", "--no-record")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert {"events", "bad_lines", "types", "findings", "errors"} <= set(data)
    assert (data["events"], data["bad_lines"]) == (70, 1)
    account = next(t for t in data["types"] if t["type"] == "AccountCreated")
    assert {"type", "count", "fields", "key_templates"} <= set(account)
    assert account["fields"]["capsule_id"]["presence"] == 1.0
    assert account["fields"]["capsule_id"]["types"] == ["string"]
    assert account["key_templates"][0]["template"] == "TENANT#{}#CAPSULE#{}#ACCOUN#{}"
    for finding in data["findings"]:
        assert set(finding) == {"id", "rule", "severity", "event_type", "field", "message", "evidence"}
    assert data["errors"] == [{"file": str(log), "line": 71, "message": data["errors"][0]["message"]}]


@pytest.mark.parametrize(("fail_on", "code"), [("none", 0), ("low", 1), ("high", 1), ("critical", 1)])
def test_fail_on_exit_codes(tmp_path, repo, cli, fail_on, code):
    demo_config(repo)
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(70))
    assert cli("evaluate", str(log), "--fail-on", fail_on, "--no-record").exit_code == code


def test_fail_on_below_threshold_passes(tmp_path, repo, cli):
    events = [{"type": "A", "tenant_id": "t", "note": "x" if i % 2 else None} for i in range(10)]
    log = write_jsonl(tmp_path / "e.jsonl", events)
    assert cli("evaluate", str(log), "--no-record").exit_code == 0  # only a low finding
    assert cli("evaluate", str(log), "--no-record", "--fail-on", "low").exit_code == 1
    assert cli("evaluate", str(log), "--fail-on", "severe").exit_code == 2


def test_markdown_and_output_file(tmp_path, repo, cli):
    demo_config(repo)
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(70))
    result = cli("evaluate", str(log), "--format", "md", "--output", "out/report.md", "--no-record")
    text = (repo / "out" / "report.md").read_text()
    assert result.exit_code == 1 and result.stdout == ""
    assert text.startswith("# Event-log evaluation") and "| RoleAssignmentCreated |" in text


def test_missing_log_is_a_usage_error(repo, cli):
    result = cli("evaluate", "nope.jsonl")
    assert result.exit_code == 2 and "nope.jsonl: no such file" in result.stderr


def test_logs_default_to_config_paths(tmp_path, repo, cli):
    demo_config(repo, '  paths: ["logs/*.jsonl"]\n')
    (repo / "logs").mkdir()
    write_jsonl(repo / "logs" / "a.jsonl", demo_events(35))
    write_jsonl(repo / "logs" / "b.jsonl", demo_events(35))
    data = json.loads(cli("evaluate", "--format", "json", "--no-record").stdout)
    assert data["events"] == 70 and len(data["files"]) == 2
    (repo / "agentflow.yaml").unlink()
    assert cli("evaluate").exit_code == 2


def test_findings_are_recorded_in_the_ledger(tmp_path, repo, cli):
    from agentflow.ledger import Ledger

    demo_config(repo)
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(70))
    cli("evaluate", str(log))
    with Ledger.open(repo) as ledger:
        open_ids = {f["event_type"] for f in ledger.open_findings() if f["severity"] == "critical"}
    assert open_ids == set(LEAKY)
    fixed = [demo_event(i, t) for i, t in enumerate(ALL_TYPES * 10) if t not in LEAKY]
    cli("evaluate", str(write_jsonl(tmp_path / "fixed.jsonl", fixed)))
    with Ledger.open(repo) as ledger:
        assert ledger.open_findings() == []
    cli("evaluate", str(log), "--no-record")
    with Ledger.open(repo) as ledger:
        assert ledger.open_findings() == []


def test_plan_out_writes_buildable_plans(tmp_path, repo, cli):
    from agentflow.plans import load_plan

    demo_config(repo)
    plans = repo / ".plans"
    plans.mkdir()
    (plans / "7-existing.md").write_text("---\nid: 7\ntitle: Existing\n---\n## Acceptance criteria\n- AC1: x\n")
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(70))
    result = cli("evaluate", str(log), "--plan-out", ".plans", "--no-record")
    written = sorted(plans.glob("8-*.md"))
    assert len(written) == 1 and "wrote plan" in result.stderr
    plan = load_plan(written[0])
    assert plan.title == "Add capsule_id to RoleAssignmentCreated and SecurityGroupUpdated"
    assert plan.status == "ready"
    assert [c.id for c in plan.criteria] == ["AC1", "AC2"]
    assert "RoleAssignmentCreated" in plan.criteria[0].text and "SecurityGroupUpdated" in plan.criteria[1].text
    cli("evaluate", str(log), "--plan-out", ".plans", "--no-record")
    assert len(list(plans.glob("*.md"))) == 2  # idempotent: the same group is not written twice


CLAUDE_MD = """# Conventions

## Capsule isolation

**When to use:** every user-scoped entity, event or key.

**Anti-patterns:** `TENANT#{tenant_id}#ROLE#{role_id}` keys that skip the `CAPSULE#` segment.

## Explicit API params

**Pattern:** `scoped_key(tenant_id=t, capsule_id=c, kind="ROLE", entity_id=r)`

## Logging

**Pattern:** structured logs only.
"""


def test_paths_in_findings_and_plans_are_relative_to_the_repository(tmp_path, repo, cli):
    from agentflow.ledger import Ledger

    demo_config(repo, "  paths: [logs/events.jsonl]\n")
    (repo / "logs").mkdir()
    log = write_jsonl(repo / "logs" / "events.jsonl", demo_events(70))
    result = cli("evaluate", "--plan-out", ".plans")  # from events.paths, which the runner makes absolute
    assert result.exit_code == 1
    assert "sample lines: logs/events.jsonl:" in result.stdout and str(repo) not in result.stdout
    (plan_path,) = (repo / ".plans").glob("*.md")
    plan_text = plan_path.read_text()
    assert str(repo) not in plan_text and "(e.g. logs/events.jsonl:" in plan_text
    assert "`agentflow evaluate logs/events.jsonl` on new logs" in plan_text
    with Ledger.open(repo) as ledger:
        assert all(
            ":" in line and not line.startswith("/")
            for f in ledger.open_findings()
            for line in f["evidence"]["sample_lines"]
        )
    typed = json.loads(cli("evaluate", str(log), "--format", "json", "--no-record").stdout)  # absolute, in the repo
    assert typed["files"] == ["logs/events.jsonl"]
    assert typed["findings"][0]["evidence"]["sample_lines"][0].startswith("logs/events.jsonl:")
    outside = write_jsonl(tmp_path / "outside.jsonl", demo_events(70))  # not in the repository: as given
    assert json.loads(cli("evaluate", str(outside), "--format", "json", "--no-record").stdout)["files"] == [
        str(outside)
    ]


def test_plan_file_and_branch_names_cut_at_a_word_boundary(tmp_path, repo, cli):
    from agentflow.plans import branch_name, load_plan

    demo_config(repo)
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(70))
    cli("evaluate", str(log), "--plan-out", ".plans", "--no-record")
    (path,) = (repo / ".plans").glob("*.md")
    assert path.name == "1-add-capsule-id-to-roleassignmentcreated.md"  # not "...-and-securi.md"
    plan = load_plan(path)
    assert plan.slug == "add-capsule-id-to-roleassignmentcreated"
    assert branch_name(plan) == "agentflow/1-add-capsule-id-to-roleassignmentcreated"
    assert branch_name(plan.model_copy(update={"path": repo / ".plans" / "plan.md"})) == branch_name(plan)


def test_plans_name_the_claude_md_patterns_that_concern_them(tmp_path, repo, cli):
    from agentflow.plans import load_plan

    demo_config(repo)
    (repo / "CLAUDE.md").write_text(CLAUDE_MD)
    log = write_jsonl(tmp_path / "e.jsonl", demo_events(70))
    cli("evaluate", str(log), "--plan-out", ".plans", "--no-record")
    (path,) = (repo / ".plans").glob("*.md")
    plan = load_plan(path)
    assert plan.patterns == ["capsule-isolation"]  # named by its title, not explicit-api-params or logging
    assert "`capsule-isolation` (Capsule isolation): its title names capsule and isolation." in plan.context


def test_pattern_matching_falls_back_to_verbatim_mentions_and_else_names_none():
    from agentflow.evaluator.analysis import Finding
    from agentflow.evaluator.remediation import PlanGroup, match_patterns, render_plan
    from agentflow.patterns import parse_patterns

    def group(subject):
        finding = Finding("missing_sibling_field", "medium", "OrderPlaced", subject, "lacks it", {})
        return PlanGroup("add", subject, [finding])

    patterns = parse_patterns(CLAUDE_MD)
    by_text = match_patterns(group("capsule_id"), [p for p in patterns if p.id != "capsule-isolation"])
    assert [(m.pattern.id, m.reason) for m in by_text] == [("explicit-api-params", "its text names `capsule_id`")]
    assert match_patterns(group("currency"), patterns) == []
    text = render_plan(group("currency"), 3, ["logs/e.jsonl"], [], "CLAUDE.md")
    assert "patterns: []" in text and "No pattern in CLAUDE.md names `currency`" in text
    key_group = PlanGroup("key", "CAPSULE#", [Finding("key_segment_missing", "high", "R", "pk", "m", {})])
    assert [m.pattern.id for m in match_patterns(key_group, patterns)] == ["capsule-isolation"]


def test_relevant_findings_match_entities_and_scope():
    findings = [
        {"id": "EV-1", "event_type": "RoleAssignmentCreated", "field": "capsule_id", "severity": "critical"},
        {"id": "EV-2", "event_type": "SecurityGroupUpdated", "field": "capsule_id", "severity": "critical"},
        {"id": "EV-3", "event_type": "AccountCreated", "field": "note", "severity": "low"},
    ]
    plan = SimpleNamespace(title="Backfill capsule ids for role assignments", body="", scope=[])
    assert [f["id"] for f in relevant_findings(findings, plan)] == ["EV-1"]
    plan = SimpleNamespace(
        title="Refactor", body="Touches SecurityGroupUpdated emission.", scope=["src/role_assignment/**"]
    )
    assert [f["id"] for f in relevant_findings(findings, plan)] == ["EV-1", "EV-2"]
    plan = SimpleNamespace(title="Roles and groups", body="Account settings page", scope=[])
    assert [f["id"] for f in relevant_findings(findings, plan)] == ["EV-3"]


def test_big_integers_and_byte_order_mark_are_valid_input(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"type": "A", "n": 1}\n{"type": "A", "n": 123456789012345678901234567890}\n')
    analysis = evaluate([path])
    assert (analysis.events, analysis.bad_lines) == (2, 0)
    assert sum(analysis.type("A").fields["n"].types.values()) == 2
    assert not analysis.findings  # integer and number are one JSON type for the rules


def test_exempt_types_take_no_part_in_sibling_comparisons(tmp_path):
    events = demo_events(70)
    for event in events:
        if event["type"] == "TenantCreated":
            del event["actor"]  # platform events lack user-scoped envelope fields too
    analysis = evaluate([write_jsonl(tmp_path / "e.jsonl", events)], rules=DEMO_RULES)
    assert not [f for f in analysis.findings if f.event_type == "TenantCreated"]
    flagged = evaluate([write_jsonl(tmp_path / "e.jsonl", events)], rules=RuleConfig())
    assert ("TenantCreated", "actor") in {(f.event_type, f.field) for f in flagged.findings}


def test_the_demo_sample_log(tmp_path):
    sample = pytest.importorskip("agentflow.demo.sample")
    log = tmp_path / "events.jsonl"
    sample.write_event_log(log)
    analysis = evaluate([log], rules=DEMO_RULES)
    assert sorted((f.event_type, f.field, f.severity) for f in analysis.findings) == [
        ("RoleAssignmentCreated", "capsule_id", "critical"),
        ("SecurityGroupUpdated", "capsule_id", "critical"),
    ]


def test_key_templates_without_any_label_do_not_break_the_key_rules(tmp_path):
    # "#x" keys give the template "{}#{}": no first label to group siblings by (used to raise IndexError).
    events = [
        {"type": "OrderPlaced", "tenant_id": "t1", "pk": "TENANT#t1#ORDER#o1"},
        {"type": "OrderPlaced", "tenant_id": "t1", "pk": "#x"},
        {"type": "OrderShipped", "tenant_id": "t1", "pk": "TENANT#t1#ORDER#o2"},
    ]
    analysis = evaluate([write_jsonl(tmp_path / "e.jsonl", events)], workers=1)
    templates = {t.name: t.key_templates["pk"] for t in analysis.types}
    assert templates["OrderPlaced"] == {"TENANT#{}#ORDER#{}": 1, "{}#{}": 1}
    assert [f.rule for f in analysis.findings if f.event_type == "OrderPlaced"] == ["key_template_inconsistent"]


def test_markdown_report_escapes_what_an_event_log_writes(repo: Path, cli) -> None:
    # Event types and field names come from the log, which anyone who can emit an event writes: in a
    # PR comment they must not become HTML or split a table row.
    from tests.helpers import HOSTILE_MARKDOWN, hostile_rows

    log = repo / "events.jsonl"
    events = [{"type": "order.created", "tenant_id": "t1", "id": n} for n in range(5)]
    events += [{"type": HOSTILE_MARKDOWN, "id": n} for n in range(5)]  # no tenant_id: a finding on it
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = cli("evaluate", str(log), "--format", "md")
    assert result.exit_code in (0, 1), result.output
    rows = hostile_rows(result.stdout)
    assert rows, result.stdout  # the hostile type is in the findings table and the types table
    widths = {len(cells) for cells in rows}
    assert widths <= {6, 4}, rows  # no extra cell: the escaped pipe did not split a row
