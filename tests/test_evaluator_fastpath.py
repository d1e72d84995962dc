"""The compiled fast path must give exactly the results of the general path, only faster."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from agentflow.evaluator import RuleConfig, evaluate
from agentflow.evaluator import schema as schema_module
from tests.evaluator_helpers import demo_events, write_jsonl

pytest.importorskip("msgspec")
RULES = RuleConfig(exempt_types=["Tenant*"], required={"tenant_id": ["capsule_id"]})


def varied_events(n: int, seed: int = 7) -> list[object]:
    """Events whose shapes keep changing: optional and null fields, int/float/bool/str mixes, nested
    optional objects, arrays, keys with several templates, new types and fields late in the log."""
    rng = random.Random(seed)
    events: list[object] = []
    for i in range(n):
        kind = rng.choice(["OrderPlaced", "OrderShipped", "UserCreated", "TenantCreated"])
        e: dict = {"type": kind, "tenant_id": f"t{rng.randint(1, 3)}", "seq": i}
        if kind != "TenantCreated" and rng.random() < 0.9:
            e["capsule_id"] = f"c{rng.randint(1, 4)}"
        if rng.random() < 0.5:
            e["amount"] = rng.choice([1, 2.5, 3, 4.25])
        if rng.random() < 0.2:
            e["note"] = None if rng.random() < 0.5 else "n"
        if rng.random() < 0.7:
            e["meta"] = {"src": "api", "retries": rng.randint(0, 2)}
            if rng.random() < 0.3:
                e["meta"]["trace"] = {"id": f"x{i}", "sampled": rng.random() < 0.5}
        if rng.random() < 0.3:
            e["tags"] = ["a", "b"][: rng.randint(0, 2)]
        if rng.random() < 0.8:
            capsule = f"#CAPSULE#{e['capsule_id']}" if "capsule_id" in e and rng.random() < 0.9 else ""
            e["pk"] = f"TENANT#{e['tenant_id']}{capsule}#{kind.upper()}#{i}"
        if i > n // 2:
            if kind == "UserCreated":
                e["email"] = f"u{i}@example.com"  # a field that appears late
            if kind == "OrderShipped" and rng.random() < 0.1:
                e["seq"] = str(i)  # a type change late
            if rng.random() < 0.05:
                e = {"type": "RefundIssued", "tenant_id": "t1", "capsule_id": "c1", "amount": 1}  # new type
        if i % 97 == 0:
            e["flag"] = True if i % 2 else 1  # bool vs int must stay apart
        if i % 211 == 0:
            e["meta"] = {}
        events.append(e)
    return events


def _lines(events: list[object], bad_every: int = 0) -> list[bytes]:
    out = []
    for i, e in enumerate(events):
        out.append(json.dumps(e).encode())
        if bad_every and i % bad_every == 0:
            out += [
                b'{"type": "OrderPlaced", "tenant_id": ',
                b"",
                b"[1]",
                b'{"no_type": 1}',
                b'{"type": "OrderPlaced", "x": "\xff"}',
            ]
    return out


def _run(path: Path, monkeypatch: pytest.MonkeyPatch, *, fast: bool, workers: int = 1, **kw) -> dict:
    monkeypatch.setattr(schema_module, "FAST_PATH", fast)
    monkeypatch.setattr(schema_module, "LEARN_LINES", 25)
    from agentflow.evaluator import reader

    monkeypatch.setattr(reader, "BLOCK", 1 << 14)  # many blocks: recompilations happen mid-file
    monkeypatch.setattr(reader, "PARALLEL_MIN_BYTES", 1)
    analysis = evaluate([path], rules=RULES, workers=workers, **kw)
    data = analysis.to_json()
    data["lines"] = {t.name: t.lines for t in analysis.types}
    data["missing"] = {t.name: {p: f.missing_lines for p, f in t.fields.items()} for t in analysis.types}
    return data


def _without_examples(types: list[dict]) -> list[dict]:
    """Example values are illustrative: each path keeps the first few of the shapes it saw."""
    return [
        {**t, "fields": {p: {k: v for k, v in f.items() if k != "examples"} for p, f in t["fields"].items()}}
        for t in types
    ]


def _same(a: dict, b: dict) -> None:
    assert a["events"] == b["events"] and a["bad_lines"] == b["bad_lines"]
    assert a["errors"] == b["errors"]
    assert _without_examples(a["types"]) == _without_examples(b["types"])
    assert a["findings"] == b["findings"]
    assert a["lines"] == b["lines"] and a["missing"] == b["missing"]


def test_fast_path_matches_the_general_path(tmp_path, monkeypatch):
    path = tmp_path / "varied.jsonl"
    path.write_bytes(b"\n".join(_lines(varied_events(3000), bad_every=400)) + b"\n")
    slow = _run(path, monkeypatch, fast=False)
    fast = _run(path, monkeypatch, fast=True)
    _same(slow, fast)
    assert slow["bad_lines"] == 8 * 4  # truncated, not an object, no type, invalid UTF-8 (blank skipped)
    assert slow["events"] == 3000
    types = {t["type"]: t for t in fast["types"]}
    assert types["OrderShipped"]["fields"]["seq"]["type_counts"].keys() == {"integer", "string"}
    assert "RefundIssued" in types and "email" in types["UserCreated"]["fields"]
    assert types["OrderPlaced"]["fields"]["flag"]["types"] in (["boolean"], ["integer"], ["boolean", "integer"])


def test_fast_path_is_actually_used(tmp_path, monkeypatch):
    from agentflow.evaluator.reader import read_logs

    monkeypatch.setattr(schema_module, "LEARN_LINES", 25)
    path = write_jsonl(tmp_path / "e.jsonl", demo_events(500))
    aggregator = read_logs([path], workers=1)
    assert aggregator.compiles >= 1
    assert sum(s.count for key, s in aggregator.shapes.items() if key[0] == "fast") > 400
    varied = tmp_path / "varied.jsonl"
    varied.write_bytes(b"\n".join(_lines(varied_events(3000), bad_every=400)) + b"\n")
    aggregator = read_logs([varied], workers=1)
    assert sum(s.count for key, s in aggregator.shapes.items() if key[0] == "fast") > 1000  # one block: compiled once


def test_parallel_fast_path_matches_sequential_general_path(tmp_path, monkeypatch):
    path = tmp_path / "varied.jsonl"
    path.write_bytes(b"\n".join(_lines(varied_events(3000), bad_every=500)) + b"\n")
    _same(_run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True, workers=2))


def test_mixed_envelopes_fall_back_to_the_general_path(tmp_path, monkeypatch):
    events = demo_events(300)
    late = [{"detail-type": e["type"], "detail": {k: v for k, v in e.items() if k != "type"}} for e in demo_events(50)]
    path = write_jsonl(tmp_path / "mixed.jsonl", events + late + demo_events(100))
    _same(_run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True))


@pytest.mark.parametrize("type_field", ["kind", "meta.kind"])
def test_type_field_with_the_fast_path(tmp_path, monkeypatch, type_field):
    events = []
    for e in demo_events(400):
        kind = e.pop("type")
        events.append({"kind": kind, **e} if type_field == "kind" else {"meta": {"kind": kind}, **e})
    path = write_jsonl(tmp_path / "k.jsonl", events)
    slow = _run(path, monkeypatch, fast=False, type_field=type_field)
    fast = _run(path, monkeypatch, fast=True, type_field=type_field)
    _same(slow, fast)
    assert slow["events"] == 400


def test_keys_that_are_not_label_value_pairs(tmp_path, monkeypatch):
    # Even positions hold values here, so every key has its own (segments, labels) memo entry: the
    # fast path must spill to computing templates and still count exactly.
    events = [{"type": "OrderPlaced", "tenant_id": "t", "pk": f"ORDER#{i}#{i * 7}#x"} for i in range(1500)]
    path = write_jsonl(tmp_path / "o.jsonl", events)
    slow, fast = _run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True)
    _same(slow, fast)
    assert fast["types"][0]["key_templates"] == [{"field": "pk", "template": "ORDER#{}#{}#{}", "count": 1500}]


def test_keys_with_upper_case_literals_at_odd_positions(tmp_path, monkeypatch):
    # PLATFORM#TENANT#t<n> shifts the label/value pairing; the fast path must not use its
    # even-segment memo for it (that would give PLATFORM#{}#{}).
    events = [
        {"type": "TenantCreated", "tenant_id": f"t{i % 7}", "pk": f"PLATFORM#TENANT#t{i % 7}"} for i in range(1500)
    ]
    events += [
        {"type": "AccountCreated", "tenant_id": "t1", "pk": f"TENANT#ACME{i % 3}#CAPSULE#c{i}"} for i in range(1500)
    ]
    path = write_jsonl(tmp_path / "p.jsonl", events)
    slow, fast = _run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True)
    _same(slow, fast)
    templates = {t["type"]: t["key_templates"] for t in fast["types"]}
    assert templates["TenantCreated"] == [{"field": "pk", "template": "PLATFORM#TENANT#{}", "count": 1500}]
    assert templates["AccountCreated"] == [{"field": "pk", "template": "TENANT#{}#CAPSULE#{}", "count": 1500}]


KEY_PATTERNS = [
    "TENANT#{}#CAPSULE#{}",
    "TENANT#{}#{}",
    "TENANT#{}",
    "{}#ORDER#{}",
    "PLATFORM#TENANT#{}",
    "A1#{}#B_2#{}#C#{}",
    "TENANT#{}#",
    "#{}",
    "TENANT##CAPSULE#{}",
]
KEY_VALUES = ["t1", "c-9", "42", "", "ACME", "Éclair", "ÀB", "x_Y", "1A", "Z9"]


def keyed_events(n: int, rng: random.Random, values: list[str], patterns: list[str] = KEY_PATTERNS) -> list[dict]:
    events = []
    for i in range(n):
        key = pattern = rng.choice(patterns)
        for _ in range(pattern.count("{}")):
            key = key.replace("{}", rng.choice(values) + f"{i % 3 if rng.random() < 0.5 else ''}", 1)
        events.append({"type": rng.choice(["OrderPlaced", "UserCreated"]), "tenant_id": "t1", "pk": key})
    return events


def test_key_templates_counted_per_block_match_the_general_path(tmp_path, monkeypatch):
    # The fast path counts a block's keys at once; a block with an upper-case letter at an odd
    # position is counted key by key. Blocks of both kinds, keys with different numbers of segments,
    # empty segments, non-ASCII upper case and upper-case values must all give the same templates.
    rng = random.Random(11)
    lower = [v for v in KEY_VALUES if not any("A" <= ch <= "Z" for ch in v)]
    even_labels = [p for p in KEY_PATTERNS if p not in ("{}#ORDER#{}", "PLATFORM#TENANT#{}")]
    first = [{"type": kind, "tenant_id": "t1", "pk": "TENANT#t1#CAPSULE#c1"} for kind in ("OrderPlaced", "UserCreated")]
    events = first + keyed_events(1500, rng, lower, even_labels) + keyed_events(1500, rng, KEY_VALUES)
    events += keyed_events(1500, rng, lower, even_labels)
    events += [{"type": "OrderPlaced", "tenant_id": "t1", "pk": f"ORDER#{i}#{i}"} for i in range(600)]  # > memo cap
    # More distinct skeletons than the skeleton memo holds:
    events += [{"type": "UserCreated", "tenant_id": "t1", "pk": f"TENANT#ACME{i}#X#x"} for i in range(600)]
    path = write_jsonl(tmp_path / "keys.jsonl", events)
    slow, fast = _run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True)
    _same(slow, fast)
    templates = {t["template"] for t in fast["types"][0]["key_templates"]}
    assert {"PLATFORM#TENANT#{}", "TENANT#{}#CAPSULE#{}", "ORDER#{}#{}"} <= templates
    users = {t["template"]: t["count"] for t in fast["types"][1]["key_templates"]}
    assert users["TENANT#{}#X#{}"] >= 600


def _compiled_one_type(field: str, template: str):
    """The fast path's schema compiled on ten events of type A whose ``field`` holds keys made
    from ``template``, and its one compiled type."""
    from agentflow.evaluator.fastpath import compile_schema
    from agentflow.evaluator.schema import Aggregator

    aggregator = Aggregator()
    aggregator.add_lines([json.dumps({"type": "A", field: template.format(i, i)}).encode() for i in range(10)], 0, 1)
    by_type = {}
    for shape in aggregator.shapes.values():
        by_type.setdefault(shape.event_type, []).append(shape)
    schema = compile_schema(by_type, "type", key_paths={"A": set(aggregator.templates["A"])})
    return schema, next(iter(schema.types.values()))


def test_fast_path_counts_keys_without_per_key_work_when_no_odd_segment_is_upper_case():
    schema, compiled = _compiled_one_type("pk", "TENANT#t{}#CAPSULE#c{}")
    keys = ["TENANT#t1#CAPSULE#c1", "TENANT#t2", "TENANT#ACME#X#y"]
    more = [json.dumps({"type": "A", "pk": key}).encode() for key in keys]
    assert schema.run(more, 0, 11, lambda *a: None, lambda *a: None) == (3, 7)  # events, '#' seen
    schema.count_pending()  # a field's few keys of a block wait for a batch of many (as before a flush)
    assert compiled.take_templates() == {"pk": {"TENANT#{}#CAPSULE#{}": 1, "TENANT#{}": 1, "TENANT#{}#X#{}": 1}}


def test_the_few_keys_waiting_for_a_batch_are_bounded_in_size():
    # A field's few key values of a block wait to be counted with other fields' (many types, a few
    # events each a block); long texts with a '#' (GH Archive issue bodies) must not pile up until
    # the batch is full: 352 MB at 1M GH lines when only their number was bounded.
    from agentflow.evaluator import fastpath

    schema, compiled = _compiled_one_type("body", "TENANT#t{}#x")
    text = "TENANT#" + "x" * 100_000
    block = [json.dumps({"type": "A", "body": text}).encode()] * 3
    largest = 0
    for n in range(40):  # 12 MB of key values, 3 a block
        assert schema.run(block, 0, 11 + 3 * n, lambda *a: None, lambda *a: None) == (3, 3)
        largest = max(largest, sum(map(len, schema._few)))
    assert largest < fastpath.MIXED_CHARS + 400_000
    schema.count_pending()
    assert compiled.take_templates() == {"body": {"TENANT#{}": 120}}


def test_a_field_is_a_key_field_when_any_of_its_values_looks_like_a_key(tmp_path, monkeypatch):
    # Formerly a divergence: the general path decided per shape, from its first event, whether a field
    # was a key. Now every '#' value is counted and the field is a key field if any looks like a key.
    plain = [{"type": "OrderPlaced", "tenant_id": "t1", "pk": f"t1#ORDER#{i}"} for i in range(30)]
    other_shape = [{"type": "OrderPlaced", "tenant_id": "t1", "pk": f"TENANT#t1#ORDER#{i}", "x": 1} for i in range(30)]
    # Several blocks, so that the fast path recompiles with the other shape's key field first:
    keyed = [{"type": "OrderPlaced", "tenant_id": "t1", "pk": f"TENANT#t1#ORDER#{i}"} for i in range(1000)]
    never = [{"type": "UserCreated", "tenant_id": "t1", "ref": f"t1#{i}"} for i in range(50)]  # no key-like value
    path = write_jsonl(tmp_path / "k.jsonl", plain + other_shape + keyed + never)
    slow, fast = _run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True)
    _same(slow, fast)
    _same(slow, _run(path, monkeypatch, fast=True, workers=2))
    types = {t["type"]: t["key_templates"] for t in fast["types"]}
    assert types["OrderPlaced"] == [
        {"field": "pk", "template": "TENANT#{}#ORDER#{}", "count": 1030},
        {"field": "pk", "template": "{}#ORDER#{}", "count": 30},
    ]
    assert types["UserCreated"] == []


def test_more_than_fifty_key_templates(tmp_path, monkeypatch):
    # Formerly a divergence: which templates went to '(other)' depended on counting order. Now the
    # 50 most frequent are kept (ties: alphabetical), after counting, whatever the order.
    events = [{"type": "OrderPlaced", "tenant_id": "t1", "pk": f"TENANT#t1#L{i % 70}#x#{i}"} for i in range(1400)]
    events += [{"type": "OrderPlaced", "tenant_id": "t1", "pk": "TENANT#t1#L69#x#1"} for _ in range(5)]
    path = write_jsonl(tmp_path / "t.jsonl", events)
    slow = _run(path, monkeypatch, fast=False)
    _same(slow, _run(path, monkeypatch, fast=True))
    _same(slow, _run(path, monkeypatch, fast=True, workers=2))
    reported = {t["template"]: t["count"] for t in slow["types"][0]["key_templates"]}
    tied = sorted(f"TENANT#{{}}#L{i}#{{}}#{{}}" for i in range(69))
    # The most frequent although it came last, then the first 49 of the ties alphabetically:
    assert reported == {"TENANT#{}#L69#{}#{}": 25, **{template: 20 for template in tied[:49]}, "(other)": 20 * 20}


def test_a_field_first_holding_a_hash_after_compilation(tmp_path, monkeypatch):
    # The compiled loop only collects fields known to hold a '#'; a '#' elsewhere in a block must be
    # found (raw '#' count differs) and counted, and the next compilation collects that field.
    early = [
        {"type": "OrderPlaced", "tenant_id": "t1", "pk": f"TENANT#t1#ORDER#{i}", "ref": f"r{i}"} for i in range(600)
    ]
    late = [
        {"type": "OrderPlaced", "tenant_id": "t1", "pk": f"TENANT#t1#ORDER#{i}", "ref": f"REF#{i}"} for i in range(600)
    ]
    note = [
        {"type": "OrderPlaced", "tenant_id": "t1", "pk": f"TENANT#t1#ORDER#{i}", "ref": f"r{i} #{i}"}
        for i in range(300)
    ]
    path = write_jsonl(tmp_path / "late.jsonl", early + late + note + early)
    slow, fast = _run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True)
    _same(slow, fast)
    templates = {(t["field"], t["template"]): t["count"] for t in fast["types"][0]["key_templates"]}
    assert templates == {("pk", "TENANT#{}#ORDER#{}"): 2100, ("ref", "REF#{}"): 600, ("ref", "{}#{}"): 300}


def test_escaped_hashes_type_names_with_hashes_and_hashes_in_names(tmp_path, monkeypatch):
    lines = []
    for i in range(900):
        lines.append(b'{"type": "Order#Placed", "tenant_id": "t1", "pk": "TENANT#t1#ORDER#%d"}' % i)
        lines.append(b'{"type": "UserCreated", "tenant_id": "t1", "pk": "TENANT\\u0023t1", "x#y": "v"}')
        if i % 100 == 57:  # first after the learning lines: found by the block check
            lines.append(b'{"type": "UserCreated", "tenant_id": "t1", "pk": "TENANT#t1", "x#y": "USER\\u0023%d"}' % i)
    path = tmp_path / "escaped.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    slow, fast = _run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True)
    _same(slow, fast)
    templates = {(t["type"], k["field"], k["template"]): k["count"] for t in fast["types"] for k in t["key_templates"]}
    assert templates == {
        ("Order#Placed", "pk", "TENANT#{}#ORDER#{}"): 900,
        ("UserCreated", "pk", "TENANT#{}"): 909,
        ("UserCreated", "x#y", "USER#{}"): 9,
    }


def test_a_field_with_too_many_templates_collapses_the_same_way_in_every_order(tmp_path, monkeypatch):
    from agentflow.evaluator import templates

    monkeypatch.setattr(templates, "MAX_TRACKED", 60)
    events = [{"type": "OrderPlaced", "tenant_id": "t1", "pk": f"TENANT#t1#L{i % 61}#x"} for i in range(1500)]
    events += [{"type": "OrderPlaced", "tenant_id": "t1", "sk": f"S{i % 60}#x"} for i in range(1500)]
    path = write_jsonl(tmp_path / "many.jsonl", events)
    slow = _run(path, monkeypatch, fast=False)
    _same(slow, _run(path, monkeypatch, fast=True))
    _same(slow, _run(path, monkeypatch, fast=True, workers=2))
    reported = {(k["field"], k["template"]): k["count"] for k in slow["types"][0]["key_templates"]}
    assert reported[("pk", "(other)")] == 1500  # 61 distinct: collapsed
    assert reported[("sk", "(other)")] == 10 * 25  # 60 distinct: the top 50 kept


@pytest.mark.parametrize("tracked", [5, 1000])
def test_template_counts_do_not_depend_on_counting_order_or_splitting(monkeypatch, tracked):
    from agentflow.evaluator import templates

    monkeypatch.setattr(templates, "MAX_TRACKED", tracked)
    rng = random.Random(tracked)
    values = [
        rng.choice(["t1#X#{}", "T#{}", "A{}#b", "{}#{}"]).replace("{}", str(rng.randint(0, 7))) for _ in range(400)
    ]
    from agentflow.evaluator.keys import key_template

    results = []
    for _ in range(6):
        rng.shuffle(values)
        parts: list[dict[str, int]] = [{} for _ in range(rng.randint(1, 4))]
        for value in values:
            templates.add(rng.choice(parts), key_template(value))
        total: dict[str, int] = {}
        for part in parts:
            templates.merge(total, part)
        results.append((templates.is_key_field(total), templates.report(total)))
    assert all(result == results[0] for result in results)
    assert results[0][0] is True
    assert sum(results[0][1].values()) == 400
    assert (templates.OTHER_TEMPLATE in results[0][1]) == (len({key_template(v) for v in values}) > tracked)


def _array_events(n: int) -> list[dict]:
    """GH Archive-like events: '#' in free text inside arrays (commit messages), in free-text fields,
    backslash escapes everywhere (so some straddle block boundaries) and a rare escaped '#'."""
    events = []
    for i in range(n):
        commits = [{"sha": f"s{i}", "message": f'Merge pull request #{i} from "x"\\n\\tfix #{i + 1}'}] * (i % 3)
        e = {"type": "PushEvent" if i % 4 else "IssuesEvent", "repo": {"id": i % 7, "name": "a/b"}, "seq": i}
        e["payload"] = {"commits": commits, "labels": ["#good", "C#"][: i % 3], "size": len(commits)}
        if i % 4 == 0:
            e["payload"]["issue"] = {"title": f'Fix #{i} in "C#"', "body": "## Steps\r\n1. run\\n" * (i % 2)}
        if i % 500 == 250:
            e["payload"]["commits"] = [{"message": "escaped HASH inside an array"}]  # HASH: \\u0023 below
        events.append(e)
    return events


def test_hashes_inside_arrays_are_accounted_for_without_rescanning(tmp_path, monkeypatch):
    # Arrays are leaves: a '#' inside one is never a key value, but the block census counts it. The
    # compiled loop counts the '#' of the arrays it decodes (undecoded, as msgspec.Raw), so such a
    # block is not re-parsed line by line; an escape straddling a block boundary is no reason either.
    path = tmp_path / "arrays.jsonl"
    lines = [json.dumps(e).encode().replace(b"HASH", b"\\u0023") for e in _array_events(3000)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    rescanned: list[int] = []
    original = schema_module.Aggregator._scan_fast_lines

    def counting(self, block, fell):
        rescanned.append(len(block))
        return original(self, block, fell)

    slow = _run(path, monkeypatch, fast=False)
    monkeypatch.setattr(schema_module.Aggregator, "_scan_fast_lines", counting)
    fast = _run(path, monkeypatch, fast=True)
    _same(slow, fast)
    blocks = len(path.read_bytes()) // (1 << 14)
    assert blocks > 30 and len(rescanned) == 6  # only the blocks holding an escaped "#" (lines 251, 751, ...)
    assert not any(t["key_templates"] for t in fast["types"])  # free text is not a key field


def test_many_types_dispatched_and_recompiled_match_the_general_path(tmp_path, monkeypatch):
    # Beyond the few most frequent types, the compiled loop dispatches through a dict to per-type
    # mask functions, and types whose shapes did not change are reused across recompilations.
    from agentflow.evaluator import fastpath

    monkeypatch.setattr(fastpath, "INLINE_TYPES", 2)
    monkeypatch.setattr(schema_module, "RECOMPILE_AFTER", 1)
    monkeypatch.setattr(schema_module, "HOT_SHARE", 0)  # every type compiled, the rare ones too
    events = varied_events(2000)
    for i in range(0, 2000, 3):
        e = events[i]
        if isinstance(e, dict):
            e["type"] = f"Kind{i % 40}Created"
            if i % 7 == 0:
                e[f"extra{i % 5}"] = [f"#{i}"] if i % 2 else None
    path = tmp_path / "many.jsonl"
    path.write_bytes(b"\n".join(_lines(events, bad_every=300)) + b"\n")
    slow = _run(path, monkeypatch, fast=False)
    _same(slow, _run(path, monkeypatch, fast=True))
    _same(slow, _run(path, monkeypatch, fast=True, workers=2))
    assert len(slow["types"]) > 40


def _rare_and_hot_events(n: int, types: int) -> list[object]:
    """Two hot types and ``types`` rare ones (a few events each), with planted defects among the
    rare: a missing capsule_id, a nested field gone, a type change, sometimes-null objects."""
    events: list[object] = []
    for i in range(n):
        t = i // 3 % types
        kind = ("OrderPlaced", "OrderShipped")[i % 2] if i % 3 else f"Kind{t}Created"
        e: dict = {"type": kind, "tenant_id": f"t{i % 5}", "seq": i if t % 11 else str(i)}
        if t % 13 or kind.startswith("Order"):
            e["capsule_id"] = f"c{i % 4}"
        e["actor"] = {"id": f"u{i % 9}", "role": "admin"} if t % 7 else {"id": f"u{i % 9}"}
        e["payload"] = None if i % 17 == 0 else {f"f{t % 6}": i, "tags": ["#x"], "meta": {"v": 1}}
        e["pk"] = f"TENANT#{e['tenant_id']}#CAPSULE#{e.get('capsule_id', '')}#{kind.upper()}#{i}"
        events.append(e)
    return events


def test_rare_types_stay_on_the_general_path_with_the_same_results(tmp_path, monkeypatch):
    # 300 rare types (about 1 event in 450 each) and two hot ones: only the hot ones are compiled,
    # the rare ones go the general path, and every result is the one of the compiled path for all
    # types (HOT_SHARE 0) and of the general path alone.
    from agentflow.evaluator import fastpath
    from agentflow.evaluator.reader import read_logs

    path = tmp_path / "rare.jsonl"
    path.write_bytes(b"\n".join(_lines(_rare_and_hot_events(6000, 300), bad_every=700)) + b"\n")
    aggregator = read_logs([path], workers=1)  # the default settings (_run learns on 25 lines only)
    assert {c.name for c in aggregator.fast.types.values()} == {"OrderPlaced", "OrderShipped"}
    slow = _run(path, monkeypatch, fast=False)
    adaptive = _run(path, monkeypatch, fast=True)
    _same(slow, adaptive)
    _same(slow, _run(path, monkeypatch, fast=True, workers=2))
    assert len(slow["types"]) == 302 and any(f["severity"] == "critical" for f in slow["findings"])
    monkeypatch.setattr(schema_module, "HOT_SHARE", 0)
    monkeypatch.setattr(fastpath, "INLINE_TYPES", 2)
    _same(slow, _run(path, monkeypatch, fast=True))
    assert len(read_logs([path], workers=1).fast.types) > 200  # the rare ones too (not those first seen late)


def test_a_type_that_turns_hot_late_is_compiled(tmp_path, monkeypatch):
    # Rare while the shapes are learnt, then most of the log: compiled at a later check.
    from agentflow.evaluator.reader import read_logs

    events = _rare_and_hot_events(3000, 300)
    events += [{"type": "LateComer", "tenant_id": "t1", "capsule_id": "c1", "n": i} for i in range(6000)]
    path = tmp_path / "late.jsonl"
    path.write_bytes(b"\n".join(_lines(events)) + b"\n")
    _same(_run(path, monkeypatch, fast=False), _run(path, monkeypatch, fast=True))
    monkeypatch.setattr(schema_module, "LEARN_LINES", 25)
    from agentflow.evaluator import reader

    monkeypatch.setattr(reader, "BLOCK", 1 << 14)
    aggregator = read_logs([path], workers=1)
    assert "LateComer" in {c.name for c in aggregator.fast.types.values()}
    assert sum(s.count for key, s in aggregator.shapes.items() if key[0] == "fast" and key[1] == "LateComer") > 1000


def test_two_thousand_types_give_the_same_findings_uncompiled_and_compiled(tmp_path, monkeypatch):
    # 2,000 types of 4 events each (#16 item 8's many-types log, planted defects among them): the
    # default compiles none of them as a type of its own (none is hot) but decodes them by structure
    # (RareType); compiling every one of them gives the same result, and so does the general path.
    from agentflow.evaluator.reader import read_logs

    events = [e for e in _rare_and_hot_events(12_000, 2000) if not str(e["type"]).startswith("Order")]
    path = tmp_path / "types2000.jsonl"
    path.write_bytes(b"\n".join(_lines(events)) + b"\n")
    fast = read_logs([path], workers=1).fast
    assert not fast.types and len(fast.rare) == 2000  # no tagged Struct class: by structure only
    assert len({id(r.structure) for r in fast.rare.values()}) < 100
    general = _run(path, monkeypatch, fast=False)
    _same(general, _run(path, monkeypatch, fast=True))
    monkeypatch.setattr(schema_module, "HOT_SHARE", 0)
    compiled = _run(path, monkeypatch, fast=True)
    _same(general, compiled)
    assert len(general["types"]) == 2000
    assert {f["severity"] for f in general["findings"]} >= {"critical", "medium"}


def test_the_flat_shape_key_tells_nested_objects_apart():
    """shape_key lists nested objects in pre-order in one tuple: objects that hold the same keys and
    value types at other depths, or in another order, are other shapes; the same shape is one key,
    whether the line went through the general path's inline key or add_event."""
    payloads = [
        {"a": {"b": 1}, "c": {}},
        {"a": {"b": 1, "c": {}}},
        {"a": {"b": 1}, "c": {"d": {}}},
        {"a": {"b": 1, "c": {"d": {}}}},
        {"a": {"b": {}}, "c": {"d": 1}},
        {"a": {"b": {"d": 1}}, "c": {}},
        {"c": {}, "a": {"b": 1}},
        {"a": {"b": "1"}, "c": {}},
        {"a": [], "c": {}},
        {"a": {}},
        {"a": {}, "b": {}},
        {"a": {"b": 1}},
    ]
    keys = {schema_module.shape_key("T", payload) for payload in payloads}
    assert len(keys) == len(payloads)
    lines = [json.dumps({"type": "T", **payload}).encode() for payload in payloads * 2]
    by_lines = schema_module.Aggregator()
    by_lines.fast_enabled = False
    by_lines.add_lines(lines, 0, 1)
    by_events = schema_module.Aggregator()
    for line, raw in enumerate(lines, 1):
        by_events.add_event(json.loads(raw), 0, line)
    assert list(by_lines.shapes) == list(by_events.shapes)
    assert [shape.count for shape in by_lines.shapes.values()] == [2] * len(payloads)


