"""Git hooks: real ``git merge`` / ``git commit`` / ``git push`` in temp repos run the installed hooks."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agentflow.git import Repo
from agentflow.hooks import HOOKS, hooks_dir, is_ours
from tests.gate_helpers import add_verdict, commit_file, git, plan_branch

BRANCH = "agentflow/348-capsule-isolation"


def run_git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_install_is_idempotent_and_uninstall_removes(repo, cli):
    assert cli("hooks", "install").exit_code == 0
    directory = hooks_dir(Repo(repo))
    first = {hook: (directory / hook).read_text() for hook in HOOKS}
    assert cli("hooks", "install").exit_code == 0
    assert {hook: (directory / hook).read_text() for hook in HOOKS} == first
    assert not list(directory.glob("*.agentflow-orig"))
    assert all(is_ours(directory / hook) for hook in HOOKS)
    assert cli("hooks", "uninstall").exit_code == 0
    assert not any((directory / hook).exists() for hook in HOOKS)


def test_existing_hook_is_kept_run_first_and_restored(repo, cli):
    directory = hooks_dir(Repo(repo))
    directory.mkdir(parents=True, exist_ok=True)
    original = '#!/bin/sh\necho ran >> "$(git rev-parse --show-toplevel)/.git/own-hook-ran"\nexit 0\n'
    (directory / "pre-commit").write_text(original)
    (directory / "pre-commit").chmod(0o755)
    cli("hooks", "install")
    cli("hooks", "install")
    assert (directory / "pre-commit.agentflow-orig").read_text() == original
    commit_file_with_hooks(repo, "a.txt", "a\n")
    assert (repo / ".git" / "own-hook-ran").read_text() == "ran\n"
    cli("hooks", "uninstall")
    assert (directory / "pre-commit").read_text() == original
    assert not (directory / "pre-commit.agentflow-orig").exists()


def commit_file_with_hooks(root: Path, path: str, content: str) -> None:
    (root / path).write_text(content)
    git(root, "add", path)
    proc = run_git(root, "commit", "-q", "-m", f"add {path}")
    assert proc.returncode == 0, proc.stderr


def test_hooks_block_an_unapproved_merge(repo, cli):
    plan_branch(repo)
    cli("hooks", "install")
    main_before = git(repo, "rev-parse", "main")
    proc = run_git(repo, "merge", "--no-ff", "--no-edit", BRANCH)
    assert proc.returncode != 0
    assert "refusing" in proc.stderr and "no verdict" in proc.stderr
    assert git(repo, "rev-parse", "main") == main_before
    # concluding the stopped merge with `git commit` is refused too (pre-commit during a merge)
    proc = run_git(repo, "commit", "--no-edit")
    assert proc.returncode != 0 and "refusing" in proc.stderr
    assert git(repo, "rev-parse", "main") == main_before
    git(repo, "merge", "--abort")


def test_hooks_allow_an_approved_merge(repo, cli):
    head = plan_branch(repo)
    add_verdict(repo, BRANCH)
    cli("hooks", "install")
    proc = run_git(repo, "merge", "--no-ff", "--no-edit", BRANCH)
    assert proc.returncode == 0, proc.stderr
    assert git(repo, "rev-parse", "main^2") == head


def test_hooks_block_a_merge_of_stale_content(repo, cli):
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    git(repo, "checkout", "-q", BRANCH)
    commit_file(repo, "src/app.py", "print('sneaky')\n")
    git(repo, "checkout", "-q", "main")
    cli("hooks", "install")
    proc = run_git(repo, "merge", "--no-ff", "--no-edit", BRANCH)
    assert proc.returncode != 0 and "stale" in proc.stderr
    git(repo, "merge", "--abort")


def test_merges_into_unprotected_branches_are_not_checked(repo, cli):
    plan_branch(repo)
    cli("hooks", "install")
    git(repo, "checkout", "-q", "-b", "scratch")
    proc = run_git(repo, "merge", "--no-ff", "--no-edit", BRANCH)
    assert proc.returncode == 0, proc.stderr


def test_pre_push_refuses_unapproved_content_on_protected_branches(repo, cli, tmp_path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    cli("hooks", "install")
    plan_branch(repo)
    # pushing the plan branch itself is fine: it is not protected
    assert run_git(repo, "push", "-q", "origin", BRANCH).returncode == 0
    # an unapproved fast-forward of main is refused
    git(repo, "merge", "-q", "--ff-only", BRANCH)
    proc = run_git(repo, "push", "origin", "main")
    assert proc.returncode != 0 and "refusing" in proc.stderr
    # once approved (same tree), the push goes through
    add_verdict(repo, "main")
    proc = run_git(repo, "push", "origin", "main")
    assert proc.returncode == 0, proc.stderr


def test_pre_push_accepts_a_clean_merge_of_an_approved_branch(repo, cli, tmp_path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    commit_file(repo, "docs/other.md", "main moved\n")
    git(repo, "push", "-q", "origin", "main")
    assert cli("merge", BRANCH).exit_code == 0
    cli("hooks", "install")
    proc = run_git(repo, "push", "origin", "main")
    assert proc.returncode == 0, proc.stderr
    # a merge commit with an edit smuggled in is refused
    (repo / "src/app.py").write_text("print('evil')\n")
    git(repo, "commit", "-q", "-a", "--amend", "--no-edit", "--no-verify")
    proc = run_git(repo, "push", "--force", "origin", "main")
    assert proc.returncode != 0 and "clean merge" in proc.stderr


def test_pre_push_checks_every_commit_the_push_adds(repo, cli, tmp_path):
    """An unapproved direct commit hidden behind an approved merge is refused."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    plan_branch(repo)
    add_verdict(repo, BRANCH)
    sneaky = commit_file(repo, "docs/sneaky.md", "unreviewed\n", "direct commit")
    assert cli("merge", BRANCH).exit_code == 0
    cli("hooks", "install")
    proc = run_git(repo, "push", "origin", "main")
    assert proc.returncode != 0
    assert f"pushing {sneaky[:12]}" in proc.stderr
    assert git(repo, "ls-remote", str(remote), "refs/heads/main").split()[0] != git(repo, "rev-parse", "main")


