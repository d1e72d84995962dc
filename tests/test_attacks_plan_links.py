"""Plan files that are symbolic links, in a checkout that is a pull request's (CI's ``verify``).

``verify --plan PATH`` resolved the plan's path through links to find its name among the base's
files. A pull request that added ``.plans/50-feature.md`` as a link to the base's past test clean-up
plan (scope ``tests/**``) was judged as that plan, read from the base, so trusted: its scope turned the
deleted test file (``test_deleted``, high) into a medium finding and the approval opened (tested before
the fix), where the same plan text as a new regular file is the change's (its scope softens nothing,
tests/test_attacks_plan_scope.py). A link out of the repository made agentflow (unsandboxed) read a
file of the host. A plan file, or a folder on its way below the repository, that is a link is now
exit 2 naming it (``agentflow.plans.load_plan``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.build_helpers import verifier_session, write_plan, write_script
from tests.helpers import git

TEST = "def test_greet():\n    assert greet() == 'hi'\n"


def _base_with_a_cleanup_plan(repo: Path) -> None:
    (repo / "tests").mkdir()
    (repo / "tests" / "test_app.py").write_text(TEST)
    write_plan(repo, plan_id="9", slug="cleanup", scope=["tests/**"])  # commits the tests too
    git(repo, "checkout", "-q", "-b", "pr")


def _verify(repo: Path, cli, *args: str):
    script = write_script(repo, {"verifier": [verifier_session()]})
    return cli("verify", "--base", "main", "--script", str(script), "--format", "json", *args)


def test_a_plan_linked_to_a_base_plan_does_not_lend_the_change_its_scope(repo: Path, cli) -> None:
    _base_with_a_cleanup_plan(repo)
    os.symlink("9-cleanup.md", repo / ".plans" / "50-feature.md")
    (repo / "tests" / "test_app.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")

    result = _verify(repo, cli, "--plan", ".plans/50-feature.md")

    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert ".plans/50-feature.md: is a symbolic link (to 9-cleanup.md)" in line, line
    assert "replace the link with the plan file itself" in line and "\n" not in line
    assert git(repo, "notes", "--ref=refs/notes/agentflow", "list") == ""  # nothing was verified


def test_a_plan_linked_out_of_the_repository_is_refused(repo: Path, cli, tmp_path: Path) -> None:
    _base_with_a_cleanup_plan(repo)
    outside = tmp_path / "host.md"
    outside.write_text("---\nid: 50\ntitle: A file of the host\n---\nHOST-SECRET-TEXT\n")
    os.symlink(outside, repo / ".plans" / "50-feature.md")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")

    result = _verify(repo, cli, "--plan", ".plans/50-feature.md")

    assert result.exit_code == 2
    assert ".plans/50-feature.md: is a symbolic link" in result.output, result.output
    assert "HOST-SECRET-TEXT" not in result.output


def test_a_plans_folder_that_is_a_link_is_refused_for_a_plan_named_by_id(repo: Path, cli, tmp_path: Path) -> None:
    """The pull request brings ``.plans`` itself as a link (the base has none): ``--plan 50`` read the
    plans of wherever it led."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "50-x.md").write_text("---\nid: 50\ntitle: Elsewhere\n---\n")
    git(repo, "checkout", "-q", "-b", "pr")
    os.symlink(elsewhere, repo / ".plans")
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")

    result = _verify(repo, cli, "--plan", "50")

    assert result.exit_code == 2, result.output
    assert ".plans/50-x.md: is a symbolic link" in result.output or ".plans: is a symbolic link" in result.output


def test_plan_check_reports_a_linked_plan_with_the_others(repo: Path, cli) -> None:
    write_plan(repo, plan_id="9", slug="cleanup", commit=False)
    os.symlink("9-cleanup.md", repo / ".plans" / "10-copy.md")

    result = cli("plan", "check")

    assert result.exit_code == 2
    assert ".plans/10-copy.md: is a symbolic link (to 9-cleanup.md)" in result.output, result.output


def test_a_regular_plan_file_still_verifies(repo: Path, cli) -> None:
    _base_with_a_cleanup_plan(repo)
    (repo / "tests" / "test_app.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "clean up")

    result = _verify(repo, cli, "--plan", ".plans/9-cleanup.md")

    data = json.loads(result.stdout)
    [deleted] = [f for f in data["findings"] if f.get("rule") == "test_deleted"]
    assert deleted["severity"] == "medium" and data["outcome"] == "approved"
