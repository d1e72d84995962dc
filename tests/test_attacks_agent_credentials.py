"""Logins of other coding agents and developer CLIs in the home, and more shells' histories.

A developer who runs agentflow often has other agents' and tools' logins in the home, which the
sandbox kept readable: a sandboxed command (a builder's, whose output goes to the model; a check's)
read GitHub Copilot's OAuth token (``~/.config/github-copilot/hosts.json``), the Codex and Gemini
CLIs' logins, Continue's and aider's model keys, Cursor's MCP servers' tokens, the Stripe, Sentry,
ngrok, Wrangler, Vercel, Netlify, Supabase, Railway, MinIO, Scaleway and Linode CLIs' tokens,
Poetry's and bun's registry logins, dbt's and Snowflake's database passwords, and fish's and atuin's
shell histories (tested before the fix). They are hidden like the other credentials."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

SECRET = "ghu_0123456789abcdefABCDEF0123456789abcd"
ADDED = (
    ".config/github-copilot/hosts.json",
    ".codex/auth.json",
    ".gemini/oauth_creds.json",
    ".continue/config.json",
    ".aider.conf.yml",
    ".cursor/mcp.json",
    ".config/stripe/config.toml",
    ".sentryclirc",
    ".config/ngrok/ngrok.yml",
    ".config/.wrangler/config/default.toml",
    ".local/share/com.vercel.cli/auth.json",
    ".supabase/access-token",
    ".config/pypoetry/auth.toml",
    ".bunfig.toml",
    ".dbt/profiles.yml",
    ".snowflake/connections.toml",
    ".mc/config.json",
    ".config/scw/config.yaml",
    ".local/share/fish/fish_history",
    ".local/share/atuin/history.db",
)


@pytest.mark.parametrize("relative", ADDED)
def test_a_sandboxed_command_cannot_read_other_agents_and_clis_logins(tmp_path: Path, relative: str) -> None:
    need_tool("bwrap")
    home = tmp_path / "home"
    target = home / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"token = {SECRET}\n")
    (home / ".config" / "tool.conf").parent.mkdir(parents=True, exist_ok=True)
    (home / ".config" / "tool.conf").write_text("a tool's settings\n")  # the rest stays readable
    work = tmp_path / "work"
    work.mkdir()
    sandbox = dataclasses.replace(Sandbox.from_config(), home=str(home))

    _code, out, _ = run_shell(f"cat {target} 2>&1; cat {home}/.config/tool.conf", work, 30, sandbox=sandbox)

    assert SECRET not in out, out
    assert "a tool's settings" in out, out
