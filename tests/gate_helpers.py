"""Helpers for the gate, merge, hooks and notes tests: commits and verdict notes in temp repos."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agentflow.git import Repo
from agentflow.verdict import VerdictNote
from tests.helpers import git


def commit_file(
    root: Path, path: str, content: str, message: str | None = None, trailers: dict[str, str] | None = None
) -> str:
    """Write ``content`` to ``path``, commit it, return the commit id."""
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    git(root, "add", path)
    args = ["commit", "-q", "--no-verify", "-m", message or f"change {path}"]
    for key, value in (trailers or {}).items():
        args += ["--trailer", f"{key}: {value}"]
    git(root, *args)
    return git(root, "rev-parse", "HEAD")


def note_for(
    root: Path, ref: str = "HEAD", outcome: str = "approved", key: str | None = None, **extra: object
) -> VerdictNote:
    """A verdict note bound to ``ref``'s tree (signed with ``key`` when given)."""
    repo = Repo(root)
    commit = repo.rev(ref)
    base = extra.pop("base", None) or repo.change_base(commit, "main")
    if "base_tree" not in extra:  # what the orchestrator records (binding, #13 item 3)
        extra["base_tree"] = repo.base_tree(base)
    elif extra["base_tree"] is None:  # an older note: no base_tree field at all
        del extra["base_tree"]
    if "parent_tree" not in extra:
        extra["parent_tree"] = repo.base_tree(repo.change_base(commit, None))
    elif extra["parent_tree"] is None:
        del extra["parent_tree"]
    note = VerdictNote(
        plan=extra.pop("plan", "348"),
        run=extra.pop("run", "r-test"),
        outcome=outcome,  # type: ignore[arg-type]
        decision={"approved": "approve", "rejected": "reject"}.get(outcome, "request_changes"),
        tree=extra.pop("tree", None) or repo.tree(commit),
        base=base,
        patch_id=extra.pop("patch_id") if "patch_id" in extra else repo.patch_id(base, commit) if base else None,
        **extra,  # type: ignore[arg-type]
    )
    return note.signed(key) if key else note


def add_verdict(
    root: Path, ref: str = "HEAD", outcome: str = "approved", key: str | None = None, **extra: object
) -> VerdictNote:
    """Append a verdict note line on ``ref`` the way orchestration does."""
    note = note_for(root, ref, outcome, key, **extra)
    repo = Repo(root)
    repo.append_note(repo.rev(ref), note.to_line())
    return note


def plan_branch(
    root: Path,
    name: str = "agentflow/348-capsule-isolation",
    path: str = "src/app.py",
    content: str = "print('capsule')\n",
) -> str:
    """Create ``name`` from main with one builder commit; back on main afterwards. Returns the commit."""
    git(root, "checkout", "-q", "-b", name, "main")
    commit = commit_file(
        root,
        path,
        content,
        "builder: implement plan 348",
        {"Agentflow-Plan": "348", "Agentflow-Run": "r-test", "Agentflow-Cycle": "1"},
    )
    git(root, "checkout", "-q", "main")
    return commit


def snapshot(root: Path) -> dict[str, str]:
    """Everything a failed merge must leave untouched: refs, HEAD, index and working tree."""
    return {
        "refs": git(root, "for-each-ref", "--format=%(refname) %(objectname)"),
        "head": git(root, "symbolic-ref", "-q", "HEAD", check=False) + " " + git(root, "rev-parse", "HEAD"),
        "index": git(root, "ls-files", "--stage"),
        "status": git(root, "status", "--porcelain", "--untracked-files=all"),
        "diff": git(root, "diff"),
        "files": "\n".join(
            f"{p.relative_to(root)}:{p.read_bytes().hex()}"
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts
        ),
    }
