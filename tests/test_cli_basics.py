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
