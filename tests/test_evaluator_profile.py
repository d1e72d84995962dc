"""``--emit-sql``, ``--profile`` and ``--engine duckdb`` (issue #16 item 9): the profile query and
the built-in reader agree; the queries for the other engines parse in their dialects."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb  # noqa: E402  (in the test extra: never skipped)
import pytest
import sqlglot  # noqa: E402

from agentflow.evaluator import RuleConfig, evaluate, evaluate_profile
from tests.evaluator_helpers import demo_config, demo_events, write_jsonl
from tests.helpers import shared_path


def _findings(analysis):
    return sorted((f.rule, f.severity, f.event_type, f.field) for f in analysis.findings)


def _types(analysis):
    return {t.name: (t.count, {p: dict(f.types) for p, f in t.fields.items()}, t.key_templates) for t in analysis.types}


@pytest.mark.parametrize(
    "name", ["gharchive-pinot", "github-webhooks-octokit", "aws-eventbridge-samples", "a2b-cloudevents"]
)
def test_duckdb_and_builtin_give_the_same_findings_on_real_logs(name):
    from agentflow.evaluator.profile import run_duckdb

    log = shared_path(f"realworld-events/{name}/events.jsonl")
    via_sql = evaluate_profile(run_duckdb([log]), files=[str(log)])
    builtin = evaluate([log])
    assert _findings(via_sql) == _findings(builtin)
    assert _types(via_sql) == _types(builtin)


def test_duckdb_and_builtin_agree_on_the_demo_log_with_keys_and_gzip(tmp_path):
    from agentflow.evaluator.profile import run_duckdb

    rules = RuleConfig(isolation_fields=["tenant_id", "capsule_id"], exempt_types=["Tenant*"])
    log = write_jsonl(tmp_path / "demo.jsonl.gz", demo_events(700))
    via_sql = evaluate_profile(run_duckdb([log]), rules=rules, files=[str(log)])
    builtin = evaluate([log], rules=RuleConfig(isolation_fields=["tenant_id", "capsule_id"], exempt_types=["Tenant*"]))
    assert _findings(via_sql) == _findings(builtin)
    assert any(f[1] == "critical" for f in _findings(via_sql))


def _keys(i: int, n: int, value: object = 1) -> dict[str, object]:
    return {f"k{i}_{k}": value for k in range(n)}


MAP_LOGS = {  # the hostile logs of tests/test_evaluator_hostile.py: map-like objects everywhere
    "root": [{"type": "Hostile", "tenant_id": "t", **_keys(i, 100)} for i in range(200)],
    "nested": [
        {"type": f"T{i % 5}", "tenant_id": "t", "a": {"b": _keys(i, 40)}, "x": {"y": {"z": _keys(i, 40)}}}
        for i in range(100)
    ],
    "record": [{"type": "discussion", "tenant_id": "t", "changes": {"title": "x"}} for _ in range(29)]
    + [{"type": "discussion", "tenant_id": "t", "changes": {"new_repository": _keys(0, 40)}}],
    "labels": [{"type": "Pod", "tenant_id": "t", "labels": _keys(i, 40, {"v": 1, "s": "x"})} for i in range(300)]
    + [{"type": "Node", "labels": _keys(i, 40, "x")} for i in range(300)],
    "family": [{"type": f"Account{i % 300}Changed", "tenant_id": "t", **_keys(i, 40)} for i in range(1200)],
}


@pytest.mark.parametrize("name", sorted(MAP_LOGS))
def test_duckdb_collapses_map_like_objects_as_the_builtin_reader_does(tmp_path, name):
    """A profile has only per-path counts, yet finds the same maps (the same criterion over the same
    counts) and so the same fields and findings; without it each map key was a field of its own."""
    from agentflow.evaluator.profile import run_duckdb

    log = write_jsonl(tmp_path / f"{name}.jsonl", MAP_LOGS[name])
    rules = RuleConfig(isolation_fields=["tenant_id"])
    via_sql = evaluate_profile(run_duckdb([log]), rules=rules, files=[str(log)])
    builtin = evaluate([log], rules=RuleConfig(isolation_fields=["tenant_id"]))
    assert _findings(via_sql) == _findings(builtin)
    assert {t.name: set(t.fields) for t in via_sql.types} == {t.name: set(t.fields) for t in builtin.types}
    assert {t.name: {p: f.count for p, f in t.fields.items()} for t in via_sql.types} == {
        t.name: {p: f.count for p, f in t.fields.items()} for t in builtin.types
    }
    if name != "record":
        assert any("{*}" in p for t in via_sql.types for p in t.fields)


def test_parquet_through_the_cli(tmp_path, repo, cli):
    log = write_jsonl(tmp_path / "demo.jsonl", demo_events(140))
    parquet = tmp_path / "demo.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_json_auto('{log}')) TO '{parquet}' (FORMAT parquet)")
    demo_config(repo)
    result = cli("evaluate", str(parquet), "--engine", "duckdb", "--format", "json", "--no-record")
    assert result.exit_code == 1  # the two leaky types
    data = json.loads(result.stdout)
    assert sorted(f["event_type"] for f in data["findings"] if f["severity"] == "critical") == [
        "RoleAssignmentCreated",
        "SecurityGroupUpdated",
    ]


def test_emitted_query_rows_are_the_profile_format(tmp_path, repo, cli):
    log = write_jsonl(tmp_path / "demo.jsonl", demo_events(140))
    demo_config(repo)
    sql = cli("evaluate", "--emit-sql", "duckdb", str(log)).stdout
    connection = duckdb.connect()
    rows = [row[0] for row in connection.execute(sql).fetchall()]
    assert [d["agentflow_profile"] for d in map(json.loads, rows)] == [1] * len(rows)
    profile = tmp_path / "profile.jsonl"
    profile.write_text("\n".join(rows) + "\n")
    from_profile = json.loads(cli("evaluate", "--profile", str(profile), "--format", "json", "--no-record").stdout)
    direct = json.loads(cli("evaluate", str(log), "--format", "json", "--no-record").stdout)
    key = lambda d: sorted((f["rule"], f["severity"], f["event_type"], f["field"]) for f in d["findings"])  # noqa: E731
    assert key(from_profile) == key(direct) and from_profile["events"] == direct["events"] == 140


@pytest.mark.parametrize(
    ("dialect", "args"),
    [
        ("trino", ["--table", "events_raw"]),
        ("clickhouse", ["s3://logs/2026/a.jsonl.gz", "local.jsonl"]),
        ("clickhouse", ["--table", "events_raw"]),
        ("bigquery", ["gs://bucket/logs/*.jsonl"]),
        ("bigquery", ["--table", "project.dataset.events"]),
        ("duckdb", ["s3://logs/a.jsonl.gz"]),
    ],
)
def test_emitted_queries_parse_in_their_dialects(cli, dialect, args):
    result = cli("evaluate", "--emit-sql", dialect, *args)
    assert result.exit_code == 0
    statements = sqlglot.parse(result.stdout, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
    assert statements and statements[-1] is not None
    assert "agentflow_profile" in result.stdout


def test_bad_profile_and_bad_dialect_are_exit_2(tmp_path, cli):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"type": "A", "count": 1}\n')
    result = cli("evaluate", "--profile", str(bad), "--no-record")
    assert result.exit_code == 2 and "not a version 1 profile row" in result.output
    assert cli("evaluate", "--emit-sql", "oracle", "x.jsonl").exit_code == 2
    assert cli("evaluate", "--emit-sql", "trino", "x.jsonl").exit_code == 2  # Trino needs --table


def _one_query(paths, **kwargs):
    """The profile as the emitted query gives it, over all the logs at once (not in chunks)."""
    from agentflow.evaluator.profile import emit_sql

    connection = duckdb.connect()
    try:
        return [
            json.loads(row[0])
            for row in connection.execute(emit_sql("duckdb", [str(p) for p in paths], **kwargs)).fetchall()
        ]
    finally:
        connection.close()


def test_duckdb_in_chunks_gives_the_rows_of_one_query(tmp_path):
    """--engine duckdb profiles a chunk at a time (memory flat in the input size) and adds the
    chunks' rows up: the rows and their order are those of the one query, also when every chunk
    is a few lines, for JSON Lines, gzip (detected by content), Parquet and several files."""
    from agentflow.evaluator.profile import run_duckdb

    gh = shared_path("realworld-events/gharchive-pinot/events.jsonl")
    cloud = shared_path("realworld-events/a2b-cloudevents/events.jsonl")
    demo = write_jsonl(tmp_path / "demo.jsonl.gz", demo_events(700))
    parquet = tmp_path / "demo.parquet"
    duckdb.sql(f"COPY (SELECT * FROM read_json_auto('{demo}')) TO '{parquet}' (FORMAT parquet, ROW_GROUP_SIZE 2048)")
    for paths, chunk in (([gh, cloud], 400_000), ([demo], 16_384)):
        whole = _one_query(paths)
        assert len(whole) > 50
        assert run_duckdb(paths, chunk_bytes=chunk) == whole
        assert run_duckdb(paths) == whole
    hidden = tmp_path / "demo-gzip.log"  # gzip without the .gz name: read by content, like the built-in reader
    hidden.write_bytes(demo.read_bytes())
    assert run_duckdb([hidden], chunk_bytes=16_384) == _one_query([demo])
    big = tmp_path / "big.parquet"  # several row ranges
    duckdb.sql(f"COPY (SELECT * FROM read_parquet('{parquet}'), range(8)) TO '{big}' (FORMAT parquet)")
    assert run_duckdb([big], chunk_bytes=1_024) == _one_query([big])
    assert sum(r["count"] for r in run_duckdb([big], chunk_bytes=1_024) if r["path"] is None) == 5600


def test_duckdb_chunks_keep_lines_whole(tmp_path):
    """A line longer than a chunk, a last line without a newline and bad lines: the same rows as
    the one query, and the same events as the built-in reader."""
    from agentflow.evaluator.profile import run_duckdb

    events = demo_events(40)
    events[7]["payload"]["note"] = "x" * 50_000  # longer than the chunks below
    log = write_jsonl(tmp_path / "long.jsonl", events)
    log.write_bytes(log.read_bytes() + b'{"type": "Broken", \n{"type": "Last", "tenant_id": "t"}')
    rows = run_duckdb([log], chunk_bytes=4_096)
    assert rows == _one_query([log])
    assert sum(r["count"] for r in rows if r["path"] is None) == evaluate([log]).events == 41


_PEAK_CHILD = """
import sys
from pathlib import Path
from agentflow.evaluator.profile import run_duckdb
rows = run_duckdb([Path(sys.argv[1])], chunk_bytes=1 << 18)
assert sum(r["count"] for r in rows if r["path"] is None) == int(sys.argv[2])
print([line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1])
"""


def _duckdb_peak_kb(log, events: int) -> int:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, str(log), str(events)], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from /proc")
def test_duckdb_peak_memory_does_not_grow_with_the_log(tmp_path):
    """--engine duckdb in chunks: 8x the events, the same peak (the one query over the whole log
    grew from 125 to 199 MB on these logs; DuckDB's own memory is not Python's, hence RSS)."""
    small = write_jsonl(tmp_path / "small.jsonl", demo_events(4_000))
    large = write_jsonl(tmp_path / "large.jsonl", demo_events(32_000))
    peak_small, peak_large = _duckdb_peak_kb(small, 4_000), _duckdb_peak_kb(large, 32_000)
    assert peak_large < 1.2 * peak_small, (peak_small, peak_large)
