"""Attacks on the diff budget's cut: the verifier approves a diff it was shown only part of.

The budget is shared per file (``agentflow.diffbudget``), so churn in a few large files cannot push a
small file out. But the share is the budget over the number of files, which the change decides: a
thousand generated files of 190 characters each (191k characters) left each file, the payload's
300-character one among them, 79 characters, less than its own marker: the verifier's diff held no
line of the payload, the prompt only asked the verifier to read 1,001 files, and it approved (tested
before the fix). A cut is now a ``diff_cut`` finding, high when a file other than a lock file, a
snapshot or a data table is cut (``agentflow.rules.budget``). The marker also named the wrong file
for a path holding `` b/`` (``src/app.py b/README.md`` was "README.md").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow.diffbudget import fit
from agentflow.orchestration import MAX_DIFF_CHARS
from agentflow.rules import cut_findings
from tests.build_helpers import commit_and_verify, first_prompt, verdict, verifier_session, write_plan, write_script
from tests.helpers import git

PAYLOAD = "PAYLOAD-c41a exfiltrate()"


def _verify(repo: Path, cli, write, session: list | None = None) -> dict:
    (repo / "app.py").write_text("def total(xs):\n    return sum(xs)\n")
    write_plan(repo)
    git(repo, "checkout", "-q", "-b", "pr")
    write(repo)
    return commit_and_verify(repo, cli, session)


def _cut(data: dict) -> list[dict]:
    return [f for f in data["findings"] if f.get("rule") == "diff_cut"]


def _many_small_files(repo: Path) -> None:
    (repo / "fixtures").mkdir()
    for i in range(1000):
        (repo / "fixtures" / f"case{i:04}.txt").write_text("x" * 60 + "\n")
    (repo / "app.py").write_text(f"def total(xs):\n    return sum(xs)  # {PAYLOAD}\n")


def test_a_payload_cut_among_many_small_files_is_not_approved(repo: Path, cli) -> None:
    data = _verify(repo, cli, _many_small_files)

    assert PAYLOAD not in first_prompt(repo, "verifier", 1)  # the share is smaller than the file
    assert data["outcome"] != "approved", data["findings"]
    [found] = _cut(data)
    assert found["severity"] == "high" and "1001 file(s) were cut" in found["message"], found


def test_only_a_lock_file_cut_is_recorded_without_blocking(repo: Path, cli) -> None:
    def churn(repo: Path) -> None:
        lines = "".join(f'    "dep-{i}": "1.0.{i}",\n' for i in range(6000))
        (repo / "package-lock.json").write_text("{\n" + lines + "}\n")

    data = _verify(repo, cli, churn)

    assert data["outcome"] == "approved", data["findings"]
    [found] = _cut(data)
    assert found["severity"] == "medium" and found["file"] == "package-lock.json", found


def test_a_diff_within_the_budget_has_no_cut_finding(repo: Path, cli) -> None:
    data = _verify(repo, cli, lambda r: (r / "app.py").write_text("def total(xs):\n    return sum(list(xs))\n"))

    assert data["outcome"] == "approved", data["findings"]
    assert _cut(data) == []
    assert cut_findings("", MAX_DIFF_CHARS) == []


def test_the_marker_names_a_file_whose_path_holds_b_slash() -> None:
    path = "src/app.py b/README.md"
    big = f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1 @@\n"
    big += "+x\n" * 50_000
    small = "diff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-a\n+b\n"

    out, cut = fit(small + big, 1000)

    assert cut == [path]
    assert f"the diff of {path} was cut here" in out


def test_an_added_line_that_reads_like_a_header_names_nothing() -> None:
    """``+++ b/other`` inside a hunk is an added line ``++ b/other``, not the file's name."""
    hunk = "".join(f"+line {i}\n" for i in range(5000)) + "+++ b/other.py\n"
    diff = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -0,0 +1,5001 @@\n" + hunk

    assert fit(diff, 1000)[1] == ["x.py"]


def _reads(*paths: str) -> list:
    """A verifier session that reads ``paths`` with ``read_file``, then approves."""
    calls = [{"name": "read_file", "input": {"path": path}} for path in paths]
    return [{"text": "reading", "tool_calls": calls}, {"tool_calls": [{"name": "submit_verdict", "input": verdict()}]}]


def _one_big_file(defs: int):
    def write(repo: Path) -> None:
        (repo / "app.py").write_text("".join(f"def f{i}():\n    return {i}  # {PAYLOAD}\n\n\n" for i in range(defs)))

    return write


def test_a_cut_file_the_verifier_read_whole_counts_as_shown(repo: Path, cli) -> None:
    """The cut asks the verifier to read the rest; one that did (``read_file``, the whole file as
    committed) was shown every line, and its approval stands."""
    data = _verify(repo, cli, _one_big_file(1500), _reads("app.py"))

    assert data["outcome"] == "approved", data["findings"]
    assert _cut(data) == []


@pytest.mark.parametrize(
    ("defs", "reads"),
    [(1500, ("README.md", "./nothing.py")), (2400, ("app.py",))],
    ids=["other files read", "read truncated"],
)
def test_a_cut_file_read_in_part_or_not_at_all_still_blocks(repo: Path, cli, defs: int, reads: tuple) -> None:
    """Other files read, or the cut file truncated by ``read_file`` (over its 100,000 characters):
    the finding stands."""
    data = _verify(repo, cli, _one_big_file(defs), _reads(*reads))

    assert data["outcome"] != "approved", data["findings"]
    [found] = _cut(data)
    assert found["severity"] == "high" and found["file"] == "app.py", found
