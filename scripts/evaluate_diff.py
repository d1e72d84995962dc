"""Diff ``agentflow evaluate --format json`` between two agentflow trees on the real-world corpora.

Usage: python3 scripts/evaluate_diff.py [--before /work/main] [--after .] [--engine duckdb] [LOG ...]

Without LOGs it runs every corpus in ``../shared/realworld-events/*/events.jsonl``, once with the
default config and once with the scope configured as ``tests/test_evaluator_realworld.py`` does.
Each tree's own code is used (``PYTHONPATH=TREE``); the run happens in a scratch folder holding
only ``agentflow.yaml``, so nothing is recorded. Prints the findings and type fields that differ,
then whether the JSON and text reports (and their stderr) are byte for byte the same (examples,
sample lines and ordering are in them, not in the findings), and exits 1 when anything differs
(0 when the outputs agree to the byte). ``--engine duckdb`` compares the reports of that engine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CORPORA = HERE.parent / "shared" / "realworld-events"
SCOPES = {  # as CONFIGURED_SCOPE in tests/test_evaluator_realworld.py
    "gharchive-pinot": ["repo.id"],
    "github-webhooks-octokit": ["repository"],
    "aws-eventbridge-samples": ["account"],
    "a2b-cloudevents": ["agency_identification"],
}


ENGINE = "builtin"  # --engine


def run(tree: Path, log: Path, scope: list[str] | None, fmt: str = "json") -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as scratch:
        if scope is not None:
            Path(scratch, "agentflow.yaml").write_text("events:\n  isolation_fields: [" + ", ".join(scope) + "]\n")
        env = {**os.environ, "PYTHONPATH": str(tree)}
        command = [sys.executable, "-m", "agentflow", "evaluate", str(log), "--format", fmt, "--no-record"]
        command += ["--engine", ENGINE] if ENGINE != "builtin" else []
        done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{tree}: exit {done.returncode} on {log}: {done.stderr.decode(errors='replace').strip()}")
    return done


def parsed(done: subprocess.CompletedProcess) -> dict:
    data = json.loads(done.stdout)
    data["exit_code"] = done.returncode
    return data


def byte_diff(name: str, tree_a: Path, tree_b: Path, log: Path, scope: list[str] | None, json_runs) -> list[str]:
    """The reports that are not byte for byte the same (JSON from ``json_runs``, then text)."""
    out = []
    for fmt in ("json", "text"):
        a, b = json_runs if fmt == "json" else (run(tree_a, log, scope, fmt), run(tree_b, log, scope, fmt))
        for part in ("stdout", "stderr"):
            if getattr(a, part) != getattr(b, part):
                out.append(
                    f"  {fmt} report {part}: not byte for byte the same ({len(getattr(a, part))} -> {len(getattr(b, part))} bytes)"
                )
        if a.returncode != b.returncode:
            out.append(f"  {fmt} report exit code: {a.returncode} -> {b.returncode}")
    return [f"{name}:"] + out if out else []


def findings(data: dict) -> dict[str, tuple]:
    return {f["id"]: (f["severity"], f["rule"], f["event_type"], f["field"], f["message"]) for f in data["findings"]}


def fields(data: dict) -> dict[str, dict[str, int]]:
    return {t["type"]: {p: f["count"] for p, f in t["fields"].items()} for t in data["types"]}


def diff(name: str, before: dict, after: dict) -> list[str]:
    out = []
    for key in ("events", "bad_lines", "unanalysed_events", "exit_code", "inferred_scope", "warnings"):
        if before.get(key) != after.get(key):
            out.append(f"  {key}: {before.get(key)} -> {after.get(key)}")
    old, new = findings(before), findings(after)
    for fid in sorted(old.keys() - new.keys(), key=lambda i: old[i]):
        out.append(f"  - {fid} {' '.join(map(str, old[fid][:4]))}: {old[fid][4]}")
    for fid in sorted(new.keys() - old.keys(), key=lambda i: new[i]):
        out.append(f"  + {fid} {' '.join(map(str, new[fid][:4]))}: {new[fid][4]}")
    for fid in sorted(old.keys() & new.keys()):
        if old[fid] != new[fid]:
            out.append(f"  ~ {fid} {old[fid]} -> {new[fid]}")
    old_fields, new_fields = fields(before), fields(after)
    for name_ in sorted(old_fields.keys() | new_fields.keys()):
        a, b = old_fields.get(name_, {}), new_fields.get(name_, {})
        if a != b:
            gone, added = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
            changed = sorted(p for p in a.keys() & b.keys() if a[p] != b[p])
            out.append(f"  type {name_}: fields -{len(gone)} {gone[:5]} +{len(added)} {added[:5]} ~{changed[:5]}")
    return [f"{name}:"] + out if out else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, default=Path("/work/main"))
    parser.add_argument("--after", type=Path, default=HERE)
    parser.add_argument("--engine", choices=["builtin", "duckdb"], default="builtin")
    parser.add_argument("logs", nargs="*", type=Path)
    args = parser.parse_args()
    global ENGINE
    ENGINE = args.engine
    runs: list[tuple[str, Path, list[str] | None]] = []
    if args.logs:
        runs = [(str(log), log.resolve(), None) for log in args.logs]  # the runs happen in a scratch folder
    else:
        for log in sorted(CORPORA.glob("*/events.jsonl")):
            runs.append((f"{log.parent.name} (default config)", log, None))
            runs.append((f"{log.parent.name} (scope {SCOPES.get(log.parent.name)})", log, SCOPES.get(log.parent.name)))
    changed = False
    for name, log, scope in runs:
        if scope is None and "scope" in name:
            continue
        runs_json = (run(args.before, log, scope), run(args.after, log, scope))
        lines = diff(name, parsed(runs_json[0]), parsed(runs_json[1]))
        lines = lines or byte_diff(name, args.before, args.after, log, scope, runs_json)
        print(
            "\n".join(lines)
            if lines
            else f"{name}: identical (findings, counts, and the JSON and text reports to the byte)"
        )
        changed |= bool(lines)
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