def _planted_many_types(n: int, types: int) -> list[dict]:
    """Many rare types of one envelope and 200 payload structures, with planted defects: a type
    without capsule_id, keys without CAPSULE#, a nested field gone, a type change, sometimes-null
    values and objects, a key-like value in a field of a few events, a value that changes after
    each type's third event (a shape's examples are those of its first three events)."""
    stems = ["Account", "User", "Capsule", "Policy", "Session", "Audit", "Role", "Invoice", "Order", "Device"]
    names = [f"{stems[i % 10]}{['Created', 'Updated', 'Deleted'][i % 3]}V{i}" for i in range(types)]
    events = []
    for i in range(n):
        t, tenant = i % types, f"t{i % 7}"
        e: dict = {"type": names[t], "id": f"e{i}", "ts": 1764201600 + i, "tenant_id": tenant}
        e["phase"] = "early" if i < 3 * types else f"late{i // types % 3}"  # examples: the first 3 events
        if t % 37:
            e["capsule_id"] = f"c{i % 3}"
        label = stems[t % 10].upper()
        e["pk"] = f"TENANT#{tenant}#CAPSULE#c{i % 3}#{label}#{i}" if t % 29 else f"TENANT#{tenant}#{label}#{i}"
        e["actor"] = {"id": f"u{i % 4}", "role": "admin" if i % 3 else "user"}
        if t % 31 == 0:
            del e["actor"]["role"]
        if t % 23 == 0:
            e["ts"] = str(e["ts"])
        e["payload"] = {f"f{t % 20}_name": f"n{i % 5}", f"f{t % 10}_amount": i % 4 * 1.5, "tags": ["a", "#b"]}
        if t % 19 == 0 and i % 3 == 0:
            e["payload"]["enabled"] = None
        if t % 17 == 0 and i % 4 == 0:
            e["payload"]["meta"] = None if i % 8 else {"v": 1}
        if t % 13 == 0 and i % 2 == 0:
            e["payload"]["text"] = "C#" if i % 4 else "ORDER#12"
        events.append(e)
    return events


