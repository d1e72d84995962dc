"""A check or a builder's command that prints without end.

``run_shell`` (every check, every ``run_command`` of a builder or verifier, the ``command`` backend's
agent) held a command's whole output in the orchestrator's memory (``communicate``) until the
command ended or its timeout (600 s for a check) killed it, although every caller keeps only a tail
or a truncated head and tail. A pull request whose test prints in a loop (``yes``) grew the
orchestrator by about a gigabyte a second: the kernel's OOM killer then ended the run (or the
developer's other processes). Tested before the fix: the 60 MB below came back whole. Now the first
and last 4 MiB are kept and the output says how much was not.
"""

from __future__ import annotations

import os
from pathlib import Path

from agentflow.checks import run_check
from agentflow.sandbox import Sandbox
from agentflow.tools import KEPT_OUTPUT, run_shell

FLOOD = "head -c 60000000 /dev/zero | tr '\\0' a; echo; echo LAST-LINE"


def test_a_flood_of_output_is_kept_to_its_head_and_tail(tmp_path: Path) -> None:
    code, output, _ = run_shell(FLOOD, tmp_path, 120, sandbox=Sandbox.from_config())

    assert code == 0
    assert len(output) < 2 * KEPT_OUTPUT + 200, len(output)
    assert output.startswith("aaaa") and output.rstrip().endswith("LAST-LINE")
    assert "bytes of output not kept]" in output


def test_a_check_that_floods_still_reports_its_last_lines(tmp_path: Path) -> None:
    result = run_check(FLOOD, tmp_path, 120, sandbox=Sandbox.from_config())

    assert result.passed and result.output_tail.rstrip().endswith("LAST-LINE")


def test_a_flooding_command_that_times_out_is_kept_bounded_too(tmp_path: Path) -> None:
    code, output, _ = run_shell(
        "head -c 200000000 /dev/zero | tr '\\0' b; sleep 60", tmp_path, 5, sandbox=Sandbox.from_config()
    )

    assert code is None  # killed at its timeout
    assert len(output) < 2 * KEPT_OUTPUT + 200, len(output)


def test_short_output_is_whole(tmp_path: Path) -> None:
    code, output, _ = run_shell("printf 'one\\ntwo\\n'; exit 3", tmp_path, 30, sandbox=Sandbox.from_config())

    assert (code, output) == (3, "one\ntwo\n")


def test_read_file_reads_only_what_it_returns(tmp_path: Path) -> None:
    """``read_file`` read the whole file into the orchestrator's memory before it looked at it: a file
    a command made (``truncate -s 64G big.log``: no disk used) took 64 GB. Now it reads what it can
    return; ``edit_file`` refuses a file over 64 MiB."""
    import resource

    from agentflow.tools import Toolbox

    big = tmp_path / "big.log"
    with open(big, "w") as handle:
        handle.write("log line\n" * 1000)
    os.truncate(big, 64 << 30)  # sparse: 64 GB long, nothing on the disk
    box = Toolbox(root=tmp_path, role="builder")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, hard))  # the old read fails here instead of swapping
    try:
        read = box.call("read_file", {"path": "big.log"}).content
        edit = box.call("edit_file", {"path": "big.log", "old_text": "log", "new_text": "x"}).content
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    assert "[... truncated: the file has more than" in read, read[-200:]
    assert "at most 64 MiB" in edit, edit[:200]
