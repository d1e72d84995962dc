"""The job's token in the git configs of submodules.

``actions/checkout`` with ``submodules: true`` persists the job's token in every submodule's own
config as well (``git submodule foreach git config --local http.<url>.extraheader ...``), which git
keeps at ``.git/modules/<name>/config`` (nested: ``.git/modules/a/modules/b/config``). The sandbox
bound the repository's, the worktree's and the home's git configs as copies without credentials, but
not these: a sandboxed check read the token from them (tested before the fix). Every config below
``.git/modules`` (and every worktree's ``config.worktree``) is now bound without its credentials too."""

from __future__ import annotations

import base64
from pathlib import Path

from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import git, need_tool

TOKEN = "ghs_0123456789abcdefABCDEF0123456789abcd"
HEADER = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
CONFIG = (
    "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
    f'[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic {HEADER}\n'
    '[remote "origin"]\n\turl = https://github.com/acme/lib.git\n'
)


def test_a_sandboxed_command_cannot_read_the_token_in_a_submodules_config(repo: Path) -> None:
    need_tool("bwrap")
    configs = [
        repo / ".git" / "modules" / "lib" / "config",
        repo / ".git" / "modules" / "lib" / "modules" / "deep" / "config",
    ]
    for config in configs:
        config.parent.mkdir(parents=True)
        config.write_text(CONFIG)
        (config.parent / "HEAD").write_text("ref: refs/heads/main\n")  # a submodule's git dir
    worktree = repo / ".agentflow" / "worktrees" / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree))

    command = " ".join(f"cat {c};" for c in configs) + " git log --oneline -1"
    _code, out, _ = run_shell(command, worktree, 30, sandbox=Sandbox.from_config())

    assert HEADER not in out and TOKEN not in out, out
    assert "https://github.com/acme/lib.git" in out and "initial" in out, out  # the rest stays
