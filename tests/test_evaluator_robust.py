"""Evaluator robustness and the rules of issue #16 on synthetic logs (generated at run time)."""

from __future__ import annotations

import json
import random

from agentflow.evaluator import RuleConfig, evaluate
from tests.evaluator_helpers import demo_config, write_jsonl

SERIOUS = ("medium", "high", "critical")


# -- reading: any input costs a bad line or an exit 2, never a crash ---------------------------------


def test_deep_nesting_is_a_bad_line_not_a_crash(tmp_path, cli):
    deep = '{"type":"A","x":' + '{"a":' * 489 + "1" + "}" * 489 + "}"
    deeper = '{"type":"A","x":' + "[" * 5000 + "]" * 5000 + "}"
    log = tmp_path / "deep.jsonl"
    log.write_text("\n".join([deep, deeper, '{"type":"A","x":{}}']) + "\n")
    result = cli("evaluate", str(log), "--no-record", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["events"], data["bad_lines"]) == (1, 2)
    assert [e["line"] for e in data["errors"]] == [1, 2]


def test_deep_nesting_in_a_json_array(tmp_path):
    log = tmp_path / "deep.json"
    log.write_text('[{"type":"A","x":1},' + '{"type":"A","x":' + "[" * 100000 + "]" * 100000 + "}]")
    analysis = evaluate([log])
    assert analysis.events == 1 and analysis.bad_lines == 1


def test_line_longer_than_many_blocks_is_read_whole(tmp_path):
    big = {"type": "Big", "tenant_id": "t", "blob": "x" * (5 << 20)}
    log = write_jsonl(tmp_path / "big.jsonl", [big, {"type": "Big", "tenant_id": "t", "blob": "y"}])
    analysis = evaluate([log])
    assert (analysis.events, analysis.bad_lines) == (2, 0)


