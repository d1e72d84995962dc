"""Profiles: the evaluator's input summarised by an SQL engine where the logs live.

A *profile* is JSON Lines, one object a row, version ``PROFILE_VERSION``::

    {"agentflow_profile": 1, "type": "IssuesEvent", "path": null, "json_type": null, "template": null,
     "count": 120, "envelope": "plain", "source": null}                        # a type: its events
    {"agentflow_profile": 1, "type": "IssuesEvent", "path": "repo.id", "json_type": "integer",
     "template": null, "count": 120, "envelope": null, "source": null}         # a path, one JSON type
    {"agentflow_profile": 1, "type": "RoleCreated", "path": "pk", "json_type": null,
     "template": "TENANT#{}#ROLE#{}", "count": 90, "envelope": null, "source": null}  # a key template

``emit_sql(dialect, sources)`` prints the query computing it (DuckDB, Trino, ClickHouse, BigQuery);
its result rows are one column ``profile`` holding exactly those objects. ``analysis_from_profile``
turns the rows into the same per-type schemas the built-in reader infers, so the same rules run.
Differences from the built-in reader (documented in docs/evaluator.md): key templates use the plain
label/value alternation (a bare literal prefix such as ``PLATFORM#TENANT#t1`` is not recognised),
a profile has no line numbers, and map-like objects are found from the paths' counts by the
built-in reader's criterion (``schema.is_map_like``) but summarised from counts: ``labels.{*}``
counts the events whose ``labels`` has any key, up to the events where it is an object.

DuckDB (``--engine duckdb``, the optional extra ``agentflow[duckdb]``) is imported lazily.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentflow.errors import UsageError
from agentflow.evaluator import templates as key_counts
from agentflow.evaluator.analysis import Analysis, FieldSchema, TypeSchema
from agentflow.evaluator.schema import MAP_KEY, is_map_like, kept_at_root
from agentflow.files import read_text_file

PROFILE_VERSION = 1
DIALECTS = ("duckdb", "trino", "clickhouse", "bigquery")
MAX_DEPTH = 64
COLUMNS = ("agentflow_profile", "type", "path", "json_type", "template", "count", "envelope", "source")
_LABEL_RE = "^[A-Z][A-Z0-9_]*$"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _type_expr(dialect: str, type_field: str | None) -> tuple[str, str, str]:
    """(type, payload, envelope) expressions over the event column ``j``."""
    if dialect == "duckdb":
        get = "json_extract_string(j, {})".format
        if type_field:
            return get(_quote("$." + type_field)), "j", "'plain'"
        return (
            "COALESCE(json_extract_string(j, '$.\"detail-type\"'), json_extract_string(j, '$.type'), "
            "json_extract_string(j, '$.event_type'))",
            "CASE WHEN json_extract_string(j, '$.\"detail-type\"') IS NOT NULL THEN json_extract(j, '$.detail') "
            "WHEN json_extract(j, '$.specversion') IS NOT NULL THEN json_extract(j, '$.data') ELSE j END",
            "CASE WHEN json_extract_string(j, '$.\"detail-type\"') IS NOT NULL THEN 'eventbridge' "
            "WHEN json_extract(j, '$.specversion') IS NOT NULL THEN 'cloudevents' ELSE 'plain' END",
        )
    if dialect == "trino":
        get = "json_extract_scalar(j, {})".format
        dt = "json_extract_scalar(j, '$[\"detail-type\"]')"
    elif dialect == "clickhouse":
        get = "JSONExtract(j, {}, 'Nullable(String)')".format
        dt = "JSONExtract(j, 'detail-type', 'Nullable(String)')"
    else:  # bigquery
        get = "JSON_VALUE(j, {})".format
        dt = "JSON_VALUE(j, '$.\"detail-type\"')"
    if type_field:
        path = type_field if dialect != "clickhouse" else type_field.split(".")[0]
        return get(_quote(("$." + path) if dialect != "clickhouse" else path)), "j", "'plain'"
    q = (lambda p: _quote(p)) if dialect != "clickhouse" else (lambda p: _quote(p.removeprefix("$.")))
    typ = f"COALESCE({dt}, {get(q('$.type'))}, {get(q('$.event_type'))})"
    spec = get(q("$.specversion"))
    if dialect == "trino":
        detail, data = "json_extract(j, '$.detail')", "json_extract(j, '$.data')"
    elif dialect == "clickhouse":
        detail, data = "JSONExtractRaw(j, 'detail')", "JSONExtractRaw(j, 'data')"
    else:
        detail, data = "JSON_QUERY(j, '$.detail')", "JSON_QUERY(j, '$.data')"
    payload = f"CASE WHEN {dt} IS NOT NULL THEN {detail} WHEN {spec} IS NOT NULL THEN {data} ELSE j END"
    envelope = (
        f"CASE WHEN {dt} IS NOT NULL THEN 'eventbridge' WHEN {spec} IS NOT NULL THEN 'cloudevents' ELSE 'plain' END"
    )
    return typ, payload, envelope


def _source(dialect: str, sources: list[str], table: str | None) -> tuple[str, str]:
    """(statements before the query, FROM clause yielding one event column ``j``)."""
    if table:
        column = {"duckdb": "CAST(event AS JSON)", "trino": "json_parse(event)", "clickhouse": "event"}.get(
            dialect, "PARSE_JSON(event)"
        )
        return "", f"(SELECT {column} AS j FROM {table})"
    if not sources:
        raise UsageError(
            "--emit-sql needs logs (paths or URIs) or --table NAME", fix="e.g. --emit-sql duckdb events.jsonl"
        )
    if dialect == "duckdb":
        files = "[" + ", ".join(_quote(s) for s in sources) + "]"
        if all(s.endswith(".parquet") for s in sources):
            return "", f"(SELECT CAST(to_json(r) AS JSON) AS j FROM read_parquet({files}) AS r)"
        return "", f"(SELECT json AS j FROM read_json_objects({files}, format = 'auto', ignore_errors = true))"
    if dialect == "clickhouse":
        parts = [
            f"SELECT json AS j FROM {'s3' if s.startswith(('s3://', 'https://')) else 'file'}({_quote(s)}, 'JSONAsString')"
            for s in sources
        ]
        return "", "(" + " UNION ALL ".join(parts) + ")"
    if dialect == "trino":
        raise UsageError(
            "Trino reads tables, not files",
            fix="create a table over the logs (e.g. a Hive/Athena table with one VARCHAR column `event`) and pass --table NAME",
        )
    uris = "[" + ", ".join(_quote(s) for s in sources) + "]"
    before = (
        "CREATE TEMP EXTERNAL TABLE agentflow_events (event STRING) OPTIONS (format = 'CSV', "
        f"field_delimiter = '\\u00fe', quote = '', uris = {uris});\n"
    )
    return before, "(SELECT SAFE.PARSE_JSON(event) AS j FROM agentflow_events)"


def emit_sql(dialect: str, sources: list[str], *, table: str | None = None, type_field: str | None = None) -> str:
    """The profile query for ``dialect`` over ``sources`` (paths or URIs) or an existing ``table``
    (one column ``event`` holding each event's JSON text)."""
    if dialect not in DIALECTS:
        raise UsageError(f"--emit-sql {dialect!r} is not one of {', '.join(DIALECTS)}", fix="e.g. --emit-sql duckdb")
    before, source = _source(dialect, sources, table)
    if dialect == "duckdb":
        return before + _duckdb_query(source, type_field, "read_parquet" in source) + "\n"
    typ, payload, envelope = _type_expr(dialect, type_field)
    return before + _QUERIES[dialect](source, typ, payload, envelope) + "\n"


def _duckdb_query(source: str, type_field: str | None, parquet: bool, select: str | None = None) -> str:
    """The DuckDB profile query over ``source`` (a FROM clause yielding the column ``j``), ending
    in ``select`` over its ``rows`` (default: the profile's JSON rows, in order)."""
    typ, payload, envelope = _type_expr("duckdb", type_field)
    query = _duckdb(source, typ, payload, envelope, select or _DUCKDB_SELECT)
    if parquet:
        # A Parquet file has one schema for all rows: a field an event lacks is a null column. Nulls
        # are therefore read as absent fields (a JSON log keeps the difference).
        query = query.replace(
            "AS u(k)\n", "AS u(k) WHERE json_type(json_extract(p, '$.\"' || k || '\"')) <> 'NULL'\n", 1
        )
        query = query.replace(
            "WHERE json_type(v) = 'OBJECT' AND depth",
            "WHERE json_type(v) = 'OBJECT' AND json_type(json_extract(v, '$.\"' || k || '\"')) <> 'NULL' AND depth",
        )
    return query


# The profile's rows as columns (``_duckdb``'s ``rows``), and the final select writing them as JSON.
_ROW_COLUMNS = "type, path, json_type, template, n, envelope, source"
_DUCKDB_SELECT = f"""SELECT CAST(json_object('agentflow_profile', {PROFILE_VERSION}, 'type', type, 'path', path, 'json_type', json_type,
  'template', template, 'count', n, 'envelope', envelope, 'source', source) AS VARCHAR) AS profile
FROM rows ORDER BY type, path NULLS FIRST, json_type, template"""


def _duckdb(source: str, typ: str, payload: str, envelope: str, select: str = _DUCKDB_SELECT) -> str:
    key = (
        "CASE WHEN json_type(v) = 'VARCHAR' AND contains(json_extract_string(v, '$'), '#') THEN "
        "array_to_string(list_transform(string_split(json_extract_string(v, '$'), '#'), lambda x, i: "
        "CASE WHEN i % 2 = 1 AND regexp_full_match(x, '[A-Z][A-Z0-9_]*') THEN x ELSE '{}' END), '#') END"
    )
    jtype = (
        "CASE json_type(v) WHEN 'VARCHAR' THEN 'string' WHEN 'BIGINT' THEN 'integer' WHEN 'UBIGINT' THEN 'integer' "
        "WHEN 'DOUBLE' THEN 'number' WHEN 'BOOLEAN' THEN 'boolean' WHEN 'NULL' THEN 'null' WHEN 'OBJECT' THEN 'object' "
        "WHEN 'ARRAY' THEN 'array' ELSE lower(json_type(v)) END"
    )
    child = "json_extract(PARENT, '$.\"' || replace(replace(k, '\\', '\\\\'), '\"', '\\\"') || '\"')"
    return f"""WITH RECURSIVE ev AS (
  SELECT {typ} AS t, {payload} AS p, {envelope} AS envelope, json_extract_string(j, '$.source') AS src
  FROM {source}
), typed AS (SELECT * FROM ev WHERE t IS NOT NULL AND t <> '' AND json_type(p) = 'OBJECT'),
nodes(t, path, v, depth) AS (
  SELECT t, k, {child.replace("PARENT", "p")}, 1 FROM typed, unnest(json_keys(p)) AS u(k)
  UNION ALL
  SELECT t, path || '.' || k, {child.replace("PARENT", "v")}, depth + 1
  FROM nodes, unnest(json_keys(v)) AS u(k) WHERE json_type(v) = 'OBJECT' AND depth < {MAX_DEPTH}
), rows AS (
  SELECT t AS type, CAST(NULL AS VARCHAR) AS path, CAST(NULL AS VARCHAR) AS json_type,
         CAST(NULL AS VARCHAR) AS template, count(*) AS n, min(envelope) AS envelope, min(src) AS source
  FROM typed GROUP BY t
  UNION ALL
  SELECT t, path, {jtype}, CAST(NULL AS VARCHAR), count(*), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR)
  FROM nodes GROUP BY ALL
  UNION ALL
  SELECT t, path, CAST(NULL AS VARCHAR), tpl, count(*), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR)
  FROM (SELECT t, path, {key} AS tpl FROM nodes) WHERE tpl IS NOT NULL GROUP BY ALL
)
{select}"""


def _text_type(text: str, fn: str) -> str:
    """A JSON type from a value's JSON text (engines without a json_type function)."""
    return (
        f"CASE WHEN {fn}({text}, '^[{{]') THEN 'object' WHEN {fn}({text}, '^\\\\[') THEN 'array' "
        f"WHEN {fn}({text}, '^\"') THEN 'string' WHEN {text} IN ('true', 'false') THEN 'boolean' "
        f"WHEN {text} = 'null' THEN 'null' WHEN {fn}({text}, '^-?[0-9]+$') THEN 'integer' ELSE 'number' END"
    )


def _trino(source: str, typ: str, payload: str, envelope: str) -> str:
    text = "json_format(v)"
    key = (
        "CASE WHEN json_format(v) LIKE '\"%#%' THEN array_join(zip_with(split(json_extract_scalar(v, '$'), '#'), "
        "sequence(1, cardinality(split(json_extract_scalar(v, '$'), '#'))), "
        f"(x, i) -> IF(i % 2 = 1 AND regexp_like(x, '{_LABEL_RE}'), x, '{{}}')), '#') END"
    )
    return f"""WITH RECURSIVE ev AS (
  SELECT {typ} AS t, {payload} AS p, {envelope} AS envelope, json_extract_scalar(j, '$.source') AS src FROM {source}
), typed AS (SELECT * FROM ev WHERE t IS NOT NULL AND t <> '' AND json_format(p) LIKE '{{%'),
nodes(t, path, v, depth) AS (
  SELECT t, u.k, u.v, 1 FROM typed CROSS JOIN UNNEST(map_entries(CAST(p AS MAP(VARCHAR, JSON)))) AS u(k, v)
  UNION ALL
  SELECT n.t, n.path || '.' || u.k, u.v, n.depth + 1
  FROM nodes AS n CROSS JOIN UNNEST(map_entries(CAST(n.v AS MAP(VARCHAR, JSON)))) AS u(k, v)
  WHERE json_format(n.v) LIKE '{{%' AND n.depth < {MAX_DEPTH}
), rows AS (
  SELECT t AS type, CAST(NULL AS VARCHAR) AS path, CAST(NULL AS VARCHAR) AS json_type,
         CAST(NULL AS VARCHAR) AS template, count(*) AS n, min(envelope) AS envelope, min(src) AS source
  FROM typed GROUP BY t
  UNION ALL
  SELECT t, path, {_text_type(text, "regexp_like")}, NULL, count(*), NULL, NULL FROM nodes GROUP BY 1, 2, 3
  UNION ALL
  SELECT t, path, NULL, tpl, count(*), NULL, NULL
  FROM (SELECT t, path, {key} AS tpl FROM nodes) AS k WHERE tpl IS NOT NULL GROUP BY 1, 2, 4
)
SELECT json_format(CAST(CAST(ROW({PROFILE_VERSION}, type, path, json_type, template, n, envelope, source) AS
  ROW(agentflow_profile INTEGER, type VARCHAR, path VARCHAR, json_type VARCHAR, template VARCHAR, count BIGINT,
      envelope VARCHAR, source VARCHAR)) AS JSON)) AS profile
FROM rows ORDER BY type, path NULLS FIRST, json_type, template"""


def _clickhouse(source: str, typ: str, payload: str, envelope: str) -> str:
    text = "v"
    key = (
        "if(match(v, '^\"[^\"]*#'), arrayStringConcat(arrayMap((x, i) -> if(i % 2 = 1 AND "
        f"match(x, '{_LABEL_RE}'), x, '{{}}'), splitByChar('#', JSONExtractString(concat('[', v, ']'), 1)), "
        "arrayEnumerate(splitByChar('#', JSONExtractString(concat('[', v, ']'), 1)))), '#'), NULL)"
    )
    return f"""WITH RECURSIVE ev AS (
  SELECT {typ} AS t, {payload} AS p, {envelope} AS envelope, JSONExtract(j, 'source', 'Nullable(String)') AS src
  FROM {source}
), typed AS (SELECT * FROM ev WHERE t IS NOT NULL AND t != '' AND startsWith(p, '{{')),
nodes AS (
  SELECT t, kv.1 AS path, kv.2 AS v, 1 AS depth FROM typed ARRAY JOIN JSONExtractKeysAndValuesRaw(p) AS kv
  UNION ALL
  SELECT t, concat(path, '.', kv.1), kv.2, depth + 1
  FROM nodes ARRAY JOIN JSONExtractKeysAndValuesRaw(v) AS kv WHERE startsWith(v, '{{') AND depth < {MAX_DEPTH}
), rows AS (
  SELECT t AS type, CAST(NULL AS Nullable(String)) AS path, CAST(NULL AS Nullable(String)) AS json_type,
         CAST(NULL AS Nullable(String)) AS template, count() AS n, min(envelope) AS envelope, min(src) AS source
  FROM typed GROUP BY t
  UNION ALL
  SELECT t, path, {_text_type(text, "match")}, NULL, count(), NULL, NULL FROM nodes GROUP BY 1, 2, 3
  UNION ALL
  SELECT t, path, NULL, tpl, count(), NULL, NULL
  FROM (SELECT t, path, {key} AS tpl FROM nodes) WHERE tpl IS NOT NULL GROUP BY 1, 2, 4
)
SELECT formatRowNoNewline('JSONEachRow', {PROFILE_VERSION} AS agentflow_profile, type, path, json_type, template,
  n AS count, envelope, source) AS profile
FROM rows ORDER BY type, path NULLS FIRST, json_type, template"""


def _bigquery(source: str, typ: str, payload: str, envelope: str) -> str:
    key = (
        "IF(JSON_TYPE(v) = 'string' AND STRPOS(JSON_VALUE(v), '#') > 0, ARRAY_TO_STRING(ARRAY(SELECT "
        f"IF(MOD(i, 2) = 0 AND REGEXP_CONTAINS(x, r'{_LABEL_RE}'), x, '{{}}') FROM UNNEST(SPLIT(JSON_VALUE(v), '#')) "
        "AS x WITH OFFSET AS i ORDER BY i), '#'), NULL)"
    )
    jtype = (
        "CASE JSON_TYPE(v) WHEN 'number' THEN IF(REGEXP_CONTAINS(TO_JSON_STRING(v), r'^-?[0-9]+$'), 'integer', "
        "'number') ELSE JSON_TYPE(v) END"
    )
    return f"""WITH RECURSIVE ev AS (
  SELECT {typ} AS t, {payload} AS p, {envelope} AS envelope, JSON_VALUE(j, '$.source') AS src FROM {source}
), typed AS (SELECT * FROM ev WHERE t IS NOT NULL AND t != '' AND JSON_TYPE(p) = 'object'),
nodes AS (
  SELECT t, k AS path, p[k] AS v, 1 AS depth FROM typed, UNNEST(JSON_KEYS(p, 1)) AS k
  UNION ALL
  SELECT t, CONCAT(path, '.', k), v[k], depth + 1
  FROM nodes, UNNEST(JSON_KEYS(v, 1)) AS k WHERE JSON_TYPE(v) = 'object' AND depth < {MAX_DEPTH}
), profile_rows AS (
  SELECT t AS type, CAST(NULL AS STRING) AS path, CAST(NULL AS STRING) AS json_type, CAST(NULL AS STRING) AS template,
         COUNT(*) AS n, MIN(envelope) AS envelope, MIN(src) AS source FROM typed GROUP BY t
  UNION ALL
  SELECT t, path, {jtype}, NULL, COUNT(*), NULL, NULL FROM nodes GROUP BY 1, 2, 3
  UNION ALL
  SELECT t, path, NULL, tpl, COUNT(*), NULL, NULL
  FROM (SELECT t, path, {key} AS tpl FROM nodes) WHERE tpl IS NOT NULL GROUP BY 1, 2, 4
)
SELECT TO_JSON_STRING(STRUCT({PROFILE_VERSION} AS agentflow_profile, type, path, json_type, template, n AS count,
  envelope, source)) AS profile
FROM profile_rows ORDER BY type, path NULLS FIRST, json_type, template"""


_QUERIES = {"duckdb": _duckdb, "trino": _trino, "clickhouse": _clickhouse, "bigquery": _bigquery}


# -- running and reading profiles -------------------------------------------------------------------


CHUNK_BYTES = 1 << 20  # JSON text DuckDB profiles at once (--engine duckdb): its memory follows this, not the log


def run_duckdb(
    paths: list[Path], *, type_field: str | None = None, chunk_bytes: int = CHUNK_BYTES
) -> list[dict[str, Any]]:
    """Run the DuckDB profile query in-process over local JSON, JSON.gz or Parquet files.

    Memory stays flat in the input size: a profile is sums (counts, and the first envelope and
    ``source`` of a type by ``min``), so the query runs over ``chunk_bytes`` of the logs at a time
    and the chunks' rows are added up here. JSON Lines (plain or gzip, detected by content) are
    cut at newlines into a temporary file per chunk, Parquet files are read by row ranges
    (``file_row_number``); a JSON array file is profiled in one piece. The rows and their order
    are those of the query over all the logs at once (``emit_sql``), tested on the corpora."""
    try:
        import duckdb  # optional extra agentflow[duckdb]: imported only here
    except ImportError:
        raise UsageError("--engine duckdb needs the duckdb package", fix="pip install 'agentflow[duckdb]'") from None
    for path in paths:
        if not path.is_file():
            raise UsageError("no such file", where=path, fix="name an existing event log")
    parquet = all(str(p).endswith(".parquet") for p in paths)
    totals: dict[tuple[Any, ...], list[Any]] = {}
    connection = duckdb.connect()
    current = paths[0]
    try:
        connection.execute("SET enable_progress_bar = false")
        with tempfile.TemporaryDirectory(prefix="agentflow-duckdb-") as scratch:
            for current in paths:
                for source in _chunk_sources(connection, current, parquet, Path(scratch) / "chunk.jsonl", chunk_bytes):
                    query = _duckdb_query(source, type_field, parquet, f"SELECT {_ROW_COLUMNS} FROM rows")
                    _add_rows(totals, connection.execute(query).fetchall())
    except duckdb.Error as exc:
        raise UsageError(f"DuckDB could not read the logs: {str(exc).splitlines()[0]}", where=current) from None
    except (OSError, EOFError, zlib.error) as exc:
        raise UsageError(
            f"cannot read: {exc}", where=current, fix="name a readable JSON, JSON.gz or Parquet log"
        ) from None
    finally:
        connection.close()
    return [
        {
            "agentflow_profile": PROFILE_VERSION,
            "type": key[0],
            "path": key[1],
            "json_type": key[2],
            "template": key[3],
            "count": n,
            "envelope": envelope,
            "source": source,
        }
        for key, (n, envelope, source) in sorted(totals.items(), key=_row_order)
    ]


def _chunk_sources(connection: Any, path: Path, parquet: bool, scratch: Path, chunk_bytes: int) -> Iterator[str]:
    """FROM clauses (column ``j``) covering ``path`` a chunk at a time (``run_duckdb``)."""
    name = _quote(str(path))
    if parquet:
        rows = connection.execute(f"SELECT count(*) FROM read_parquet({name})").fetchone()[0]
        # Parquet is compressed: a row's JSON text is taken as 4x its share of the file.
        step = max(1024, rows * chunk_bytes // max(4 * path.stat().st_size, 1))
        for start in range(0, rows, step):
            yield (
                "(SELECT CAST(to_json(r) AS JSON) AS j FROM (SELECT * EXCLUDE (file_row_number) FROM "
                f"read_parquet({name}, file_row_number = true) WHERE file_row_number >= {start} "
                f"AND file_row_number < {start + step}) AS r)"
            )
        return
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else path.open("rb") as stream:
        block = stream.read(chunk_bytes)
        if block.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"[":  # a JSON array: in one piece
            yield f"(SELECT json AS j FROM read_json_objects({name}, format = 'auto', ignore_errors = true))"
            return
        chunk = _quote(str(scratch))
        pieces: list[bytes] = []  # a line longer than a chunk: its pieces, joined once
        while block:
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                pieces.append(block)
            else:
                scratch.write_bytes(b"".join([*pieces, block[:cut]]))
                pieces = [block[cut:]]
                yield f"(SELECT json AS j FROM read_json_objects({chunk}, format = 'newline_delimited', ignore_errors = true))"
            block = stream.read(chunk_bytes)
        if any(pieces):
            scratch.write_bytes(b"".join(pieces))
            yield f"(SELECT json AS j FROM read_json_objects({chunk}, format = 'newline_delimited', ignore_errors = true))"


def _add_rows(totals: dict[tuple[Any, ...], list[Any]], rows: list[tuple[Any, ...]]) -> None:
    """Add one chunk's profile rows to ``totals``: counts summed, envelope and source the least."""
    for type_, path, json_type, template, n, envelope, source in rows:
        known = totals.get((type_, path, json_type, template))
        if known is None:
            totals[(type_, path, json_type, template)] = [int(n), envelope, source]
            continue
        known[0] += int(n)
        if envelope is not None and (known[1] is None or envelope < known[1]):
            known[1] = envelope
        if source is not None and (known[2] is None or source < known[2]):
            known[2] = source


def _row_order(item: tuple[tuple[Any, ...], list[Any]]) -> tuple[Any, ...]:
    """The query's ``ORDER BY type, path NULLS FIRST, json_type, template`` (DuckDB: NULLS LAST
    by default, strings by code point)."""
    type_, path, json_type, template = item[0]
    return (
        type_,
        path is not None,
        path or "",
        json_type is None,
        json_type or "",
        template is None,
        template or "",
    )


def load_profile(path: Path) -> list[dict[str, Any]]:
    """Read a profile (JSON Lines; each row an object, or a one-column ``{"profile": "..."}`` export)."""
    text = read_text_file(path, fix="name the file the profile query wrote")
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if isinstance(row, dict) and set(row) == {"profile"} and isinstance(row["profile"], str):
                row = json.loads(row["profile"])  # a result exported with its column name
        except json.JSONDecodeError as exc:
            raise UsageError(f"not JSON: {exc.msg}", where=f"{path}:{number}", fix="one profile row a line") from None
        if not isinstance(row, dict) or row.get("agentflow_profile") != PROFILE_VERSION:
            raise UsageError(
                f"not a version {PROFILE_VERSION} profile row",
                where=f"{path}:{number}",
                fix="produce it with the query of `agentflow evaluate --emit-sql ...`",
            )
        if not isinstance(row.get("type"), str) or not isinstance(row.get("count"), int):
            raise UsageError("a profile row needs a string type and an integer count", where=f"{path}:{number}")
        rows.append(row)
    if not rows:
        raise UsageError("empty profile", where=path, fix="run the profile query over logs with events")
    return rows


def analysis_from_profile(rows: list[dict[str, Any]], files: list[str]) -> Analysis:
    """The per-type schemas of a profile, as ``analysis.build_analysis`` makes them from a log."""
    by_type: dict[str, TypeSchema] = {}
    templates: dict[str, dict[str, dict[str, int]]] = {}

    def schema(name: str) -> TypeSchema:
        if name not in by_type:
            by_type[name] = TypeSchema(name, 0, {}, {}, [])
        return by_type[name]

    for row in rows:
        name, count, path = row["type"], int(row["count"]), row.get("path")
        if path is None:
            target = schema(name)
            target.count += count
            target.envelope = row.get("envelope") or "plain"
            target.source = row.get("source")
        elif row.get("template") is not None:
            counts = templates.setdefault(name, {}).setdefault(path, {})
            key_counts.add(counts, row["template"], count)
        else:
            stats = schema(name).fields.setdefault(path, FieldSchema())
            stats.count += count
            json_type = row.get("json_type") or "unknown"
            stats.types[json_type] = stats.types.get(json_type, 0) + count
    for target in by_type.values():
        mapping = _map_paths(target)
        if mapping:
            target.fields = _collapsed(target.fields, mapping, target.count)
            by_path = templates.get(target.name, {})
            for path in [p for p in by_path if p in mapping]:
                merged = templates[target.name].setdefault(mapping[path], {})
                for template, n in by_path.pop(path).items():
                    key_counts.add(merged, template, n)
    for name, by_path in templates.items():
        schema(name).key_templates = key_counts.key_fields(by_path)
    types = [by_type[name] for name in sorted(by_type)]
    events = sum(t.count for t in types)
    return Analysis(files, events, 0, 0, types, [])


def _map_paths(target: TypeSchema) -> dict[str, str]:
    """Each path of a map-like object of ``target`` mapped to its ``{*}`` path (``labels.app`` ->
    ``labels.{*}``, ``labels.app.v`` -> ``labels.{*}.v``); a map-like root maps its rare top-level
    keys to ``{*}``. The criterion is the built-in reader's, from the same counts: the events where
    each key is, over the events where its parent is an object."""
    children: dict[str, list[str]] = {}
    for path in target.fields:
        children.setdefault(path.rpartition(".")[0], []).append(path)
    events = target.count or 1
    rare_roots: set[str] = set()
    if is_map_like([target.fields[p].count for p in children.get("", [])], events):
        rare_roots = {key for key in children[""] if not kept_at_root(target.fields[key].count, events)}
    maps: set[str] = set()
    for parent in sorted((p for p in children if p), key=lambda p: (p.count("."), p)):
        parts = parent.split(".")
        if parts[0] in rare_roots or any(".".join(parts[:i]) in maps for i in range(1, len(parts))):
            continue
        objects = target.fields[parent].types.get("object", 0) if parent in target.fields else 0
        if is_map_like([target.fields[p].count for p in children[parent]], objects or 1):
            maps.add(parent)
    mapping: dict[str, str] = {}
    for path in target.fields:
        parts = path.split(".")
        if parts[0] in rare_roots:
            mapping[path] = ".".join([MAP_KEY, *parts[1:]])
            continue
        for i in range(1, len(parts)):
            if ".".join(parts[:i]) in maps:
                mapping[path] = ".".join([*parts[:i], MAP_KEY, *parts[i + 1 :]])
                break
    return mapping


def _collapsed(fields: dict[str, FieldSchema], mapping: dict[str, str], events: int) -> dict[str, FieldSchema]:
    """``fields`` with the mapped paths merged into their ``{*}`` paths. A profile cannot say in how
    many events the map has any key, so each merged count (and each of its JSON types' counts) is
    capped at the events where the parent is an object (the root's ``{*}``: the type's events)."""
    out: dict[str, FieldSchema] = {}
    for path, stats in fields.items():
        target = out.setdefault(mapping.get(path, path), FieldSchema())
        target.count += stats.count
        for json_type, n in stats.types.items():
            target.types[json_type] = target.types.get(json_type, 0) + n
    for path in sorted(set(mapping.values()), key=lambda p: p.count(".")):  # parents capped first
        parent = path.rpartition(".")[0]
        stats = out[path]
        stats.count = min(stats.count, out[parent].types.get("object", 0) if parent in out else events)
        stats.types = {t: min(n, stats.count) for t, n in stats.types.items()}
    return out
