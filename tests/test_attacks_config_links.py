"""Attacks through config files of the pull request's checkout that are symbolic links.

In CI the checkout is the pull request's head. ``gate`` reads the checkout's ``agentflow.yaml`` (it
may only make the base's stricter), ``verify`` reads it to point annotations at a failing check's
line. A pull request can commit ``agentflow.yaml`` as a symbolic link: to a FIFO or a device (the
read never ends: the job hangs, or fills memory with /dev/zero), or to a file outside the
repository (agentflow, not sandboxed, reads it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentflow.checks import declared_at
from tests.gate_helpers import commit_file
from tests.helpers import git


def _agentflow(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTFLOW_")}
    try:
        return subprocess.run(
            [sys.executable, "-m", "agentflow", *args], cwd=repo, capture_output=True, text=True, env=env, timeout=120
        )
    except subprocess.TimeoutExpired:  # a guard against the hang itself, not a timing assertion
        pytest.fail(f"agentflow {' '.join(args)} waited on the FIFO agentflow.yaml links to")


@pytest.mark.parametrize("command", [["gate", "HEAD", "--base", "main"], ["status"]])
def test_a_config_linked_to_a_fifo_is_an_error_not_a_hang(repo: Path, tmp_path: Path, command: list[str]) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "agentflow.yaml").symlink_to(fifo)
    git(repo, "add", "agentflow.yaml")
    git(repo, "commit", "-q", "-m", "config")

    result = _agentflow(repo, *command)

    assert result.returncode == 2, result.stderr
    assert "agentflow.yaml" in result.stderr and "not a regular file in the repository" in result.stderr


def test_a_config_linked_out_of_the_repository_is_not_read(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("gate:\n  require_signature: true\n")
    (repo / "agentflow.yaml").symlink_to(outside)

    result = _agentflow(repo, "status")

    assert result.returncode == 2, result.stderr
    assert "not a regular file in the repository" in result.stderr


def test_a_config_linked_inside_the_repository_still_works(repo: Path) -> None:
    commit_file(repo, "config/agentflow.yaml", "base: main\n")
    (repo / "agentflow.yaml").symlink_to("config/agentflow.yaml")

    result = _agentflow(repo, "status")

    assert result.returncode == 0, result.stderr


def test_declared_at_skips_files_that_are_not_regular_files_of_the_checkout(repo: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outside = tmp_path / "outside.yaml"
    outside.write_text("checks: [make test]\n")
    (repo / "agentflow.yaml").symlink_to(fifo)
    (repo / "pyproject.toml").symlink_to(outside)
    (repo / "plan.md").write_text("checks: [make test]\n")

    assert declared_at("make test", repo, ["agentflow.yaml", "pyproject.toml", "plan.md"]) == ("plan.md", 1)
