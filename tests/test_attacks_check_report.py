"""Attacks through a JUnit check's report: the check runs the change's code in the sandbox, but the
report is read afterwards by agentflow itself, outside it.

The check cannot read ``~/.ssh`` (hidden by the sandbox), but it can leave a symbolic link where the
report should be; agentflow, reading the report by path, followed it to the host's file. Or it leaves
a FIFO there, which a plain read waits on forever (the CI job hangs instead of failing).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import yaml

from agentflow.evidence import parse_junit
from tests.build_helpers import verifier_session, write_plan, write_script
from tests.helpers import git, need_tool

PASSING = '<testsuite name="t" tests="5" failures="0" errors="0" skipped="0"></testsuite>\n'


def _verify_with_check(repo: Path, cli, check: str) -> dict:
    (repo / "agentflow.yaml").write_text(yaml.safe_dump({"checks": [{"run": check, "junit": True}]}))
    write_plan(repo)
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "src").mkdir(exist_ok=True)
    (repo / "src" / "app.py").write_text("def farewell():\n    return 'bye'\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "farewell", "--trailer", "Agentflow-Plan: 1")
    script = write_script(repo, {"verifier": [verifier_session()]})
    result = cli("verify", "--base", "main", "--script", str(script), "--format", "json")
    assert result.stdout.startswith("{"), result.output
    return json.loads(result.stdout)


def test_a_report_that_is_a_symlink_to_a_hidden_host_file_is_not_read(
    repo: Path, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("bwrap")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "junit.xml").write_text(PASSING)  # hidden from the check by the sandbox
    monkeypatch.setenv("HOME", str(home))

    data = _verify_with_check(repo, cli, f"test ! -e {home}/.ssh/junit.xml && ln -sf {home}/.ssh/junit.xml {{report}}")

    [check] = data["checks"]
    assert check["exit_code"] == 0, check  # the check itself could not see the file
    assert not check["passed"], check  # ... and agentflow did not read it for the check either
    assert check.get("tests") in (None, 0)
    assert "not a regular file" in (check.get("evidence") or ""), check
    assert data["outcome"] != "approved"


def test_a_report_that_is_a_fifo_fails_the_check_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "junit.xml"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def read() -> None:
        try:
            parse_junit(fifo)
        except ValueError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(60)  # a guard against a hang, not a timing assertion: the read must not wait at all
    if reader.is_alive():  # unblock the reader so the test process can end
        with open(fifo, "w"):
            pass
        pytest.fail("parse_junit waited on a FIFO")
    [error] = outcome
    assert "not a regular file" in str(error)


def test_a_report_folder_replaced_by_a_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "junit.xml").write_text(PASSING)
    folder = tmp_path / "work" / ".agentflow-report-x"
    folder.parent.mkdir()
    folder.symlink_to(outside)

    with pytest.raises(ValueError, match="not a regular file"):
        parse_junit(folder / "junit.xml", within=folder.parent)


def test_a_regular_report_still_counts(tmp_path: Path) -> None:
    folder = tmp_path / ".agentflow-report-x"
    folder.mkdir()
    (folder / "junit.xml").write_text(PASSING)
    assert parse_junit(folder / "junit.xml", within=tmp_path).tests == 5
    assert parse_junit(folder / "junit.xml").tests == 5
