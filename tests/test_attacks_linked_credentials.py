"""Credentials kept as symbolic links (dotfiles managed elsewhere, ``stow``; a Kubernetes secret's
``..data`` link; a key file that is a link).

The sandbox hid a credential by mounting ``/dev/null`` (or an empty tmpfs) over its path, and bwrap
cannot mount over a link whose target it resolves outside the new root: every sandboxed command of a
user with ``~/.npmrc -> dotfiles/npmrc`` failed with ``bwrap: Can't create file at ~/.npmrc`` (tested
before the fix), which pushes a user to ``sandbox: {mode: off}``. What a link leads to is hidden
instead: the sandbox starts, and neither the link nor its target shows the secret."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

SECRET = "npm_0123456789abcdefABCDEF0123456789ab"


def test_linked_credentials_are_hidden_and_the_sandbox_starts(tmp_path: Path, monkeypatch) -> None:
    need_tool("bwrap")
    home = tmp_path / "home"
    dotfiles = home / "dotfiles"
    (dotfiles / "gh").mkdir(parents=True)
    (dotfiles / "npmrc").write_text(f"//registry.npmjs.org/:_authToken={SECRET}\n")
    (dotfiles / "gh" / "hosts.yml").write_text(f"oauth_token: {SECRET}\n")
    (dotfiles / "key").write_text(f"{SECRET}\n")
    (dotfiles / "vimrc").write_text("set number\n")
    (home / ".npmrc").symlink_to(dotfiles / "npmrc")
    (home / ".config").mkdir()
    (home / ".config" / "gh").symlink_to(dotfiles / "gh")
    (home / "agentflow.key").symlink_to(dotfiles / "key")
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY_FILE", str(home / "agentflow.key"))
    work = tmp_path / "work"
    work.mkdir()
    sandbox = dataclasses.replace(Sandbox.from_config(), home=str(home))
    paths = [home / ".npmrc", dotfiles / "npmrc", home / ".config/gh/hosts.yml", dotfiles / "gh/hosts.yml"]
    paths += [home / "agentflow.key", dotfiles / "key"]

    code, out, _ = run_shell(
        " ".join(f"cat {p} 2>/dev/null;" for p in paths) + f" cat {dotfiles}/vimrc", work, 30, sandbox=sandbox
    )

    assert code == 0 and "set number" in out, out  # the sandbox starts; the rest of the home is there
    assert SECRET not in out, out
