"""The sandboxed tools: every escape is refused as a tool error, commands get no secrets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from agentflow.tools import MAX_MATCHES, ROLE_TOOLS, Submitted, Toolbox, truncate


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def tree(repo: Path, tmp_path: Path) -> Path:
    """The repo with a few files, a secret outside it and symlinks pointing out and into .git."""
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("def main():\n    return 'capsule_id'\n")
    (repo / "src" / "util.py").write_text("X = 1\n")
    (repo / "logo.png").write_bytes(b"\x89PNG\0\0binary capsule_id")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret\n")
    (repo / "link_out").symlink_to(outside / "secret.txt")
    (repo / "dir_out").symlink_to(outside)
    (repo / "link_git").symlink_to(repo / ".git" / "config")
    _git(repo, "add", "src", "logo.png", "README.md")
    _git(repo, "commit", "-q", "-m", "files")
    return repo


ESCAPES = [
    "../outside/secret.txt",
    "src/../../outside/secret.txt",
    "..",
    "/etc/passwd",
    "~/.ssh/id_rsa",
    "link_out",
    "dir_out/secret.txt",
    ".git/config",
    "src/../.git/config",
    ".git",
    "link_git",
    ".agentflow/ledger.db",
    "a\0b",
]


@pytest.mark.parametrize("path", ESCAPES)
@pytest.mark.parametrize("tool", ["read_file", "write_file", "edit_file", "list_files"])
def test_every_escape_is_refused(tree: Path, tmp_path: Path, tool: str, path: str) -> None:
    box = Toolbox(tree, "builder")
    args = {"path": path, "content": "pwned", "old_text": "top", "new_text": "pwned"}
    if tool == "list_files":
        args = {"path": path}
    out = box.call(tool, args)
    assert out.is_error, out.content
    assert "refused" in out.content
    assert (tmp_path / "outside" / "secret.txt").read_text() == "top secret\n"
    assert "pwned" not in (tree / ".git" / "config").read_text()


def test_refusal_names_the_reason(tree: Path) -> None:
    box = Toolbox(tree, "builder")
    assert "'..' is not allowed" in box.call("read_file", {"path": "../x"}).content
    assert "absolute paths" in box.call("read_file", {"path": "/etc/passwd"}).content
    assert "resolves outside" in box.call("read_file", {"path": "link_out"}).content
    assert ".git is off limits" in box.call("read_file", {"path": ".git/config"}).content
    assert ".agentflow is off limits" in box.call("read_file", {"path": ".agentflow/ledger.db"}).content


def test_listing_and_search_skip_git_and_outside_links(tree: Path) -> None:
    box = Toolbox(tree, "builder")
    listing = box.call("list_files", {}).content.splitlines()
    assert "src/app.py" in listing and "README.md" in listing
    assert not any(line.startswith(".git") for line in listing)
    assert "link_out" not in listing and "dir_out/secret.txt" not in listing
    found = box.call("search_files", {"pattern": "secret|capsule_id|repositoryformatversion"}).content
    assert found.splitlines() == ["src/app.py:2:     return 'capsule_id'"]  # not the PNG, .git, or outside


def test_file_tools_work_inside(tree: Path) -> None:
    box = Toolbox(tree, "builder")
    assert box.call("read_file", {"path": "src/app.py"}).content.startswith("def main")
    assert box.call("list_files", {"path": "src", "glob": "*.py"}).content == "src/app.py\nsrc/util.py"
    assert box.call("search_files", {"pattern": r"X = \d", "glob": "src/*.py"}).content == "src/util.py:1: X = 1"
    out = box.call("write_file", {"path": "new/deep/file.txt", "content": "hello"})
    assert not out.is_error and (tree / "new/deep/file.txt").read_text() == "hello"
    assert not box.call("edit_file", {"path": "src/util.py", "old_text": "X = 1", "new_text": "X = 2"}).is_error
    assert (tree / "src/util.py").read_text() == "X = 2\n"


def test_tool_errors_are_explained(tree: Path) -> None:
    box = Toolbox(tree, "builder")
    assert (
        "does not occur" in box.call("edit_file", {"path": "src/util.py", "old_text": "nope", "new_text": ""}).content
    )
    (tree / "dup.txt").write_text("a\na\n")
    assert "occurs 2 times" in box.call("edit_file", {"path": "dup.txt", "old_text": "a", "new_text": "b"}).content
    assert "no such file" in box.call("read_file", {"path": "missing.txt"}).content
    assert "binary" in box.call("read_file", {"path": "logo.png"}).content
    assert "invalid regular expression" in box.call("search_files", {"pattern": "("}).content
    assert "needs the string argument 'path'" in box.call("read_file", {}).content
    assert "unknown tool" in box.call("rm_rf", {}).content
    assert box.call("write_file", {"path": "src", "content": "x"}).is_error


def test_roles_get_their_tools(tree: Path) -> None:
    assert [s.name for s in Toolbox(tree, "builder").specs()] == list(ROLE_TOOLS["builder"])
    verifier = Toolbox(tree, "verifier")
    assert [s.name for s in verifier.specs()] == list(ROLE_TOOLS["verifier"])
    assert verifier.call("write_file", {"path": "x", "content": "y"}).is_error  # not a verifier tool


def test_run_command_env_holds_no_secret(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "ANTHROPIC_API_KEY": "sk-ant-api03-supersecretvalue",
        "AGENTFLOW_SIGNING_KEY": "signing-key-value-123-0123456789abcdef0123456789",
        "GITHUB_TOKEN": "ghp_tokenvalue1234567890",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-1234",
        "MY_SERVICE_KEY": "service-key-value-123",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", "postgres://user:pw@db/prod")  # no secret-looking name: still not passed
    monkeypatch.setenv("LC_TIME", "C")
    out = Toolbox(tree, "builder").call("run_command", {"command": "env"})
    assert out.content.startswith("exit code 0")
    for name, value in secrets.items():
        assert name not in out.content and value not in out.content
    assert "DATABASE_URL" not in out.content  # an allowlist, not a denylist
    assert "LC_TIME=C" in out.content and "PATH=" in out.content


def test_run_command_runs_in_the_worktree(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = Toolbox(tree, "builder").call("run_command", {"command": "pwd; exit 3"})
    assert out.content.startswith("exit code 3") and str(tree.resolve()) in out.content


def test_run_command_timeout_kills_the_process_group(tree: Path) -> None:
    box = Toolbox(tree, "builder", command_timeout=0.5)
    out = box.call("run_command", {"command": "(sleep 30; echo late > late.txt) & sleep 30"})
    assert out.is_error and "timed out" in out.content
    assert not (tree / "late.txt").exists()
    ps = subprocess.run(["pgrep", "-f", "sleep 30; echo late"], capture_output=True, text=True)
    assert ps.stdout.strip() == ""


def test_run_command_respects_the_session_deadline(tree: Path) -> None:
    import time

    box = Toolbox(tree, "builder", command_timeout=600, deadline=time.monotonic() + 0.3)
    out = box.call("run_command", {"command": "sleep 30"})
    assert out.is_error and "timed out after 0." in out.content
    box.deadline = time.monotonic() - 1
    assert "time limit is reached" in box.call("run_command", {"command": "true"}).content


def test_run_command_output_is_truncated_with_a_note(tree: Path) -> None:
    box = Toolbox(tree, "builder", max_output_chars=1000)
    out = box.call("run_command", {"command": "seq 1 5000; echo LAST"})
    assert "characters truncated" in out.content and out.content.rstrip().endswith("LAST")
    assert len(out.content) < 1200
    assert truncate("short") == "short"


def test_search_stops_after_max_matches(tree: Path) -> None:
    (tree / "many.txt").write_text("hit\n" * (MAX_MATCHES + 50))
    out = Toolbox(tree, "builder").call("search_files", {"pattern": "hit"}).content
    assert len(out.splitlines()) == MAX_MATCHES + 1 and "narrow the search" in out


def test_verifier_commands_are_discarded(tree: Path) -> None:
    head = _git(tree, "rev-parse", "HEAD")
    (tree / "src" / "util.py").write_text("X = 'uncommitted'\n")  # present before the session: kept
    box = Toolbox(tree, "verifier")
    out = box.call(
        "run_command",
        {
            "command": "echo hacked > src/app.py && mkdir -p gen/sub && echo 1 > gen/sub/f "
            "&& echo done; git add -A && git commit -qm sneaky"
        },
    )
    assert "done" in out.content
    assert "Read-only file system" in out.content  # git data is read-only in the sandbox
    assert _git(tree, "rev-parse", "HEAD") == head
    assert (tree / "src" / "app.py").read_text().startswith("def main")
    assert not (tree / "gen").exists()
    assert (tree / "src" / "util.py").read_text() == "X = 'uncommitted'\n"
    assert (tree / "link_out").is_symlink()  # untracked before the session: left alone


def test_verifier_restore_never_deletes_agentflow_state(tree: Path) -> None:
    box = Toolbox(tree, "verifier")  # .agentflow is not git-ignored in this repository
    (tree / ".agentflow").mkdir()
    (tree / ".agentflow" / "ledger.db").write_text("state")
    box.call("run_command", {"command": "echo x > new.txt"})
    assert (tree / ".agentflow" / "ledger.db").read_text() == "state"
    assert not (tree / "new.txt").exists()


def test_builder_commands_are_kept(tree: Path) -> None:
    Toolbox(tree, "builder").call("run_command", {"command": "echo built > out.txt"})
    assert (tree / "out.txt").read_text() == "built\n"


def test_finish_and_verdict_submit_valid_input(tree: Path) -> None:
    with pytest.raises(Submitted) as done:
        Toolbox(tree, "builder").call("finish", {"summary": "added capsule_id"})
    assert done.value.payload == {"summary": "added capsule_id"}
    assert Toolbox(tree, "builder").call("finish", {"summary": " "}).is_error
    verdict = {
        "decision": "request_changes",
        "summary": "missing field",
        "criteria": [{"id": "AC1", "status": "unmet", "evidence": "src/app.py:2"}],
        "findings": [{"id": "F1", "severity": "high", "message": "no capsule_id", "file": "src/app.py", "line": 2}],
    }
    with pytest.raises(Submitted) as done:
        Toolbox(tree, "verifier").call("submit_verdict", verdict)
    assert done.value.tool == "submit_verdict"
    assert done.value.payload["findings"][0]["severity"] == "high"


@pytest.mark.parametrize(
    "bad",
    [
        {"decision": "lgtm", "summary": "x", "criteria": [], "findings": []},
        {"decision": "approve", "criteria": [], "findings": []},
        {"decision": "approve", "summary": "x", "criteria": [{"id": "AC1", "status": "done"}], "findings": []},
        {
            "decision": "approve",
            "summary": "x",
            "criteria": [],
            "findings": [{"id": "F1", "severity": "huge", "message": "m"}],
        },
        {"decision": "approve", "summary": "x", "extra": 1},
    ],
)
def test_a_bad_verdict_is_a_tool_error_not_a_submission(tree: Path, bad: dict) -> None:
    out = Toolbox(tree, "verifier").call("submit_verdict", bad)
    assert out.is_error and "invalid verdict" in out.content


def test_symlinked_worktree_root_still_confines(tree: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(tree)
    box = Toolbox(alias, "builder")
    assert not box.call("read_file", {"path": "src/app.py"}).is_error
    assert box.call("read_file", {"path": "link_out"}).is_error
    assert os.path.realpath(box.root) == str(box.root)
