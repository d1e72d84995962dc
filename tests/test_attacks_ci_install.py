"""``agentflow init --ci ... --install SPEC`` with a wheel or sdist at a relative path.

The generated jobs install agentflow with ``python3 -I -m pip install "$AGENTFLOW_SPEC"`` in the
pull request's checkout (GitHub's and GitLab's job both check the change out first), so a relative
path (``./dist/agentflow-0.1.0-py3-none-any.whl``, ``file:vendor/agentflow.tar.gz``) names a file of
the change: a pull request that replaced the vendored wheel (a binary file, no protected path, which
no verifier reads) had CI install its own agentflow, whose ``verify`` held ``ANTHROPIC_API_KEY`` and
``AGENTFLOW_SIGNING_KEY`` and whose ``gate`` exits 0 (tested before the fix: init wrote such a
workflow, and pip installs the checkout's file). init now refuses a file spec that is not an
absolute path (exit 2, one line): a file outside the checkout, a VCS URL with a commit, or
``NAME==VERSION`` pin agentflow where a change cannot reach."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

RELATIVE = (
    "./dist/agentflow-0.1.0-py3-none-any.whl",
    "dist/agentflow-0.1.0-py3-none-any.whl",
    "vendor/agentflow-0.1.0.tar.gz",
    "file:vendor/agentflow-0.1.0.tar.gz",
    "agentflow @ file:dist/agentflow-0.1.0-py3-none-any.whl",
    "agentflow @ ./dist/agentflow-0.1.0-py3-none-any.whl",
    "../agentflow-0.1.0.zip",
)


@pytest.mark.parametrize("provider", ["github", "gitlab"])
@pytest.mark.parametrize("spec", RELATIVE)
def test_init_refuses_a_wheel_in_the_checkout(repo: Path, cli, provider: str, spec: str) -> None:
    result = cli("init", "--ci", provider, "--install", spec)

    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and f"--install {spec}" in result.stderr, result.stderr
    assert "absolute" in result.stderr
    assert not (repo / ".github").exists() and not (repo / ".gitlab-ci.yml").exists()


@pytest.mark.parametrize(
    "spec",
    [
        "/opt/wheels/agentflow-0.1.0-py3-none-any.whl",
        "file:///opt/wheels/agentflow-0.1.0.tar.gz",
        "agentflow @ file:///opt/wheels/agentflow-0.1.0-py3-none-any.whl",
        "https://wheels.example.com/agentflow-0.1.0-py3-none-any.whl",
    ],
)
def test_init_accepts_a_wheel_outside_the_checkout(repo: Path, cli, spec: str) -> None:
    assert cli("init", "--ci", "gitlab", "--install", spec).exit_code == 0
    assert yaml.safe_load((repo / ".gitlab-ci.yml").read_text())["agentflow"]["variables"]["AGENTFLOW_SPEC"] == spec


def test_the_jobs_install_step_reads_a_relative_path_from_the_checkout(tmp_path: Path) -> None:
    """Why a relative spec is the change's: pip resolves it in the job's working directory, which is
    the pull request's checkout (a made-up wheel name: pip fails on the file it found there)."""
    checkout = tmp_path / "checkout"
    (checkout / "dist").mkdir(parents=True)
    (checkout / "dist" / "agentflow-0.1.0-py3-none-any.whl").write_bytes(b"the pull request's wheel")

    proc = subprocess.run(
        [sys.executable, "-I", "-m", "pip", "install", "--no-index", "--dry-run", "./dist/agentflow-0.1.0-py3-none-any.whl"],
        cwd=checkout, capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert str(checkout / "dist" / "agentflow-0.1.0-py3-none-any.whl") in proc.stdout + proc.stderr, proc.stderr
