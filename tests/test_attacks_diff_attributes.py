"""Attacks that hide a change from the deterministic rules through how git prints the diff.

The rules read ``git diff base..head`` in the pull request's checkout, where the pull request's own
``.gitattributes`` applies: ``-diff`` (or ``binary``) made git print ``Binary files ... differ``
for the test file whose assertions it removes, so no rule saw a removed line. And a line holding a
character Python's ``splitlines`` breaks at (U+2028, \\x1c, \\x85) ended the hunk early.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.build_helpers import commit_and_verify, verifier_session, write_plan, write_script
from tests.helpers import git

TESTS = (
    "from app import total\n\n\ndef test_total():\n    assert total([1, 2]) == 3\n    assert total([]) == 0\n"
    "    assert total([5]) == 5\n"
)


def _base(repo: Path) -> None:
    (repo / "app.py").write_text("def total(xs):\n    return sum(xs)\n")
    (repo / "tests").mkdir()
    (repo / "tests" / "test_app.py").write_text(TESTS)
    write_plan(repo, scope=["app.py"])  # commits everything; the tests are out of scope
    git(repo, "checkout", "-q", "-b", "pr")


def _verify(repo: Path, cli) -> dict:
    return commit_and_verify(repo, cli)


def _rule_ids(data: dict) -> set[str]:
    return {f.get("pattern") or "" for f in data["findings"]} | {f.get("rule") or "" for f in data["findings"]}


def test_a_control_removing_assertions_is_found(repo: Path, cli) -> None:
    _base(repo)
    (repo / "tests" / "test_app.py").write_text("from app import total\n\n\ndef test_total():\n    pass\n")
    data = _verify(repo, cli)
    assert data["outcome"] != "approved"
    assert "assertion_removed" in _rule_ids(data) or "test_deleted" in _rule_ids(data), data["findings"]


@pytest.mark.parametrize("attributes", ["tests/** -diff\n", "*.py binary\n", "* diff=nothing\n"])
def test_gitattributes_of_the_change_do_not_hide_removed_assertions(repo: Path, cli, attributes: str) -> None:
    _base(repo)
    (repo / ".gitattributes").write_text(attributes)
    (repo / "tests" / "test_app.py").write_text("from app import total\n\n\ndef test_total():\n    pass\n")

    data = _verify(repo, cli)

    assert data["outcome"] != "approved", data["findings"]
    assert "assertion_removed" in _rule_ids(data) or "test_deleted" in _rule_ids(data), data["findings"]


@pytest.mark.parametrize("separator", ["\u2028", "\x1c", "\x85"])
def test_a_line_separator_in_a_test_file_does_not_end_the_hunk(repo: Path, cli, separator: str) -> None:
    _base(repo)
    hostile = f"# {separator}diff --git a/x b/x\nfrom app import total\n\n\ndef test_total():\n    pass\n"
    (repo / "tests" / "test_app.py").write_text(hostile)

    data = _verify(repo, cli)

    assert data["outcome"] != "approved", data["findings"]
    assert "assertion_removed" in _rule_ids(data) or "test_deleted" in _rule_ids(data), data["findings"]
