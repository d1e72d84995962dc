"""The sandbox policy: modes, fail-closed start, mode off's warning and record, the gate's
require_sandbox rule, and the file tools against hard links and symlink races."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from agentflow.events import RunStarted
from agentflow.paths import glob_match
from agentflow.tools import Toolbox
from tests.build_helpers import builder_session, git, notes, verifier_session, write_plan, write_script
from tests.helpers import need_tool


def _config(repo: Path, text: str) -> None:
    (repo / "agentflow.yaml").write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "config")


def _build(repo: Path, cli, **kwargs):
    write_plan(repo, **kwargs)
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    return cli("build", "1", "--script", str(script))


def _started(repo: Path) -> RunStarted:
    from agentflow.ledger import Ledger

    with Ledger.open(repo) as ledger:
        return next(e for e in ledger.events() if isinstance(e, RunStarted))


def test_auto_without_bwrap_fails_closed_with_the_fix(repo: Path, cli, tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "bash", "sh"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    write_plan(repo, checks=["true"])
    script = write_script(repo, {"builder": [builder_session()], "verifier": [verifier_session()]})
    monkeypatch.setenv("PATH", str(bin_dir))

    result = cli("build", "1", "--script", str(script))

    assert result.exit_code == 2, result.output
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert "bwrap (bubblewrap) is not installed" in line
    assert "install bubblewrap" in line and "kernel.apparmor_restrict_unprivileged_userns=0" in line
    assert "mode: off" in line
    assert not (repo / ".agentflow" / "worktrees").exists()  # nothing was created


def test_mode_off_warns_records_off_and_the_gate_can_refuse_it(repo: Path, cli) -> None:
    _config(repo, "sandbox: {mode: off}\ngate: {require_sandbox: true}\n")  # deliberately unsandboxed
    result = _build(repo, cli, checks=["true"])
    assert result.exit_code == 0, result.output
    assert "sandbox.mode is off" in result.stderr
    assert _started(repo).sandbox == "off"
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert notes(repo, head)[0]["sandbox"] == "off"
    gate = cli("gate", head)
    assert gate.exit_code == 1, gate.output
    assert "gate.require_sandbox is true" in gate.output and "sandbox 'off'" in gate.output


def test_checks_only_with_mode_off_warns_like_every_run(repo: Path, cli) -> None:
    _config(repo, "sandbox: {mode: off}\nchecks: ['true']\n")  # deliberately unsandboxed
    result = cli("verify", "--checks-only", "--base", "main", "--format", "json")
    assert result.exit_code == 0, result.output
    assert "sandbox.mode is off" in result.stderr and "sandbox.mode is off" not in result.stdout


def test_a_sandboxed_approval_opens_a_gate_that_requires_the_sandbox(repo: Path, cli) -> None:
    need_tool("bwrap")
    _config(repo, "gate: {require_sandbox: true}\n")
    result = _build(repo, cli, checks=["true"])
    assert result.exit_code == 0, result.output
    assert "sandbox.mode is off" not in result.stderr
    head = git(repo, "rev-parse", "agentflow/1-farewell")
    assert notes(repo, head)[0]["sandbox"] == "bwrap"
    gate = cli("gate", head)
    assert gate.exit_code == 0, gate.output


def test_sandbox_hide_must_be_absolute(repo: Path, cli) -> None:
    _config(repo, "sandbox: {hide: [secrets/]}\n")
    result = _build(repo, cli)
    assert result.exit_code == 2
    assert "sandbox.hide: 'secrets/' is not an absolute path" in result.stderr


def test_sandbox_hide_and_env(repo: Path, cli, tmp_path: Path, monkeypatch) -> None:
    need_tool("bwrap")
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "token").write_text("vault-token")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MY_TOOL_SETTING", "passed")
    monkeypatch.setenv("OTHER_SETTING", "dropped")
    _config(repo, f"sandbox: {{hide: ['{vault}'], env: [MY_TOOL_*]}}\n")
    write_plan(repo)
    script = write_script(
        repo,
        {
            "builder": [
                [
                    {
                        "tool_calls": [
                            {
                                "name": "run_command",
                                "input": {"command": f"ls {vault} > seen.txt; env | grep SETTING >> seen.txt; true"},
                            }
                        ]
                    },
                    *builder_session(),
                ]
            ],
            "verifier": [verifier_session()],
        },
    )
    assert cli("build", "1", "--script", str(script)).exit_code == 0
    seen = git(repo, "show", "agentflow/1-farewell:seen.txt")
    assert "token" not in seen and "MY_TOOL_SETTING=passed" in seen and "OTHER_SETTING" not in seen


# -- nesting: Claude Code's Bash sandbox inside agentflow's ------------------------------------------

SSH_KEY = "-----PRIVATE KEY MATERIAL-----"
SIGNING_KEY = "signing-key-of-the-orchestrator-42"


def test_a_sandbox_starts_inside_the_nested_one_and_hidden_paths_stay_hidden(
    repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """What the Claude Code process gets (``nested=True``): an inner bwrap starts, with namespaces
    and a ``/proc`` of its own, as Claude Code's Bash sandbox does; root of an inner user namespace
    still cannot unmount what agentflow hides, nor see the orchestrator's environment."""
    import subprocess

    from agentflow.sandbox import Sandbox

    bwrap = need_tool("bwrap")
    unshare = need_tool("unshare")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(SSH_KEY)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AGENTFLOW_SIGNING_KEY", SIGNING_KEY)
    inner = f"{bwrap} --unshare-user --unshare-pid --unshare-net --ro-bind / / --dev /dev --proc /proc --cap-drop ALL"
    script = "; ".join(
        [
            f"{bwrap} --ro-bind / / true && echo plain-inner-ok",
            f"{inner} -- true && echo inner-ok",
            f"cat ~/.ssh/id_rsa; tr '\\0' '\\n' < /proc/$PPID/environ; grep -a -l -e {SIGNING_KEY} /proc/*/environ",
            # root of a user namespace of its own: the hidden folder is a locked mount
            f"{unshare} -Urm sh -c 'umount ~/.ssh || umount -l ~/.ssh; cat ~/.ssh/id_rsa'",
            f"{unshare} -Urmpf --mount-proc sh -c 'grep -a -l -e {SIGNING_KEY} /proc/*/environ; cat ~/.ssh/id_rsa'",
            f"{inner} -- sh -c 'grep -a -l -e {SIGNING_KEY} /proc/*/environ; cat ~/.ssh/id_rsa'",
            "echo done",
        ]
    )
    sandbox = Sandbox.from_config()
    argv = sandbox.wrap(["bash", "-c", script], repo, nested=True)

    proc = subprocess.run(argv, capture_output=True, text=True, env=sandbox.environment(), timeout=60)

    out = proc.stdout
    assert "plain-inner-ok" in out and "inner-ok" in out, proc.stderr
    assert "done" in out
    assert SSH_KEY not in out and SIGNING_KEY not in out
    assert "environ" not in out  # grep -l found the key in no process's environment
    assert "id_rsa" in proc.stderr  # each read of the key failed


