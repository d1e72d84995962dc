"""The eval dataset: JSON Lines, one labelled change per line.

``{"id", "repo", "base", "head" | "patch", "plan", "label", "gold", "tags"}``; see docs/eval.md.
A bad line is a ``UsageError`` naming ``file:line``, the problem and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow.errors import UsageError

LABELS = ("approve", "reject")
KEYS = ("id", "repo", "base", "head", "patch", "plan", "label", "gold", "tags")
FIX = "see docs/eval.md, 'Dataset format'"


@dataclass(frozen=True)
class Gold:
    """A known problem of a ``reject`` case: a finding on ``file`` overlapping ``lines`` recalls it."""

    file: str
    lines: tuple[int, int]
    summary: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    label: str
    base: str = "HEAD"
    repo: Path | None = None  # None: the built-in demo project
    head: str | None = None
    patch: str | None = None
    plan: str | None = None  # Markdown text of the plan (a path in the file is read when loading)
    gold: tuple[Gold, ...] = ()
    tags: tuple[str, ...] = ()
    where: str = ""
    files: dict[str, str] = field(default_factory=dict)  # built-in cases: files written before ``patch``


def _bad(where: str, problem: str, fix: str = FIX) -> UsageError:
    return UsageError(problem, where=where, fix=fix)


def parse_case(data: Any, where: str, base_dir: Path) -> Case:
    """One case from its decoded JSON object; paths are relative to the dataset's directory."""
    if not isinstance(data, dict):
        raise _bad(where, "a case must be a JSON object", 'write one object per line: {"id": ..., "label": ...}')
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise _bad(where, f"{unknown[0]}: unknown key", f"use only {', '.join(KEYS)}")
    for key in ("id", "repo", "base", "label"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise _bad(where, f"{key}: missing or not a string", f'add "{key}": "..." ({FIX})')
    if data["label"] not in LABELS:
        raise _bad(where, f"label: {data['label']!r} is not approve or reject", 'use "label": "approve" or "reject"')
    head, patch = data.get("head"), data.get("patch")
    if (head is None) == (patch is None):
        raise _bad(where, "give exactly one of head and patch", 'add "head": "<rev>" or "patch": "<unified diff>"')
    for key, value in (("head", head), ("patch", patch), ("plan", data.get("plan"))):
        if value is not None and not isinstance(value, str):
            raise _bad(where, f"{key}: must be a string", FIX)
    repo = Path(data["repo"]).expanduser()
    repo = repo if repo.is_absolute() else base_dir / repo
    if not repo.exists():
        raise _bad(where, f"repo: {data['repo']} does not exist", "name a git bundle or a repository directory")
    plan = data.get("plan")
    if plan is not None and "\n" not in plan and plan.endswith(".md"):
        path = Path(plan) if Path(plan).is_absolute() else base_dir / plan
        try:
            plan = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _bad(where, f"plan: cannot read {path}: {getattr(exc, 'strerror', None) or exc}", FIX) from None
    gold = []
    raw_gold = data.get("gold", [])
    if not isinstance(raw_gold, list):
        raise _bad(where, "gold: must be a list", '"gold": [{"file": "app/x.py", "lines": [3, 9], "summary": "..."}]')
    for index, item in enumerate(raw_gold, start=1):
        lines = item.get("lines") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("file"), str)
            or not isinstance(lines, list)
            or len(lines) != 2
            or not all(isinstance(n, int) and n > 0 for n in lines)
            or lines[0] > lines[1]
        ):
            raise _bad(where, f"gold[{index}]: needs file and lines [first, last]", '{"file": "a.py", "lines": [3, 9]}')
        gold.append(Gold(item["file"], (lines[0], lines[1]), str(item.get("summary", ""))))
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _bad(where, "tags: must be a list of strings", '"tags": ["isolation"]')
    return Case(
        id=data["id"],
        label=data["label"],
        base=data["base"],
        repo=repo,
        head=head,
        patch=patch,
        plan=plan,
        gold=tuple(gold),
        tags=tuple(tags),
        where=where,
    )


def load_dataset(path: Path) -> list[Case]:
    """Every case of the JSON Lines file at ``path`` (blank lines and ``#`` comments skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(str(path), f"cannot read the dataset: {getattr(exc, 'strerror', None) or exc}", FIX) from None
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad(
                where, f"not valid JSON: {exc.msg} at column {exc.colno}", "write one JSON object per line"
            ) from None
        case = parse_case(data, where, path.parent)
        if case.id in seen:
            raise _bad(where, f"id {case.id!r} is already used at {seen[case.id]}", "give every case its own id")
        seen[case.id] = where
        cases.append(case)
    if not cases:
        raise _bad(str(path), "the dataset has no cases", "add one JSON object per line")
    return cases
