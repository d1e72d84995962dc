"""Credentials in git config files that a config ``include``s, which the sandbox left readable.

The sandbox binds each git config file that holds a credential as a copy without it
(``sanitized_git_config``), but only the repository's, the worktree's and the home's own files: a
``[include] path = ...`` or ``[includeIf "..."] path = ...`` (a common way to keep a token out of the
main file) pointed at a file every sandboxed process read whole, and git itself put its
``extraheader`` and the helper's password into ``git config --list`` (tested before the fix).
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from agentflow.sandbox import Sandbox
from tests.helpers import git, need_tool

TOKEN = "ghs_0123456789abcdefABCDEF0123456789abcd"
HEADER = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
CREDENTIALS = f"""[http "https://github.com/"]
\textraheader = AUTHORIZATION: basic {HEADER}
[credential]
\thelper = "!f() {{ echo password={TOKEN}; }}; f"
[remote "mirror"]
\turl = https://bot:{TOKEN}@github.com/acme/mirror.git
[alias]
\tlg = log --oneline
"""


def _seen(repo: Path, command: str) -> str:
    sandbox = Sandbox.from_config()
    argv = sandbox.wrap(["bash", "-c", command], repo)
    proc = subprocess.run(argv, cwd=repo, capture_output=True, text=True, env=sandbox.environment(), check=False)
    return proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ("include", "creds.inc"),  # relative to the including file (.git/)
        ('includeIf "gitdir:/"', "creds.inc"),
        ("include", "nested/creds.inc"),
    ],
)
def test_an_included_config_file_is_seen_without_its_credentials(repo: Path, section: str, where: str) -> None:
    need_tool("bwrap")
    target = repo / ".git" / where
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(CREDENTIALS)
    with (repo / ".git" / "config").open("a") as handle:
        handle.write(f"[{section}]\n\tpath = {where}\n")
    assert git(repo, "config", "--get", "alias.lg") == "log --oneline"  # git follows the include

    seen = _seen(repo, f"cat .git/{where}; git config --list --show-origin; git lg -1")

    assert "alias.lg=log --oneline" in seen and "initial" in seen, seen  # the rest still works
    assert TOKEN not in seen and HEADER not in seen, seen
    assert target.read_text() == CREDENTIALS  # the file itself is untouched


def test_an_include_chain_in_the_home_config_is_followed(repo: Path, tmp_path: Path, monkeypatch) -> None:
    need_tool("bwrap")
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    (home / ".gitconfig").write_text("[include]\n\tpath = ~/.config/git/work.inc\n")
    (home / ".config" / "git" / "work.inc").write_text("[include]\n\tpath = secret.inc\n")
    (home / ".config" / "git" / "secret.inc").write_text(CREDENTIALS)
    monkeypatch.setenv("HOME", str(home))

    seen = _seen(repo, "cat ~/.config/git/secret.inc; git config --list")

    assert "alias.lg=log --oneline" in seen, seen
    assert TOKEN not in seen and HEADER not in seen, seen


def test_an_include_cycle_does_not_hang_the_sandbox(repo: Path) -> None:
    need_tool("bwrap")
    (repo / ".git" / "a.inc").write_text("[include]\n\tpath = b.inc\n" + CREDENTIALS)
    (repo / ".git" / "b.inc").write_text("[include]\n\tpath = a.inc\n")
    with (repo / ".git" / "config").open("a") as handle:
        handle.write("[include]\n\tpath = a.inc\n")

    seen = _seen(repo, "cat .git/a.inc .git/b.inc; echo done")

    assert "done" in seen and TOKEN not in seen, seen
