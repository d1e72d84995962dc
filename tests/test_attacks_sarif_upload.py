"""The generated GitHub workflow uploads only a SARIF report agentflow wrote.

CI runs ``agentflow verify --sarif agentflow.sarif`` in the pull request's checkout. A change that
commits ``agentflow.sarif`` as a link to a file of the runner makes agentflow refuse to write the
report (exit 2, ``tests/test_attacks_report_links.py``), but the upload step ran ``if: always()``
whenever ``hashFiles('agentflow.sarif')`` was non-empty, and ``upload-sarif`` read the link's
target (tested before the fix: the step's condition held with the link in place). The workflow now
removes the report path before ``Verify`` (as the GitLab job removes its report paths), and a step
after it lets ``Upload SARIF`` run only when ``Verify`` ran and the path is a regular file, not a
link (a removal that failed skips ``Verify``, so the committed file is never uploaded either).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from agentflow.ci import github_workflow, parse_action, parse_install

SHA = "0123456789abcdef0123456789abcdef01234567"
PINS = {
    "action": parse_action(f"acme/agentflow@{SHA}"),
    "install": parse_install(f"git+https://github.com/acme/agentflow@{SHA}"),
}


def steps(shape: str) -> list[dict]:
    return yaml.safe_load(github_workflow(PINS[shape]))["jobs"]["agentflow"]["steps"]


def named(all_steps: list[dict], prefix: str) -> tuple[int, dict]:
    [(index, step)] = [(i, s) for i, s in enumerate(all_steps) if s.get("name", "").startswith(prefix)]
    return index, step


def run(step: dict, workspace: Path, output: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GITHUB_OUTPUT": str(output)}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=workspace,
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip


@pytest.mark.parametrize("shape", sorted(PINS))
def test_the_upload_runs_only_after_a_report_check_and_never_on_hashfiles(shape: str) -> None:
    all_steps = steps(shape)
    remove_at, remove = named(all_steps, "Remove the report path")
    verify_at, verify = named(all_steps, "Verify")
    check_at, check = named(all_steps, "Keep only a report agentflow wrote")
    upload_at, upload = named(all_steps, "Upload SARIF")

    assert remove_at < verify_at < check_at < upload_at == check_at + 1
    assert verify["id"] == "verify" and check["id"] == "report"
    assert "steps.verify.outcome" in check["if"] and check["if"].startswith("always()")
    assert upload["if"] == "always() && steps.report.outputs.sarif == 'true'"
    assert "hashFiles" not in github_workflow(PINS[shape])


@pytest.mark.parametrize("shape", sorted(PINS))
def test_a_committed_link_at_the_report_path_is_removed_and_never_uploaded(shape: str, tmp_path: Path) -> None:
    secret = tmp_path / "runner-secret"
    secret.write_text("TOKEN=0123456789\n")
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    report = workspace / "agentflow.sarif"
    all_steps = steps(shape)
    _, remove = named(all_steps, "Remove the report path")
    _, check = named(all_steps, "Keep only a report agentflow wrote")

    os.symlink(secret, report)  # left in place (the removal failed, or ran in another shape): refused
    output = tmp_path / "output"
    output.write_text("")
    assert run(check, workspace, output).returncode == 0
    assert "sarif=true" not in output.read_text()

    assert run(remove, workspace, output).returncode == 0
    assert not os.path.lexists(report) and secret.read_text() == "TOKEN=0123456789\n"  # the link, not its target

    report.write_text('{"version": "2.1.0", "runs": []}\n')  # what agentflow writes: a regular file
    assert run(check, workspace, output).returncode == 0
    assert output.read_text() == "sarif=true\n"


@pytest.mark.parametrize("shape", sorted(PINS))
def test_a_committed_folder_at_the_report_path_is_removed(shape: str, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "agentflow.sarif").mkdir(parents=True)
    (workspace / "agentflow.sarif" / "x").write_text("x\n")
    _, remove = named(steps(shape), "Remove the report path")

    assert run(remove, workspace, tmp_path / "output").returncode == 0
    assert not (workspace / "agentflow.sarif").exists()
