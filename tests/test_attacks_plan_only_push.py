"""A "plan-only" push holds only regular plan files.

The pre-push hook lets a commit through that changes nothing but ``.plans/*.md`` (plans are written
on main). It read the commit's paths only (``--name-only``), so a symbolic link
``.plans/x.md -> ../src/app.py`` or a gitlink (a submodule) named ``.plans/x.md`` passed as a plan:
code and a submodule commit nobody verified pushed to a protected branch without a gate (tested
before the fix). Now every entry's mode is read (``--raw -z``): only regular files count as plans.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agentflow.git import Repo
from agentflow.hooks import plan_only
from tests.gate_helpers import git

OTHER = "1" * 40  # the commit a gitlink names: nothing a clone could check


def commit(root: Path, message: str) -> str:
    git(root, "commit", "-q", "--no-verify", "-m", message)
    return git(root, "rev-parse", "HEAD")


def test_a_regular_plan_file_is_plan_only(repo: Path) -> None:
    (repo / ".plans").mkdir()
    (repo / ".plans" / "1-x.md").write_text("---\nid: 1\ntitle: X\n---\n")
    git(repo, "add", ".plans")

    assert plan_only(Repo(repo), commit(repo, "plan"))


def test_a_symbolic_link_under_plans_is_not_plan_only(repo: Path) -> None:
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("print('code')\n")
    git(repo, "add", "src")
    commit(repo, "code")
    (repo / ".plans").mkdir()
    os.symlink("../src/app.py", repo / ".plans" / "1-x.md")
    git(repo, "add", ".plans")

    assert not plan_only(Repo(repo), commit(repo, "a 'plan' that is a link to code"))


def test_a_gitlink_under_plans_is_not_plan_only(repo: Path) -> None:
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{OTHER},.plans/1-x.md")

    assert not plan_only(Repo(repo), commit(repo, "a 'plan' that is a submodule"))


def test_a_plan_turned_into_a_link_is_not_plan_only(repo: Path) -> None:
    (repo / ".plans").mkdir()
    (repo / ".plans" / "1-x.md").write_text("---\nid: 1\ntitle: X\n---\n")
    git(repo, "add", ".plans")
    commit(repo, "plan")
    (repo / ".plans" / "1-x.md").unlink()
    os.symlink("/etc/passwd", repo / ".plans" / "1-x.md")
    git(repo, "add", ".plans")

    assert not plan_only(Repo(repo), commit(repo, "the plan becomes a link"))


@pytest.mark.parametrize("shape", ["symlink", "gitlink"])
def test_the_pre_push_hook_refuses_a_link_under_plans(repo: Path, cli, tmp_path: Path, shape: str) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    cli("hooks", "install")
    if shape == "symlink":
        (repo / ".plans").mkdir()
        os.symlink("../README.md", repo / ".plans" / "1-x.md")
        git(repo, "add", ".plans")
    else:
        git(repo, "update-index", "--add", "--cacheinfo", f"160000,{OTHER},.plans/1-x.md")
    commit(repo, "plan?")

    proc = subprocess.run(["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False)

    assert proc.returncode != 0 and "refusing" in proc.stderr, proc.stderr
