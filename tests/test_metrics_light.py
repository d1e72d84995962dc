"""``agentflow metrics`` reads the ledger without pydantic: its constants agree with the event and
verdict classes, and neither is imported by the report (#19 item 1: start-up counts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_the_reports_plain_constants_agree_with_the_contract_classes() -> None:
    from agentflow import events, verdict
    from agentflow.metrics import facts, model

    assert model.OUTCOMES == events.OUTCOMES
    assert model.SEVERITIES == verdict.SEVERITIES
    assert [f for f in facts.Usage.__dataclass_fields__] == list(events.Usage.model_fields)
    stored = events.Usage(input_tokens=3, output_tokens=2, cache_read=1, cache_write=4).model_dump(mode="json")
    assert facts.Usage.of({**stored, "later_field": 9}) == facts.Usage(3, 2, 1, 4)
    assert facts.Usage.of(None) == facts.Usage() == facts.Usage.of({})


def test_a_metrics_report_imports_no_event_or_verdict_model(repo: Path, cli) -> None:
    from agentflow.events import ModelCalled, RunEnded, RunStarted, SessionEnded, SessionStarted, Usage
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        ledger.append_many(
            [
                RunStarted(run_id="r-1", plan_id="1"),
                SessionStarted(run_id="r-1", session_id="s-1", role="builder", backend="x", model="m"),
                ModelCalled(run_id="r-1", session_id="s-1", turn=1, model="m", usage=Usage(input_tokens=7)),
                SessionEnded(
                    run_id="r-1", session_id="s-1", role="builder", status="completed", usage=Usage(input_tokens=7)
                ),
                RunEnded(run_id="r-1", outcome="approved", cycles=1),
            ]
        )
    assert '"input": 7' in cli("metrics", "--format", "json").stdout
    code = (
        "import sys\nfrom pathlib import Path\nfrom agentflow.metrics import metrics_report, parse_period\n"
        "from agentflow.report import render_metrics\n"
        "render_metrics(metrics_report(Path('.'), parse_period('7d', None)), 'text')\n"
        "print(sorted(m for m in sys.modules if m in ('agentflow.events', 'agentflow.verdict')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]"]


def test_metrics_from_the_ledger_reads_commits_without_gitpython(repo: Path, cli) -> None:
    """Without --from-git, the period's agentflow commits come from one `git log` (issue #17 allows
    GitPython for --from-git only): counted, and no `git`/`gitdb` module loaded by the command."""
    from agentflow.events import RunEnded, RunStarted
    from agentflow.ledger import Ledger
    from tests.helpers import command_in_fresh_process, git

    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "plan 1\n\nAgentflow-Plan: 1\nAgentflow-Run: r-1\nAgentflow-Cycle: 1\n")
    with Ledger.open(repo) as ledger:
        ledger.append_many(
            [RunStarted(run_id="r-1", plan_id="1"), RunEnded(run_id="r-1", outcome="approved", cycles=1)]
        )
    assert '"commits": 1' in cli("metrics", "--format", "json").stdout
    exit_code, loaded = command_in_fresh_process(repo, ["metrics", "--format", "json"], ("git", "gitdb"))
    assert (exit_code, loaded) == (0, [])
    exit_code, loaded = command_in_fresh_process(repo, ["metrics", "--from-git", "--format", "json"], ("git",))
    assert exit_code == 0 and "git" in loaded  # the watch works: --from-git reads through GitPython
