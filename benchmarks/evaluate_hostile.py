"""Hostile event logs for ``agentflow evaluate``: time, peak memory and report size (issue #16 items 4, 5).

Each case is generated at a size and at twice that size, so the ratio shows whether time grows
linearly (about 2x) or worse. Each run is ``python -m agentflow evaluate LOG --format json -o FILE
--no-record`` in its own process (peak RSS from ``wait4``), with this tree's code, and with
``--before TREE`` (a folder holding another checkout, e.g. /work/main) side by side in the same run.

    python benchmarks/evaluate_hostile.py                       # every case, this tree
    python benchmarks/evaluate_hostile.py --before /work/main --cases root family --timeout 300

Cases (events x keys):
  root     one type, every event with its own 2,000 top-level keys (200 lines, 6 MB)
  nested   5 types, each event's own 2,000 keys at depth 2 (``a.lvl0.{keys}``) (200 lines)
  spread   100 types of 20 events, each event its own 200 top-level keys (2,000 lines)
  family   1,000 types of one name stem, 4 events each, each event its own 500 keys (4,000 lines, 31 MB)
  long     one type, 100 keys of 1,000 characters, new in every event (200 lines, 20 MB)
  dotted   one type, 2,000 keys holding a dot (``x.1_2``), new in every event (200 lines)
  types    50,000 types of one event each (4 fields)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent.parent


def _write(path: Path, events) -> None:
    with path.open("wb") as out:
        for event in events:
            out.write(orjson.dumps(event) + b"\n")


def _keys(i: int, n: int, prefix: str = "k", suffix: str = "") -> dict[str, int]:
    return {f"{prefix}{i}_{k}{suffix}": k for k in range(n)}


CASES = {
    "root": lambda n: ({"type": "Hostile", **_keys(i, 2000)} for i in range(200 * n)),
    "nested": lambda n: (
        {"type": f"T{i % 5}", "tenant_id": "t", "a": {"lvl0": _keys(i, 2000)}} for i in range(200 * n)
    ),
    "spread": lambda n: ({"type": f"T{i % 100}", **_keys(i, 200)} for i in range(2000 * n)),
    "family": lambda n: (
        {"type": f"Account{i % (1000 * n)}Changed", "tenant_id": "t", **_keys(i, 500)} for i in range(4000 * n)
    ),
    "long": lambda n: ({"type": "Long", **_keys(i, 100, suffix="_" + "x" * 1000)} for i in range(200 * n)),
    "dotted": lambda n: ({"type": "Dotted", **_keys(i, 2000, prefix="x.")} for i in range(200 * n)),
    "types": lambda n: ({"type": f"Type{i}", "tenant_id": "t", "id": i, "v": "x"} for i in range(50_000 * n)),
}


def run(tree: Path, log: Path, out: Path, timeout: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "-m", "agentflow", "evaluate", str(log), "--format", "json", "-o", str(out)]
    start = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--no-record"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=log.parent
    )
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            process.kill()
            os.wait4(process.pid, 0)
            return {"seconds": None, "mb": None, "findings": None, "report_kb": None}
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    findings = None
    if out.exists():
        # Counted in a process of its own: a 58 MB report loaded here made this process 400 MB, and
        # the runs forked after it started at that size (their peak read 415 MB whatever the case).
        count = "import orjson, sys; print(len(orjson.loads(open(sys.argv[1], 'rb').read())['findings']))"
        findings = int(subprocess.run([sys.executable, "-c", count, str(out)], capture_output=True, check=True).stdout)
    return {
        "seconds": round(seconds, 2),
        "mb": round(usage.ru_maxrss / 1024),
        "findings": findings,
        "report_kb": round(out.stat().st_size / 1024) if out.exists() else None,
        "exit": os.waitstatus_to_exitcode(status),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="another checkout to measure side by side")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run before it is stopped")
    args = parser.parse_args()
    trees = [("after", HERE)] + ([("before", args.before)] if args.before else [])
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print("case     size  MB in  tree    seconds  peak MB  findings  report KB")
    with tempfile.TemporaryDirectory() as scratch:
        for case in args.cases:
            for size in (1, 2):
                log = Path(scratch, f"{case}{size}.jsonl")
                _write(log, CASES[case](size))
                mb_in = log.stat().st_size / 1e6
                for name, tree in trees:
                    out = Path(scratch, f"{case}{size}.{name}.json")
                    r = run(tree, log, out, args.timeout)
                    seconds = f"{r['seconds']:.2f}" if r["seconds"] is not None else f">{args.timeout:.0f}"
                    print(
                        f"{case:8} {size}x   {mb_in:5.1f}  {name:6}  {seconds:>7}  {r['mb'] or '-':>7}  "
                        f"{r['findings'] if r['findings'] is not None else '-':>8}  {r['report_kb'] or '-':>9}",
                        flush=True,
                    )
                    out.unlink(missing_ok=True)
                log.unlink()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
