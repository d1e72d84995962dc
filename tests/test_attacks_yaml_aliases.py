"""YAML aliases in the files a pull request brings: its ``agentflow.yaml`` and a plan new in it.

``gate`` and ``status`` read the checkout's ``agentflow.yaml`` (in CI the pull request's), and
``verify`` reads a plan the base lacks from the head. YAML lets a document name a node once and
repeat it by alias: nine anchors of nine aliases each (``a1: &a1 [*a0, *a0, ...]``) stand for 387
million values, which agentflow walked one by one (tested before the fix: ``agentflow gate`` still
running after a minute at 3.4 GB, until the job's memory ran out), and an alias back to its own anchor
(``&a [y, *a]``) ended ``gate`` with an internal error (``RecursionError``, exit 3). A document that
stands for more than ``agentflow.yamlsrc.MAX_NODES`` values is now malformed YAML: exit 2 naming the
file. Anchors and aliases within that (a merge key ``<<: *defaults``) read as before. A config nested
thousands deep (``[[[[...]]]]``, in YAML or in ``pyproject.toml``) was an internal error too; it is
exit 2 naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gate_helpers import commit_file
from tests.helpers import git

EXPANDED = "once its aliases are expanded"


def _bomb(levels: int = 7) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "events:\n  required:\n" + "".join(f"    {line}\n" for line in lines)


@pytest.mark.parametrize("config", [_bomb(), "events:\n  required:\n    x: &a [y, *a]\n"])
def test_a_checkout_config_of_aliases_is_refused_by_the_gate_and_status(repo: Path, cli, config: str) -> None:
    git(repo, "checkout", "-q", "-b", "pr")
    commit_file(repo, "agentflow.yaml", config, "pr: config")

    for command in (("gate", "HEAD", "--base", "main"), ("status",)):
        result = cli(*command)

        assert result.exit_code == 2, (command, result.output)
        assert "agentflow.yaml:1" in result.stderr and EXPANDED in result.stderr, result.stderr


def test_a_plan_of_aliases_is_refused(repo: Path, cli) -> None:
    front = _bomb().replace("events:\n  required:\n", "x:\n")
    (repo / ".plans").mkdir()
    (repo / ".plans" / "1-x.md").write_text(f"---\nid: 1\ntitle: T\n{front}---\nBody.\n")

    result = cli("plan", "check")

    assert result.exit_code == 2, result.output
    assert ".plans/1-x.md" in result.output and EXPANDED in result.output, result.output


def test_a_few_aliases_still_read(repo: Path, cli) -> None:
    commit_file(
        repo,
        "agentflow.yaml",
        "models:\n  builder: &m {backend: anthropic, model: claude-x}\n  verifier: *m\n",
        "config with an anchor",
    )

    result = cli("status")

    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("agentflow.yaml", "x: " + "[" * 50_000 + "]" * 50_000 + "\n"),
        ("pyproject.toml", "[tool.agentflow]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n"),
    ],
)
def test_a_config_nested_thousands_deep_is_exit_2_naming_it(repo: Path, cli, name: str, text: str) -> None:
    """Parsed recursively, such a file ended ``gate`` with an internal error (``RecursionError``, exit 3)."""
    git(repo, "checkout", "-q", "-b", "pr")
    commit_file(repo, name, text, "pr: config")

    result = cli("gate", "HEAD", "--base", "main")

    assert result.exit_code == 2, result.output
    assert f"{name}" in result.stderr and "nested too deep" in result.stderr, result.stderr