def test_both_shapes_run_the_command_as_a_non_root_uid_behind_the_guard(repo: Path) -> None:
    """Both shapes have a user namespace with a non-root uid (the guard's own namespace must map it,
    which the kernel refuses for uid 0 without CAP_SETFCAP) and no capability; only the nested one
    gives up bwrap's ``--dev`` (pseudo-terminals) for a /dev of binds."""
    from agentflow.sandbox import NESTED_ID, Sandbox, guard_argv

    need_tool("bwrap")
    uid = str(os.getuid() or NESTED_ID)
    plain = Sandbox.from_config().arguments(repo)
    nested = Sandbox.from_config().arguments(repo, nested=True)
    for args in (plain, nested):
        assert args[args.index("--unshare-user") :][:3] == ["--unshare-user", "--uid", uid] and "--cap-drop" in args
        assert "--as-pid-1" not in args  # bwrap's own init: the guard keeps the command away from it
    assert plain[3:5] == ["--dev", "/dev"] and "--dev" not in nested
    wrapped = Sandbox.from_config().wrap(["true"], repo)
    assert wrapped[wrapped.index("--") + 1 :] == [*guard_argv(), "true"]


def test_a_python_environment_under_tmp_stays_visible_and_hidden_paths_inside_it_stay_hidden(
    repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """The sandbox's /tmp is a fresh tmpfs: a virtualenv agentflow runs from there (a checkout in a
    temporary folder, as CI makes one) was gone inside it, and every check that runs its python
    exited 127. It is bound back read-only; a hidden path inside it stays hidden."""
    import subprocess
    import sys

    from agentflow.sandbox import Sandbox

    need_tool("bwrap")
    prefix = tmp_path / "venv"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "marker").write_text("visible\n")
    (prefix / "secret").mkdir()
    (prefix / "secret" / "key").write_text("s3cret\n")
    monkeypatch.setattr(sys, "prefix", str(prefix))
    from dataclasses import replace

    sandbox = Sandbox.from_config()
    sandbox = replace(sandbox, hide=(*sandbox.hide, str(prefix / "secret")))
    script = f"cat {prefix}/bin/marker; cat {prefix}/secret/key; touch {prefix}/bin/new || echo read-only"
    done = subprocess.run(sandbox.wrap(["sh", "-c", script], repo), capture_output=True, text=True, check=False)
    assert done.stdout.splitlines() == ["visible", "read-only"], done.stdout + done.stderr
    assert not (prefix / "bin" / "new").exists()


