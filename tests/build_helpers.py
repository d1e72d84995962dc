"""Helpers for build/verify end-to-end tests: plans, scripts and git inspection in temp repos."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from agentflow.events import SessionEnded
from agentflow.ledger import Ledger
from tests.helpers import git

PLAN = """---
id: {id}
title: {title}
status: ready
scope: {scope}
checks: {checks}
{extra}---
## Context

The greeting module needs a farewell.

## Requirements

1. Add `farewell()` to src/app.py.

## Acceptance criteria

- AC1: `farewell()` returns "bye"
- AC2: the tests pass
"""


def write_plan(
    root: Path,
    plan_id: str = "1",
    title: str = "Add farewell",
    slug: str = "farewell",
    scope: list[str] | None = None,
    checks: list[str] | None = None,
    extra: str = "",
    commit: bool = True,
) -> Path:
    """A ready plan under .plans/ (committed so worktrees see it)."""
    path = root / ".plans" / f"{plan_id}-{slug}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        PLAN.format(
            id=plan_id, title=title, scope=json.dumps(scope or ["src/**"]), checks=json.dumps(checks or []), extra=extra
        )
    )
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"plan {plan_id}")
    return path


def write_script(root: Path, script: dict[str, Any], name: str = "script.yaml") -> Path:
    """A scripted-backend script outside the repository's tracked files."""
    path = root.parent / name
    path.write_text(yaml.safe_dump(script, sort_keys=False))
    return path


def write_file(path: str, content: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "write_file", "input": {"path": path, "content": content}}]}


def finish(summary: str = "done") -> dict[str, Any]:
    return {"tool_calls": [{"name": "finish", "input": {"summary": summary}}]}


def builder_session(
    path: str = "src/app.py", content: str = "def farewell():\n    return 'bye'\n", summary: str = "added farewell"
) -> list[dict[str, Any]]:
    return [write_file(path, content), finish(summary)]


def verdict(
    decision: str = "approve",
    criteria: dict[str, str] | None = None,
    findings: list[dict[str, Any]] | None = None,
    summary: str = "looks right",
) -> dict[str, Any]:
    criteria = {"AC1": "met", "AC2": "met"} if criteria is None else criteria
    return {
        "decision": decision,
        "summary": summary,
        "criteria": [{"id": cid, "status": status, "evidence": "src/app.py:1"} for cid, status in criteria.items()],
        "findings": findings or [],
    }


def verifier_session(**kwargs: Any) -> list[dict[str, Any]]:
    return [
        {"text": "reading", "tool_calls": [{"name": "read_file", "input": {"path": "src/app.py"}}]},
        {"tool_calls": [{"name": "submit_verdict", "input": verdict(**kwargs)}]},
    ]


def commit_and_verify(root: Path, cli: Any, session: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Commit the work tree as the change (plan 1) and verify it against ``main`` with a scripted
    verifier (``session``, else one that reads ``src/app.py`` and approves): the JSON report."""
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "change", "--trailer", "Agentflow-Plan: 1")
    script = write_script(root, {"verifier": [session or verifier_session()]})
    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json")
    assert result.stdout.startswith("{"), result.output
    return json.loads(result.stdout)


def finding(fid: str = "F1", severity: str = "high", message: str = "farewell lacks a test") -> dict[str, Any]:
    return {
        "id": fid,
        "severity": severity,
        "file": "src/app.py",
        "line": 1,
        "pattern": "tested-code",
        "message": message,
        "suggestion": "add a test",
    }


def notes(root: Path, commit: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["git", "notes", "--ref=refs/notes/agentflow", "show", commit], cwd=root, capture_output=True, text=True
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def trailers(root: Path, commit: str) -> dict[str, str]:
    out = git(root, "show", "-s", "--format=%(trailers:only,unfold)", commit)
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def run_events(root: Path, kind: type | None = None) -> list:
    with Ledger.open(root) as ledger:
        events = ledger.events()
    return [e for e in events if kind is None or isinstance(e, kind)]


def sessions(root: Path) -> list[tuple[str, int, str]]:
    return [(e.role, e.cycle, e.status) for e in run_events(root, SessionEnded)]


def first_prompt(root: Path, role: str, cycle: int) -> str:
    """The first user message of the (last) session of ``role`` in ``cycle``, from its transcript."""
    with Ledger.open(root) as ledger:
        ended = [e for e in ledger.events(kinds=["session_ended"]) if e.role == role and e.cycle == cycle]
        transcript = ledger.transcript(ended[-1].session_id)
    assert transcript is not None
    user = next(m for m in transcript if m["role"] == "user")
    return user["content"][0]["text"]


def feature(root: Path, plan_id: str | None = "1", content: str = "def farewell():\n    return 'bye'\n") -> str:
    """Check out a feature branch with one commit (an Agentflow-Plan trailer when ``plan_id``)."""
    git(root, "checkout", "-q", "-b", "feature")
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / "app.py").write_text(content)
    git(root, "add", "-A")
    args = ["commit", "-q", "-m", "add farewell"]
    if plan_id:
        args += ["--trailer", f"Agentflow-Plan: {plan_id}"]
    git(root, *args)
    return git(root, "rev-parse", "HEAD")
