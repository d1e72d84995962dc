"""The demo's sample project: Capsulary, a small multi-tenant service with an isolation leak.

``create_project`` lays it out as a git repository. Its ``app.simulate`` writes the application
event log the evaluator reads, in which ``RoleAssignmentCreated`` and ``SecurityGroupUpdated`` lack
the ``capsule_id`` that ``AccountCreated`` and the other user-scoped events carry, while
platform-level ``TenantCreated`` events legitimately lack it, because that is what the entities in
``app/entities.py`` emit until the leak is fixed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent / "project"


def _git(root: Path, *args: str) -> None:
    from agentflow.git import git_env  # agentflow's git environment: no API key, signing key or token

    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True, env=git_env())


def write_event_log(path: Path) -> None:
    """Write the event log the unfixed sample project emits (its own ``app.simulate``) to ``path``."""
    from agentflow.redact import scrubbed_env

    subprocess.run(
        [sys.executable, "-B", "-m", "app.simulate", str(path.resolve())],
        cwd=PROJECT,
        check=True,
        capture_output=True,
        text=True,
        env=scrubbed_env(),
    )


def create_project(root: Path, config: str) -> None:
    """Copy the sample project to ``root``, add its config, and commit it on ``main``."""
    shutil.copytree(PROJECT, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "agentflow.yaml").write_text(config, encoding="utf-8")
    (root / ".gitignore").write_text(".agentflow/\n__pycache__/\nlogs/\n", encoding="utf-8")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "demo@capsulary.example")
    _git(root, "config", "user.name", "Capsulary Dev")
    _git(root, "config", "commit.gpgsign", "false")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Capsulary: accounts, roles and security groups")
