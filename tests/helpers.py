"""Helpers shared by the test modules: import them from here, never from another test module."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def need_tool(*names: str) -> str:
    """The path of the first of NAMES on PATH. Missing: the test skips on a developer's machine but
    fails under CI=true, where .ci/run installs every system tool the suite needs."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"{' / '.join(names)} is not installed (.ci/run installs it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