def _report(path: Path, monkeypatch: pytest.MonkeyPatch, *, fast: bool, rare: bool = True, workers: int = 1) -> dict:
    """``_run`` learning on the default number of lines, so that no type of these logs is hot: the
    report of rare types must be the general path's exactly, example values included (a type
    compiled on its own keeps the examples of its first events after each flush instead)."""
    from agentflow.evaluator import reader

    monkeypatch.setattr(schema_module, "FAST_PATH", fast)
    monkeypatch.setattr(schema_module, "RARE_PATH", rare)
    monkeypatch.setattr(reader, "BLOCK", 1 << 14)  # many blocks: recompilations happen mid-file
    monkeypatch.setattr(reader, "PARALLEL_MIN_BYTES", 1)
    analysis = evaluate([path], rules=RULES, workers=workers)
    data = analysis.to_json()
    data["lines"] = {t.name: t.lines for t in analysis.types}
    data["missing"] = {t.name: {p: f.missing_lines for p, f in t.fields.items()} for t in analysis.types}
    return data


@pytest.mark.parametrize("dumps", ["compact", "spaced"])
def test_rare_types_decoded_by_structure_give_the_general_paths_report_exactly(tmp_path, monkeypatch, dumps):
    # 300 rare types of 20 events each: decoded by structure (no type compiled on its own), the
    # report is the general path's to the byte, example values and sample lines included, whether
    # the log is written compactly or with spaces after the colons, in one process or two.
    from agentflow.evaluator.reader import read_logs

    separators = (",", ":") if dumps == "compact" else (", ", ": ")
    events = _planted_many_types(6000, 300)
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps(e, separators=separators) + "\n" for e in events))
    general = _report(path, monkeypatch, fast=False)
    by_structure = _report(path, monkeypatch, fast=True)
    assert by_structure == general
    # Two processes: each range keeps the examples of its own first events (on either path), so
    # the reports of two processes are compared with each other.
    assert _report(path, monkeypatch, fast=True, workers=2) == _report(path, monkeypatch, fast=False, workers=2)
    assert _report(path, monkeypatch, fast=True, rare=False) == general  # the rare types on the general path
    assert {f["severity"] for f in general["findings"]} >= {"critical", "high", "medium"}
    monkeypatch.setattr(schema_module, "RARE_PATH", True)
    general_lines: list[int] = []
    add_slow = schema_module.Aggregator._add_slow

    def counting(self, lines, file_index, first_line):
        general_lines.append(len(lines))
        add_slow(self, lines, file_index, first_line)

    monkeypatch.setattr(schema_module.Aggregator, "_add_slow", counting)
    fast = read_logs([path], workers=1).fast
    assert not fast.types and len(fast.rare) == 300
    assert len({id(r.structure) for r in fast.rare.values()}) < 300  # types of one structure share it
    assert sum(general_lines) < 3000  # the 2,000 lines learnt from and the new shapes: not 6,000


