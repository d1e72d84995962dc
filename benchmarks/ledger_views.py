#!/usr/bin/env python3
"""Ledger views at team scale (#19 item 1): status, show, log --run and metrics --since 7d on a
generated ledger, as subprocesses, against ``python -c pass``, with peak RSS and CPU time.

Usage:  python benchmarks/ledger_views.py [--events 100000] [--days 365] [--runs 5] [--code DIR]...
                                          [--keep DIR] [--instructions]

The ledger holds ``--days`` of runs (evenly spread, about 40 events each: two sessions with model
and tool calls, checks, a verdict, the end; every fifth approved run is merged), with the hash
chain, event ids and indexed columns exactly as ``Ledger.append_many`` writes them, but
bulk-inserted (one ``executemany``; the bodies are the events' own JSON with ids and times
filled in), so 1M events take seconds, not an hour. ``--code DIR`` (repeatable) also times
another checkout of agentflow (e.g. a ``git worktree`` of the commit before a change) on its own
copy of the same ledger, downgraded to the schema that code knows (derived tables and indexes of
later migrations dropped; the events are byte for byte the same). Each view runs once untimed
first (it builds or catches up its projection, as the first call after a build does), then
``--runs`` times; medians are reported. Every checkout's bytecode is compiled first (``compileall``),
as an installed package's is: with ``PYTHONDONTWRITEBYTECODE`` set, start-up would include
compiling every agentflow module it imports. ``--instructions`` also runs each command once under
valgrind's callgrind and prints the instructions it executed: exact and the same at any load, so
two checkouts compare on a busy machine too (it does not see time spent waiting, in child
processes such as git, or on cache misses).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# What migrations after the third created (a copy of the ledger for code that knows only the first
# three drops them): the derived view tables and the indexes of migration 4.
DOWNGRADE = {
    3: [
        "DROP TABLE IF EXISTS view_meta",
        "DROP TABLE IF EXISTS view_runs",
        "DROP TABLE IF EXISTS view_plans",
        "DROP TABLE IF EXISTS view_merged",
        "DROP INDEX IF EXISTS events_kind_ts",
        "DROP INDEX IF EXISTS events_runless_ts",
    ]
}
INPUTS_TEXT = "x" * 4000  # a run_started records its trusted inputs' text (config, prompts, patterns, plan)


def _templates() -> list[dict]:
    """One run's events as JSON-ready dicts, dumped by the code under test's own event classes."""
    from agentflow.events import (
        CheckResult,
        ChecksRan,
        ModelCalled,
        RunEnded,
        RunStarted,
        SessionEnded,
        SessionStarted,
        ToolCalled,
        Usage,
        VerdictRecorded,
    )

    usage = Usage(input_tokens=1000, output_tokens=100)
    events: list = [
        RunStarted(
            run_id="R",
            plan_id="P",
            plan_title="Plan P",
            max_cycles=3,
            branch="agentflow/P",
            base="main",
            base_commit="c" * 40,
            inputs={"config": "a" * 64, "plan": "b" * 64},
            inputs_text={"prompts": INPUTS_TEXT},
            sandbox="bwrap",
        )
    ]
    for role in ("builder", "verifier"):
        sid = f"S-{role}"
        events.append(SessionStarted(run_id="R", session_id=sid, role=role, backend="anthropic", model="m"))
        for turn in range(1, 9):
            events.append(ModelCalled(run_id="R", session_id=sid, turn=turn, model="m", usage=usage, cost_usd=0.01))
            events.append(ToolCalled(run_id="R", session_id=sid, turn=turn, tool="read_file", input={"path": "a.py"}))
        events.append(
            SessionEnded(run_id="R", session_id=sid, role=role, status="completed", turns=8, usage=usage, cost_usd=0.08)
        )
    events.append(
        ChecksRan(run_id="R", cycle=1, commit="d" * 40, results=[CheckResult(command="t", exit_code=0, duration_s=1.0)])
    )
    events.append(VerdictRecorded(run_id="R", cycle=1, commit="d" * 40, outcome="approved", decision="approve"))
    events.append(RunEnded(run_id="R", outcome="approved", cycles=1, commit="d" * 40))
    return [e.model_dump(mode="json") for e in events]


def generate(root: Path, events: int, days: float) -> str:
    """A ledger of about ``events`` events over ``days`` days ending now; returns the last run's id."""
    import orjson

    from agentflow import chain
    from agentflow.ledger import Ledger, ledger_path

    subprocess.run(["git", "init", "-q", str(root)], check=True)
    Ledger.open(root).close()  # the schema, by the code under test
    templates = _templates()
    per_run = len(templates)
    runs = max(1, events // per_run)
    now = datetime.now(UTC)
    step = timedelta(days=days) / runs
    key = chain.chain_key()
    db = sqlite3.connect(ledger_path(root))
    db.execute("PRAGMA synchronous = OFF")
    # indexes are built once after the bulk insert (sorted), not kept up row by row
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    sql = "INSERT INTO events (ts, kind, run_id, body, eid, prev, hash, plan_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    batch: list[tuple] = []
    run_id, runless = "", None  # run-less events (merges) chain among themselves, like runs
    for n in range(runs):
        start = now - timedelta(days=days) + step * n
        run_id, plan = f"r-bench-{n:07d}", str(n % 50)
        outcome = "approved" if n % 3 else "changes_requested"
        prev = None
        rows = []
        for i, template in enumerate(templates):
            data = dict(template)
            ts = start + timedelta(seconds=i)
            data["ts"], data["run_id"] = ts.isoformat().replace("+00:00", "Z"), run_id
            if "session_id" in data:
                data["session_id"] = f"s-{n}-{data['session_id'][2:]}"
            if "plan_id" in data:
                data["plan_id"], data["plan_title"] = plan, f"Plan {plan}"
            if data["kind"] in ("verdict_recorded", "run_ended"):
                data["outcome"] = outcome
            rows.append((data, ts))
        if n % 15 == 1:  # an approved run merged a minute after it ended
            ts = rows[-1][1] + timedelta(minutes=1)
            merged = {"v": 1, "ts": ts.isoformat().replace("+00:00", "Z"), "run_id": None, "kind": "merged"}
            rows.append(({**merged, "plan_id": plan, "branch": f"agentflow/{plan}", "into": "main", "commit": "e"}, ts))
        for data, ts in rows:
            body, eid, ts_col, rid = orjson.dumps(data).decode(), secrets.token_hex(10), ts.isoformat(), data["run_id"]
            kind = data["kind"]
            link = None if kind == "run_started" else prev if rid else runless
            digest = chain.digest(key, link, eid, kind, rid, ts_col, body)
            if rid:
                prev = digest
            else:
                runless = digest
            batch.append((ts_col, kind, rid, body, eid, link, digest, data.get("plan_id")))
        if len(batch) >= 50_000:
            db.executemany(sql, batch)
            batch.clear()
    db.executemany(sql, batch)
    for _, create in indexes:
        db.execute(create)
    db.commit()
    db.close()
    return run_id


def timed(cmd: list[str], cwd: Path, env: dict[str, str], runs: int) -> tuple[float, float, float]:
    """Median seconds, peak RSS (MB) and median CPU seconds (user + system) of ``cmd`` over ``runs`` runs."""
    times, cpus, peak = [], [], 0.0
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", *cmd], cwd=cwd, env=env, capture_output=True, text=True
        )
        times.append(time.perf_counter() - started)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr[-500:]}")
        rss, user, system = proc.stderr.strip().splitlines()[-1].split()
        peak = max(peak, int(rss) / 1024)
        cpus.append(float(user) + float(system))
    return statistics.median(times), peak, statistics.median(cpus)


