"""init, status and log through the CLI."""

from __future__ import annotations

import json

import pytest
import yaml

from agentflow.config import Config, load_config
from agentflow.events import RunEnded, RunStarted, SessionEnded, SessionStarted, Usage, VerdictRecorded
from agentflow.ledger import Ledger
from agentflow.patterns import lint_patterns, load_patterns

# -- init ------------------------------------------------------------------------------------------------


def test_init_outside_a_git_repo_is_exit_2(tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    result = cli("init")
    assert result.exit_code == 2
    assert "not a git repository" in result.stderr and "git init" in result.stderr
    assert not (tmp_path / "agentflow.yaml").exists()


def test_init_creates_valid_files(repo, cli):
    result = cli("init")
    assert result.exit_code == 0, result.output
    for path in ("agentflow.yaml", ".plans/1-example-health-endpoint.md", "CLAUDE.md", ".gitignore"):
        assert f"created     {path}" in result.stdout
        assert (repo / path).is_file()
    assert not (repo / ".github").exists()
    config = load_config(repo)
    config.source = None
    assert config == Config()  # the commented defaults are exactly the defaults
    assert "#" in (repo / "agentflow.yaml").read_text()
    assert cli("plan", "check").exit_code == 0
    assert lint_patterns(load_patterns(repo)) == []
    assert (repo / ".gitignore").read_text() == ".agentflow/\n"


def test_init_is_idempotent_and_never_overwrites_without_force(repo, cli):
    (repo / "CLAUDE.md").write_text("# mine\n")
    (repo / ".gitignore").write_text("node_modules/\n/.agentflow\n")
    first = cli("init")
    assert "skipped     CLAUDE.md  (exists; --force overwrites)" in first.stdout
    assert "skipped     .gitignore" in first.stdout
    assert (repo / "CLAUDE.md").read_text() == "# mine\n"
    assert (repo / ".gitignore").read_text() == "node_modules/\n/.agentflow\n"
    (repo / "agentflow.yaml").write_text("base: develop\n")
    second = cli("init")
    assert second.exit_code == 0
    assert "created" not in second.stdout
    assert (repo / "agentflow.yaml").read_text() == "base: develop\n"


def test_init_force_overwrites_owned_files(repo, cli):
    (repo / "CLAUDE.md").write_text("# mine\n")
    (repo / "agentflow.yaml").write_text("base: develop\n")
    result = cli("init", "--force")
    assert result.exit_code == 0
    assert "overwritten CLAUDE.md" in result.stdout and "overwritten agentflow.yaml" in result.stdout
    assert "## Error handling" in (repo / "CLAUDE.md").read_text()
    # the user's versions are kept beside them, never lost
    assert "your version is in CLAUDE.md.bak" in result.stdout
    assert (repo / "CLAUDE.md.bak").read_text() == "# mine\n"
    assert (repo / "agentflow.yaml.bak").read_text() == "base: develop\n"
    again = cli("init", "--force")  # nothing to overwrite now: the backups stay the user's
    assert "overwritten" not in again.stdout
    assert (repo / "CLAUDE.md.bak").read_text() == "# mine\n"


def test_init_appends_to_gitignore_without_trailing_newline(repo, cli):
    (repo / ".gitignore").write_text("dist")
    cli("init")
    cli("init")
    assert (repo / ".gitignore").read_text() == "dist\n.agentflow/\n"


def test_init_keeps_existing_plans(repo, cli):
    (repo / ".plans").mkdir()
    (repo / ".plans" / "1-mine.md").write_text("---\nid: 1\ntitle: Mine\n---\n")
    result = cli("init")
    assert "skipped     .plans/  (already holds 1 plan(s))" in result.stdout
    assert sorted(p.name for p in (repo / ".plans").iterdir()) == ["1-mine.md"]


def test_init_from_a_subdirectory_writes_at_the_root(repo, cli, monkeypatch):
    (repo / "sub").mkdir()
    monkeypatch.chdir(repo / "sub")
    assert cli("init").exit_code == 0
    assert (repo / "agentflow.yaml").is_file() and not (repo / "sub" / "agentflow.yaml").exists()


def test_init_ci_github_workflow(repo, cli):
    action = "acme/agentflow@0123456789abcdef0123456789abcdef01234567"
    result = cli("init", "--ci", "github", "--action", action)
    assert result.exit_code == 0
    assert "created     .github/workflows/agentflow.yml" in result.stdout
    workflow = yaml.safe_load((repo / ".github/workflows/agentflow.yml").read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads the key `on` as True
    steps = workflow["jobs"]["agentflow"]["steps"]
    checkout = steps[0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
    names = [step.get("name") for step in steps]
    # one verification (paid for and recorded once) gives the annotations and the SARIF file, then the gate
    order = [names.index("Verify"), names.index("Upload SARIF"), names.index("Gate")]
    assert order == sorted(order)
    verify = steps[names.index("Verify")]
    assert verify["uses"] == action and verify["with"]["sarif"] == "agentflow.sarif"
    assert verify["env"]["ANTHROPIC_API_KEY"] == "${{ secrets.ANTHROPIC_API_KEY }}"
    assert verify["env"]["AGENTFLOW_SIGNING_KEY"] == "${{ secrets.AGENTFLOW_SIGNING_KEY }}"
    upload = steps[names.index("Upload SARIF")]
    assert upload["with"]["sarif_file"] == "agentflow.sarif" and upload["if"].startswith("always()")
    assert steps[names.index("Gate")]["with"] == {"command": "gate", "base": "origin/${{ github.base_ref }}"}
    assert "pip install agentflow" not in (repo / ".github/workflows/agentflow.yml").read_text()


def test_the_documented_github_workflow_is_the_one_init_writes():
    import re
    from pathlib import Path

    from agentflow.ci import github_workflow, parse_action

    docs = (Path(__file__).parent.parent / "docs" / "ci.md").read_text()
    [documented] = re.findall(r"```yaml\n(# Written by `agentflow init --ci github`.*?)```", docs, re.S)
    assert yaml.safe_load(documented) == yaml.safe_load(github_workflow(parse_action("OWNER/agentflow@REF")))


def test_init_unknown_ci_provider_is_exit_2(repo, cli):
    result = cli("init", "--ci", "jenkins")
    assert result.exit_code == 2 and "unknown CI provider 'jenkins'" in result.stderr and "github" in result.stderr


# -- status ----------------------------------------------------------------------------------------------


def _plan(repo, ident: str, title: str) -> None:
    (repo / ".plans").mkdir(exist_ok=True)
    (repo / ".plans" / f"{ident}-p.md").write_text(f"---\nid: {ident}\ntitle: {title}\n---\n")


def _record_run(repo, run_id: str, plan_id: str, outcome: str | None, cost: float, cycles: int = 1) -> None:
    with Ledger.open(repo) as ledger:
        ledger.append(RunStarted(run_id=run_id, plan_id=plan_id, plan_title="t", max_cycles=3))
        for cycle in range(1, cycles + 1):
            sid = f"{run_id}-s{cycle}"
            ledger.append(
                SessionStarted(
                    run_id=run_id, session_id=sid, role="builder", cycle=cycle, backend="scripted", model="m"
                )
            )
            ledger.append(
                SessionEnded(
                    run_id=run_id,
                    session_id=sid,
                    role="builder",
                    cycle=cycle,
                    status="completed",
                    turns=2,
                    usage=Usage(input_tokens=10),
                    cost_usd=cost,
                )
            )
        if outcome:
            ledger.append(VerdictRecorded(run_id=run_id, cycle=cycles, outcome=outcome, decision="approve"))
            ledger.append(RunEnded(run_id=run_id, outcome=outcome, cycles=cycles))


def test_status_without_runs_is_not_started(repo, cli):
    _plan(repo, "1", "First")
    _plan(repo, "2", "Second")
    result = cli("status")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "TITLE", "STATE", "LAST", "OUTCOME", "CYCLES", "COST"]
    assert lines[1].split()[:4] == ["1", "First", "not", "started"]
    assert not (repo / ".agentflow").exists()  # reading status never creates a ledger


def test_status_projects_the_ledger(repo, cli):
    _plan(repo, "1", "First")
    _plan(repo, "2", "Second")
    _plan(repo, "3", "Third")
    _record_run(repo, "r-1", "1", "changes_requested", 0.5)
    _record_run(repo, "r-2", "1", "approved", 0.25, cycles=2)
    _record_run(repo, "r-3", "2", None, 1.0)
    _record_run(repo, "r-4", "99", "rejected", 0.1)  # a plan whose file is gone
    rows = {row["id"]: row for row in json.loads(cli("status", "--json").stdout)}
    assert rows["1"]["state"] == "approved" and rows["1"]["last_outcome"] == "approved"
    assert rows["1"]["cycles"] == 2 and rows["1"]["runs"] == 2
    assert rows["1"]["cost_usd"] == pytest.approx(0.5 + 0.5)
    assert rows["2"]["state"] == "in progress" and rows["2"]["last_outcome"] is None
    assert rows["3"]["state"] == "not started"
    assert rows["99"]["path"] is None and rows["99"]["state"] == "rejected"
    table = cli("status").stdout
    assert "approved" in table and "$1.00" in table and "(plan file not found)" in table


def test_status_reports_invalid_plans_with_exit_2(repo, cli):
    _plan(repo, "1", "Good")
    (repo / ".plans" / "2-bad.md").write_text("no front matter\n")
    result = cli("status")
    assert result.exit_code == 2
    assert "Good" in result.stdout
    assert "2-bad.md:1: missing front matter" in result.stderr


def test_status_without_plans(repo, cli):
    result = cli("status")
    assert result.exit_code == 0 and "no plans yet" in result.stdout


# -- log -------------------------------------------------------------------------------------------------


def test_log_lines_and_json(repo, cli):
    _record_run(repo, "r-1", "1", "approved", 0.5)
    _record_run(repo, "r-2", "2", "rejected", 0.1)
    result = cli("log")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    assert lines[0].split()[1:3] == ["r-1", "run_started"] and "plan_id=1" in lines[0]
    assert "status=completed" in lines[2] and "cost_usd=0.5" in lines[2]
    assert "outcome=approved" in lines[4]

    only = cli("log", "--run", "r-2", "--json")
    events = [json.loads(line) for line in only.stdout.splitlines()]
    assert {e["run_id"] for e in events} == {"r-2"}
    assert [e["kind"] for e in events] == [
        "run_started",
        "session_started",
        "session_ended",
        "verdict_recorded",
        "run_ended",
    ]
    assert events[-1]["outcome"] == "rejected"


def test_log_unknown_run_is_exit_2(repo, cli):
    _record_run(repo, "r-1", "1", "approved", 0.5)
    result = cli("log", "--run", "r-nope")
    assert result.exit_code == 2
    assert "no run 'r-nope'" in result.stderr and "r-1" in result.stderr


def test_log_empty_ledger(repo, cli):
    result = cli("log")
    assert result.exit_code == 0 and result.stdout == ""
    assert cli("log", "--run", "x").exit_code == 2


# -- help ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["init"],
        ["status"],
        ["log"],
        ["plan"],
        ["plan", "new"],
        ["plan", "check"],
        ["patterns"],
        ["patterns", "list"],
        ["patterns", "show"],
        ["patterns", "lint"],
    ],
)
def test_every_command_help_has_examples(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Examples" in result.stdout and "agentflow " in result.stdout


def test_init_does_not_shadow_pyproject_config(repo, cli):
    (repo / "pyproject.toml").write_text('[tool.agentflow]\nbase = "develop"\n')
    result = cli("init")
    assert "skipped     agentflow.yaml  (configured in pyproject.toml [tool.agentflow])" in result.stdout
    assert not (repo / "agentflow.yaml").exists()
    assert load_config(repo).base == "develop"


def test_startup_benchmark_runs_and_reports(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "startup.py"
    out = subprocess.run(
        [sys.executable, str(script), "--runs", "2", "--max-ratio", "1000", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["imports_anthropic"] is False
    assert report["ratio_median"] > 0 and report["runs"] == 2


def test_init_sets_base_to_the_checked_out_branch(cli, tmp_path, monkeypatch):
    import subprocess

    from agentflow.config import load_config

    root = tmp_path / "m"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "master"], cwd=root, check=True)
    monkeypatch.chdir(root)
    assert cli("init").exit_code == 0
    assert load_config(root).base == "master"
    assert "base: master                   # the branch" in (root / "agentflow.yaml").read_text()


def test_build_names_the_base_setting_when_the_base_branch_is_missing(cli, repo):
    (repo / "agentflow.yaml").write_text("base: trunk\n")
    assert cli("plan", "new", "Something").exit_code == 0
    result = cli("build", "1")
    assert result.exit_code == 2
    assert "base branch 'trunk' does not exist" in result.output
    assert "e.g. `base: main`" in result.output
