#!/usr/bin/env python3
"""Ledger views at team scale (#19 item 1): status, show, log --run and metrics --since 7d on a
generated ledger, as subprocesses, against ``python -c pass``.

Usage:  python benchmarks/ledger_views.py [--events 100000] [--runs 5] [--code DIR] [--keep DIR]

The ledger holds a year of runs (one run every few minutes, about 40 events each: sessions with
model and tool calls, checks, a verdict, the end), appended through ``Ledger.append_many`` so the
hash chain and indexed columns are real. ``--code DIR`` measures another checkout of agentflow
(e.g. a ``git worktree`` of the code before a change) on the same ledger: the ledger is generated
by the code under test, and read by both.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

PER_RUN = 40


def generate(root: Path, events: int) -> str:
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
    from agentflow.ledger import Ledger

    subprocess.run(["git", "init", "-q", str(root)], check=True)
    runs = max(1, events // PER_RUN)
    now = datetime.now(UTC)
    step = timedelta(days=365) / runs
    last = ""
    with Ledger.open(root) as ledger:
        for n in range(runs):
            ts = now - timedelta(days=365) + step * n
            run_id, plan = f"r-bench-{n:07d}", str(n % 50)
            batch: list = [RunStarted(ts=ts, run_id=run_id, plan_id=plan, plan_title=f"Plan {plan}", max_cycles=3)]
            for role in ("builder", "verifier"):
                sid = f"s-{n}-{role}"
                batch.append(SessionStarted(ts=ts, run_id=run_id, session_id=sid, role=role, backend="x", model="m"))
                for turn in range(1, 9):
                    usage = Usage(input_tokens=1000, output_tokens=100)
                    batch.append(ModelCalled(ts=ts, run_id=run_id, session_id=sid, turn=turn, model="m", usage=usage))
                    batch.append(
                        ToolCalled(
                            ts=ts, run_id=run_id, session_id=sid, turn=turn, tool="read_file", input={"path": "a.py"}
                        )
                    )
                batch.append(SessionEnded(ts=ts, run_id=run_id, session_id=sid, role=role, status="completed", turns=8))
            batch.append(
                ChecksRan(
                    ts=ts, run_id=run_id, cycle=1, results=[CheckResult(command="t", exit_code=0, duration_s=1.0)]
                )
            )
            outcome = "approved" if n % 3 else "changes_requested"
            batch.append(VerdictRecorded(ts=ts, run_id=run_id, cycle=1, outcome=outcome))
            batch.append(RunEnded(ts=ts + timedelta(minutes=3), run_id=run_id, outcome=outcome, cycles=1))
            ledger.append_many(batch)
            last = run_id
    return last


def timed(cmd: list[str], cwd: Path, env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median seconds and peak RSS (MB) of ``cmd`` over ``runs`` runs."""
    times, peak = [], 0.0
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr[-500:]}")
        peak = max(peak, int(proc.stderr.strip().splitlines()[-1]) / 1024)
    return statistics.median(times), peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--code", type=Path, action="append", default=[], help="another agentflow checkout to time")
    parser.add_argument("--keep", type=Path, help="generate the repository here (reused when it exists)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    tmp = tempfile.mkdtemp()
    root = args.keep or Path(tmp) / "repo"
    marker = root / ".agentflow" / "last-run"
    if not marker.exists():
        sys.path.insert(0, str(here))
        started = time.perf_counter()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(generate(root, args.events))
        print(f"generated {args.events} events in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    run_id = marker.read_text()
    base, _ = timed([sys.executable, "-c", "pass"], root, dict(os.environ), args.runs)
    views = {
        "status": ["status"],
        "show": ["show", run_id],
        "log --run": ["log", "--run", run_id],
        "metrics --since 7d": ["metrics", "--since", "7d"],
    }
    print(f"python -c pass: {base * 1000:.0f} ms; {args.events} events\n")
    print("| code | view | median | × python -c pass | peak RSS |\n|---|---|---:|---:|---:|")
    for code in [here, *args.code]:
        env = {**os.environ, "PYTHONPATH": str(code)}
        for name, argv in views.items():
            median, peak = timed([sys.executable, "-m", "agentflow", *argv], root, env, args.runs)
            print(f"| {code.name} | {name} | {median * 1000:.0f} ms | {median / base:.1f} | {peak:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
