#!/usr/bin/env python3
"""Parallel builds: ``agentflow build 1 2 3 4 -j 4`` against ``-j 1``, with a model that takes 0.5 s a call.

Usage:  python benchmarks/parallel_build.py [--plans 4] [--jobs 4] [--latency 0.5] [--runs 3]
                                            [--sandbox auto|bwrap|off] [--mode warm|cold|both] [--code DIR ...]
                                            [--min-ratio 3.3] [--json]

A temporary repository with ``--plans`` ready plans (each its own file in its own scope, one check,
``true``), the anthropic backend (the real SDK) pointed at ``tests/fakeapi.py`` on 127.0.0.1, which
waits ``--latency`` seconds before every reply. Each plan takes four model calls, about 2 s of
"thinking": the builder writes its file and finishes, the verifier runs ``cat`` on it (a sandboxed
``run_command``) and approves. ``python -m agentflow build 1 2 3 4 -j N`` runs as a fresh process in
a fresh copy of the repository, so its wall time includes start-up (Python, the CLI, the SDK
import), worktrees, sessions, checks, commits, notes and ledger writes, everything a user waits for
(``--mode cold``). ``--mode warm`` imports the SDK before the clock starts, the same for ``-j 1``
and ``-j N`` (its time, read by the build process itself, ends with ``main()``, before the interpreter
exits), so the ratio shows how the runs scale; ``both`` (the default) measures each.

``-j 1`` and ``-j N`` alternate, ``--runs`` times each after a warm-up; the report gives the medians,
the ratio of medians (the speed-up) and where a ``-j N`` build's time goes: start-up until the first
model call, the calls themselves, and the end after the last one; the phases besides the model (the
steps between the builder's last reply and the verifier's first request, inside a session, between
two plans of ``-j 1``), read from the requests' arrival times. Every build must approve every
plan in the sandbox asked for (the run_started events say which one ran); the CPU of the build
process and its children is reported too, and in warm mode the CPU spent on the clock (the SDK
import left out): divided by the machine's CPUs, the shortest a ``-j N`` build could take. Exits 1 when the ratio (of the first mode: warm with
``both``) is under ``--min-ratio`` (#19 item 5: at least 3.3x) or a build did not approve every plan.

``--code DIR`` (repeatable) times another checkout (``PYTHONPATH`` points at it, e.g. a worktree of an
older commit), interleaved with the others in the same run, for a before/after comparison: list the
"before" first; the target applies to the last one named. Every checkout's bytecode is compiled first
(``compileall``), as an installed package's is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakeapi import TEST_API_KEY, FakeAnthropic, message, tool_use  # noqa: E402

PLAN = """---
id: {id}
title: Add p{id}
status: ready
scope: ["src/p{id}.py"]
checks: ["true"]
---
## Context

Module p{id} needs a function.

## Requirements

1. Add `value()` to src/p{id}.py, returning {id}.

## Acceptance criteria

- AC1: `value()` in src/p{id}.py returns {id}
"""


def build_repo(path: Path, plans: int, sandbox: str) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)

    path.mkdir(parents=True)
    git("init", "-q", "-b", "main")
    git("config", "user.email", "bench@example.com")
    git("config", "user.name", "Bench")
    git("config", "commit.gpgsign", "false")
    (path / "README.md").write_text("# bench\n")
    (path / "agentflow.yaml").write_text(f"base: main\nsandbox:\n  mode: {sandbox}\n")
    (path / ".plans").mkdir()
    for i in range(1, plans + 1):
        (path / ".plans" / f"{i}-p{i}.md").write_text(PLAN.format(id=i))
    git("add", "-A")
    git("commit", "-q", "-m", "plans")


def model_reply(body: dict[str, Any]) -> dict[str, Any]:
    """Builder: write the plan's file, finish. Verifier: ``cat`` it (sandboxed), approve."""
    messages = body.get("messages") or []
    first = json.dumps(messages[0]["content"]) if messages else ""
    found = re.search(r"src/p(\d+)\.py", first)
    plan = found.group(1) if found else "0"
    path = f"src/p{plan}.py"
    turn = sum(1 for m in messages if m.get("role") == "assistant")
    verifier = "submit_verdict" in {t.get("name") for t in body.get("tools") or []}
    if not verifier:
        if turn == 0:
            return message(tool_use("write_file", {"path": path, "content": f"def value():\n    return {plan}\n"}))
        return message(tool_use("finish", {"summary": f"added value() to {path}"}))
    if turn == 0:
        return message(tool_use("run_command", {"command": f"cat {path}"}))
    verdict = {
        "decision": "approve",
        "summary": f"{path} returns {plan}",
        "criteria": [{"id": "AC1", "status": "met", "evidence": f"{path}:2"}],
        "findings": [],
    }
    return message(tool_use("submit_verdict", verdict))


