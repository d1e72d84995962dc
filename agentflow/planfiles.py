"""Where plan files are, and the plans ``agentflow status`` lists, without the plans' pydantic models
when none of the files changed since they were last checked.

``agentflow.plans`` validates plan files with pydantic; importing it is most of the start-up of
``status`` (#19 item 1). ``status_plans`` gives what ``check_plans(find_plans(root), root)`` gives
(the valid plans and the problems) and keeps, in ``.agentflow/cache/status-plans.json``, the id,
title and status of each plan file that was valid, by the sha256 of its bytes and a key of the code
that judged it (agentflow's version and the size and time of the modules and libraries that parse
plans). When every plan file is there with the same hash and the same code key, and the ids are
unique, those are the plans; otherwise every file is checked by ``agentflow.plans`` as before (and
the cache rewritten). Invalid files are never kept, so their problems are always reported afresh.
The cache is derived data: deleting it costs one slower ``status``; agents never see it (the sandbox
puts a fresh tmpfs over ``.agentflow``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentflow.errors import PlanError
    from agentflow.plans import Plan

PLANS_DIR = ".plans"
CACHE = Path(".agentflow") / "cache" / "status-plans.json"
# what decides whether a plan file is valid and what its id, title and status are
_JUDGES = ("plans", "planfiles", "config", "configfile", "markdown", "yamlsrc", "files", "errors", "models/__init__")
_LIBRARIES = ("pydantic", "pydantic_core", "yaml")


def find_plans(root: Path) -> list[Path]:
    """The plan files under ``root/.plans`` (``README.md`` excluded), numeric ids first in order."""
    folder = root / PLANS_DIR
    if not folder.is_dir():
        return []
    paths = [p for p in folder.glob("*.md") if p.is_file() and p.name.lower() != "readme.md"]
    return sorted(paths, key=_sort_key)


def linked_part(path: Path, root: Path | None = None) -> Path | None:
    """The first symbolic link among ``path`` and its folders below ``root`` (only ``path`` and its
    folder when ``root`` is not given or ``path`` is not below it), or None. Read lexically (nothing
    resolved): a checkout may be a pull request's, whose ``.plans/x.md`` or ``.plans`` is a link to
    another plan of the base (trusted, so its scope counted for the change) or out of the repository
    (tests/test_attacks_plan_links.py)."""
    path = Path(os.path.normpath(path.absolute()))
    stop = None
    for top in (root.absolute(), root.resolve()) if root is not None else ():
        if path.is_relative_to(top) and path != top:
            stop = top
            break
    parts = [path]
    for parent in path.parents:
        if parent == stop or (stop is None and len(parts) == 2):
            break
        parts.append(parent)
    return next((part for part in parts if part.is_symlink()), None)


def lexical_display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, links not followed."""
    path = Path(os.path.normpath(path.absolute()))
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) and path != cwd else str(path)


def _sort_key(path: Path) -> tuple[int, int, str]:
    match = re.match(r"^(\d+)", path.name)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class ListedPlan:
    """What ``status`` shows of a valid plan (the attributes of ``agentflow.plans.Plan`` it reads)."""

    id: str
    title: str
    status: str
    path: Path


def code_key() -> str:
    """Changes when agentflow or a library that parses plans is upgraded or edited."""
    from agentflow import __version__

    here = Path(__file__).parent
    files = [here / f"{name}.py" for name in _JUDGES]
    for name in _LIBRARIES:
        spec = find_spec(name)
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    parts = [__version__]
    for path in files:
        try:
            stat = path.stat()
            parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            parts.append(f"{path}:missing")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _digests(paths: list[Path]) -> dict[str, str] | None:
    try:
        return {str(path): hashlib.sha256(path.read_bytes()).hexdigest() for path in paths}
    except OSError:
        return None  # unreadable: agentflow.plans words it


def _cached(root: Path, key: str, digests: dict[str, str]) -> list[ListedPlan] | None:
    try:
        data = json.loads((root / CACHE).read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        kept = data["plans"]
        plans = []
        for path, digest in digests.items():
            entry = kept.get(path)
            if entry is None or entry["sha256"] != digest:
                return None
            plans.append(ListedPlan(id=entry["id"], title=entry["title"], status=entry["status"], path=Path(path)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # absent, damaged or from another agentflow: check the files
    if len({plan.id for plan in plans}) != len(plans) or not all(isinstance(p.id, str) for p in plans):
        return None
    return plans


def _keep(root: Path, key: str, digests: dict[str, str], plans: list[Plan]) -> None:
    """Rewrite the cache (only where agentflow already keeps state; never an error)."""
    if not (root / CACHE.parent.parent).is_dir():
        return
    entries: dict[str, Any] = {}
    for plan in plans:
        digest = digests.get(str(plan.path))
        if digest is not None:
            entries[str(plan.path)] = {"sha256": digest, "id": plan.id, "title": plan.title, "status": plan.status}
    target = root / CACHE
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        target.parent.mkdir(exist_ok=True)
        partial.write_text(json.dumps({"key": key, "plans": entries}), encoding="utf-8")
        os.replace(partial, target)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def status_plans(root: Path) -> tuple[list[ListedPlan] | list[Plan], list[PlanError]]:
    """``check_plans(find_plans(root), root)``, from the cache when no plan file changed."""
    paths = find_plans(root)
    if not paths:
        return [], []
    key, digests = code_key(), _digests(paths)
    if digests is not None:
        cached = _cached(root, key, digests)
        if cached is not None:
            return cached, []
    from agentflow.plans import check_plans

    plans, errors = check_plans(paths, root)
    if digests is not None:
        _keep(root, key, digests, plans)
    return plans, errors