def test_lines_the_structure_path_must_not_count(tmp_path, monkeypatch):
    # A nested "type" before the top-level one, a duplicate type key (the last one counts, as for
    # orjson), a type that is not a string, names that need an escape or hold a '#', a field of
    # another JSON type, an unknown field: each is counted as the general path counts it.
    base = [{"type": f"Kind{i % 400}", "tenant_id": f"t{i % 3}", "n": i, "obj": {"a": 1}} for i in range(3000)]
    odd = [
        b'{"obj": {"type": "Kind1", "a": 1}, "type": "Kind2", "tenant_id": "t1", "n": 1}',
        b'{"type": "Kind1", "tenant_id": "t1", "n": 1, "obj": {"a": 1}, "type": "Kind3"}',
        b'{"type": "Kind1", "tenant_id": "t1", "n": 1, "obj": {"a": 1}, "type": 7}',
        b'{"type": "Kind\\u0031", "tenant_id": "t1", "n": 1, "obj": {"a": 1}}',
        b'{"type": "Ki\\"nd", "tenant_id": "t1", "n": 1, "obj": {"a": 1}}',
        b'{"type": "K#1", "tenant_id": "t1", "n": 1, "obj": {"a": 1}}',
        b'{"type": "Kind1", "tenant_id": "t1", "n": "1", "obj": {"a": 1}}',
        b'{"type": "Kind1", "tenant_id": "t1", "n": 1, "obj": {"a": 1, "b": 2}}',
        b'{"type":"Kind1","tenant_id":"t1","n":1,"obj":{"a":1}}',
        b'{"tenant_id": "t1", "type"  :  "Kind1", "n": 1, "obj": {"a": 1}}',
    ]
    lines = [json.dumps(e).encode() for e in base]
    for i, raw in enumerate(odd * 20):
        lines.insert(100 + i * 131, raw)
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    general = _report(path, monkeypatch, fast=False)
    assert _report(path, monkeypatch, fast=True) == general
    types = {t["type"]: t for t in general["types"]}
    assert {"K#1", 'Ki"nd', "Kind3"} <= types.keys() and types["Kind1"]["fields"]["n"]["types"] == ["integer", "string"]


