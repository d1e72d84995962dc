"""CI: the plan matrix (`plan list --json`), `verify --checks-only` for merge queues, the generated
workflows and the composite action."""

from __future__ import annotations

import json
from pathlib import Path

from agentflow.ledger import Ledger
from tests.build_helpers import builder_session, git, notes, verifier_session, write_plan, write_script
from tests.helpers import validate_junit, validate_sarif


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


# -- init --ci: the pin -------------------------------------------------------------------------------------

SHA = "0123456789abcdef0123456789abcdef01234567"
ACTION = f"acme/agentflow@{SHA}"
ROOT = Path(__file__).resolve().parent.parent


def _load(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def _steps_using(job: dict, prefix: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(prefix)]


def test_init_ci_github_uses_the_action_pinned_to_the_given_ref(repo, cli):
    result = cli("init", "--ci", "github", "--action", ACTION)
    assert result.exit_code == 0, result.output
    text = (repo / ".github/workflows/agentflow.yml").read_text()
    assert "pip install agentflow" not in text
    workflow = _load(repo / ".github/workflows/agentflow.yml")
    assert set(workflow[True]) == {"pull_request", "merge_group"}  # YAML 1.1 reads `on` as True
    job = workflow["jobs"]["agentflow"]
    assert "env" not in job  # secrets go to the steps that need them, nowhere else
    ours = _steps_using(job, "acme/agentflow@")
    assert {step["uses"] for step in ours} == {ACTION}
    by_name = {step["name"]: step for step in job["steps"] if "name" in step}
    verify = by_name["Verify"]
    assert verify["with"] == {"command": "verify", "base": "origin/${{ github.base_ref }}", "sarif": "agentflow.sarif"}
    assert set(verify["env"]) == {"ANTHROPIC_API_KEY", "AGENTFLOW_SIGNING_KEY"}
    assert set(by_name["Gate"]["env"]) == {"AGENTFLOW_SIGNING_KEY"}
    queue = by_name["Merge queue - checks on the merge result"]
    assert queue["if"] == "github.event_name == 'merge_group'" and "env" not in queue  # no API key: no verifier
    assert queue["with"] == {
        "command": "verify",
        "base": "${{ github.event.merge_group.base_sha }}",
        "args": "--checks-only",
    }
    assert by_name["Merge queue - gate"]["with"]["base"] == "${{ github.event.merge_group.base_sha }}"
    upload = by_name["Upload SARIF"]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@") and upload["if"].startswith("always()")
    checkout = job["steps"][0]
    assert checkout["with"]["fetch-depth"] == 0
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha || github.sha }}"


def test_init_ci_github_without_a_pin_stops_and_asks_for_one(repo, cli):
    # the suite's agentflow is an editable install: direct_url.json names a directory, not a commit
    result = cli("init", "--ci", "github")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "--action OWNER/REPO@REF" in result.stderr
    assert "--install" in result.stderr
    assert not (repo / "agentflow.yaml").exists()  # stopped before writing anything


def test_init_ci_github_pins_the_commit_agentflow_was_installed_from(repo, cli, monkeypatch):
    from importlib import metadata

    class Dist:
        def read_text(self, name):
            assert name == "direct_url.json"
            return json.dumps(
                {"url": "https://github.com/acme/agentflow.git", "vcs_info": {"vcs": "git", "commit_id": SHA}}
            )

    real = metadata.distribution
    monkeypatch.setattr(metadata, "distribution", lambda name: Dist() if name == "agentflow" else real(name))
    assert cli("init", "--ci", "github").exit_code == 0
    workflow = _load(repo / ".github/workflows/agentflow.yml")
    assert {s["uses"] for s in _steps_using(workflow["jobs"]["agentflow"], "acme/")} == {ACTION}


def test_init_install_refuses_a_bare_or_floating_package_name(repo, cli):
    for spec in ("agentflow", "agentflow>=0.1", "git+https://github.com/acme/agentflow@main", "agentflow==0.*"):
        result = cli("init", "--ci", "github", "--install", spec)
        assert result.exit_code == 2, spec
        assert result.stderr.count("\n") == 1 and f"--install {spec}" in result.stderr, result.stderr
    assert not (repo / ".github").exists()


