"""Attacks on the credentials git keeps in its config, which the sandbox leaves readable.

``actions/checkout`` persists the job's token in the checkout's ``.git/config``
(``http.https://github.com/.extraheader = AUTHORIZATION: basic <base64 of x-access-token:TOKEN>``),
and remotes are often ``https://user:token@host/...``. The sandbox keeps the git data readable (a
builder runs ``git log``), so every sandboxed process (a builder's commands, the change's checks)
read the token: base64, no secret name and no token shape for the redactor to see.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from agentflow.sandbox import Sandbox
from tests.build_helpers import finish, git, verifier_session, write_plan, write_script
from tests.helpers import need_tool

TOKEN = "ghs_0123456789abcdefABCDEF0123456789abcd"
HEADER = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


def _persist_credentials(repo: Path) -> None:
    git(repo, "config", "--local", "http.https://github.com/.extraheader", f"AUTHORIZATION: basic {HEADER}")
    git(repo, "remote", "add", "origin", f"https://x-access-token:{TOKEN}@github.com/acme/app.git")
    git(repo, "config", "--local", "credential.helper", f"!f() {{ echo password={TOKEN}; }}; f")


def test_a_builder_cannot_read_the_credentials_in_the_git_config(repo: Path, cli) -> None:
    need_tool("bwrap")
    _persist_credentials(repo)
    write_plan(repo, scope=["**"])
    spy = (
        '{ git config --list --show-origin; cat "$(git rev-parse --git-common-dir)/config"; '
        "git log --oneline -1; } > seen.txt 2>&1"
    )
    builder = [{"tool_calls": [{"name": "run_command", "input": {"command": spy}}]}, finish()]
    script = write_script(repo, {"builder": [builder], "verifier": [verifier_session()]})

    assert cli("build", "1", "--script", str(script)).exit_code in (0, 1)

    seen = git(repo, "show", "agentflow/1-farewell:seen.txt")
    assert "plan 1" in seen  # git still works in the sandbox: the log was read
    assert "core.bare" in seen or "bare = false" in seen  # ... and so does the rest of its config
    assert TOKEN not in seen and HEADER not in seen, seen
    # the repository's own config is untouched
    assert git(repo, "config", "--get", "http.https://github.com/.extraheader").endswith(HEADER)


def test_the_sanitised_config_keeps_everything_but_credentials(repo: Path) -> None:
    need_tool("bwrap")
    _persist_credentials(repo)
    git(repo, "config", "--local", "user.name", "Dev")
    sandbox = Sandbox.from_config()  # auto: bwrap, present (need_tool)
    argv = sandbox.wrap(["git", "config", "--list", "--local"], repo)
    out = subprocess.run(argv, cwd=repo, capture_output=True, text=True, env=sandbox.environment()).stdout

    assert "user.name=Dev" in out
    assert "remote.origin.url=https://github.com/acme/app.git" in out
    assert TOKEN not in out and HEADER not in out


def test_credentials_a_check_prints_are_redacted_in_every_report(repo: Path, cli, tmp_path: Path) -> None:
    """What the sandbox cannot hide (a credential the change's code carries, or finds in a file the
    user did not list in sandbox.hide) and a check prints: an HTTP Basic header, a URL's
    user:password, a GitLab token. None of them has a secret name for the redactor to know it by."""
    import json

    leaks = [f"AUTHORIZATION: basic {HEADER}", "https://bob:hunter2pass@git.example.com/x.git", "glpat-" + "a1b2c3" * 4]
    (repo / "leak.sh").write_text("".join(f"echo '{line}'\n" for line in leaks) + "exit 1\n")
    (repo / "agentflow.yaml").write_text("checks: ['sh leak.sh']\nsandbox: {mode: off}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "project")
    git(repo, "checkout", "-q", "-b", "pr")
    (repo / "app.py").write_text("x = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "change")
    script = write_script(repo, {"verifier": [verifier_session(criteria={})]})
    out = tmp_path / "report.json"

    result = cli("verify", "--base", "main", "--script", str(script), "--format", "github", "--json", str(out))

    assert "[REDACTED]" in json.loads(out.read_text())["checks"][0]["output_tail"]
    texts = [result.output, out.read_text(), (repo / ".agentflow" / "ledger.db").read_bytes().decode("latin-1")]
    for text in texts:
        for secret in (HEADER, "hunter2pass", "glpat-" + "a1b2c3" * 4):
            assert secret not in text
