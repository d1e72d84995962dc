from __future__ import annotations

import subprocess
import sys

from agentflow import __version__


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"agentflow {__version__}"


def test_help_lists_examples(cli):
    result = cli("--help")
    assert result.exit_code == 0
    assert "agentflow build .plans/348-capsule-isolation.md" in result.output


def test_help_names_the_value_of_options_that_take_one_and_nothing_for_flags(cli):
    result = cli("build", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = {row.split()[1]: row.split()[2:] for row in result.output.splitlines() if row.startswith("│ --")}
    assert "<bool>" not in result.output
    assert rows["--dry-run"][0] == "Print"  # a flag: straight to its help
    assert rows["--jobs"][:2] == ["-j", "N"] and rows["--resume"][0] == "RUN"


def test_log_help_says_it_refuses_a_broken_chain(cli):
    """What docs/foundation.md says of `log`: only what the chains vouch for is printed, exit 2 else."""
    result = cli("log", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.replace("│", " ").split())
    assert "Only what the ledger's hash chains vouch for is printed" in text
    assert "(a broken chain) is exit 2 with one line naming the chain and its first bad event" in text
    assert "agentflow log --run r-20261127-a1b2c3" in text


def test_version_and_help_do_not_import_anthropic():
    code = (
        "import sys\n"
        "from agentflow.cli import app\n"
        "from typer.testing import CliRunner\n"
        "CliRunner().invoke(app, ['--help']); CliRunner().invoke(app, ['--version'])\n"
        "print('anthropic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_argument_is_a_usage_error_not_an_internal_one(cli):
    result = cli("show")
    assert result.exit_code == 2
    assert "Missing argument" in result.output
    assert "internal error" not in result.output


def test_a_closed_pipe_stops_quietly(repo):
    """`agentflow log | head -1`: the reader leaves early; no traceback, no 'internal error'."""
    from agentflow.events import RunStarted
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        for n in range(50):
            ledger.append(RunStarted(run_id=f"r-{n}", plan_id=str(n)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentflow", "log"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=repo
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before anything is written
    _, err = proc.communicate()
    assert proc.returncode == 141
    assert b"Traceback" not in err and b"internal error" not in err