def test_init_install_accepts_a_pinned_requirement(repo, cli):
    spec = f"git+https://gitlab.example.com/tools/agentflow@{SHA}"
    assert cli("init", "--ci", "github", "--install", spec).exit_code == 0
    workflow = _load(repo / ".github/workflows/agentflow.yml")
    steps = workflow["jobs"]["agentflow"]["steps"]
    [install] = [s for s in steps if s.get("name") == "Install agentflow (pinned)"]
    assert install["env"]["AGENTFLOW_SPEC"] == spec and install["run"] == 'python3 -I -m pip install "$AGENTFLOW_SPEC"'
    runs = [s.get("run", "") for s in steps]
    assert any('agentflow verify --checks-only --base "$QUEUE_BASE"' in r for r in runs)
    for ok in ("agentflow==0.1.0", "/opt/wheels/agentflow-0.1.0-py3-none-any.whl"):
        assert cli("init", "--ci", "gitlab", "--install", ok, "--force").exit_code == 0, ok
        assert _load(repo / ".gitlab-ci.yml")["agentflow"]["variables"]["AGENTFLOW_SPEC"] == ok


def test_init_fanout_writes_the_matrix_build_and_report_jobs(repo, cli):
    result = cli("init", "--ci", "github", "--fanout", "--max-parallel", "7", "--action", ACTION)
    assert result.exit_code == 0, result.output
    assert "created     .github/workflows/agentflow-fanout.yml" in result.stdout
    workflow = _load(repo / ".github/workflows/agentflow-fanout.yml")
    jobs = workflow["jobs"]
    assert list(jobs) == ["plans", "build", "report"]
    runs = lambda job: "\n".join(step.get("run", "") for step in jobs[job]["steps"])  # noqa: E731
    assert "agentflow plan list --json --status ready --unbuilt" in runs("plans")
    build = jobs["build"]
    assert build["strategy"]["max-parallel"] == 7 and build["strategy"]["fail-fast"] is False
    assert build["strategy"]["matrix"]["plan"] == "${{ fromJSON(needs.plans.outputs.matrix) }}"
    assert build["permissions"] == {"contents": "write"}
    [step] = _steps_using(build, ACTION)
    assert step["with"] == {"command": "build", "plan": "${{ matrix.plan.path }}"}
    assert 'git push origin "refs/heads/$BRANCH:refs/heads/$BRANCH"' in runs("build")
    assert "agentflow notes push" in runs("build")
    assert 'agentflow ledger export --run "$RUN_ID" -o "ledger-$PLAN_ID.jsonl"' in runs("build")
    assert 'agentflow ledger import "${files[@]}"' in runs("report")
    assert 'agentflow metrics --format md >> "$GITHUB_STEP_SUMMARY"' in runs("report")
    text = (repo / ".github/workflows/agentflow-fanout.yml").read_text()
    # only the build job holds the keys
    assert text.count("secrets.") == 2 and all("secrets." not in json.dumps(jobs[j]) for j in ("plans", "report"))
    assert workflow["permissions"] == {"contents": "read"}


def test_init_gitlab_writes_the_pipeline_with_a_code_quality_report(repo, cli):
    result = cli("init", "--ci", "gitlab", "--action", ACTION)
    assert result.exit_code == 0, result.output
    job = _load(repo / ".gitlab-ci.yml")["agentflow"]
    assert job["variables"]["AGENTFLOW_SPEC"] == f"git+https://github.com/acme/agentflow@{SHA}"
    assert job["artifacts"]["reports"]["codequality"] == "gl-code-quality-report.json"
    assert job["artifacts"]["when"] == "always"
    script = "\n".join(job["script"])
    assert "--format codequality > gl-code-quality-report.json" in script
    assert "agentflow notes fetch" in job["before_script"]


def test_init_ci_options_need_ci_and_fanout_needs_github(repo, cli):
    result = cli("init", "--fanout")
    assert result.exit_code == 2 and "add --ci github" in result.stderr
    result = cli("init", "--ci", "gitlab", "--fanout", "--action", ACTION)
    assert result.exit_code == 2 and "--fanout" in result.stderr
    result = cli("init", "--ci", "github", "--action", "acme/agentflow")
    assert result.exit_code == 2 and "OWNER/REPO@REF" in result.stderr


# -- validation: actionlint and the SchemaStore schemas ------------------------------------------------------


