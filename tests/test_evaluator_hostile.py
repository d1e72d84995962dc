"""Hostile event logs (issue #16 items 4 and 5): keys that never repeat, at the root or deep inside,
spread over many types, very long or holding dots. Each must give a short report whose totals match
the input (map-like objects summarised as ``{*}``), never a crash; the scaling figures are in
benchmarks/README.md (``benchmarks/evaluate_bench.py --hostile``), not asserted here."""

from __future__ import annotations

import json

from agentflow.evaluator import evaluate
from agentflow.evaluator.analysis import build_analysis
from agentflow.evaluator.reader import read_logs
from agentflow.evaluator.schema import LEARN_LINES, MAP_KEY
from tests.evaluator_helpers import write_jsonl

SERIOUS = ("medium", "high", "critical")


def _unique_keys(i: int, n: int, prefix: str = "k") -> dict[str, int]:
    return {f"{prefix}{i}_{k}": k for k in range(n)}


def test_root_with_distinct_keys_in_every_event_is_summarised(tmp_path, cli):
    """Every event with its own 100 top-level keys: one {*} field, not 20,000 partial fields."""
    events = [{"type": "Hostile", "tenant_id": "t", **_unique_keys(i, 100)} for i in range(200)]
    log = write_jsonl(tmp_path / "root.jsonl", events)
    result = cli("evaluate", str(log), "--no-record", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["events"] == 200 and report["unanalysed_events"] == 0
    (schema,) = report["types"]
    assert schema["count"] == 200
    assert set(schema["fields"]) == {"type", "tenant_id", MAP_KEY}
    assert schema["fields"][MAP_KEY]["count"] == 200
    assert [f for f in report["findings"] if f["rule"] == "partial_field"] == []


def test_map_like_objects_at_depth_two_and_three_with_few_shapes_are_summarised(tmp_path):
    """Five types of 20 events (fewer than 64 shapes each): the end-of-read check finds the maps."""
    events = []
    for i in range(100):
        inner = _unique_keys(i, 40)
        events.append({"type": f"T{i % 5}", "tenant_id": "t", "a": {"b": inner}, "x": {"y": {"z": inner}}})
    analysis = evaluate([write_jsonl(tmp_path / "nested.jsonl", events)])
    assert analysis.events == 100 == sum(t.count for t in analysis.types)
    for schema in analysis.types:
        assert set(schema.fields) == {"type", "tenant_id", "a", "a.b", "a.b.{*}", "x", "x.y", "x.y.z", "x.y.z.{*}"}
        assert schema.fields["a.b.{*}"].count == 20
    assert analysis.findings == []


def test_an_object_in_one_event_is_a_record_not_a_map(tmp_path):
    """``changes.new_repository`` (40 keys, in one event of 30) keeps its fields: each key is in
    every event where the object is, however rare the object is in the type."""
    events = [{"type": "discussion", "tenant_id": "t", "changes": {"title": "x"}} for _ in range(29)]
    events.append({"type": "discussion", "tenant_id": "t", "changes": {"new_repository": _unique_keys(0, 40)}})
    schema = evaluate([write_jsonl(tmp_path / "record.jsonl", events)]).type("discussion")
    assert "changes.new_repository.k0_0" in schema.fields
    assert "changes.new_repository.{*}" not in schema.fields


def test_keys_with_dots_neither_crash_the_fast_path_nor_escape_the_summary(tmp_path, cli):
    """A key holding a dot (``app.kubernetes.io/name``) once ended the run (KeyError in the compiled
    fast path); a root of dotted keys that never repeat is still summarised."""
    events = [{"type": "Labelled", "app.kubernetes.io/name": "web", "c": {"d.e": i}} for i in range(LEARN_LINES + 500)]
    events += [{"type": "Dotted", **_unique_keys(i, 50, prefix="x.")} for i in range(100)]
    log = write_jsonl(tmp_path / "dots.jsonl", events)
    result = cli("evaluate", str(log), "--no-record", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["events"] == LEARN_LINES + 600
    fields = {t["type"]: set(t["fields"]) for t in report["types"]}
    assert fields["Labelled"] == {"type", "app.kubernetes.io/name", "c", "c.d.e"}
    assert fields["Dotted"] == {"type", MAP_KEY}


def test_very_long_keys_give_a_short_report(tmp_path, cli):
    events = [{"type": "Long", **{f"{i}_{k}_" + "x" * 5000: k for k in range(40)}} for i in range(20)]
    log = write_jsonl(tmp_path / "long.jsonl", events)
    result = cli("evaluate", str(log), "--no-record", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["events"] == 20 and set(report["types"][0]["fields"]) == {"type", MAP_KEY}
    assert len(result.stdout) < 20_000  # the 4 MB of keys are not repeated in the report


def test_distinct_keys_spread_over_many_hot_types_are_summarised_before_compiling(tmp_path):
    """21 types of 100 events, past the lines that teach the fast path its shapes: each type's map-like
    root is found when the fast path compiles (no Struct class with thousands of fields)."""
    events = [{"type": f"T{i % 21}", "tenant_id": "t", **_unique_keys(i, 40)} for i in range(2100)]
    analysis = evaluate([write_jsonl(tmp_path / "spread.jsonl", events)])
    assert analysis.events == 2100 and len(analysis.types) == 21
    assert all(set(t.fields) == {"type", "tenant_id", MAP_KEY} and t.count == 100 for t in analysis.types)
    assert analysis.findings == []


def test_many_types_with_one_event_each(tmp_path, cli):
    events = [{"type": f"Type{i}", "tenant_id": "t", "id": i} for i in range(3000)]
    log = write_jsonl(tmp_path / "types.jsonl", events)
    result = cli("evaluate", str(log), "--no-record", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["events"] == 3000 == sum(t["count"] for t in report["types"]) and len(report["types"]) == 3000
    assert [f for f in report["findings"] if f["severity"] in SERIOUS] == []


def test_maps_seen_by_one_worker_are_collapsed_in_the_merged_analysis(tmp_path):
    """Parallel ranges: the first range has 60 plain events, the rest map-like labels. Every shape,
    whichever worker found it, ends up collapsed, and the totals match."""
    events = [{"type": "Pod", "tenant_id": "t", "labels": {"app": "web"}} for _ in range(60)]
    events += [{"type": "Pod", "tenant_id": "t", "labels": _unique_keys(i, 3)} for i in range(600)]
    log = write_jsonl(tmp_path / "pods.jsonl", events)
    aggregator = read_logs([log], workers=2, parallel_min_bytes=1)
    analysis = build_analysis(aggregator, [str(log)])
    schema = analysis.type("Pod")
    assert schema.count == 660 == analysis.events
    assert set(schema.fields) == {"type", "tenant_id", "labels", "labels.{*}"}


def test_keys_that_never_repeat_in_types_of_a_few_events_are_a_map(tmp_path, cli):
    """300 types of a family (one name stem) with 4 events each, every event its own 40 keys: too
    few events for a share, but no key repeats: each root is a map."""
    events = [{"type": f"Account{i % 300}Changed", "tenant_id": "t", **_unique_keys(i, 40)} for i in range(1200)]
    log = write_jsonl(tmp_path / "family.jsonl", events)
    result = cli("evaluate", str(log), "--no-record", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["events"] == 1200 == sum(t["count"] for t in report["types"])
    assert all(set(t["fields"]) == {"type", "tenant_id", MAP_KEY} for t in report["types"])
    assert report["findings"] == []


def test_rare_fields_of_types_too_small_for_a_map_are_capped_per_rule_and_type(tmp_path, cli):
    """Four events per type, each pair with its own 60 keys (each key in two of four events: no map),
    so each key is a partial field; at most MAX_PER_RULE_AND_TYPE are listed per type, the rest are
    one finding that counts them."""
    from agentflow.evaluator.caps import MAX_PER_RULE_AND_TYPE

    events = [{"type": f"T{i % 3}", "tenant_id": "t", **_unique_keys(i // 6, 60)} for i in range(12)]
    log = write_jsonl(tmp_path / "small.jsonl", events)
    result = cli("evaluate", str(log), "--no-record", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["events"] == 12 == sum(t["count"] for t in report["types"])
    for name in ("T0", "T1", "T2"):
        partial = [f for f in report["findings"] if f["event_type"] == name and f["rule"] == "partial_field"]
        assert len(partial) == MAX_PER_RULE_AND_TYPE + 1
        (rest,) = [f for f in partial if f["field"] is None]
        assert rest["evidence"]["collapsed"] == 2 * 60 - MAX_PER_RULE_AND_TYPE
        assert rest["severity"] == "low" and len(rest["evidence"]["fields"]) == 5


def test_a_capped_finding_keeps_the_highest_severity_of_those_it_stands_for():
    from agentflow.evaluator.analysis import Finding
    from agentflow.evaluator.caps import cap_findings

    findings = [Finding("type_mismatch", "medium", "T", f"f{i}", "m", {"events": 9}, id=f"EV-{i}") for i in range(30)]
    for finding in findings[-8:]:
        finding.severity = "high"
    capped = cap_findings(findings, cap=5)
    assert len(capped) == 6
    assert [f.severity for f in capped[:5]] == ["high"] * 5  # the most severe listed one by one
    (rest,) = [f for f in capped if f.field is None]
    assert rest.severity == "high" and rest.evidence["collapsed"] == 25
    assert rest.evidence["severities"] == {"high": 3, "medium": 22}


def test_a_collapsed_finding_makes_no_plan_with_an_empty_field() -> None:
    """Past the cap, the rest of a type's findings are one finding with no field: --plan-out plans
    the findings listed one by one, never "Add  to T" for the one that counts the rest."""
    from agentflow.evaluator.analysis import Finding
    from agentflow.evaluator.caps import cap_findings
    from agentflow.evaluator.remediation import group_findings

    findings = [
        Finding("required_field", "high", "T", f"f{i:03}", f"T lacks f{i:03}", {"events": 3}, id=f"id{i}")
        for i in range(105)
    ]
    capped = cap_findings(findings, cap=100)
    assert len(capped) == 101 and any(f.field is None for f in capped)
    groups = group_findings(capped)
    assert len(groups) == 100
    assert all(group.subject for group in groups)
