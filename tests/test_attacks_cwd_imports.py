"""Attacks through Python's import path: a module of the change run outside the sandbox.

``python3 -c ...`` and ``python3 -m ...`` put the current directory first on ``sys.path``, and the
steps agentflow writes run in the change's checkout: a pull request that committed ``json.py`` or a
``pip/`` package at its top had its code run, unsandboxed, by

* the composite action's ``python3 -c 'import json, ...'`` after ``verify``, with the step's
  environment: ``AGENTFLOW_SIGNING_KEY`` and ``ANTHROPIC_API_KEY`` (tested before the fix);
* the workflows' and the action's ``python3 -m pip install``, before agentflow is even installed:
  it can install an ``agentflow`` of its own, whose ``gate`` exits 0 and whose ``verify`` gets the
  keys (tested before the fix);
* the git hooks' ``<python> -m agentflow hooks run``: git runs hooks at the top of the work tree, so a
  branch (a builder's) holding ``agentflow/__main__.py`` ran its code as the developer, with every
  secret of their shell, and its answer let the push through (tested before the fix).

Now every such ``python3`` runs isolated (``-I``: no current directory, no ``PYTHON*`` variables),
and the hooks with ``-P`` (no current directory; a ``--user`` install of agentflow still found).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from agentflow.ci import ci_files
from tests.build_helpers import verifier_session, write_script
from tests.gate_helpers import git, plan_branch

ROOT = Path(__file__).resolve().parent.parent
SPEC = "git+https://example.com/t/agentflow@" + "a" * 40
BRANCH = "agentflow/348-capsule-isolation"
HOSTILE = (
    "import os, pathlib\npathlib.Path(os.environ['MARKER']).write_text(os.environ.get('AGENTFLOW_SIGNING_KEY', '-'))\n"
)


def _texts() -> dict[str, str]:
    files = dict(ci_files("github", install=SPEC, fanout=True))
    files.update(ci_files("gitlab", install=SPEC))
    files["action.yml"] = (ROOT / "action.yml").read_text()
    return files


def test_every_python_the_ci_files_start_runs_isolated() -> None:
    for name, text in _texts().items():
        for call in re.findall(r"\bpython3?\s+(?:-\S+\s+)*-[mc]\b", text):
            assert re.match(r"python3?\s+-I\s", call), f"{name}: {call!r}"


def _steps_running_pip(text: str) -> list[str]:
    return [line.strip().removeprefix("- ").removeprefix("run: ") for line in text.splitlines() if "-m pip " in line]


def test_the_pip_install_steps_do_not_import_the_changes_pip(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / "pip").mkdir(parents=True)
    (checkout / "pip" / "__init__.py").write_text(HOSTILE)
    (checkout / "pip" / "__main__.py").write_text(HOSTILE)
    marker = tmp_path / "pwned"
    lines = [line for text in _texts().values() for line in _steps_running_pip(text)]
    assert len(lines) >= 3, lines  # GitHub's, GitLab's, the action's
    for line in lines:
        command = re.sub(r"pip install .*", "pip --version", line)  # the same interpreter and options
        proc = subprocess.run(["bash", "-c", command], cwd=checkout, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "MARKER": str(marker)}, check=False)  # fmt: skip
        assert not marker.exists(), (line, marker.read_text())
        assert proc.returncode == 0 and "pip " in proc.stdout, (line, proc.stderr)


def test_the_actions_outcome_step_does_not_import_the_changes_json(tmp_path: Path) -> None:
    from tests.test_ci import _github_env, _outputs, _pull_request, _run_action

    workspace, head = _pull_request(tmp_path, ["true"])
    (workspace / "json.py").write_text(HOSTILE)  # as the pull request's checkout holds it
    marker = tmp_path / "pwned"
    env = _github_env(tmp_path, workspace, head) | {"MARKER": str(marker), "AGENTFLOW_SIGNING_KEY": "k" * 32}
    script = write_script(workspace, {"verifier": [verifier_session()]})

    steps = _run_action({"command": "verify", "args": f"--script {script}"}, workspace, env)

    assert not marker.exists(), marker.read_text()
    assert steps[-1][:2] == ("agentflow verify", 0), steps[-1][2]
    assert _outputs(tmp_path)[0]["outcome"] == "approved"


def test_a_hook_does_not_run_the_branchs_own_agentflow(repo: Path, cli, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    assert cli("hooks", "install").exit_code == 0
    plan_branch(repo)
    git(repo, "checkout", "-q", BRANCH)
    marker = tmp_path / "pwned"
    (repo / "agentflow").mkdir()
    (repo / "agentflow" / "__init__.py").write_text("")
    (repo / "agentflow" / "__main__.py").write_text(HOSTILE + "raise SystemExit(0)\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a builder's package at the top")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", BRANCH)  # the branch's files now at the top of the checkout

    proc = subprocess.run(["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True,
                          env=_env(marker), check=False)  # fmt: skip

    assert not marker.exists(), "the branch's agentflow ran in the hook"
    assert proc.returncode != 0 and "refusing" in proc.stderr, proc.stderr


def _env(marker: Path) -> dict[str, str]:
    import os

    return {**os.environ, "MARKER": str(marker), "AGENTFLOW_SIGNING_KEY": "k" * 32}


def test_the_hook_scripts_name_the_safe_path_option() -> None:
    from agentflow.hooks import HOOKS, hook_script

    for hook in HOOKS:
        assert " -P -m agentflow hooks run " in hook_script(hook), hook


def test_a_hook_installed_before_says_to_refresh_it(repo: Path, cli, tmp_path: Path) -> None:
    """A hook written by an earlier agentflow still runs Python without -P: when the real agentflow
    answers it, it says so (the hostile case cannot be caught from inside: the branch's code runs)."""
    from agentflow.git import Repo
    from agentflow.hooks import hooks_dir

    assert cli("hooks", "install").exit_code == 0
    hook = hooks_dir(Repo(repo)) / "pre-push"
    hook.write_text(hook.read_text().replace(" -P -m agentflow ", " -m agentflow "))
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))

    proc = subprocess.run(["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False)

    assert "starts Python without -P" in proc.stderr and "agentflow hooks install" in proc.stderr, proc.stderr
    assert cli("hooks", "install").exit_code == 0
    proc = subprocess.run(["git", "push", "origin", "main"], cwd=repo, capture_output=True, text=True, check=False)
    assert "without -P" not in proc.stderr, proc.stderr