def _binds(args: list[str]) -> list[str]:
    """The paths ``args`` bind read-only over themselves (``--ro-bind P P``)."""
    return [args[i + 1] for i in range(len(args) - 2) if args[i] == "--ro-bind" and args[i + 1] == args[i + 2]]


def test_only_what_bwraps_own_mounts_cover_is_bound_back_and_the_view_is_the_same(
    repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """A home and a Python environment outside /tmp are seen through ``--ro-bind / /`` with no bind of
    their own (each bind is a mount, a remount and a read of bwrap's mount table, serialised across the
    sandboxes ``-j 4`` starts at once), still read-only, a credential in that home still hidden; a
    linked worktree's checkout below /tmp is bound once, and its git dirs inside it are seen through
    that bind (docs/security.md "What a sandbox shows")."""
    import subprocess
    import sys
    import tempfile
    from dataclasses import replace

    from agentflow.sandbox import Sandbox, bind_back

    need_tool("bwrap")
    outside = Path(tempfile.mkdtemp(prefix="agentflow-test-shown-", dir="/var/tmp"))
    try:
        home, prefix = outside / "home", outside / "venv"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "id_rsa").write_text("PRIVATE-KEY\n")
        (home / "marker").write_text("home-visible\n")
        (prefix / "bin").mkdir(parents=True)
        (prefix / "bin" / "marker").write_text("venv-visible\n")
        monkeypatch.setattr(sys, "prefix", str(prefix))
        monkeypatch.setattr(sys, "base_prefix", str(prefix))
        worktree = repo / ".agentflow" / "worktrees" / "w"
        git(repo, "worktree", "add", "-q", "--detach", str(worktree))
        gitdir = (repo / ".git" / "worktrees" / "w").resolve()
        sandbox = replace(Sandbox.from_config(), home=str(home))

        args = sandbox.arguments(worktree)

        bound = _binds(args)
        assert str(home) not in bound and str(prefix) not in bound
        assert bound.count(str(repo.resolve())) == 1  # the checkout, below /tmp: bound back once
        assert str(repo.resolve() / ".git") not in bound[: bound.index(str(repo.resolve())) + 1]
        assert str(gitdir) not in bound  # inside the checkout's bind
        shown = ["/tmp/a", "/tmp/a/b", "/var/x", "/dev/shm/y", "/tmp/ab"]
        assert bind_back(shown) == ["/tmp/a", "/dev/shm/y", "/tmp/ab"]
        script = (
            f"cat {home}/marker; cat {prefix}/bin/marker; cat {gitdir}/HEAD >/dev/null && echo gitdir-visible; "
            f"cat {home}/.ssh/id_rsa; touch {home}/new {prefix}/bin/new 2>/dev/null || echo read-only"
        )
        done = subprocess.run(sandbox.wrap(["sh", "-c", script], worktree), capture_output=True, text=True, check=False)
        assert done.stdout.splitlines() == ["home-visible", "venv-visible", "gitdir-visible", "read-only"], (
            done.stdout + done.stderr
        )
        assert "PRIVATE-KEY" not in done.stdout + done.stderr
        assert not (home / "new").exists() and not (prefix / "bin" / "new").exists()
    finally:
        shutil.rmtree(outside, ignore_errors=True)


