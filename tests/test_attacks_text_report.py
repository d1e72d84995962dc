"""Attacks on ``verify --format text`` through file names and model text.

The text report goes to a terminal or, with ``format: text`` in the action, to a GitHub Actions log,
where a line that starts with ``::`` is a workflow command (``::add-mask::``, ``::stop-commands::``,
``::error::``). A file name of the change holding a newline (a scope finding's file and message)
and a verifier's summary (model text, steerable by the change) each started such a line.
"""

from __future__ import annotations

from pathlib import Path

from tests.build_helpers import verifier_session, write_plan, write_script
from tests.helpers import git


def test_no_line_of_the_text_report_starts_with_a_workflow_command(repo: Path, cli) -> None:
    (repo / "agentflow.yaml").write_text("sandbox: {mode: off}\n")
    write_plan(repo, scope=["src/**"])
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "x\n::error::pwned.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change", "--trailer", "Agentflow-Plan: 1")
    script = write_script(repo, {"verifier": [verifier_session(summary="::add-mask::hunter2\n::stop-commands::x")]})

    result = cli("verify", "--base", "main", "--script", str(script), "--format", "text")

    assert "pwned" in result.stdout and "add-mask" in result.stdout  # the text is still shown
    bad = [line for line in result.stdout.splitlines() if line.lstrip().startswith("::")]
    assert bad == [], bad
