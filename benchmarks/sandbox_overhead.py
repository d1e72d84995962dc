"""What the sandbox adds per run_command and per check: median over a plain subprocess.

    python benchmarks/sandbox_overhead.py [--repeats 30]

Runs the same trivial command (``true``) in a fresh git worktree layout three ways: a plain
``bash -c`` subprocess, ``tools.run_shell`` with ``mode: off`` (agentflow's own bookkeeping) and
``run_shell`` inside bwrap (what every run_command and check pays). Target: under 20 ms added.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from agentflow.checks import run_check
from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "repo"
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        bwrap, off = Sandbox.from_config(), Sandbox.off()
        plain = _median_ms(lambda: subprocess.run(["bash", "-c", "true"], cwd=root, check=True), args.repeats)
        rows = {
            "plain subprocess": plain,
            "run_command, mode off": _median_ms(lambda: run_shell("true", root, 30, sandbox=off), args.repeats),
            "run_command, bwrap": _median_ms(lambda: run_shell("true", root, 30, sandbox=bwrap), args.repeats),
            "check, bwrap": _median_ms(lambda: run_check("true", root, 30, sandbox=bwrap), args.repeats),
        }
    print(f"{'':24} {'median ms':>10} {'added ms':>9} {'ratio':>6}")
    for name, ms in rows.items():
        print(f"{name:24} {ms:10.2f} {ms - plain:9.2f} {ms / plain:6.2f}")


if __name__ == "__main__":
    main()