def test_the_generated_example_code_of_a_structure_gives_the_plain_helpers_examples(tmp_path):
    # CompiledStructure.examples_function unrolls _struct_examples: on every structure of the
    # planted log (optional fields, sometimes-null objects, a field of two JSON types, arrays, long
    # strings) the examples of the same decoded events are the same, in the same order.
    from agentflow.evaluator import fastpath
    from agentflow.evaluator.reader import read_logs

    events = _planted_many_types(3000, 300)
    for i, e in enumerate(events[::7]):
        e["payload"]["long"] = "y" * (70 + i % 30)  # either side of the 80-character cut
    path = write_jsonl(tmp_path / "many.jsonl", events)
    fast = read_logs([path], workers=1).fast
    structures = {id(r.structure): r.structure for r in fast.rare.values()}
    assert len(structures) > 20
    checked = 0
    for raw in path.read_bytes().splitlines():
        name = json.loads(raw)["type"]
        rare = fast.rare.get(name)
        if rare is None:
            continue
        try:
            decoded = rare.structure.decode(raw)
        except fastpath.DECODE_ERRORS:
            continue
        plain: dict = {"tags": ["seen"]}
        generated: dict = {"tags": ["seen"]}
        for _ in range(2):  # a second time: the lists are full or hold the value already
            fastpath._struct_examples(rare.structure.roots, decoded, plain)
            rare.structure.examples_function()(decoded, generated)
        assert list(generated.items()) == list(plain.items())
        checked += 1
    assert checked > 2000


