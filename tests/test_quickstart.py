"""The README's Quickstart: two lines that work on a fresh machine, the second one what CI runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^## Quickstart\n.*?^```sh\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has a ```sh block under ## Quickstart"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_both_lines_make_a_virtual_environment_before_pip() -> None:
    # Debian's and Ubuntu's system Python refuse `pip install` outside a virtual environment
    # (PEP 668, "externally-managed-environment"): each line must make and enter one first.
    demo, tests = quickstart_lines()
    for line in (demo, tests):
        steps = [step.strip() for step in line.split("&&")]
        assert steps[0] == "python3 -m venv .venv" and steps[1] == ". .venv/bin/activate", line
        assert any(step.startswith("python3 -m pip install") for step in steps[2:]), line
    assert demo.endswith("python3 -m agentflow demo")
    assert tests.endswith("python3 -m pytest -q")


def test_ci_runs_exactly_the_readme_test_line() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    awk = re.search(r"test_line=\$\(awk '(.*?)' README.md\)", script)
    assert awk, ".ci/run reads its test line from README.md with awk"
    picked = subprocess.run(["awk", awk.group(1), str(ROOT / "README.md")], capture_output=True, text=True, check=True)
    assert picked.stdout.strip() == quickstart_lines()[1]
    assert 'eval "$test_line"' in script
