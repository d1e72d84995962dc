#!/usr/bin/env python3
"""Session overhead benchmark: a 50-turn scripted session with a real ledger.

Usage:  python benchmarks/session_overhead.py [--turns 50] [--runs 5] [--target 1.0] [--json]
        python benchmarks/session_overhead.py --compare 25,400 --runs 3   # per-turn cost ratio (#19 item 2)

Everything but the model is real: the session loop, the sandboxed ``read_file`` tool on a
temporary repository, SQLite ledger appends (with redaction) for every model and tool call, and
the transcript saved after every turn. The scripted model answers instantly, so the time measured
is agentflow's own overhead per session. Exits 1 when the median exceeds ``--target`` seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def make_repo(root: Path, files: int = 20) -> None:
    (root / "src").mkdir(parents=True)
    for index in range(files):
        body = "".join(f"def f{index}_{n}(x):\n    return x + {n}\n\n" for n in range(40))
        (root / "src" / f"module_{index}.py").write_text(body)


def script(turns: int, files: int = 20) -> dict:
    session = [
        {
            "text": f"Reading module {n % files}",
            "tool_calls": [{"name": "read_file", "input": {"path": f"src/module_{n % files}.py"}}],
            "usage": {"input_tokens": 1200 + 300 * n, "output_tokens": 80},
        }
        for n in range(turns - 1)
    ]
    session.append({"tool_calls": [{"name": "finish", "input": {"summary": "read everything"}}]})
    return {"builder": [session]}


def one_run(turns: int) -> tuple[float, int]:
    from agentflow.ledger import Ledger
    from agentflow.models.scripted import ScriptedModel
    from agentflow.session import RunBudget, SessionLimits, SessionSpec, run_session
    from agentflow.tools import Toolbox

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        make_repo(root)
        ledger = Ledger(Path(tmp) / "state" / "ledger.db")
        spec = SessionSpec(
            role="builder",
            cycle=1,
            run_id="r-bench",
            root=root,
            system="You are the builder. " * 50,
            prompt="## Plan\n" + "Add capsule_id everywhere.\n" * 100,
            limits=SessionLimits(max_turns=turns + 1, max_tokens=10**12, max_cost_usd=1e9),  # long runs: no token cap
            budget=RunBudget(limit_usd=1e9),
            backend="scripted",
            model_name="scripted",
        )
        model = ScriptedModel(script(turns)).for_role("builder")
        started = time.perf_counter()
        result = run_session(spec, model, Toolbox(root, "builder"), ledger)
        elapsed = time.perf_counter() - started
        events = len(ledger.events(run_id="r-bench"))
        ledger.close()
    if result.status != "completed" or result.turns != turns:
        raise SystemExit(f"benchmark session did not complete: {result.status} {result.reason}")
    return elapsed, events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target", type=float, default=1.0, help="seconds per session (median)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--compare", metavar="SHORT,LONG", help="per-turn cost of LONG turns over SHORT turns")
    args = parser.parse_args()
    if args.compare:
        short, long = (int(n) for n in args.compare.split(","))
        one_run(5)
        per_turn = {}
        for turns in (short, long):
            per_turn[turns] = statistics.median(one_run(turns)[0] for _ in range(args.runs)) / turns * 1000
        ratio = per_turn[long] / per_turn[short]
        print(f"per turn: {short} turns {per_turn[short]:.2f} ms, {long} turns {per_turn[long]:.2f} ms: {ratio:.2f}x")
        return 0 if ratio <= 2.0 else 1

    one_run(5)  # warm-up: imports, SQLite, file cache
    results = [one_run(args.turns) for _ in range(args.runs)]
    times = [t for t, _ in results]
    median = statistics.median(times)
    report = {
        "turns": args.turns,
        "runs": args.runs,
        "events_per_session": results[0][1],
        "median_s": round(median, 4),
        "min_s": round(min(times), 4),
        "per_turn_ms": round(median / args.turns * 1000, 2),
        "target_s": args.target,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"| turns | runs | events | median | min | per turn | target |\n|---:|---:|---:|---:|---:|---:|---:|\n"
            f"| {args.turns} | {args.runs} | {report['events_per_session']} | {median * 1000:.0f} ms | "
            f"{min(times) * 1000:.0f} ms | {report['per_turn_ms']} ms | {args.target * 1000:.0f} ms |"
        )
    return 0 if median <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