def test_a_new_shape_of_a_known_structure_takes_its_fields_without_a_walk():
    # Types alike but for their name: the second type's shape takes the first one's fields and
    # string paths (one tuple for both) and its examples from the event's values; the table is the
    # one built by walking every new shape (Aggregator._structures never filled).
    class Forgetful(dict):
        def __setitem__(self, key, value):
            pass

    events = []
    for i in range(400):
        e = {"type": f"K{i % 40}", "tenant_id": f"t{i % 3}", "pk": f"TENANT#t{i % 3}#K#{i}", "n": i % 5 * 1.5}
        e["obj"] = {"a": None if i % 80 == 0 else "x" * (78 + i % 5), "b": {"c": [i], "d": True}, "e": {}}
        if i % 3 == 0:
            e["extra"] = {"tags": "#1"}
        events.append(e)
    lines = [json.dumps(e).encode() for e in events]
    tables = []
    for forget in (False, True):
        aggregator = schema_module.Aggregator()
        aggregator.fast_enabled = False
        if forget:
            aggregator._structures = Forgetful()
        aggregator.add_lines(lines, 0, 1)
        tables.append(aggregator)
    known, walked = tables
    assert len(known._structures) == 4 and not walked._structures
    assert list(known.shapes) == list(walked.shapes)
    for key, shape in known.shapes.items():
        other = walked.shapes[key]
        assert (shape.fields, shape.string_paths, shape.key_paths) == (
            other.fields,
            other.string_paths,
            other.key_paths,
        )
        assert (shape.count, shape.lines, shape.examples) == (other.count, other.lines, other.examples)
    assert known.templates == walked.templates
    shapes = list(known.shapes.values())
    alike = [(a, b) for a in shapes for b in shapes if a.event_type < b.event_type and a.fields == b.fields]
    assert len(alike) > 100 and all(a.fields is b.fields and a.string_paths is b.string_paths for a, b in alike)