def outcomes(repo: Path) -> tuple[list[str], set[str]]:
    """The runs' outcomes and the sandboxes they ran in, from the ledger."""
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        events = ledger.events(kinds=["run_started", "run_ended"])
    ended = [e.outcome for e in events if e.kind == "run_ended"]
    sandboxes = {str(e.sandbox) for e in events if e.kind == "run_started"}
    return ended, sandboxes


# "warm": the SDK is imported before the clock starts, so the time is the build's own (start-up of the
# CLI included) and the ratio shows how the runs scale; "cold" is the plain command a user waits for
WARM = """import resource, sys, time
import anthropic  # noqa: F401 - before the clock: the SDK import is the same for -j 1 and -j N
began = time.monotonic()
mine = resource.getrusage(resource.RUSAGE_SELF)
from agentflow.cli import main
sys.argv = ["agentflow", *sys.argv[1:]]
try:
    main()
finally:
    ended = time.monotonic()
    now, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (now.ru_utime - mine.ru_utime) + (now.ru_stime - mine.ru_stime)
    print(f"agentflow-bench-clock {began} {ended} {own} {kids.ru_utime + kids.ru_stime}", file=sys.stderr)
"""


def one_build(
    template: Path, work: Path, code: Path, plans: int, jobs: int, fake: FakeAnthropic, warm: bool
) -> dict[str, Any]:
    repo = work / "repo"
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(template, repo, symlinks=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOW_", "ANTHROPIC_"))}
    env.update(
        ANTHROPIC_BASE_URL=fake.url,
        ANTHROPIC_API_KEY=TEST_API_KEY,
        PYTHONPATH=str(code) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    args = ["build", *[str(i) for i in range(1, plans + 1)], "-j", str(jobs)]
    command = [sys.executable, *(["-c", WARM] if warm else ["-m", "agentflow"]), *args]
    first = len(fake.times)
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    done = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, check=False)
    ended = time.monotonic()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    clocked: tuple[float, float] | None = None
    if warm:  # the build's own time: from the clock in WARM to the end of main(), before the interpreter exits
        clock = re.findall(r"agentflow-bench-clock ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9.]+)", done.stderr)
        if clock:  # time.monotonic() is one clock for every process on Linux
            began, ended = float(clock[-1][0]), float(clock[-1][1])
            clocked = float(clock[-1][2]), float(clock[-1][3])  # CPU on the clock: the process's, its children's
    calls = fake.times[first:]
    phases = _phases([t - began for t in calls], plans, jobs, fake.latency)
    outcome, sandboxes = outcomes(repo) if (repo / ".agentflow" / "ledger.db").exists() else ([], set())
    return {
        "wall_s": ended - began,
        # CPU of the process and everything it ran (git, bwrap, checks), the SDK import included
        "cpu_s": (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime),
        # warm: the CPU spent while the clock ran (the SDK import before it left out), the build
        # process's own (one GIL) and its children's (git, bwrap, the checks)
        "clock_cpu_s": sum(clocked) if clocked else None,
        "clock_own_cpu_s": clocked[0] if clocked else None,
        "exit": done.returncode,
        "approved": sum(1 for o in outcome if o == "approved"),
        "sandboxes": sorted(sandboxes),
        "calls": len(calls),
        "to_first_call_s": (calls[0] - began) if calls else None,
        "after_last_call_s": (ended - calls[-1]) if calls else None,
        **phases,
        "stderr": done.stderr[-2000:] if done.returncode else "",
    }


def _phases(calls: list[float], plans: int, jobs: int, latency: float) -> dict[str, float]:
    """Where a build's time goes besides the model, from the requests' arrival times (each plan
    makes four: builder, builder, verifier, verifier): ``between`` from the builder's last reply to
    the verifier's first request, ``inside`` between a session's two calls, ``plan_gap`` (``-j 1``)
    from one plan's last reply to the next plan's first request. ``-j N`` with N plans runs them in
    step: its phases are read between the medians of each wave of N requests."""
    if len(calls) != 4 * plans or plans < 1:
        return {}
    if jobs == 1:
        return {
            "between_s": statistics.median(calls[4 * k + 2] - calls[4 * k + 1] - latency for k in range(plans)),
            "inside_s": statistics.median(calls[i + 1] - calls[i] - latency for i in range(0, 4 * plans, 2)),
            "plan_gap_s": statistics.median(calls[4 * k + 4] - calls[4 * k + 3] - latency for k in range(plans - 1))
            if plans > 1
            else 0.0,
        }
    if jobs < plans:
        return {}
    n = plans
    wave = [statistics.median(calls[k * n : (k + 1) * n]) for k in range(4)]  # the runs' 1st, 2nd, 3rd, 4th calls
    return {
        "between_s": wave[2] - wave[1] - latency,
        "inside_s": statistics.median([wave[1] - wave[0] - latency, wave[3] - wave[2] - latency]),
        "last_first_call_s": calls[n - 1],
    }


def _clock_cpu(serial: list[dict[str, Any]], parallel: list[dict[str, Any]]) -> dict[str, Any]:
    """Warm mode: the CPU a build spends on the clock, and the shortest a ``-j N`` build could take on
    this machine's CPUs with that much work (its "CPU floor"), whatever the scheduling."""
    rows = [r for r in serial + parallel if r["clock_cpu_s"] is not None]
    if not rows:
        return {}
    cpu = statistics.median(r["clock_cpu_s"] for r in rows)
    own = statistics.median(r["clock_own_cpu_s"] for r in rows)
    return {"clock_cpu_s": cpu, "clock_own_cpu_s": own, "jn_cpu_floor_s": cpu / (os.cpu_count() or 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the fake model takes per call")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sandbox", choices=["auto", "bwrap", "off"], default="bwrap")
    parser.add_argument("--mode", choices=["warm", "cold", "both"], default="both")
    parser.add_argument("--code", type=Path, action="append", help="an agentflow checkout to time (default: this one)")
    parser.add_argument("--min-ratio", type=float, default=3.3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    modes = ["warm", "cold"] if args.mode == "both" else [args.mode]
    cells = [(code, mode) for code in codes for mode in modes]

    fake = FakeAnthropic(latency=args.latency)
    fake.handler = model_reply
    fake.start()
    results: dict[tuple[Path, str], dict[int, list[dict[str, Any]]]] = {cell: {1: [], args.jobs: []} for cell in cells}
    failures: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="agentflow-parallel-") as folder:
            template = Path(folder) / "template"
            build_repo(template, args.plans, args.sandbox)
            for code in codes:  # as an installed agentflow has it: with PYTHONDONTWRITEBYTECODE set (this
                # machine's environment) every build would otherwise compile each module it imports anew
                # (about 0.1 s of CPU before the first model call, -j 1 and -j N alike)
                subprocess.run([sys.executable, "-m", "compileall", "-q", str(code / "agentflow")], check=True)
            for code in codes:  # warm-up: page cache
                one_build(template, Path(folder), code, args.plans, args.jobs, fake, warm=False)
            for _ in range(args.runs):  # interleaved, so load changes hit every cell alike
                for code, mode in cells:
                    for jobs in (1, args.jobs):
                        row = one_build(template, Path(folder), code, args.plans, jobs, fake, warm=mode == "warm")
                        results[(code, mode)][jobs].append(row)
                        wanted = {"bwrap": ["bwrap"], "off": ["off"]}.get(args.sandbox, row["sandboxes"])
                        if row["exit"] != 0 or row["approved"] != args.plans or row["sandboxes"] != wanted:
                            last = row["stderr"].strip().splitlines()[-1:] or [""]
                            failures.append(
                                f"{code} {mode} -j {jobs}: exit {row['exit']}, "
                                f"{row['approved']} of {args.plans} approved, sandbox {row['sandboxes']}: {last[0]}"
                            )
    finally:
        fake.stop()

    report: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "plans": args.plans,
        "jobs": args.jobs,
        "latency_s": args.latency,
        "runs": args.runs,
        "sandbox": args.sandbox,
        "rows": [],
        "failures": failures,
    }
    for code, mode in cells:
        serial, parallel = results[(code, mode)][1], results[(code, mode)][args.jobs]
        one, many = statistics.median(r["wall_s"] for r in serial), statistics.median(r["wall_s"] for r in parallel)
        report["rows"].append(
            {
                "code": str(code),
                "mode": mode,
                "j1_median_s": one,
                "jn_median_s": many,
                "ratio": one / many,
                "j1_runs_s": [round(r["wall_s"], 2) for r in serial],
                "jn_runs_s": [round(r["wall_s"], 2) for r in parallel],
                "j1_to_first_call_s": statistics.median(r["to_first_call_s"] or 0 for r in serial),
                "jn_to_first_call_s": statistics.median(r["to_first_call_s"] or 0 for r in parallel),
                "jn_after_last_call_s": statistics.median(r["after_last_call_s"] or 0 for r in parallel),
                **{
                    f"{side}_{key}": statistics.median(r[key] for r in rows)
                    for side, rows in (("j1", serial), ("jn", parallel))
                    for key in ("between_s", "inside_s", "plan_gap_s", "last_first_call_s")
                    if rows and all(key in r for r in rows)
                },
                "j1_cpu_s": statistics.median(r["cpu_s"] for r in serial),
                "jn_cpu_s": statistics.median(r["cpu_s"] for r in parallel),
                **_clock_cpu(serial, parallel),
                "calls_per_build": statistics.median(r["calls"] for r in serial + parallel),
                "sandboxes": sorted({s for r in serial + parallel for s in r["sandboxes"]}),
            }
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['machine']}, Python {report['python']}, load average {report['load_average'][0]:.2f} at the end; "
            f"{args.plans} plans, {args.latency} s per model call, {args.runs} runs, sandbox {args.sandbox}\n"
        )
        j = args.jobs
        print(
            f"| code | SDK | `-j 1` median | `-j {j}` median | ratio | to first call `-j 1` / `-j {j}` | after last |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for row in report["rows"]:
            print(
                f"| {row['code']} | {row['mode']} | {row['j1_median_s']:.2f} s | {row['jn_median_s']:.2f} s "
                f"| **{row['ratio']:.2f}x** | {row['j1_to_first_call_s']:.2f} s / {row['jn_to_first_call_s']:.2f} s "
                f"| {row['jn_after_last_call_s']:.2f} s |"
            )
        print()
        for row in report["rows"]:
            print(
                f"{row['code']} {row['mode']}: -j 1 {row['j1_runs_s']}, -j {j} {row['jn_runs_s']}, "
                f"CPU {row['j1_cpu_s']:.2f} s / {row['jn_cpu_s']:.2f} s, {row['calls_per_build']:g} calls a build, sandbox {', '.join(row['sandboxes'])}"
            )
            if "j1_between_s" in row and "jn_between_s" in row:
                print(
                    f"  phases (besides the model): -j 1 per plan {row['j1_between_s']:.2f} s between builder and "
                    f"verifier, {row['j1_inside_s']:.3f} s inside a session, {row.get('j1_plan_gap_s', 0):.2f} s "
                    f"between plans; -j {j} {row['jn_between_s']:.2f} s between, {row['jn_inside_s']:.3f} s inside, "
                    f"last run's first call {row['jn_last_first_call_s']:.2f} s"
                )
            if "clock_cpu_s" in row:
                print(
                    f"  on the clock: {row['clock_cpu_s']:.2f} s of CPU a build ({row['clock_own_cpu_s']:.2f} s "
                    f"the build process's own, one GIL), so -j {j} can take no less than "
                    f"{row['jn_cpu_floor_s']:.2f} s on {os.cpu_count()} CPUs"
                )
        for failure in failures:
            print(f"FAILED: {failure}")
    target = [row for row in report["rows"] if row["code"] == str(codes[-1]) and row["mode"] == modes[0]]
    return 1 if failures or target[0]["ratio"] < args.min_ratio else 0


if __name__ == "__main__":
    sys.exit(main())