# -- file tools: links and races -------------------------------------------------------------------


def test_write_through_a_hard_link_to_an_outside_file_is_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    os.link(outside, repo / "linked.txt")
    box = Toolbox(repo, "builder")
    for tool, args in (
        ("write_file", {"path": "linked.txt", "content": "pwned"}),
        ("edit_file", {"path": "linked.txt", "old_text": "keep", "new_text": "pwned"}),
    ):
        out = box.call(tool, args)
        assert out.is_error and "hard links" in out.content, out.content
    assert outside.read_text() == "keep me\n"


def test_a_symlink_swapped_in_after_the_check_is_not_followed(repo: Path, tmp_path: Path, monkeypatch) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "sub").mkdir()
    box = Toolbox(repo, "builder")
    real_resolve = box.resolve

    def racing_resolve(path: str, tool: str = "tool") -> Path:
        resolved = real_resolve(path, tool)
        shutil.rmtree(repo / "sub")  # the race: between the check and the open
        (repo / "sub").symlink_to(outside)
        return resolved

    monkeypatch.setattr(box, "resolve", racing_resolve)
    out = box.call("write_file", {"path": "sub/f.txt", "content": "pwned"})
    assert out.is_error and "symbolic link" in out.content, out.content
    assert list(outside.iterdir()) == []


def test_one_glob_dialect_for_tools_scope_and_the_claude_code_guard(repo: Path) -> None:
    from agentflow.models.claude_code import ToolPolicy
    from agentflow.orchestration import in_scope

    assert glob_match("src/a.py", "src/*.py") and not glob_match("src/a/b.py", "src/*.py")
    assert not in_scope("src/a/b.py", ["src/*.py"])
    (repo / "src" / "a").mkdir(parents=True)
    (repo / "src" / "a" / "b.py").write_text("x\n")
    (repo / "src" / "c.py").write_text("x\n")
    assert Toolbox(repo, "builder").call("list_files", {"glob": "src/*.py"}).content == "src/c.py"
    # one path policy: what the file tools refuse, the claude-code guard refuses
    (repo / ".agentflow").mkdir()
    (repo / ".agentflow" / "ledger.db").write_text("x")
    verifier = ToolPolicy(repo, "verifier")
    assert verifier.refusal("Read", {"file_path": str(repo / ".agentflow" / "ledger.db")})
    assert Toolbox(repo, "verifier").call("read_file", {"path": ".agentflow/ledger.db"}).is_error


def test_sandbox_hide_hides_an_empty_folder_written_during_the_session(repo: Path, tmp_path: Path) -> None:
    """A built-in credential folder that holds nothing is not mounted over (agentflow.sandbox.holds_nothing);
    a folder the user names in sandbox.hide is, even empty: what is written there later stays hidden."""
    import subprocess
    import time
    from dataclasses import replace

    from agentflow.sandbox import Sandbox

    need_tool("bwrap")
    home = tmp_path / "home"  # readable in the sandbox (bound back from the private /tmp)
    vault = home / "vault"
    vault.mkdir(parents=True)
    box = replace(Sandbox.from_config(), home=str(home), hide=(str(vault),))
    work = tmp_path / "work"
    work.mkdir()
    argv = box.wrap(["sh", "-c", f"sleep 0.5; cat {vault}/token 2>&1; echo done"], work)
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=box.environment())
    time.sleep(0.2)
    (vault / "token").write_text("token-written-during-the-session\n")
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0 and "done" in out, err
    assert "token-written-during-the-session" not in out