# The same views called in-process, timed after the imports: the part of a view that depends on
# the ledger (start-up is the rest). ``log`` reads stored JSON where the code has ``read_records``.
INPROC = {
    "status": "from agentflow.records import plan_states\nrun = lambda: plan_states(root)",
    "show RUN": (
        "from agentflow.ledger import Ledger\nfrom agentflow.show import run_timeline\n"
        "def run():\n    with Ledger.open(root) as ledger:\n        run_timeline(ledger, RUN)"
    ),
    "log --run RUN": (
        "import agentflow.records as r\nread = getattr(r, 'read_records', r.read_events)\nrun = lambda: read(root, RUN)"
    ),
    "metrics --since 7d": (
        "from agentflow.metrics import metrics_report, parse_period\n"
        "run = lambda: metrics_report(root, parse_period('7d', None))"
    ),
}
INPROC_MAIN = (
    "import sys, time\nfrom pathlib import Path\nroot, RUN, N = Path('.'), sys.argv[1], int(sys.argv[2])\n{setup}\n"
    "run()\ntimes, cpus = [], []\nfor _ in range(N):\n    t, c = time.perf_counter(), time.process_time()\n    run()\n"
    "    times.append(time.perf_counter() - t)\n    cpus.append(time.process_time() - c)\n"
    "print(sorted(times)[len(times) // 2], sorted(cpus)[len(cpus) // 2])"
)


