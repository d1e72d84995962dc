"""CI: the plan matrix (`plan list --json`), `verify --checks-only` for merge queues, the generated
workflows and the composite action."""

from __future__ import annotations

import json
from pathlib import Path

from agentflow.ledger import Ledger
from tests.build_helpers import builder_session, git, notes, verifier_session, write_plan, write_script
from tests.helpers import validate_sarif


def _feature(root: Path, plan_ids: tuple[str, ...] = ("1",), branch: str = "feature") -> str:
    git(root, "checkout", "-q", "-b", branch)
    (root / "src").mkdir(exist_ok=True)
    (root / "src" / f"{branch}.py").write_text("def farewell():\n    return 'bye'\n")
    git(root, "add", "-A")
    args = ["commit", "-q", "-m", f"{branch}"]
    for plan_id in plan_ids:
        args += ["--trailer", f"Agentflow-Plan: {plan_id}"]
    git(root, *args)
    return git(root, "rev-parse", "HEAD")


# -- plan list --------------------------------------------------------------------------------------------


def test_plan_list_json_is_a_job_matrix(repo, cli):
    write_plan(repo, "1", "Add farewell", "farewell")
    write_plan(repo, "2", "Add greeting", "greeting")
    (repo / ".plans" / "3-draft.md").write_text("---\nid: 3\ntitle: Later\nstatus: draft\n---\n")
    result = cli("plan", "list", "--json")
    assert result.exit_code == 0, result.output
    matrix = json.loads(result.stdout)
    assert matrix == [
        {"id": "1", "path": ".plans/1-farewell.md", "title": "Add farewell", "branch": "agentflow/1-farewell"},
        {"id": "2", "path": ".plans/2-greeting.md", "title": "Add greeting", "branch": "agentflow/2-greeting"},
        {"id": "3", "path": ".plans/3-draft.md", "title": "Later", "branch": "agentflow/3-draft"},
    ]
    ready = json.loads(cli("plan", "list", "--json", "--status", "ready").stdout)
    assert [entry["id"] for entry in ready] == ["1", "2"]
    text = cli("plan", "list").stdout
    assert "agentflow/1-farewell" in text and "Add greeting" in text


def test_plan_list_unbuilt_leaves_out_plans_with_a_run(repo, cli):
    write_plan(repo, "1", "Add farewell", "farewell")
    write_plan(repo, "2", "Add greeting", "greeting")
    script = write_script(
        repo,
        {"builder": [builder_session()], "verifier": [verifier_session()]},
    )
    assert cli("build", "1", "--script", str(script)).exit_code in (0, 1)
    unbuilt = json.loads(cli("plan", "list", "--json", "--unbuilt").stdout)
    assert [entry["id"] for entry in unbuilt] == ["2"]


def test_plan_list_bad_status_and_broken_plan_are_exit_2(repo, cli):
    result = cli("plan", "list", "--status", "done")
    assert result.exit_code == 2 and "--status done" in result.stderr and "draft or ready" in result.stderr
    (repo / ".plans").mkdir()
    (repo / ".plans" / "1-x.md").write_text("---\nid: 1\ntitle: T\nscop: []\n---\n")
    result = cli("plan", "list", "--json")
    assert result.exit_code == 2 and ".plans/1-x.md" in result.stderr


# -- verify --checks-only -----------------------------------------------------------------------------------


def test_checks_only_runs_the_checks_without_a_verifier(repo, cli, tmp_path):
    (repo / "agentflow.yaml").write_text("checks:\n  - test -f src/feature.py\n")
    write_plan(repo, checks=["grep -q bye src/feature.py"])
    head = _feature(repo)
    sarif = tmp_path / "checks.sarif"
    result = cli("verify", "--checks-only", "--base", "main", "--format", "json", "--sarif", str(sarif))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["outcome"] == "checks_passed" and report["approved"] is False  # checks are not an approval
    assert [c["command"] for c in report["checks"]] == ["test -f src/feature.py", "grep -q bye src/feature.py"]
    assert notes(repo, head) == []  # no verdict note: only a verifier approves
    with Ledger.open(repo) as ledger:
        assert ledger.runs() == []
    validate_sarif(json.loads(sarif.read_text()))


def test_checks_only_fails_on_a_failing_check_and_points_at_its_declaration(repo, cli):
    (repo / "agentflow.yaml").write_text("base: main\nchecks:\n  - exit 3\n")
    write_plan(repo)
    _feature(repo)
    result = cli("verify", "--checks-only", "--format", "sarif")
    assert result.exit_code == 1, result.output
    sarif = json.loads(result.stdout)
    validate_sarif(sarif)
    [failed] = sarif["runs"][0]["results"]
    assert failed["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "agentflow.yaml"},
        "region": {"startLine": 3},
    }


def test_checks_only_with_no_checks_is_not_green(repo, cli):
    write_plan(repo)
    _feature(repo)
    result = cli("verify", "--checks-only", "--format", "github")
    assert result.exit_code == 1
    assert "no checks are configured" in result.stdout


def test_checks_only_on_a_merge_group_runs_every_merged_plans_checks(repo, cli):
    write_plan(repo, "1", "One", "one", checks=["test -f src/a.py"])
    write_plan(repo, "2", "Two", "two", checks=["test -f src/b.py"])
    _feature(repo, ("1",), branch="a")
    git(repo, "checkout", "-q", "main")
    _feature(repo, ("2",), branch="b")
    git(repo, "checkout", "-q", "-b", "gh-readonly-queue/main/pr-2", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge a", "a")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge b", "b")
    result = cli("verify", "--checks-only", "--base", "main", "--format", "json")
    assert result.exit_code == 0, result.output
    assert sorted(c["command"] for c in json.loads(result.stdout)["checks"]) == ["test -f src/a.py", "test -f src/b.py"]
    (repo / "src" / "a.py").unlink()
    git(repo, "commit", "-qam", "drop a")
    assert cli("verify", "--checks-only", "--base", "main").exit_code == 1
