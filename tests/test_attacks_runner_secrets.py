"""Credentials of the machine a job runs on, outside the home and the checkout.

The sandbox hid the home's credentials, the secrets at the top of the user's checkout and (as root)
root-only files, but a CI job's platform and runner keep credentials elsewhere, readable by the job's
user, and so by every sandboxed process (the builder's commands, whose output goes to the model, and
the change's checks): tested before the fix, each of these was read.

* Secrets a platform mounts for the job: Kubernetes' service account token and the cloud identity
  tokens beside it (``/var/run/secrets/...``, world-readable by default), Docker's and Compose's
  secrets (``/run/secrets/<name>``), systemd's credentials (``/run/credentials/<unit>/``).
* A runner's own credentials in the folders around the checkout: a self-hosted GitHub Actions
  runner checks out below its own folder (``actions-runner/_work/<repo>/<repo>``), which holds its
  RSA private key and registration (``.credentials_rsaparams``, ``.credentials``, ``.runner``: a
  process that reads them can take the runner's jobs, and their secrets); Jenkins builds in
  ``$JENKINS_HOME/workspace/<job>``, beside ``secrets/`` (the master key that decrypts every stored
  credential) and ``credentials.xml``; GitLab Runner writes file-type CI variables (a kubeconfig, a
  deploy key) to ``<project dir>.tmp/`` beside the checkout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentflow import sandbox as sandbox_module
from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import git, need_tool

SECRET = "eyJhbGciOiJSUzI1NiJ9.runner-secret-0123456789"


def _checkout(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "README.md").write_text("# sample\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def _worktree(checkout: Path) -> Path:
    worktree = checkout / ".agentflow" / "worktrees" / "wt"
    git(checkout, "worktree", "add", "-q", "--detach", str(worktree))
    return worktree


def _read(paths: list[Path], worktree: Path, readable: list[Path]) -> str:
    command = " ".join(f"cat {p} 2>&1;" for p in paths) + " cat README.md; git log --oneline -1"
    _code, out, _ = run_shell(command, worktree, 30, sandbox=Sandbox.from_config(), readable=readable)
    return out


@pytest.fixture
def platform_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A secret where Kubernetes and Docker mount them, in a stand-in of ``/run`` (and of ``/var/run``, a
    link to it): a real ``/run/secrets`` made and removed by the test failed other runs' sandboxes on the
    machine (bwrap could not mount over the folder once it was gone). The token and the stand-in's path
    through the link."""
    run, var = tmp_path / "run", tmp_path / "var"
    folder = run / "secrets" / "agentflow-test" / "serviceaccount"
    folder.mkdir(parents=True)
    (folder / "token").write_text(SECRET)
    (folder / "token").chmod(0o644)
    var.mkdir()
    (var / "run").symlink_to(run)
    stand_ins = tuple(str(tmp_path / p.lstrip("/")) for p in sandbox_module.PLATFORM_SECRETS)
    assert stand_ins[:2] == (str(run / "secrets"), str(var / "run" / "secrets"))
    monkeypatch.setattr(sandbox_module, "PLATFORM_SECRETS", stand_ins)
    return folder / "token", var / "run" / "secrets" / "agentflow-test" / "serviceaccount" / "token"


def test_platform_secrets_are_hidden(repo: Path, tmp_path: Path, platform_secret: tuple[Path, Path]) -> None:
    need_tool("bwrap")
    worktree = _worktree(repo)
    token, via_var_run = platform_secret

    out = _read([token, via_var_run], worktree, [tmp_path / "run", tmp_path / "var"])  # as / shows them

    assert SECRET not in out, out
    assert "# sample" in out and "initial" in out, out


def test_a_github_runners_key_around_the_checkout_is_hidden(tmp_path: Path) -> None:
    need_tool("bwrap")
    runner = tmp_path / "actions-runner"
    checkout = _checkout(runner / "_work" / "app" / "app")
    files = [runner / name for name in (".credentials", ".credentials_rsaparams", ".runner", ".env")]
    for path in files:
        path.write_text(SECRET)

    out = _read(files, _worktree(checkout), [runner])  # the runner's folder is in sight (a home's)

    assert SECRET not in out, out
    assert "# sample" in out and "initial" in out, out
    assert all(path.read_text() == SECRET for path in files)


def test_jenkins_secrets_beside_the_workspace_are_hidden(tmp_path: Path) -> None:
    need_tool("bwrap")
    home = tmp_path / "jenkins"
    checkout = _checkout(home / "workspace" / "app")
    (home / "secrets").mkdir()
    files = [home / "secrets" / "master.key", home / "credentials.xml"]
    for path in files:
        path.write_text(SECRET)

    out = _read(files, _worktree(checkout), [home])

    assert SECRET not in out, out
    assert "# sample" in out, out


def test_gitlab_file_variables_beside_the_checkout_are_hidden(tmp_path: Path) -> None:
    need_tool("bwrap")
    builds = tmp_path / "builds"
    checkout = _checkout(builds / "group" / "app")
    variables = builds / "group" / "app.tmp"
    variables.mkdir()
    (variables / "KUBECONFIG").write_text(SECRET)

    out = _read([variables / "KUBECONFIG"], _worktree(checkout), [builds])

    assert SECRET not in out, out
    assert "# sample" in out, out


def test_a_checkout_inside_a_folder_named_secrets_stays_readable(tmp_path: Path) -> None:
    """A folder around the checkout is never hidden when the checkout (or the worktree) is in it."""
    need_tool("bwrap")
    outer = tmp_path / "secrets"
    checkout = _checkout(outer / "app")

    out = _read([], _worktree(checkout), [outer])

    assert "# sample" in out and "initial" in out, out
