"""Benchmark of ``agentflow evaluate``: events/s, MB/s and peak memory on a generated log.

Generates a realistic JSON Lines log (default 1,000,000 events, 10 event types, nested objects,
about 250 bytes per event; two types lack ``capsule_id`` and their keys skip ``CAPSULE#``) and
measures, each in a fresh process so peak memory is per approach:

- ``floor``: reading the file's lines without parsing (blocks split on newlines);
- ``json.loads``: a plain ``json.loads`` loop over the lines (reference);
- ``orjson.loads``: an ``orjson.loads`` loop, the parser the evaluator uses (ceiling of any
  approach that builds Python objects);
- ``orjson.loads x2``: two processes each parsing half (the parse ceiling of this machine's cores);
- ``msgspec`` and ``DuckDB`` (only when installed): an alternative parser, and DuckDB's C++ reader
  computing the same shape table (group by type and ``json_structure``) without Python objects;
- ``evaluator (1 process)`` and ``evaluator (N processes)``: the full analysis with findings.

Usage::

    python benchmarks/evaluate_bench.py                 # 1M events, Markdown table
    python benchmarks/evaluate_bench.py --events 200000 --json
    python benchmarks/evaluate_bench.py --log my.jsonl  # measure an existing log
    python benchmarks/evaluate_bench.py --key-prefix PLATFORM# --only orjson,eval1,evaln

Exit code 1 when the evaluator misses the target (>= 1,000,000 events/s, peak < 200 MB).

Issue #16 item 8 (large real events, many types), each approach in its own process, ``--repeat``
runs interleaved, medians and ratios reported, load average noted::

    python benchmarks/evaluate_bench.py --gharchive 1000000 --before origin/main~3 --repeat 3
    python benchmarks/evaluate_bench.py --types-scaling 400000 --before origin/main~3 --repeat 3

``--gharchive N`` replicates ``../shared/realworld-events/gharchive-pinot`` (800 GH Archive events,
3.7 KB each) to N lines in a temporary folder (never into the repository) and measures the line-read
floor, an orjson loop, the evaluator, the evaluator at ``--before REV`` (a git worktree) and the
DuckDB profile query (``--engine duckdb``) on the first ``--profile-lines`` lines (it is ~100x
slower). ``--types-scaling N`` generates two logs of N events, alike but for the number of event
types (5 and 2,000), and measures the time per event of the evaluator (and of ``--before``) on each.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_EVENTS_PER_S = 1_000_000
TARGET_PEAK_MB = 200
TYPES = [
    "AccountCreated",
    "AccountUpdated",
    "UserInvited",
    "CapsuleCreated",
    "PolicyAttached",
    "SessionStarted",
    "AuditExported",
    "TenantCreated",
    "RoleAssignmentCreated",
    "SecurityGroupUpdated",
]
LEAKY = {"RoleAssignmentCreated", "SecurityGroupUpdated", "TenantCreated"}


def generate(path: Path, n: int, key_prefix: str = "") -> None:
    """The benchmark log; ``key_prefix`` (e.g. ``PLATFORM#``) starts every key with a literal label,
    which shifts the label/value pairing (the evaluator's slower key path)."""
    import orjson

    with path.open("wb") as out:
        buffer = []
        for i in range(n):
            event_type = TYPES[i % len(TYPES)]
            tenant, capsule, label = f"t{i % 97}", f"c{i % 13}", event_type[:4].upper()
            event: dict = {"type": event_type, "id": f"e{i}", "ts": 1764201600 + i, "tenant_id": tenant}
            if event_type in LEAKY:
                event["pk"] = f"{key_prefix}TENANT#{tenant}#{label}#{i}"
            else:
                event["capsule_id"] = capsule
                event["pk"] = f"{key_prefix}TENANT#{tenant}#CAPSULE#{capsule}#{label}#{i}"
            event["actor"] = {"id": f"u{i % 1000}", "role": "admin" if i % 7 else "user"}
            event["payload"] = {
                "name": f"n{i}",
                "amount": (i % 100) * 1.5,
                "enabled": bool(i % 2),
                "tags": ["a", "b"],
                "meta": {"source": "api", "v": 3},
            }
            if i % 50 == 0:
                event["payload"]["note"] = None
            buffer.append(orjson.dumps(event))
            if len(buffer) == 10_000:
                out.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
        if buffer:
            out.write(b"\n".join(buffer) + b"\n")


# -- measurements (each runs in its own process) ---------------------------------------------------


def _blocks(path: str, start: int = 0, end: int | None = None):
    with open(path, "rb") as handle:
        handle.seek(start)
        remaining = (end if end is not None else os.path.getsize(path)) - start
        rest = b""
        while remaining > 0:
            block = handle.read(min(4 << 20, remaining))
            if not block:
                break
            remaining -= len(block)
            data = rest + block
            cut = data.rfind(b"\n")
            rest = data[cut + 1 :]
            yield data[:cut].split(b"\n")
        if rest:
            yield [rest]


def m_floor(path: str) -> int:
    return sum(len(lines) for lines in _blocks(path))


def m_json(path: str) -> int:
    loads, n = json.loads, 0
    for lines in _blocks(path):
        for line in lines:
            loads(line)
            n += 1
    return n


def _orjson_range(path: str, start: int, end: int) -> int:
    import orjson

    loads, n = orjson.loads, 0
    for lines in _blocks(path, start, end):
        for line in lines:
            loads(line)
            n += 1
    return n


def m_orjson(path: str) -> int:
    return _orjson_range(path, 0, os.path.getsize(path))


def m_orjson2(path: str) -> int:
    import multiprocessing

    from agentflow.evaluator.reader import _ranges

    ranges = _ranges(Path(path), os.path.getsize(path), 2)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        return sum(pool.starmap(_orjson_range, [(path, a, b) for a, b in ranges]))


def m_msgspec(path: str) -> int:
    import msgspec

    decode, n = msgspec.json.Decoder().decode, 0
    for lines in _blocks(path):
        for line in lines:
            decode(line)
            n += 1
    return n


def m_duckdb(path: str) -> int:
    """DuckDB's C++ reader grouping by (type, json_structure): the shape table without Python objects."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={os.cpu_count() or 1}")
    rows = con.execute(
        "SELECT j->>'type', json_structure(j), count(*) FROM read_ndjson_objects(?, ignore_errors=true) AS r(j) "
        "GROUP BY ALL",
        [path],
    ).fetchall()
    return sum(row[2] for row in rows)


def m_profile(path: str) -> int:
    """The evaluator's own DuckDB profile query (``--engine duckdb``: evaluator/profile.py) over the log."""
    from agentflow.evaluator.profile import run_duckdb

    rows = run_duckdb([Path(path)])
    return sum(row["count"] for row in rows if row["path"] is None)


def _evaluate(path: str, workers: int) -> int:
    from agentflow.evaluator import RuleConfig, evaluate

    analysis = evaluate([Path(path)], rules=RuleConfig(exempt_types=["Tenant*"]), workers=workers)
    serious = sorted(f.event_type for f in analysis.findings if f.severity in ("high", "critical"))
    if os.environ.get("EVALUATE_BENCH_OWN_LOG"):  # --log: a log of unknown content, nothing to check
        return analysis.events
    assert serious == ["RoleAssignmentCreated", "SecurityGroupUpdated"], serious
    return analysis.events


def m_eval1(path: str) -> int:
    return _evaluate(path, 1)


def m_evaln(path: str) -> int:
    return _evaluate(path, os.cpu_count() or 1)


MEASURES = {
    "floor": ("floor: read lines, no parsing", m_floor),
    "json": ("json.loads loop", m_json),
    "orjson": ("orjson.loads loop", m_orjson),
    "orjson2": ("orjson.loads loop, 2 processes", m_orjson2),
    "msgspec": ("msgspec decode loop (optional)", m_msgspec),
    "duckdb": ("DuckDB group by type, json_structure (optional)", m_duckdb),
    "profile": ("evaluator profile query in DuckDB, --engine duckdb (optional)", m_profile),
    "eval1": ("evaluator, 1 process", m_eval1),
    "evaln": (f"evaluator, {os.cpu_count()} processes", m_evaln),
}


def _own_peak_mb() -> float:
    """This process's peak RSS. ``ru_maxrss`` survives exec on Linux (it would report the parent's
    size), so read ``VmHWM``, which starts afresh with the new program."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    """CPU seconds of this process and its waited-for children (forked workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure_here(name: str, path: str) -> dict:
    start, cpu = time.perf_counter(), _cpu()
    events = MEASURES[name][1](path)
    seconds = time.perf_counter() - start
    cpu = _cpu() - cpu
    own = _own_peak_mb()
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # Workers are forked: peak = parent + workers x the largest worker (an upper bound, shared pages
    # are counted in each). The evaluator analyses one range in the parent and forks one worker per
    # other range; the orjson reference forks one per range. DuckDB uses threads, so its memory is
    # in the parent's.
    workers = {"evaln": (os.cpu_count() or 1) - 1, "orjson2": 2}.get(name, 0)
    return {
        "name": name,
        "events": events,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": own + child * workers,
        "parent_mb": own,
        "worker_mb": child,
    }


OPTIONAL = {"msgspec": "msgspec", "duckdb": "duckdb"}


def measure(name: str, path: Path) -> dict | None:
    if name in OPTIONAL:
        import importlib.util

        if importlib.util.find_spec(OPTIONAL[name]) is None:
            return None  # not installed: the reference is skipped
    out = subprocess.run(
        [sys.executable, __file__, "--measure", name, "--log", str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


# -- issue #16 item 8: GH Archive replicated, 5 vs 2,000 types, before/after ------------------------

REPO = Path(__file__).resolve().parents[1]
GHARCHIVE = REPO.parent / "shared" / "realworld-events" / "gharchive-pinot" / "events.jsonl"
STEMS = ["Account", "User", "Capsule", "Policy", "Session", "Audit", "Role", "Invoice", "Order", "Device"]
VERBS = ["Created", "Updated", "Deleted", "Archived", "Restored"]


def replicate(source: Path, target: Path, lines: int) -> None:
    """``target``: ``source``'s lines repeated up to ``lines`` lines."""
    data = source.read_bytes()
    rows = data.splitlines(keepends=True)
    with target.open("wb") as out:
        whole, rest = divmod(lines, len(rows))
        for _ in range(whole):
            out.write(data if data.endswith(b"\n") else data + b"\n")
        out.write(b"".join(rows[:rest]))


def generate_types(path: Path, n: int, types: int) -> None:
    """A log of ``n`` events spread round-robin over ``types`` event types; every type has the same
    envelope and a payload whose field names depend on the type, so only the number of types differs."""
    import orjson

    names = [f"{STEMS[i % 10]}{VERBS[i % 5]}V{i}" for i in range(types)]
    with path.open("wb") as out:
        buffer = []
        for i in range(n):
            t, tenant = i % types, f"t{i % 97}"
            event = {
                "type": names[t],
                "id": f"e{i}",
                "ts": 1764201600 + i,
                "tenant_id": tenant,
                "capsule_id": f"c{i % 13}",
                "pk": f"TENANT#{tenant}#CAPSULE#c{i % 13}#{STEMS[t % 10].upper()}#{i}",
                "actor": {"id": f"u{i % 1000}", "role": "admin" if i % 7 else "user"},
                "payload": {
                    f"f{t % 50}_name": f"n{i}",
                    f"f{t % 40}_amount": (i % 100) * 1.5,
                    "enabled": bool(i % 2),
                    "tags": ["a", "b"],
                    "meta": {"source": "api", "v": 3},
                },
            }
            if i % 50 == 0:
                event["payload"]["note"] = None
            buffer.append(orjson.dumps(event))
            if len(buffer) == 10_000:
                out.write(b"\n".join(buffer) + b"\n")
                buffer.clear()
        if buffer:
            out.write(b"\n".join(buffer) + b"\n")


def _worktree(rev: str, tmp: Path) -> Path:
    where = tmp / "before"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "-q", "--detach", str(where), rev], check=True)
    return where


# --instructions: each run under callgrind, its instructions counted (the same at any load; the
# caches' effects are not in them, and the times are callgrind's, 20-50x slower).
CALLGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
INSTRUCTIONS = False


def _measure_with(name: str, path: Path, pythonpath: Path | None) -> dict:
    env = dict(os.environ, EVALUATE_BENCH_OWN_LOG="1", PYTHONPATH=str(pythonpath or REPO))
    out = subprocess.run(
        [*(CALLGRIND if INSTRUCTIONS else []), sys.executable, __file__, "--measure", name, "--log", str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    result = json.loads(out.stdout)
    if INSTRUCTIONS:
        collected = [line.split(":")[-1] for line in out.stderr.splitlines() if "Collected :" in line]
        result["instructions"] = int(collected[-1].strip().replace(",", "")) if collected else None
    return result


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _rounds(plan: list[tuple[str, str, Path, Path | None]], repeat: int) -> dict[str, dict]:
    """Run every (label, measure, log, PYTHONPATH) ``repeat`` times, interleaved; medians per label."""
    runs: dict[str, list[dict]] = {label: [] for label, *_ in plan}
    loads = [os.getloadavg()[0]]
    for _ in range(repeat):
        for label, name, path, pythonpath in plan:
            runs[label].append(_measure_with(name, path, pythonpath))
            loads.append(os.getloadavg()[0])
    out = {}
    for label, results in runs.items():
        out[label] = {
            "events": results[0]["events"],
            "seconds": _median([r["seconds"] for r in results]),
            "all_seconds": [round(r["seconds"], 2) for r in results],
            "best_seconds": min(r["seconds"] for r in results),
            # CPU time: what the others' load on a shared machine changes least (it still slows
            # each instruction: shared caches), so ratios of CPU time are reported too.
            "cpu_seconds": _median([r.get("cpu_seconds", r["seconds"]) for r in results]),
            "all_cpu": [round(r.get("cpu_seconds", r["seconds"]), 2) for r in results],
            "peak_mb": _median([r["peak_mb"] for r in results]),
        }
        if all(r.get("instructions") for r in results):
            out[label]["instructions"] = _median([r["instructions"] for r in results])
        out[label]["events_per_s"] = out[label]["events"] / out[label]["seconds"]
        out[label]["us_per_event"] = out[label]["seconds"] / max(out[label]["events"], 1) * 1e6
    out["_load"] = {"min": min(loads), "max": max(loads)}
    return out


def gharchive(lines: int, before: str | None, repeat: int, profile_lines: int, corpus: Path) -> dict:
    if not corpus.is_file():
        raise SystemExit(f"{corpus}: no such corpus (the GH Archive sample of ../shared/realworld-events)")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        log, small = tmp / "gharchive.jsonl", tmp / "gharchive-small.jsonl"
        replicate(corpus, log, lines)
        replicate(corpus, small, min(profile_lines, lines))
        worktree = _worktree(before, tmp) if before else None
        try:
            plan = [("floor", "floor", log, None), ("orjson", "orjson", log, None), ("after", "eval1", log, None)]
            if worktree:
                plan.append(("before", "eval1", log, worktree))
            plan += [("small: orjson", "orjson", small, None), ("small: after", "eval1", small, None)]
            if importlib.util.find_spec("duckdb") is not None:
                plan.append(("small: DuckDB profile query", "profile", small, None))
            result = _rounds(plan, repeat)
        finally:
            if worktree:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
        result["_size_mb"] = log.stat().st_size / 1e6 if log.exists() else None
    return result


def duckdb_sizes(sizes: list[int], before: str | None, repeat: int, corpus: Path, before_max: int) -> dict:
    """``--engine duckdb``'s profile query next to the built-in reader (and the query at ``before``,
    on the sizes up to ``before_max`` lines: it was not memory-flat), GH Archive replicated to each size."""
    if not corpus.is_file():
        raise SystemExit(f"{corpus}: no such corpus (the GH Archive sample of ../shared/realworld-events)")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        worktree = _worktree(before, tmp) if before else None
        try:
            plan = []
            for size in sizes:
                log = tmp / f"gharchive-{size}.jsonl"
                replicate(corpus, log, size)
                plan += [(f"{size:,} lines: line-read floor", "floor", log, None)]
                plan += [(f"{size:,} lines: orjson loop", "orjson", log, None)]
                plan += [(f"{size:,} lines: evaluator", "eval1", log, None)]
                plan += [(f"{size:,} lines: DuckDB profile query", "profile", log, None)]
                if worktree and size <= before_max:
                    plan += [(f"{size:,} lines: DuckDB profile query (before)", "profile", log, worktree)]
            return _rounds(plan, repeat)
        finally:
            if worktree:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)


def types_scaling(n: int, before: str | None, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        few, many = tmp / "types5.jsonl", tmp / "types2000.jsonl"
        generate_types(few, n, 5)
        generate_types(many, n, 2000)
        worktree = _worktree(before, tmp) if before else None
        try:
            plan = [("5 types: orjson", "orjson", few, None), ("2,000 types: orjson", "orjson", many, None)]
            plan += [("5 types: after", "eval1", few, None), ("2,000 types: after", "eval1", many, None)]
            if worktree:
                plan += [("5 types: before", "eval1", few, worktree), ("2,000 types: before", "eval1", many, worktree)]
            return _rounds(plan, repeat)
        finally:
            if worktree:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)


def _print_rounds(title: str, result: dict, ratios: list[tuple[str, str, str]]) -> None:
    load = result.pop("_load")
    size = result.pop("_size_mb", None)
    extra = f", {size:,.0f} MB" if size else ""
    print(f"{title}{extra}; load average {load['min']:.1f}-{load['max']:.1f} during the runs\n")
    print("| approach | events | events/s (median) | us/event | CPU us/event | peak RSS | runs (s) | CPU (s) |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for label, r in result.items():
        cpu_us = r["cpu_seconds"] / max(r["events"], 1) * 1e6
        print(
            f"| {label} | {r['events']:,} | {r['events_per_s']:,.0f} | {r['us_per_event']:.1f} | {cpu_us:.1f} | "
            f"{r['peak_mb']:.0f} MB | {', '.join(map(str, r['all_seconds']))} | {', '.join(map(str, r['all_cpu']))} |"
        )
    print()
    counted = {label: r["instructions"] for label, r in result.items() if r.get("instructions")}
    if counted:  # --instructions
        print("| approach | instructions (millions, median) | per event |")
        print("|---|---:|---:|")
        for label, n in counted.items():
            print(f"| {label} | {n / 1e6:,.0f} | {n / max(result[label]['events'], 1):,.0f} |")
        print()
    for text, slow, fast in ratios:
        if slow in counted and fast in counted:
            a, b = result[slow], result[fast]
            ratio = (counted[slow] / max(a["events"], 1)) / (counted[fast] / max(b["events"], 1))
            print(f"- {text.replace(' (time per event)', '')}: {ratio:.2f}x (instructions per event)")
        if slow in result and fast in result:
            a, b = result[slow], result[fast]
            # The fastest runs too: on a shared machine the others' load only ever adds time.
            best = (a["best_seconds"] / max(a["events"], 1)) / (b["best_seconds"] / max(b["events"], 1))
            cpu = (a["cpu_seconds"] / max(a["events"], 1)) / (b["cpu_seconds"] / max(b["events"], 1))
            print(
                f"- {text}: {a['us_per_event'] / b['us_per_event']:.2f}x (medians), {best:.2f}x (fastest runs), "
                f"{cpu:.2f}x (CPU time, medians)"
            )
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gharchive", type=int, metavar="LINES", help="GH Archive replicated to LINES lines (#16)")
    parser.add_argument("--types-scaling", type=int, metavar="EVENTS", help="5 vs 2,000 types, EVENTS each (#16)")
    parser.add_argument(
        "--duckdb-sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        metavar="LINES,...",
        help="--engine duckdb's peak memory and time at these GH Archive sizes, next to the built-in reader",
    )
    parser.add_argument(
        "--before-max", type=int, default=20_000, help="with --duckdb-sizes: --before only up to this many lines"
    )
    parser.add_argument("--before", metavar="REV", help="also measure the evaluator at REV (a git worktree)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per approach (medians), default 3")
    parser.add_argument("--profile-lines", type=int, default=20_000, help="lines for the DuckDB profile query")
    parser.add_argument("--corpus", type=Path, default=GHARCHIVE, help="the GH Archive JSON Lines to replicate")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--log", type=Path, help="measure this log instead of generating one")
    parser.add_argument("--key-prefix", default="", help="start every generated key with this literal, e.g. PLATFORM#")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        help="comma-separated approaches to measure (default: all): " + ",".join(MEASURES),
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="with --gharchive / --types-scaling: count each run's instructions under callgrind (valgrind)",
    )
    parser.add_argument("--measure", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only and not set(args.only) <= set(MEASURES):
        parser.error(f"--only: unknown approach; choose from {','.join(MEASURES)}")
    if args.measure:
        print(json.dumps(measure_here(args.measure, str(args.log))))
        return 0
    if args.duckdb_sizes:
        result = duckdb_sizes(args.duckdb_sizes, args.before, args.repeat, args.corpus, args.before_max)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            _print_rounds(f"GH Archive at {args.duckdb_sizes} lines, {args.repeat} runs each", result, [])
        return 0
    if args.gharchive or args.types_scaling:
        global INSTRUCTIONS
        INSTRUCTIONS = args.instructions
        if args.gharchive:
            result = gharchive(args.gharchive, args.before, args.repeat, args.profile_lines, args.corpus)
            if args.json:
                print(json.dumps(result, indent=2))
            else:
                _print_rounds(
                    f"GH Archive x{args.gharchive:,} lines, {args.repeat} runs each",
                    result,
                    [
                        ("evaluator / orjson loop (time per event)", "after", "orjson"),
                        ("before / after (speed-up)", "before", "after"),
                        ("evaluator / line-read floor", "after", "floor"),
                        ("DuckDB profile query / evaluator (small log)", "small: DuckDB profile query", "small: after"),
                    ],
                )
        if args.types_scaling:
            result = types_scaling(args.types_scaling, args.before, args.repeat)
            if args.json:
                print(json.dumps(result, indent=2))
            else:
                _print_rounds(
                    f"{args.types_scaling:,} events, 5 vs 2,000 types, {args.repeat} runs each",
                    result,
                    [
                        ("after: 2,000 / 5 types (time per event)", "2,000 types: after", "5 types: after"),
                        ("before: 2,000 / 5 types (time per event)", "2,000 types: before", "5 types: before"),
                        ("orjson: 2,000 / 5 types", "2,000 types: orjson", "5 types: orjson"),
                    ],
                )
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        if args.log is not None:
            os.environ["EVALUATE_BENCH_OWN_LOG"] = "1"  # inherited by the --measure subprocesses
        path = args.log or Path(tmp) / "events.jsonl"
        if args.log is None:
            generate(path, args.events, args.key_prefix)
        size_mb = path.stat().st_size / 1e6
        load = os.getloadavg()[0]
        names = args.only or list(MEASURES)
        results = [r for r in (measure(name, path) for name in names) if r is not None]
    for result in results:
        result["events_per_s"] = result["events"] / result["seconds"]
        result["mb_per_s"] = size_mb / result["seconds"]
    evaluator = [r for r in results if r["name"].startswith("eval")]
    ok = any(r["events_per_s"] >= TARGET_EVENTS_PER_S and r["peak_mb"] < TARGET_PEAK_MB for r in evaluator)
    if args.json:
        print(json.dumps({"size_mb": size_mb, "load_before": load, "results": results, "target_met": ok}, indent=2))
        return 0 if ok else 1
    events = results[0]["events"]
    print(
        f"{events} events, {size_mb:.0f} MB ({size_mb * 1e6 / max(events, 1):.0f} B/event), "
        f"{os.cpu_count()} CPUs, load average before: {load:.2f}\n"
    )
    print("| approach | events/s | MB/s | peak RSS |")
    print("|---|---:|---:|---:|")
    for result in results:
        print(
            f"| {MEASURES[result['name']][0]} | {result['events_per_s']:,.0f} | {result['mb_per_s']:.0f} | "
            f"{result['peak_mb']:.0f} MB |"
        )
    verdict = "met" if ok else "NOT met"
    print(f"\nTarget (>= {TARGET_EVENTS_PER_S:,} events/s, < {TARGET_PEAK_MB} MB): {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