def test_the_fields_of_a_type_of_one_shape_read_as_the_plain_field_dict(tmp_path):
    # ShapeFields makes a FieldSchema only when a field is asked for: membership, order, size,
    # items, get and the JSON are those of the dict of FieldSchemas the general walk builds, before
    # and after some fields were made; the types of one shape share one paths dict.
    from agentflow.evaluator.analysis import FieldSchema, ShapeFields, _field_json

    events = [{"type": f"T{i % 4}", "tenant_id": "t1", "a": {"b": i % 3, "c": None}, "s": "x" * 90} for i in range(40)]
    analysis = evaluate([write_jsonl(tmp_path / "one.jsonl", events)], rules=RULES, workers=1)
    assert all(type(t.fields) is ShapeFields for t in analysis.types)
    assert (
        len({id(t.fields.paths) for t in analysis.types}) == 1
        and len({id(t.shape_fields) for t in analysis.types}) == 1
    )
    fields = analysis.types[0].fields
    plain = {
        path: FieldSchema(
            fields.count, {json_type: fields.count}, list(fields.examples.get(path, ())[:3]), {json_type: fields.lines}
        )
        for path, json_type in fields.paths.items()
    }
    expected_json = {path: _field_json(f, fields.count) for path, f in plain.items()}
    assert fields.to_json(fields.count) == expected_json and fields._made is None  # written without making any
    assert list(fields) == list(plain) and len(fields) == len(plain) and set(fields.keys()) == plain.keys()
    assert "a.b" in fields and "a.x" not in fields and fields.get("a.x") is None and fields.get("a.x", 1) == 1
    assert fields["a.c"] == plain["a.c"] and fields.get("s") == plain["s"] and fields["s"] is fields["s"]
    assert fields.to_json(fields.count) == expected_json  # some made, the others not: the same JSON
    assert fields.items() == list(plain.items()) and fields.values() == list(plain.values())
    assert fields == plain and dict(fields) == plain
    with pytest.raises(KeyError):
        fields["nope"]
    assert analysis.types[0].to_json()["fields"] == expected_json


