"""A builder's nested git repository runs its own config's commands in agentflow's git, unsandboxed.

In its sandbox the worktree is writable, so a builder can ``git init`` a repository below it and
write that repository's ``.git/config``: ``filter.x.clean = <any command>``, with a
``.gitattributes`` there naming the filter and a file changed since its index. agentflow's commit
step then runs ``git add -A`` in the worktree, outside the sandbox (the rework cycle's, once the
first has committed the nested repository as a gitlink), and git asks the nested repository whether it is modified by running ``git status`` in it, which cleans a file whose
timestamp no longer matches its index entry (``touch``) through the filter to compare it: the builder's command ran as the user running agentflow, with the host's files,
network and git data (the ledger, the notes, the refs, a key file) within reach (tested before the
fix: the command wrote a file outside the sandbox). ``-c core.fsmonitor=false`` and
``core.hooksPath=/dev/null`` reach the nested git too, a filter's name cannot be overridden.

Every agent session is now followed by a look for repositories below its worktree that git would
enter (``git ls-files -o --exclude-standard`` lists them as ``path/``; a tracked gitlink whose folder
holds a ``.git``): each is tampering, the run ends ``no_verdict`` before any git command touches the
worktree, and the nested ``.git`` is removed. One in a folder the worktree ignores is left alone:
git never looks into it.
"""

from __future__ import annotations

from pathlib import Path

from tests.build_helpers import finish, verifier_session, write_plan, write_script
from tests.helpers import git, need_tool


def run_command(command: str) -> dict:
    return {"tool_calls": [{"name": "run_command", "input": {"command": command}}]}


def _nested(folder: str, marker: Path) -> str:
    """Shell for the builder: a repository at ``folder`` whose config's filter writes ``marker``."""
    return (
        f"mkdir -p {folder} && cd {folder} && git init -q && echo '* filter=x' > .gitattributes && "
        "echo one > f.txt && git add -A && git -c user.name=x -c user.email=x@x commit -q -m s && "
        f"git config filter.x.clean \"sh -c 'echo ran >> {marker}; cat'\" && touch -d 2001-01-01 f.txt"
    )


def test_a_builders_nested_repository_runs_nothing_outside_the_sandbox(repo: Path, cli, tmp_path: Path) -> None:
    need_tool("bwrap")
    marker = tmp_path / "ran-outside-the-sandbox"  # below the host's /tmp: the sandbox's /tmp is its own
    write_plan(repo, scope=["**"])
    builder = [run_command(_nested("vendor/lib", marker)), finish()]
    # cycle 1 commits the gitlink (its gitlink finding asks for rework); cycle 2's `git add -A` asks the
    # now tracked submodule whether it is modified: that is where the filter ran
    sessions = {"builder": [builder, [finish()], [finish()]], "verifier": [verifier_session()] * 3}
    script = write_script(repo, sessions)

    result = cli("build", "1", "--script", str(script))

    assert not marker.exists(), "the nested repository's filter ran outside the sandbox"
    assert result.exit_code == 3, result.output
    assert "tampering" in result.output and "vendor/lib" in result.output, result.output
    worktree = repo / ".agentflow" / "worktrees"
    assert not list(worktree.glob("*/vendor/lib/.git")), "the nested repository is still there"
    assert cli("gate", "agentflow/1-farewell", "--base", "main").exit_code == 1


def test_a_nested_repository_in_an_ignored_folder_is_left_alone(repo: Path, cli, tmp_path: Path) -> None:
    need_tool("bwrap")
    marker = tmp_path / "ran-outside-the-sandbox"
    write_plan(repo, scope=["**"])
    builder = [
        run_command("echo 'build/' > .gitignore && " + _nested("build/cache", marker)),
        {"tool_calls": [{"name": "write_file", "input": {"path": "src/app.py", "content": "x = 1\n"}}]},
        finish(),
    ]
    script = write_script(repo, {"builder": [builder], "verifier": [verifier_session()]})

    result = cli("build", "1", "--script", str(script))

    assert not marker.exists()
    assert "tampering" not in result.output, result.output
    assert "src/app.py" in git(repo, "ls-tree", "-r", "--name-only", "agentflow/1-farewell")


def _gitlink_with_filter(worktree: Path, marker: Path) -> None:
    """A tracked submodule at ``lib`` of ``worktree`` whose own config's filter writes ``marker`` (what a
    build killed during its session, before the check above ran, may leave in a plan worktree)."""
    import subprocess

    lib = worktree / "lib"
    lib.mkdir()
    git(lib, "init", "-q")
    (lib / ".gitattributes").write_text("* filter=x\n")
    (lib / "f.txt").write_text("one\n")
    git(lib, "add", "-A")
    git(lib, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", "s")
    git(worktree, "add", "lib")
    git(worktree, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", "lib")
    git(lib, "config", "filter.x.clean", f"sh -c 'echo ran >> {marker}; cat'")
    subprocess.run(["touch", "-d", "2001-01-01", str(lib / "f.txt")], check=True)


def test_agentflows_git_status_does_not_enter_a_left_over_submodule(repo: Path, tmp_path: Path) -> None:
    from agentflow.git import Repo

    marker = tmp_path / "ran"
    worktree = repo / ".agentflow" / "worktrees" / "1-farewell"
    git(repo, "worktree", "add", "-q", "-b", "agentflow/1-farewell", str(worktree))
    _gitlink_with_filter(worktree, marker)

    Repo(worktree, gitpython=False).is_dirty(untracked=True)  # `build` of the plan again, `clean`

    assert not marker.exists()