def _generated(repo: Path, cli) -> dict[str, Path]:
    assert cli("init", "--ci", "github", "--fanout", "--action", ACTION).exit_code == 0
    files = {
        "action": repo / ".github/workflows/agentflow.yml",
        "fanout": repo / ".github/workflows/agentflow-fanout.yml",
    }
    spec = f"git+https://gitlab.example.com/tools/agentflow@{SHA}"
    other = repo.parent / "install"
    other.mkdir()
    from agentflow.ci import fanout_workflow, github_workflow, gitlab_ci, parse_install

    pin = parse_install(spec)
    for name, text in (("install.yml", github_workflow(pin)), ("install-fanout.yml", fanout_workflow(pin))):
        (other / name).write_text(text)
        files[name] = other / name
    (other / ".gitlab-ci.yml").write_text(gitlab_ci(pin))
    files["gitlab"] = other / ".gitlab-ci.yml"
    return files


def _action_as_workflow(tmp_path: Path) -> Path:
    """action.yml's steps inside a reusable workflow, so actionlint checks their expressions and
    shell (actionlint lints workflows; the action's metadata is checked by its SchemaStore schema)."""
    import yaml

    action = _load(ROOT / "action.yml")
    workflow = {
        "on": {
            "workflow_call": {
                "inputs": {k: {"type": "string", "default": v["default"]} for k, v in action["inputs"].items()}
            }
        },
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    path = tmp_path / "action-as-workflow.yml"
    path.write_text(yaml.safe_dump(workflow, sort_keys=False))
    return path


def test_generated_workflows_and_the_action_pass_actionlint(repo, cli, tmp_path):
    from tests.helpers import actionlint

    files = _generated(repo, cli)
    workflows = [files["action"], files["fanout"], files["install.yml"], files["install-fanout.yml"]]
    assert actionlint(*workflows, _action_as_workflow(tmp_path)) == []
    broken = tmp_path / "broken.yml"  # the linter really lints
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    assert any("nope" in problem["message"] for problem in actionlint(broken))


def test_generated_files_and_the_action_pass_the_schemastore_schemas(repo, cli, tmp_path):
    from tests.helpers import check_jsonschema

    files = _generated(repo, cli)
    workflows = [files["action"], files["fanout"], files["install.yml"], files["install-fanout.yml"]]
    for schema, targets in (
        ("vendor.github-workflows", workflows),
        ("vendor.github-actions", [ROOT / "action.yml"]),
        ("vendor.gitlab-ci", [files["gitlab"]]),
    ):
        result = check_jsonschema(schema, *targets)
        assert result.returncode == 0, (schema, result.stdout, result.stderr)
    bad = tmp_path / "bad-action.yml"
    bad.write_text("name: x\nruns:\n  using: composite\n  steps:\n    - run: echo hi\n")  # no shell: invalid
    assert check_jsonschema("vendor.github-actions", bad).returncode != 0


def test_the_action_never_splices_inputs_into_a_script():
    action = _load(ROOT / "action.yml")
    for step in action["runs"]["steps"]:
        assert "${{" not in step.get("run", ""), step.get("name")
    assert set(action["inputs"]) == {"command", "base", "plan", "format", "sarif", "python-version", "args"}
    assert set(action["outputs"]) == {"outcome", "run-id"}
    install = next(s for s in action["runs"]["steps"] if s.get("name", "").startswith("Install agentflow"))
    assert install["env"] == {"ACTION_PATH": "${{ github.action_path }}"} and '"$ACTION_PATH"' in install["run"]


# -- the action's shell steps, run in order on a pull request ---------------------------------------------------


def _expand(text: str, context: dict[str, str]) -> str:
    import re

    def value(match):
        key = match.group(1).strip()
        assert key in context, f"the test does not know ${{{{ {key} }}}}"
        return context[key]

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _shims(bin_dir: Path, log: Path) -> None:
    """``python3 -m pip install`` and ``sudo`` recorded instead of run (no network, no root); ``agentflow``
    is this checkout's code (with -P: like the console script, it does not import from the current directory)."""
    import sys

    bin_dir.mkdir()
    (bin_dir / "python3").write_text(
        f'#!/bin/sh\nif [ "$1 $2 $3 $4" = "-I -m pip install" ]; then echo "pip $*" >> "{log}"; exit 0; fi\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    (bin_dir / "sudo").write_text(f'#!/bin/sh\necho "sudo $*" >> "{log}"\n')
    (bin_dir / "agentflow").write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -P -m agentflow "$@"\n')
    for shim in bin_dir.iterdir():
        shim.chmod(0o755)


def _run_action(inputs: dict[str, str], workspace: Path, env: dict[str, str]) -> list[tuple[str, int, str]]:
    """Every shell step of action.yml, in order, as the runner would: ``env:`` expanded, ``run:``
    through bash -e; stops at the first failing step. Returns (name, exit code, stdout) per step."""
    import os
    import subprocess

    action = _load(ROOT / "action.yml")
    context = {f"inputs.{k}": str(inputs.get(k, v["default"])) for k, v in action["inputs"].items()}
    context["github.action_path"] = str(ROOT)
    ran = []
    for step in action["runs"]["steps"]:
        if "run" not in step:
            assert step["uses"].startswith("actions/setup-python@")  # the runner's job, not ours
            continue
        assert step["shell"] == "bash"
        step_env = {**os.environ, **env, **{k: _expand(str(v), context) for k, v in step.get("env", {}).items()}}
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=workspace,
            env=step_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        ran.append((_expand(step.get("name", ""), context), proc.returncode, proc.stdout + proc.stderr))
        if proc.returncode != 0:
            break
    return ran


def _pull_request(tmp_path: Path, checks: list[str], extra_config: str = "") -> tuple[Path, str]:
    """A bare remote with main and a pull-request branch, and the runner's checkout of its head.
    ``extra_config`` is added to main's agentflow.yaml (verify judges by the base's config)."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    dev = tmp_path / "dev"
    git(tmp_path, "clone", "-q", str(origin), str(dev))
    for key, value in (("user.email", "dev@example.com"), ("user.name", "Dev"), ("commit.gpgsign", "false")):
        git(dev, "config", key, value)
    (dev / "README.md").write_text("# app\n")
    (dev / "agentflow.yaml").write_text(
        "base: main\nchecks:\n" + "".join(f"  - {c!r}\n" for c in checks) + extra_config
    )
    git(dev, "add", "-A")
    git(dev, "commit", "-q", "-m", "initial")
    write_plan(dev)
    git(dev, "push", "-q", "origin", "main")
    head = _feature(dev)
    git(dev, "push", "-q", "origin", "feature")
    workspace = tmp_path / "workspace"  # actions/checkout: the head, full history
    git(tmp_path, "clone", "-q", str(origin), str(workspace))
    git(workspace, "checkout", "-q", "--detach", head)
    return workspace, head


def _github_env(tmp_path: Path, workspace: Path, head: str) -> dict[str, str]:
    import os

    log = tmp_path / "shim.log"
    _shims(tmp_path / "bin", log)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    for name in ("output", "summary"):
        (tmp_path / name).write_text("")
    return {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_BASE_REF": "main",
        "GITHUB_HEAD_REF": "feature",
        "GITHUB_REF": "refs/pull/1/merge",
        "GITHUB_SHA": head,
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"),
        "RUNNER_TEMP": str(runner_temp),
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def _outputs(tmp_path: Path) -> list[dict[str, str]]:
    """One dict per action run, from $GITHUB_OUTPUT (each run appends outcome then run-id)."""
    pairs = [line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines()]
    return [dict(pairs[i : i + 2]) for i in range(0, len(pairs), 2)]


def test_the_actions_steps_verify_and_gate_a_pull_request(tmp_path):
    workspace, head = _pull_request(tmp_path, ["test -f src/feature.py"])
    env = _github_env(tmp_path, workspace, head)
    script = write_script(workspace, {"verifier": [verifier_session()]})

    steps = _run_action({"command": "verify", "sarif": "agentflow.sarif", "args": f"--script {script}"}, workspace, env)
    assert [(name, code) for name, code, _ in steps] == [
        ("Install agentflow from the action's checkout", 0),
        ("Prepare the sandbox (bubblewrap, unprivileged user namespaces)", 0),
        ("Fetch verdict notes", 0),
        ("agentflow verify", 0),
    ], steps[-1][2]
    log = (tmp_path / "shim.log").read_text()
    assert f"pip -I -m pip install --disable-pip-version-check --quiet {ROOT}" in log  # its own checkout, no name
    out = steps[-1][2]
    assert "::notice title=agentflow%3A approved::" in out  # the annotations
    [verified] = _outputs(tmp_path)
    assert verified["outcome"] == "approved" and verified["run-id"].startswith("r-")
    summary = (tmp_path / "summary").read_text()
    assert "## ✅ agentflow verify: `approved`" in summary and verified["run-id"] in summary
    sarif = json.loads((workspace / "agentflow.sarif").read_text())
    validate_sarif(sarif)
    assert sarif["runs"][0]["properties"]["runId"] == verified["run-id"]
    assert sarif["runs"][0]["automationDetails"]["id"] == "agentflow/plan-1/"

    steps = _run_action({"command": "gate"}, workspace, env)
    assert steps[-1][:2] == ("agentflow gate", 0), steps[-1][2]
    assert _outputs(tmp_path)[1] == {"outcome": "open", "run-id": ""}


def test_the_actions_steps_report_a_change_that_is_not_approved(tmp_path):
    workspace, head = _pull_request(tmp_path, ["echo 'E: 1 failed'; exit 1"])
    env = _github_env(tmp_path, workspace, head)
    script = write_script(workspace, {"verifier": [verifier_session()]})

    steps = _run_action({"command": "verify", "sarif": "agentflow.sarif", "args": f"--script {script}"}, workspace, env)
    name, code, out = steps[-1]
    assert (name, code) == ("agentflow verify", 1), out
    assert "::error title=agentflow%3A changes_requested::" in out
    assert "::error title=check failed%3A echo 'E%3A 1 failed'; exit 1::" in out
    assert _outputs(tmp_path)[0]["outcome"] == "changes_requested"
    assert "## ❌ agentflow verify: `changes_requested`" in (tmp_path / "summary").read_text()
    sarif = json.loads((workspace / "agentflow.sarif").read_text())
    validate_sarif(sarif)
    [check] = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "agentflow/check"]
    assert check["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "agentflow.yaml"},
        "region": {"startLine": 3},
    }
    steps = _run_action({"command": "gate"}, workspace, env)
    assert steps[-1][:2] == ("agentflow gate", 1)
    assert _outputs(tmp_path)[1]["outcome"] == "closed"


def test_the_action_refuses_an_unknown_command(tmp_path):
    workspace, head = _pull_request(tmp_path, ["true"])
    steps = _run_action({"command": "deploy; rm -rf /"}, workspace, _github_env(tmp_path, workspace, head))
    name, code, out = steps[-1]
    assert code == 2 and "unknown command 'deploy; rm -rf /'" in out  # an input is data, never code


def _workflow_step(job: dict, name: str) -> dict:
    return next(step for step in job["steps"] if step.get("name") == name)


def _run_step(step: dict, cwd: Path, env: dict[str, str], context: dict[str, str]):
    import os
    import subprocess

    step_env = {**os.environ, **env, **{k: _expand(str(v), context) for k, v in step.get("env", {}).items()}}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env=step_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_fanout_scripts_list_the_plans_and_push_a_built_branch_with_its_notes(repo, cli, tmp_path):
    assert cli("init", "--ci", "github", "--fanout", "--action", ACTION).exit_code == 0
    jobs = _load(repo / ".github/workflows/agentflow-fanout.yml")["jobs"]
    workspace, head = _pull_request(tmp_path, ["true"])
    env = _github_env(tmp_path, workspace, head)

    listed = _run_step(_workflow_step(jobs["plans"], "List the plans to build"), workspace, env, {})
    assert listed.returncode == 0, listed.stderr
    [line] = (tmp_path / "output").read_text().splitlines()
    assert line.startswith("matrix=")
    matrix = json.loads(line.removeprefix("matrix="))
    assert matrix == [
        {"id": "1", "path": ".plans/1-farewell.md", "title": "Add farewell", "branch": "agentflow/1-farewell"}
    ]

    # what a build leaves behind: the plan branch and a verdict note on its head
    git(workspace, "branch", "agentflow/1-farewell", head)
    git(
        workspace,
        "-c",
        "user.name=ci",
        "-c",
        "user.email=ci@example.com",
        "notes",
        "--ref=agentflow",
        "add",
        "-m",
        "{}",
        head,
    )
    context = {"matrix.plan.branch": "agentflow/1-farewell"}
    pushed = _run_step(
        _workflow_step(jobs["build"], "Push the plan branch and its verdict notes"), workspace, env, context
    )
    assert pushed.returncode == 0, pushed.stderr
    origin = tmp_path / "origin.git"
    assert git(origin, "rev-parse", "refs/heads/agentflow/1-farewell") == head
    assert git(origin, "notes", "--ref=agentflow", "show", head) == "{}"
    # a plan whose build made no branch pushes nothing and does not fail
    context = {"matrix.plan.branch": "agentflow/2-none"}
    step = _workflow_step(jobs["build"], "Push the plan branch and its verdict notes")
    assert _run_step(step, workspace, env, context).returncode == 0


def test_the_fanout_skips_a_plan_whose_branch_is_on_the_remote(repo, cli, tmp_path):
    assert cli("init", "--ci", "github", "--fanout", "--action", ACTION).exit_code == 0
    build = _load(repo / ".github/workflows/agentflow-fanout.yml")["jobs"]["build"]
    workspace, head = _pull_request(tmp_path, ["true"])
    env = _github_env(tmp_path, workspace, head)
    seen = _workflow_step(build, "Skip a plan whose branch is on the remote already")
    assert _workflow_step(build, "Build the plan")["if"] == "steps.seen.outputs.built != 'true'"
    assert _run_step(seen, workspace, env, {"matrix.plan.branch": "agentflow/1-farewell"}).returncode == 0
    assert (tmp_path / "output").read_text() == ""
    git(workspace, "push", "-q", "origin", f"{head}:refs/heads/agentflow/1-farewell")
    assert _run_step(seen, workspace, env, {"matrix.plan.branch": "agentflow/1-farewell"}).returncode == 0
    assert (tmp_path / "output").read_text() == "built=true\n"


def test_the_gitlab_job_verifies_gates_and_writes_the_code_quality_report(tmp_path):
    """The job's lines run in order (apt-get and pip recorded by the shims), as GitLab's runner
    does: one shell, stopping at the first failing line."""
    from agentflow.ci import gitlab_ci, parse_install

    script = write_script(tmp_path / "dev", {"verifier": [verifier_session()]})
    # the base's config names the verifier (verify never takes it from the change or the checkout)
    workspace, head = _pull_request(
        tmp_path, ["true"], f"models:\n  verifier:\n    backend: scripted\n    script: {script}\n"
    )
    import yaml

    job = yaml.safe_load(gitlab_ci(parse_install(f"git+https://gitlab.example.com/t/agentflow@{SHA}")))["agentflow"]
    lines = [line for line in job["before_script"] if not line.startswith("apt-get")] + job["script"]
    env = _github_env(tmp_path, workspace, head)
    for name in [k for k in env if k.startswith("GITHUB_")]:
        del env[name]
    env.update(
        {
            "GITLAB_CI": "true",
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
            "CI_COMMIT_SHA": head,
            **{k: v for k, v in job["variables"].items() if k != "BASE_REF"},
            "BASE_REF": "origin/main",
        }
    )
    step = {"run": "\n".join(lines)}
    result = _run_step(step, workspace, env, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"pip -I -m pip install git+https://gitlab.example.com/t/agentflow@{SHA}" in (tmp_path / "shim.log").read_text()
    )
    assert json.loads((workspace / "gl-code-quality-report.json").read_text()) == []  # open: no issue
    validate_sarif(json.loads((workspace / "agentflow.sarif").read_text()))
    validate_junit((workspace / "agentflow-junit.xml").read_bytes())


def test_the_actions_steps_run_the_checks_and_the_gate_on_a_merge_group(tmp_path):
    import subprocess

    workspace, head = _pull_request(tmp_path, ["test -f src/feature.py"])
    env = _github_env(tmp_path, workspace, head)
    script = write_script(workspace, {"verifier": [verifier_session()]})
    steps = _run_action({"command": "verify", "args": f"--script {script}"}, workspace, env)  # the pull request
    assert steps[-1][1] == 0, steps[-1][2]
    base = git(workspace, "rev-parse", "origin/main")
    git(workspace, "checkout", "-q", "-b", "gh-readonly-queue/main/pr-1", base)
    git(workspace, "-c", "user.name=GitHub", "-c", "user.email=noreply@github.com", "merge", "-q", "--no-ff", head)
    env.update({"GITHUB_EVENT_NAME": "merge_group", "GITHUB_BASE_REF": "", "GITHUB_HEAD_REF": ""})
    env["GITHUB_SHA"] = git(workspace, "rev-parse", "HEAD")
    # the workflow's inputs for the merge group: the queue's base explicitly, the checks only
    steps = _run_action({"command": "verify", "base": base, "args": "--checks-only"}, workspace, env)
    name, code, out = steps[-1]
    assert (name, code) == ("agentflow verify", 0), out
    assert _outputs(tmp_path)[1]["outcome"] == "checks_passed"
    assert "test -f src/feature.py" in (tmp_path / "summary").read_text()
    listed = subprocess.run(
        ["git", "notes", "--ref=agentflow", "list", env["GITHUB_SHA"]], cwd=workspace, capture_output=True
    )
    assert listed.returncode != 0  # no verdict on the merge-group commit: the checks are not an approval
    steps = _run_action({"command": "gate", "base": base}, workspace, env)
    assert steps[-1][:2] == ("agentflow gate", 0), steps[-1][2]  # the merged-in head is approved, the merge clean
    assert _outputs(tmp_path)[2]["outcome"] == "open"