def test_types_of_one_shape_are_summarised_as_by_the_general_walk(tmp_path, monkeypatch):
    # A type of one shape (every field in every event, one JSON type) is summarised in one pass and
    # skipped by the rules within a type; the report and findings are those of the general walk.
    from agentflow.evaluator import analysis as analysis_module

    events = _planted_many_types(3000, 300)
    events += [{"type": "Dotted", "a.b": 1, "a": {"b": 2}, "tenant_id": "t1"}] * 3  # a path twice in one shape
    events += [{"type": "Mixed", "tenant_id": "t1", "n": 1}, {"type": "Mixed", "tenant_id": "t1", "n": "x", "o": None}]
    path = write_jsonl(tmp_path / "many.jsonl", events)
    quick = evaluate([path], rules=RULES, workers=1)
    assert sum(t.uniform for t in quick.types) > 100 and not all(t.uniform for t in quick.types)
    monkeypatch.setattr(analysis_module, "_one_shape_schema", lambda *args: None)
    walked = evaluate([path], rules=RULES, workers=1)
    assert not any(t.uniform for t in walked.types)
    assert quick.to_json() == walked.to_json()
    for a, b in zip(quick.types, walked.types, strict=True):
        assert a.lines == b.lines
        assert {p: (f.lines_by_type, f.missing_lines) for p, f in a.fields.items()} == {
            p: (f.lines_by_type, f.missing_lines) for p, f in b.fields.items()
        }
    assert {f.rule for f in quick.findings} >= {
        "partial_field",
        "null_field",
        "type_mismatch",
        "type_mismatch_across_types",
        "missing_sibling_field",
        "key_segment_missing",
        "required_field",
    }


def test_rare_types_whose_events_keep_bringing_new_keys_leave_the_structure_path(tmp_path, monkeypatch):
    # benchmarks/evaluate_hostile.py's family case: types of a few events, each with its own keys.
    # A structure is compiled only for a few shapes of at most RARE_MAX_FIELDS fields, and a type
    # that outgrows that at a later compilation goes back to the general path (compiling it again,
    # larger each time, took minutes): the report is the general path's.
    from agentflow.evaluator.reader import read_logs

    events = [
        {
            "type": f"Account{i % 200}Changed",
            "tenant_id": "t",
            **{f"k{i}_{k}": k for k in range(40 if i < 200 else 120)},
        }
        for i in range(800)
    ]
    path = write_jsonl(tmp_path / "family.jsonl", events)
    monkeypatch.setattr(schema_module, "LEARN_LINES", 200)
    compiled: list[int] = []
    compile_schema = __import__("agentflow.evaluator.fastpath", fromlist=["compile_schema"]).compile_schema

    def spying(shapes_by_type, tag, first, key_paths, previous, rare):
        compiled.append(max((sum(len(s.fields) for s in shapes) for shapes in rare.values()), default=0))
        return compile_schema(shapes_by_type, tag, first, key_paths, previous, rare)

    from agentflow.evaluator import fastpath

    monkeypatch.setattr(fastpath, "compile_schema", spying)
    aggregator = read_logs([path], workers=1)
    assert compiled and max(compiled) <= schema_module.RARE_MAX_FIELDS
    assert aggregator.fast is None or not aggregator.fast.rare  # every type outgrew it
    general = _report(path, monkeypatch, fast=False)
    assert _report(path, monkeypatch, fast=True) == general


def _reference_examples(events: list[dict]) -> dict:
    """Example values of ``events`` as flatten and _example give them (the inlined loops' reference)."""
    out: dict = {}
    for event in events:
        for path, json_type, value in schema_module.flatten(event):
            if json_type == "object":
                continue
            found = out.setdefault(path, [])
            example = schema_module._example(value)
            if len(found) < schema_module.EXAMPLES_PER_FIELD and example not in found:
                found.append(example)
    return out


def test_examples_and_the_one_walk_of_a_new_shape_are_those_of_the_plain_helpers():
    # A new shape's nodes and string fields come from one walk, and the example of each value is
    # taken inline for short strings, numbers, booleans and null: the same as flatten, _strings and
    # _example on values of every kind (long strings cut, containers summarised,
    # repeated values kept once), on the general path and for the hot fast path's shapes (_examples_into).
    # The structure path's examples are compared with the general path's in the tests above.
    long = "x" * 81
    payloads = [
        {"s": "short", "l": long, "n": 1, "f": 1.5, "b": True, "z": None, "a": [1, "#a"], "o": {"k": "v", "e": {}}},
        {"s": "C#", "l": long + "y", "n": 1, "f": 2.0, "b": False, "z": None, "a": [], "o": {"k": long, "e": {}}},
        {"s": "", "l": "x" * 80, "n": 1, "f": 1.5, "b": True, "z": None, "a": [{}], "o": {"k": "w", "e": {}}},
        {"s": "4", "l": "short", "n": 0, "f": 0.5, "b": False, "z": None, "a": [None], "o": {"k": "v", "e": {}}},
        {"s": "5", "l": "x" * 200, "n": 2, "f": 2.5, "b": True, "z": None, "a": [1, 2], "o": {"k": "u", "e": {}}},
    ]
    for payload in payloads:
        nodes: list = []
        strings: list = []
        schema_module._walk(payload, "", (), nodes, strings)
        assert nodes == schema_module.flatten(payload)
        assert strings == [(path, accessor) for path, accessor, _ in schema_module._strings(payload)]
    events = [{"type": "T", **payload} for payload in payloads]
    aggregator = schema_module.Aggregator()
    aggregator.fast_enabled = False
    aggregator.add_lines([json.dumps(event).encode() for event in events], 0, 1)
    shapes = list(aggregator.shapes.values())
    assert len(shapes) == 1 and shapes[0].count == len(events)  # one shape: examples of its first 3 events
    assert shapes[0].examples == _reference_examples(events[: schema_module.EXAMPLE_EVENTS])
    assert shapes[0].examples["l"] == ["x" * 77 + "...", "x" * 80]  # 81 and 82 characters: one cut example
    found: dict = {}
    for event in events:
        schema_module._examples_into(found, json.dumps(event).encode())
    assert found == _reference_examples(events)
