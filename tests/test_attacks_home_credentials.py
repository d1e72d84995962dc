"""Credentials of common tools in the home, which the sandbox keeps readable (toolchains live there).

The sandbox hid the credentials of ssh, the cloud CLIs, docker, npm, PyPI, gh and git, but not those
of other tools a developer or a CI image often has: a sandboxed check (the change's code) read the
tokens of cargo, RubyGems, Terraform Cloud, Vault, hub, glab, rclone, s3cmd, boto, 1Password's CLI,
podman's registry login, Claude Code's account file, and the tokens typed into a shell's or
REPL's history (tested before the fix). They are hidden too;
``sandbox.hide`` adds more.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agentflow.sandbox import CREDENTIALS, Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

SECRET = "tok-0123456789abcdef"
ADDED = (
    ".cargo/credentials.toml",
    ".cargo/credentials",
    ".gem/credentials",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    ".config/hub",
    ".config/glab-cli/config.yml",
    ".config/rclone/rclone.conf",
    ".s3cfg",
    ".boto",
    ".config/op/config",
    ".config/containers/auth.json",
    ".claude.json",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    ".node_repl_history",
)


@pytest.mark.parametrize("relative", ADDED)
def test_a_sandboxed_command_cannot_read_the_credentials_of_common_tools(tmp_path: Path, relative: str) -> None:
    need_tool("bwrap")
    home = tmp_path / "home"
    target = home / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"token = {SECRET}\n")
    (home / ".cargo" / "bin").mkdir(parents=True, exist_ok=True)  # the toolchain itself stays readable
    (home / ".cargo" / "bin" / "tool").write_text("toolchain\n")
    work = tmp_path / "work"
    work.mkdir()
    sandbox = dataclasses.replace(Sandbox.from_config(), home=str(home))

    code, out, _ = run_shell(f"cat {target} 2>&1; cat {home}/.cargo/bin/tool", work, 30, sandbox=sandbox)

    assert SECRET not in out, out
    assert "toolchain" in out, out


def test_the_hidden_list_names_them() -> None:
    named = set(CREDENTIALS)
    assert all(any(r == c or r.startswith(c + "/") for c in named) for r in ADDED), set(ADDED) - named