def test_file_without_any_event_is_exit_2(tmp_path, cli):
    cases = {
        "empty.jsonl": b"",
        "binary.jsonl": bytes(range(256)) * 8,
        "table.csv": b"a,b,c\n1,2,3\n",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = cli("evaluate", str(path), "--no-record")
        assert result.exit_code == 2, name
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and name in lines[0] and "--allow-empty" in lines[0]
        assert cli("evaluate", str(path), "--no-record", "--allow-empty").exit_code == 0


# -- keys ------------------------------------------------------------------------------------------


def test_free_text_with_hash_is_not_a_key(tmp_path):
    events = [{"type": "RepoCreated", "tenant_id": "t", "language": "C#", "title": "fix #12"} for _ in range(5)]
    events += [{"type": "RepoCreated", "tenant_id": "t", "language": "F#", "pk": "TENANT#t1#REPO#r2"}]
    analysis = evaluate([write_jsonl(tmp_path / "k.jsonl", events)])
    assert set(analysis.type("RepoCreated").key_templates) == {"pk"}


# -- envelopes, families, nullable objects, maps ----------------------------------------------------


def _flat(i: int, event_type: str) -> dict:
    return {
        "id": f"e{i}",
        "type": event_type,
        "time": "2026-01-01T00:00:00Z",
        "source": "app",
        "tenant_id": f"t{i % 3}",
        "account": {"id": f"a{i}", "plan": "pro"},
    }


def _bridge(i: int, detail_type: str) -> dict:
    return {
        "version": "0",
        "id": f"b{i}",
        "detail-type": detail_type,
        "source": "com.shop.orders",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {"tenant_id": f"t{i % 3}", "order": {"id": f"o{i}", "total": i}},
    }


def test_flat_and_eventbridge_in_one_run_consistent_types_get_no_medium(tmp_path):
    flat = ["AccountCreated", "AccountUpdated", "AccountClosed"]
    bridge = ["OrderPlaced", "OrderShipped", "OrderCancelled"]
    events = [_flat(i, flat[i % 3]) for i in range(60)] + [_bridge(i, bridge[i % 3]) for i in range(60)]
    analysis = evaluate([write_jsonl(tmp_path / "mixed.jsonl", events)])
    assert [f.to_json() for f in analysis.findings if f.severity in SERIOUS] == []
    assert {t.name: t.envelope for t in analysis.types}["OrderPlaced"] == "eventbridge"
    assert analysis.type("OrderPlaced").source == "com.shop.orders"


def test_shared_field_of_unrelated_types_is_not_medium(tmp_path):
    """Fields many entity kinds share by accident (``name`` of 3 of 4 types) are not a contract."""
    events = []
    for i in range(40):
        kind = ["UserInvited", "GroupCreated", "PolicyAttached", "SessionStarted"][i % 4]
        event = {"type": kind, "tenant_id": "t", "capsule_id": "c"}
        if kind != "SessionStarted":
            event["name"] = "n"
        events.append(event)
    analysis = evaluate([write_jsonl(tmp_path / "u.jsonl", events)])
    assert [f for f in analysis.findings if f.severity in SERIOUS] == []


def test_children_of_nullable_objects_are_measured_where_the_parent_is_an_object(tmp_path):
    events = []
    for i in range(30):
        milestone = None if i % 2 else {"id": i, "title": "m"}
        events.append({"type": "IssueOpened", "tenant_id": "t", "milestone": milestone})
    analysis = evaluate([write_jsonl(tmp_path / "n.jsonl", events)])
    schema = analysis.type("IssueOpened")
    assert schema.presence("milestone.id") == 1.0
    assert [f.field for f in analysis.findings if f.rule == "partial_field"] == []


def test_baseline_ignores_children_of_a_parent_null_in_the_newer_window(tmp_path):
    from agentflow.evaluator.baseline import baseline_of

    old = [{"type": "IssueOpened", "tenant_id": "t", "milestone": {"id": 1, "title": "m"}}] * 5
    new = [{"type": "IssueOpened", "tenant_id": "t", "milestone": None}] * 5
    baseline = baseline_of(evaluate([write_jsonl(tmp_path / "old.jsonl", old)]))
    drift = evaluate([write_jsonl(tmp_path / "new.jsonl", new)], baseline=baseline).findings
    assert [f.field for f in drift if f.rule == "drift_field_removed"] == []


def test_map_like_objects_are_summarised_and_no_event_is_dropped(tmp_path, cli):
    rng = random.Random(7)
    events = []
    for i in range(3000):
        labels = {f"label-{rng.randrange(100000)}": "v" for _ in range(rng.randrange(1, 6))}
        events.append({"type": "PodScheduled", "tenant_id": "t", "metadata": {"labels": labels, "name": f"p{i}"}})
    log = write_jsonl(tmp_path / "maps.jsonl", events)
    analysis = evaluate([log])
    schema = analysis.type("PodScheduled")
    assert analysis.unanalysed == 0 and schema.count == 3000 == analysis.events
    assert "metadata.labels.{*}" in schema.fields and schema.fields["metadata.name"].count == 3000
    assert len(schema.fields) < 10
    assert [f for f in analysis.findings if f.severity in SERIOUS] == []
    text = cli("evaluate", str(log), "--no-record").output
    assert "PodScheduled: 3000 events" in text


def test_leaf_named_scope_object_missing_is_critical(tmp_path, repo, cli):
    """Config names the leaf (agencyId); a type without the whole `agency` object is still critical."""
    events = []
    for i in range(40):
        kind = ["TaskCreated", "TaskUpdated", "TaskClosed", "TaskMoved"][i % 4]
        event = {"type": kind, "task": {"id": i}}
        if kind != "TaskMoved":
            event["agency"] = {"agencyId": f"a{i % 3}", "name": "x"}
        events.append(event)
    log = write_jsonl(tmp_path / "agency.jsonl", events)
    demo_config(repo)
    (repo / "agentflow.yaml").write_text("events:\n  isolation_fields: [agencyId]\n")
    result = cli("evaluate", str(log), "--no-record", "--format", "json")
    assert result.exit_code == 1
    found = [(f["severity"], f["event_type"], f["field"]) for f in json.loads(result.stdout)["findings"]]
    assert ("critical", "TaskMoved", "agency") in found


def test_type_drift_across_types_medium_in_family_low_across(tmp_path):
    events = []
    for i in range(50):
        kind = ["RepoCreated", "RepoRenamed", "RepoArchived", "StarAdded", "PushDone"][i % 5]
        created = 1_700_000_000 if kind in ("RepoArchived", "PushDone") else "2023-11-14T22:13:20Z"
        events.append({"type": kind, "tenant_id": "t", "repository": {"id": 1, "created_at": created}})
    analysis = evaluate([write_jsonl(tmp_path / "drift.jsonl", events)], rules=RuleConfig())
    drift = {(f.event_type, f.severity) for f in analysis.findings if f.rule == "type_mismatch_across_types"}
    assert drift == {("RepoArchived", "medium"), ("PushDone", "low")}
