"""An absolute ``PATH`` entry inside the checkout agentflow runs in.

agentflow drops relative ``PATH`` entries (tests/test_attacks_path_entries.py), but an absolute
entry can name a folder of the checkout just as well: a workflow step that adds
``$GITHUB_WORKSPACE/bin`` (or ``$PWD/node_modules/.bin``) to ``$GITHUB_PATH`` for later steps,
direnv's ``PATH_add bin`` in a developer's checkout. With a pull request checked out, its
``bin/git`` ran as agentflow's own git, outside the sandbox: it could answer the gate's ``cat-file``
and ``log`` with any notes it liked (tested before the fix, through ``gate``, ``log`` and
``status``: the marker was written), and its ``bin/bwrap`` would have been the "sandbox".
agentflow now finds ``git`` and ``bwrap`` on the ``PATH`` entries outside the work tree it runs in
(``agentflow.git.trusted_path``; GitPython's git too), and git's own children (``ssh`` for a fetch)
get that ``PATH``; sandboxed commands keep theirs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import git

FAKE = '#!/bin/sh\necho "$0 $*" >> {marker}\nexit 1\n'
ROOT = Path(__file__).resolve().parents[1]


def test_a_git_in_a_checkout_folder_on_path_never_runs(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tools = repo / "bin"
    tools.mkdir()
    for name in ("git", "bwrap", "ssh"):
        (tools / name).write_text(FAKE.format(marker=marker))
        (tools / name).chmod(0o755)
    git(repo, "add", "bin")
    git(repo, "commit", "-q", "-m", "a pull request that ships bin/git")
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    env.pop("GIT_PYTHON_GIT_EXECUTABLE", None)

    for args in (["gate", "HEAD", "--base", "main"], ["log"], ["status"], ["show", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-m", "agentflow", *args], cwd=repo, env=env, capture_output=True, text=True, check=False
        )
        assert not marker.exists(), (args, marker.read_text(), proc.stderr)
    # run from a subfolder too: the work tree is found above the working directory
    proc = subprocess.run(
        [sys.executable, "-m", "agentflow", "status"], cwd=tools, env=env, capture_output=True, text=True, check=False
    )
    assert not marker.exists(), (marker.read_text(), proc.stderr)


def test_entries_outside_the_work_tree_are_kept(repo: Path, tmp_path: Path) -> None:
    from agentflow.git import trusted_path

    outside = tmp_path / "tools"
    value = f"{repo}/bin:{outside}:/usr/bin:{repo}/node_modules/.bin:.:{repo}x/bin"
    assert trusted_path(value, str(repo / "src")) == f"{outside}:/usr/bin:{repo}x/bin"
    assert trusted_path(f"{repo}/bin", str(repo)) == os.defpath


def test_the_claude_cli_is_not_one_of_the_checkout(repo: Path, monkeypatch) -> None:
    """Without the SDK's bundled CLI, ``claude`` came from ``PATH``: a pull request's
    ``node_modules/.bin/claude`` ran as Claude Code, with the model's key and the network."""
    import importlib.util

    from agentflow.models import claude_code

    tools = repo / "node_modules" / ".bin"
    tools.mkdir(parents=True)
    (tools / "claude").write_text("#!/bin/sh\nexit 0\n")
    (tools / "claude").chmod(0o755)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # no bundled CLI
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.chdir(repo)

    assert claude_code.bundled_cli() != str(tools / "claude")
