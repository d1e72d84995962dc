#!/usr/bin/env python3
"""Start-up benchmark: ``agentflow --version`` against bare ``python -c pass``.

Usage:  python benchmarks/startup.py [--runs 30] [--max-ratio 12] [--json]

Runs each command ``--runs`` times after a warm-up (so both read a warm file cache), reports the
median, minimum and the ratio of medians, and exits 1 when the ratio exceeds ``--max-ratio``. It
also checks that ``agentflow --version`` does not import the anthropic SDK. To see what is slow:
``python -X importtime -m agentflow --version 2> imports.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def agentflow_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m agentflow``."""
    script = Path(sys.executable).with_name("agentflow")
    if script.exists():
        return [str(script)]
    found = shutil.which("agentflow")
    return [found] if found else [sys.executable, "-m", "agentflow"]


def timings(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, check=True, capture_output=True)  # warm-up
    result = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        result.append(time.perf_counter() - start)
    return result


def imports_anthropic() -> bool:
    code = "import sys, runpy; sys.argv = ['agentflow', '--version']\ntry:\n    runpy.run_module('agentflow', run_name='__main__')\nexcept SystemExit:\n    pass\nprint('anthropic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--max-ratio", type=float, default=12.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    bare = timings([sys.executable, "-c", "pass"], args.runs)
    version = timings([*agentflow_command(), "--version"], args.runs)
    report = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "runs": args.runs,
        "python_c_pass_ms": {"median": statistics.median(bare) * 1000, "min": min(bare) * 1000},
        "agentflow_version_ms": {"median": statistics.median(version) * 1000, "min": min(version) * 1000},
        "ratio_median": statistics.median(version) / statistics.median(bare),
        "max_ratio": args.max_ratio,
        "imports_anthropic": imports_anthropic(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"Python {report['python']} on {report['platform']}, {report['runs']} runs each (after a warm-up)\n")
        print("| command | median | min |")
        print("|---|---:|---:|")
        for name, key in (("python -c pass", "python_c_pass_ms"), ("agentflow --version", "agentflow_version_ms")):
            print(f"| `{name}` | {report[key]['median']:.1f} ms | {report[key]['min']:.1f} ms |")
        print(f"\nratio (median): {report['ratio_median']:.1f}x (target: within {args.max_ratio:g}x)")
        print(f"imports anthropic: {'yes' if report['imports_anthropic'] else 'no'}")
    ok = report["ratio_median"] <= args.max_ratio and not report["imports_anthropic"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
