#!/usr/bin/env python3
"""Gate benchmark: ``agentflow gate HEAD`` on a repository with 1,000 verdict notes, against ``python -c pass``.

Usage:  python benchmarks/gate_startup.py [--notes 1000] [--runs 15] [--max-ratio 12] [--code DIR ...] [--legacy] [--json]

Builds a temporary repository with ``--notes`` commits (one file change each, written with
``git fast-import``) and one approved verdict note on each, then runs ``python -m agentflow gate HEAD``
(from this checkout, or the one ``--code`` names, e.g. a worktree of an older commit for a
before/after comparison: ``PYTHONPATH`` points at it; ``--code`` given several times times each of them,
interleaved: one run of each in turn, on the same repository) and ``python -c pass`` ``--runs`` times each
after a warm-up, and reports medians, minimums and the ratio of medians, of wall-clock time and of CPU time
(user + system, git's included: steadier than wall-clock on a loaded machine). Exits 1 when the ratio exceeds
``--max-ratio`` (#19: the gate runs in git hooks and on every CI push). Also reports whether the gate
imported pydantic, GitPython or anthropic. To see what is slow:
``python -X importtime -m agentflow gate HEAD 2> imports.txt`` inside the generated repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_repo(path: Path, notes: int, legacy: bool = False) -> None:
    """``notes`` commits on main, each with one approved verdict line under refs/notes/agentflow."""
    env = {**os.environ, "GIT_AUTHOR_DATE": "1700000000 +0000", "GIT_COMMITTER_DATE": "1700000000 +0000"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    stream = []
    for i in range(1, notes + 1):
        content = f"value = {i}\n".encode()
        stream += [
            "commit refs/heads/main",
            f"mark :{i}",
            "committer Bench <bench@example.com> 1700000000 +0000",
            f"data {len(f'change {i}')}",
            f"change {i}",
            f"M 100644 inline src/app{i % 50}.py",
            f"data {len(content)}",
            content.decode(),
        ]
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=path, input="\n".join(stream).encode() + b"\n", check=True, env=env
    )
    out = subprocess.run(
        ["git", "log", "--format=%H %T %P", "main"], cwd=path, capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in out.splitlines()]
    trees = {row[0]: row[1] for row in rows}
    parents = {row[0]: (row[2] if len(row) > 2 else None) for row in rows}
    base_tree = {c: trees.get(p) if p else None for c, p in parents.items()}
    stream = []
    for commit, tree in trees.items():
        line = {
            "v": 1,
            "plan": "1",
            "run": f"r-{commit[:8]}",
            "outcome": "approved",
            "decision": "approve",
            "tree": tree,
            "base": parents[commit],
            "base_tree": base_tree[commit],
            "checks": [],
            "models": {},
            "ts": "2026-11-27T10:00:00+00:00",
            "findings": [],
        }
        if not legacy:  # as agentflow writes a line since 2026-12-03; without it, the gate walks the notes history
            line["commit"] = commit
        body = json.dumps(line, sort_keys=True, separators=(",", ":")) + "\n"
        # one notes commit per verdict, as agentflow writes them: the notes history is 1,000 commits long
        stream += ["commit refs/notes/agentflow", "committer Bench <bench@example.com> 1700000000 +0000", "data 5"]
        stream += ["notes", f"N inline {commit}", f"data {len(body.encode())}", body]
    subprocess.run(
        ["git", "fast-import", "--quiet"], cwd=path, input="\n".join(stream).encode() + b"\n", check=True, env=env
    )
    subprocess.run(["git", "checkout", "-q", "main"], cwd=path, check=True)


def interleaved(
    commands: list[tuple[list[str], dict[str, str]]], runs: int, cwd: Path
) -> list[tuple[list[float], list[float]]]:
    """Wall-clock and CPU seconds (user + system, the child's and the git processes it waited for) of
    each run of each command, one run of each in turn (a load change hits them alike). CPU time barely
    moves with the load of other processes on a shared machine."""
    for command, env in commands:
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)  # warm-up
    results: list[tuple[list[float], list[float]]] = [([], []) for _ in commands]
    for _ in range(runs):
        for (command, env), (wall, cpu) in zip(commands, results, strict=True):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
            wall.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return results


def imported(cwd: Path, env: dict[str, str]) -> dict[str, bool]:
    code = (
        "import sys, runpy; sys.argv = ['agentflow', 'gate', 'HEAD']\n"
        "try:\n    runpy.run_module('agentflow', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(' '.join(str(m in sys.modules) for m in ('pydantic', 'git', 'anthropic')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    flags = (out.stdout.strip().splitlines() or [""])[-1].split()
    return dict(zip(("pydantic", "gitpython", "anthropic"), (f == "True" for f in flags), strict=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--max-ratio", type=float, default=12.0)
    parser.add_argument(
        "--code",
        type=Path,
        action="append",
        help="an agentflow checkout to time (default: this one); several: timed interleaved, the last decides the exit",
    )
    parser.add_argument(
        "--legacy",
        action="store_true",
        help="verdict lines without their `commit` field, as written before 2026-12-03 (an approval from then is "
        "judged against the whole notes history: one more `git log -p`)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    codes = args.code or [ROOT]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFLOW_")}
    envs = [{**base_env, "PYTHONPATH": str(c.resolve()) + os.pathsep + base_env.get("PYTHONPATH", "")} for c in codes]
    gate = [sys.executable, "-m", "agentflow", "gate", "HEAD"]
    reports = []
    with tempfile.TemporaryDirectory(prefix="agentflow-gate-bench-") as tmp:
        repo = Path(tmp) / "repo"
        build_repo(repo, args.notes, legacy=args.legacy)
        checks = [subprocess.run(gate, cwd=repo, env=env, capture_output=True, text=True, check=False) for env in envs]
        measured = interleaved(
            [([sys.executable, "-c", "pass"], envs[0]), *((gate, env) for env in envs)], args.runs, repo
        )
        bare, bare_cpu = measured[0]
        for code, env, check, (gated, gated_cpu) in zip(codes, envs, checks, measured[1:], strict=True):
            reports.append(
                {
                    "code": str(code),
                    "python": platform.python_version(),
                    "notes": args.notes,
                    "lines": "legacy (no commit field)" if args.legacy else "current",
                    "runs": args.runs,
                    "gate_exit": check.returncode,
                    "gate_headline": (check.stdout.splitlines() or [check.stderr.strip()])[0],
                    "python_c_pass_median_ms": round(statistics.median(bare) * 1000, 1),
                    "python_c_pass_min_ms": round(min(bare) * 1000, 1),
                    "gate_median_ms": round(statistics.median(gated) * 1000, 1),
                    "gate_min_ms": round(min(gated) * 1000, 1),
                    "ratio_of_medians": round(statistics.median(gated) / statistics.median(bare), 1),
                    "python_c_pass_cpu_median_ms": round(statistics.median(bare_cpu) * 1000, 1),
                    "gate_cpu_median_ms": round(statistics.median(gated_cpu) * 1000, 1),
                    "cpu_ratio_of_medians": round(statistics.median(gated_cpu) / statistics.median(bare_cpu), 1),
                    "imports": imported(repo, env),
                }
            )
    if args.json:
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    else:
        for report in reports:
            for key, value in report.items():
                print(f"{key:>26}: {value}")
            print()
    last = reports[-1]
    return 0 if last["ratio_of_medians"] <= args.max_ratio and last["gate_exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
