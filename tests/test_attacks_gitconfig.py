"""Red team of GitPython as the repository layer for reads: repository config is content an agent
(sandbox off) or a checkout's owner could have planted. Reads by the gate, metrics --from-git,
show, status and log run none of git's program-running settings, reached directly or through
include.path / includeIf, nor a filter or textconv driver named by .gitattributes; no cat-file
process outlives the command; and the gate stays shut when the notes are not what it expects."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from pathlib import Path

from agentflow.ledger import Ledger
from tests.build_helpers import builder_session, verifier_session, write_plan, write_script
from tests.helpers import child_processes, git

# Every setting of git's that names a program (or a shell command) run on some read or write.
PROGRAM_SETTINGS = (
    "core.fsmonitor",
    "core.hooksPath",  # a folder: set to one full of spies below
    "core.sshCommand",
    "core.pager",
    "core.editor",
    "core.askPass",
    "core.alternateRefsCommand",
    "diff.external",
    "diff.evil.textconv",
    "diff.evil.command",
    "filter.evil.clean",
    "filter.evil.smudge",
    "filter.evil.process",
    "gpg.program",
    "gpg.ssh.program",
    "uploadpack.packObjectsHook",
    "credential.helper",
    "sequence.editor",
    "pager.log",
    "pager.show",
    "merge.evil.driver",
)


def _spy(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "ran"
    spy = tmp_path / "spy.sh"
    spy.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\ncat >/dev/null 2>&1\n')
    spy.chmod(spy.stat().st_mode | stat.S_IEXEC)
    return spy, marker


def _plant(repo: Path, tmp_path: Path, spy: Path) -> None:
    """The settings in a file reached by include.path and includeIf (not in .git/config itself),
    hooks in the folder core.hooksPath names, and a .gitattributes routing every file through
    the filter, diff and merge drivers."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("post-commit", "pre-commit", "post-checkout", "reference-transaction", "post-index-change"):
        (hooks / name).write_text(spy.read_text())
        (hooks / name).chmod(0o755)
    planted = tmp_path / "planted.gitconfig"
    lines = []
    for key in PROGRAM_SETTINGS:
        section, _, name = key.rpartition(".")
        head, _, sub = section.partition(".")
        value = hooks if key == "core.hooksPath" else spy
        lines.append(f'[{head} "{sub}"]\n\t{name} = {value}' if sub else f"[{head}]\n\t{name} = {value}")
    planted.write_text("\n".join(lines) + "\n")
    git(repo, "config", "include.path", str(planted))
    git(repo, "config", f"includeIf.gitdir:{repo}/.git.path", str(planted))
    (repo / ".gitattributes").write_text("* filter=evil diff=evil merge=evil\n")


def _approved(repo: Path, cli) -> str:
    write_plan(repo)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    result = cli("build", "1", "--script", str(script))
    assert result.exit_code == 0, result.output
    return git(repo, "branch", "--list", "agentflow/1-*", "--format=%(refname:short)").strip()


def _git_children() -> list[str]:
    return [
        b" ".join(argv).decode(errors="replace")
        for argv in child_processes().values()
        if any(b"git" in a for a in argv[:2])
    ]


def test_planted_program_settings_run_during_no_read(repo: Path, cli, tmp_path: Path) -> None:
    branch = _approved(repo, cli)
    with Ledger.open(repo) as ledger:
        run = next(e.run_id for e in ledger.events() if e.kind == "run_started")
    spy, marker = _spy(tmp_path)
    _plant(repo, tmp_path, spy)
    (repo / "README.md").write_text("dirty: status and diff consult the drivers\n")
    assert "spy.sh" in git(repo, "config", "--get", "core.pager")  # git itself sees the planted file
    before = _git_children()

    commands = [
        ("gate", branch, "--base", "main"),
        ("gate", branch, "--base", "main", "--format", "json"),
        ("metrics", "--from-git", "--format", "json"),
        ("metrics", "--format", "json"),
        ("show", run),
        ("status",),
        ("log",),
        ("plan", "list"),
    ]
    for command in commands:
        result = cli(*command)
        assert result.exit_code in (0, 1), (command, result.output)
        assert not marker.exists(), f"{command}: {marker.read_text()}"
        assert _git_children() == before, command  # no cat-file (or other git) left running
    assert cli("gate", branch, "--base", "main").exit_code == 0  # and the approval still reads
    with contextlib.suppress(subprocess.TimeoutExpired):  # filter.evil.process waits for its protocol
        subprocess.run(["git", "diff"], cwd=repo, capture_output=True, stdin=subprocess.DEVNULL, timeout=10)
    assert marker.exists()  # the planted drivers are live: plain git runs them


def _stdin_git(repo: Path, *args: str, input_text: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, input=input_text, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def _gate(cli, branch: str) -> int:
    return cli("gate", branch, "--base", "main").exit_code


def test_the_gate_fails_closed_on_notes_gitpython_cannot_read(repo: Path, cli) -> None:
    """The notes ref pointing at a blob, at a commit whose tree holds garbage or a note that is a
    tree instead of a blob, and a verdict note of non-JSON bytes: the gate says no (exit 1, or 2
    for a ledger it cannot read), never approves, never crashes with a traceback."""
    branch = _approved(repo, cli)
    head = git(repo, "rev-parse", branch)
    assert _gate(cli, branch) == 0
    good = git(repo, "rev-parse", "refs/notes/agentflow")

    blob = _stdin_git(repo, "hash-object", "-w", "--stdin", input_text="not a notes tree\n")
    garbage_tree = _stdin_git(repo, "mktree", input_text=f"100644 blob {blob}\t{head}\n")  # a note of garbage
    inner = _stdin_git(repo, "mktree", input_text=f"100644 blob {blob}\tx\n")
    tree_note = _stdin_git(repo, "mktree", input_text=f"040000 tree {inner}\t{head}\n")  # a note that is a tree
    fanout = _stdin_git(repo, "mktree", input_text=f"040000 tree {inner}\t{head[:2]}\n")  # a fan-out without the note
    binary = _stdin_git(repo, "hash-object", "-w", "--stdin", input_text="\x00\xff\xfe{\n")
    binary_tree = _stdin_git(repo, "mktree", input_text=f"100644 blob {binary}\t{head}\n")
    targets = {"blob": blob}
    for name, tree in (
        ("garbage", garbage_tree),
        ("tree-note", tree_note),
        ("fanout", fanout),
        ("binary", binary_tree),
    ):
        targets[name] = git(repo, "commit-tree", tree, "-m", name)
    for name, target in targets.items():
        git(repo, "update-ref", "refs/notes/agentflow", target)
        result = cli("gate", branch, "--base", "main")
        assert result.exit_code in (1, 2), (name, result.output)
        assert "Traceback" not in result.output, name
    git(repo, "update-ref", "refs/notes/agentflow", good)
    assert _gate(cli, branch) == 0
