"""A model's regular expression in ``search_files`` cannot hang or crash the orchestrator.

The builder's and the verifier's ``search_files`` compiled and matched the model's pattern with
Python's ``re`` in the orchestrator's own process, where no session time limit can interrupt it (the
matching holds the GIL): ``(a+)+$`` against a line of forty ``a`` and a ``!`` hung the run for good
(tested before the fix: the test process had to be killed), and a pattern nested a thousand groups
deep or with a repetition count above ``re``'s limit raised ``RecursionError`` / ``OverflowError``
out of the tool call, which the toolbox does not turn into a tool error. The search now runs in a
process of its own with no environment, killed after ``SEARCH_TIMEOUT`` seconds or at the session's
deadline, whichever is first; every failure is a tool error the model can read.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agentflow import tools as tools_module
from agentflow.sandbox import Sandbox
from agentflow.tools import Toolbox

HOSTILE = "(a+)+$"


def toolbox(root: Path, **kwargs) -> Toolbox:
    return Toolbox(root=root, role="builder", sandbox=Sandbox.off(), **kwargs)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "long.txt").write_text("a" * 40 + "!\n")
    (tmp_path / "code.py").write_text("def main():\n    return 42\n")
    return tmp_path


def test_a_backtracking_pattern_is_a_tool_error_not_a_hung_run(tree: Path, monkeypatch) -> None:
    monkeypatch.setattr(tools_module, "SEARCH_TIMEOUT", 2.0, raising=False)
    box = toolbox(tree)

    out = box.call("search_files", {"pattern": HOSTILE})

    assert out.is_error, out.content
    assert "took longer than" in out.content and "simplify the pattern" in out.content, out.content
    after = box.call("search_files", {"pattern": r"return \d+"})  # the toolbox still works
    assert not after.is_error and "code.py:2:     return 42" in after.content, after.content


def test_the_sessions_deadline_bounds_a_search(tree: Path, monkeypatch) -> None:
    monkeypatch.setattr(tools_module, "SEARCH_TIMEOUT", 3600.0, raising=False)
    box = toolbox(tree, deadline=time.monotonic() + 2.0)

    out = box.call("search_files", {"pattern": HOSTILE})

    assert out.is_error and "took longer than" in out.content, out.content
    late = toolbox(tree, deadline=time.monotonic() - 1).call("search_files", {"pattern": "main"})
    assert late.is_error and "time limit" in late.content, late.content


@pytest.mark.parametrize(
    "pattern",
    ["(" * 1000 + ")" * 1000, "(?:" * 5000 + "x" + ")" * 5000, "a{99999999999}", "[", "(?P<x>a)(?P=y)"],
)
def test_a_pattern_re_cannot_compile_is_a_tool_error(tree: Path, pattern: str) -> None:
    out = toolbox(tree).call("search_files", {"pattern": pattern})

    assert out.is_error and "invalid regular expression" in out.content, out.content


def test_a_search_still_finds_lines_by_glob_and_stops_at_the_limit(tree: Path) -> None:
    (tree / "many.txt").write_text("hit\n" * 300)
    box = toolbox(tree)

    found = box.call("search_files", {"pattern": "main|42", "glob": "*.py"})
    many = box.call("search_files", {"pattern": "^hit$"})
    none = box.call("search_files", {"pattern": "nothing-here"})

    assert found.content == "code.py:1: def main():\ncode.py:2:     return 42", found.content
    assert many.content.count("many.txt:") == tools_module.MAX_MATCHES and "stopped after" in many.content
    assert none.content == "(no matches)"


def test_the_search_process_gets_no_environment(tree: Path, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", "signing-secret-0123456789abcdef0123456789")
    seen: list[dict] = []
    real = subprocess.run

    def spy(*args, **kwargs):
        seen.append(kwargs.get("env"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tools_module.subprocess, "run", spy)

    out = toolbox(tree).call("search_files", {"pattern": "main"})

    assert "code.py:1:" in out.content, out.content
    assert seen == [{}], seen
