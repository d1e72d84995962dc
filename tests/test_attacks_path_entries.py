"""A relative entry in ``PATH`` (an empty one is the working directory: ``PATH=:$PATH``, or
``PATH=$TOOLS:$PATH`` with ``TOOLS`` unset) makes every program started by a bare name be looked up
in the working directory of the process started first. agentflow starts ``git`` in a session's
worktree (a builder writes its files) and in a pull request's checkout (CI's working directory),
and GitPython runs ``git version`` when it is imported: an executable ``git`` that the change put at
the top of its tree ran outside the sandbox, with agentflow's environment (tested before the fix,
through ``agentflow gate``: the marker was written). agentflow now drops relative entries from
``PATH`` when it starts (``agentflow.git``), and finds ``bwrap`` on the absolute ones only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import git

FAKE_GIT = "#!/bin/sh\necho ran > {marker}\nexit 1\n"


def _plant(root: Path, marker: Path) -> None:
    fake = root / "git"
    fake.write_text(FAKE_GIT.format(marker=marker))
    fake.chmod(0o755)


def test_a_git_at_the_top_of_the_checkout_never_runs(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    _plant(repo, marker)
    git(repo, "add", "git")
    git(repo, "commit", "-q", "-m", "a pull request that ships ./git")
    env = {**os.environ, "PATH": ":" + os.environ["PATH"], "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    for args in (["gate", "HEAD", "--base", "main"], ["log"], ["status"]):
        proc = subprocess.run(
            [sys.executable, "-m", "agentflow", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
        )
        assert not marker.exists(), (args, proc.stdout, proc.stderr)


def test_path_keeps_its_absolute_entries(tmp_path: Path) -> None:
    from agentflow.git import absolute_path

    assert absolute_path(f":/usr/bin:.:bin:{tmp_path}:") == f"/usr/bin:{tmp_path}"
    assert absolute_path("::.") == os.defpath