def inproc(view: str, code: Path, repo: Path, run_id: str, runs: int) -> tuple[float, float]:
    """Median seconds and CPU seconds of the view's domain call, in one process after a warm call
    (imports excluded)."""
    out = subprocess.run(
        [sys.executable, "-c", INPROC_MAIN.format(setup=INPROC[view]), run_id, str(runs)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(code)},
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"{view} in-process: {out.stderr[-500:]}")
    wall, cpu = out.stdout.split()[-2:]
    return float(wall), float(cpu)


def instructions(cmd: list[str], cwd: Path, env: dict[str, str]) -> float | None:
    """Millions of instructions ``cmd`` executes under callgrind (its child processes, such as git, not
    counted): the same on a loaded machine as on an idle one, so two checkouts compare exactly."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    proc = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        cwd=cwd,
        env={**env, "PYTHONHASHSEED": "0"},  # the same hashes, so the same dict probes, every run
        capture_output=True,
        text=True,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    return int(found.group(1)) / 1e6 if found else None


def schema_of(code: Path) -> int:
    out = subprocess.run(
        [sys.executable, "-c", "from agentflow.ledger import MIGRATIONS; print(len(MIGRATIONS))"],
        env={**os.environ, "PYTHONPATH": str(code)},
        cwd=code,  # not this checkout: ``-c`` puts the current directory first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def copy_for(root: Path, code: Path, into: Path) -> Path:
    """A copy of the repository whose ledger has the schema ``code`` knows."""
    version = schema_of(code)
    if into.exists():
        shutil.rmtree(into)
    shutil.copytree(root, into)
    db = sqlite3.connect(into / ".agentflow" / "ledger.db")
    current = db.execute("PRAGMA user_version").fetchone()[0]
    for number in range(current - 1, version - 1, -1):
        for statement in DOWNGRADE.get(number, []):
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {min(version, current)}")
    db.commit()
    db.close()
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=365)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--code", type=Path, action="append", default=[], help="another agentflow checkout to time")
    parser.add_argument("--keep", type=Path, help="generate the repository here (reused when it exists)")
    parser.add_argument(
        "--instructions", action="store_true", help="also count each command's instructions (valgrind's callgrind)"
    )
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(here))
    tmp = Path(tempfile.mkdtemp())
    root = args.keep or tmp / "repo"
    marker = root / ".agentflow" / "last-run"
    if not marker.exists():
        started = time.perf_counter()
        last = generate(root, args.events, args.days)
        marker.write_text(last)
        print(f"generated {args.events} events in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    run_id = marker.read_text()
    size = (root / ".agentflow" / "ledger.db").stat().st_size / 1e6
    views = {
        "status": ["status"],
        "show RUN": ["show", run_id],
        "log --run RUN": ["log", "--run", run_id],
        "metrics --since 7d": ["metrics", "--since", "7d"],
    }
    for code in (here, *args.code):  # as an installed agentflow has it: with PYTHONDONTWRITEBYTECODE set
        # (this machine's environment) every command would otherwise compile agentflow anew (~60 ms CPU)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(code).resolve() / "agentflow")], check=True)
    load_before = f"{os.getloadavg()[0]:.2f}"
    codes = [(here, root)] + [
        (code.resolve(), copy_for(root, code, tmp / f"copy-{n}")) for n, code in enumerate(args.code)
    ]
    base, _, _ = timed([sys.executable, "-c", "pass"], root, dict(os.environ), args.runs)
    results: dict[tuple[str, str], tuple[float, float, float]] = {}
    ledger_part: dict[tuple[str, str], tuple[float, float]] = {}
    for name, argv in views.items():
        cmd = [sys.executable, "-m", "agentflow", *argv]
        envs = {str(code): {**os.environ, "PYTHONPATH": str(code)} for code, _ in codes}
        for code, repo in codes:
            timed(cmd, repo, envs[str(code)], 1)  # warm: builds or catches up a projection, fills the page cache
        samples: dict[str, list[tuple[float, float, float]]] = {str(code): [] for code, _ in codes}
        for _ in range(args.runs):  # interleaved run by run: a burst of load hits every checkout alike
            for code, repo in codes:
                samples[str(code)].append(timed(cmd, repo, envs[str(code)], 1))
        for code, repo in codes:
            runs = samples[str(code)]
            results[(str(code), name)] = (
                statistics.median(r[0] for r in runs),
                max(r[1] for r in runs),
                statistics.median(r[2] for r in runs),
            )
            ledger_part[(str(code), name)] = inproc(name, code, repo, run_id, args.runs)
    base_after, _, _ = timed([sys.executable, "-c", "pass"], root, dict(os.environ), args.runs)
    base = statistics.median([base, base_after])
    print(f"\n{args.events} events over {args.days:g} days ({size:.0f} MB); python -c pass: {base * 1000:.0f} ms")
    print(f"medians of {args.runs} runs\n")
    print(
        f"load average before/after: {load_before} / {os.getloadavg()[0]:.2f}\n\n"
        "| code | view | median | × python -c pass | CPU | in-process (ledger part) | its CPU | peak RSS |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in views:
        for code, _repo in codes:
            median, peak, cpu = results[(str(code), name)]
            part, part_cpu = ledger_part[(str(code), name)]
            label = "this" if code == here else code.name
            print(
                f"| {label} | {name} | {median * 1000:.0f} ms | {median / base:.1f} | {cpu * 1000:.0f} ms "
                f"| {part * 1000:.1f} ms | {part_cpu * 1000:.1f} ms | {peak:.0f} MB |"
            )
    if args.code:
        print("\n| view | before / after (command) | before / after (ledger part) |\n|---|---:|---:|")
        for name in views:
            after, after_part = results[(str(here), name)][0], ledger_part[(str(here), name)][0]
            for code, _repo in codes[1:]:
                before, before_part = results[(str(code), name)][0], ledger_part[(str(code), name)][0]
                print(f"| {name} ({code.name}) | {before / after:.1f}× | {before_part / after_part:.1f}× |")
    if args.instructions:
        baseline = instructions([sys.executable, "-c", "pass"], root, dict(os.environ))
        if baseline is None:
            print("\n--instructions: valgrind is not installed", file=sys.stderr)
        else:
            print(f"\ninstructions (callgrind, millions; python -c pass: {baseline:.1f} M)\n")
            print("| view | " + " | ".join("this" if c == here else c.name for c, _ in codes) + " |")
            print("|---|" + "---:|" * len(codes))
            for name, argv in views.items():
                counts = []
                for code, repo in codes:
                    env = {**os.environ, "PYTHONPATH": str(code)}
                    counts.append(instructions([sys.executable, "-m", "agentflow", *argv], repo, env))
                print(f"| {name} | " + " | ".join(f"{c:.1f} M" if c is not None else "?" for c in counts) + " |")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