def test_install_honours_core_hooks_path(repo, cli):
    git(repo, "config", "core.hooksPath", ".githooks")
    result = cli("hooks", "install")
    assert result.exit_code == 0, result.output
    assert all(is_ours(repo / ".githooks" / hook) for hook in HOOKS)
    assert not (repo / ".git" / "hooks" / "pre-push").exists()


def test_agentflow_merge_passes_its_own_hooks(repo, cli):
    head = plan_branch(repo)
    add_verdict(repo, BRANCH)
    cli("hooks", "install")
    result = cli("merge", BRANCH)
    assert result.exit_code == 0, result.output
    assert git(repo, "rev-parse", "main^2") == head


def test_pre_push_lets_plan_only_commits_through_and_says_what_to_do_otherwise(repo, cli, tmp_path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    cli("hooks", "install")
    assert cli("plan", "new", "Add rate limiting").exit_code == 0
    git(repo, "add", ".plans")
    git(repo, "commit", "-q", "-m", "plan: rate limiting")
    proc = run_git(repo, "push", "origin", "main")
    assert proc.returncode == 0, proc.stderr  # plans are written on main: the hook lets them through
    # a plan file committed together with code is a change to verify, and the hint says what to do
    (repo / ".plans" / "9-x.md").write_text("---\nid: 9\ntitle: X\n---\n")
    git(repo, "add", ".plans")
    commit_file(repo, "src/app.py", "print('unverified')\n")
    proc = run_git(repo, "push", "origin", "main")
    assert proc.returncode != 0 and "refusing" in proc.stderr
    assert "commit plan files on their own" in proc.stderr and "`agentflow merge PLAN`" in proc.stderr
