"""Red team of the nested sandbox shape (the Claude Code process: ``Sandbox.wrap(nested=True)``,
a user namespace, a non-root uid, a ``/dev`` of binds): what a hostile process inside tries in
order to regain what the outer sandbox hides, and to outlive its session."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from tests.helpers import git, need_tool, processes_with

SSH_KEY = "-----NESTED PRIVATE KEY-----"
LEDGER = "ledger-bytes-of-the-orchestrator"


def _layout(repo: Path, tmp_path: Path, monkeypatch) -> Path:
    """A home with a credential, a ledger under .agentflow/ and a linked worktree (the session's)."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text(SSH_KEY)
    monkeypatch.setenv("HOME", str(home))
    (repo / ".agentflow").mkdir()
    (repo / ".agentflow" / "ledger.db").write_text(LEDGER)
    worktree = repo / ".agentflow" / "worktrees" / "w"
    git(repo, "worktree", "add", "-q", str(worktree), "-b", "w")
    return worktree


def _run(worktree: Path, script: str, *, nested: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    from agentflow.sandbox import Sandbox

    sandbox = Sandbox.from_config()
    argv = sandbox.wrap(["bash", "-c", script], worktree, nested=nested)
    return subprocess.run(argv, capture_output=True, text=True, env=sandbox.environment(), timeout=timeout)


def test_root_of_an_inner_user_namespace_cannot_remount_unbind_or_rebind_what_is_hidden(
    repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """Inside the nested sandbox, ``unshare -Urm`` gives a root with every capability of a new user
    and mount namespace. Every mount of ours is locked there: unmounting the tmpfs over ``~/.ssh``
    or ``.agentflow/``, a non-recursive bind of their parent (which would show what is under them),
    remounting the read-only gitdir, common git dir or checkout read-write, mounting a proc over
    ours: all refused, and nothing hidden is read or written."""
    need_tool("bwrap")
    unshare = need_tool("unshare")
    worktree = _layout(repo, tmp_path, monkeypatch)
    home, common, gitdir = os.environ["HOME"], repo / ".git", repo / ".git" / "worktrees" / "w"
    attempts = [
        f"umount {home}/.ssh || umount -l {home}/.ssh; cat {home}/.ssh/id_rsa",
        f"umount {repo}/.agentflow || umount -l {repo}/.agentflow; cat {repo}/.agentflow/ledger.db",
        f"mkdir -p /tmp/m1 && mount --bind {home} /tmp/m1; cat /tmp/m1/.ssh/id_rsa",
        f"mkdir -p /tmp/m2 && mount --bind {repo} /tmp/m2; cat /tmp/m2/.agentflow/ledger.db",
        f"mkdir -p /tmp/m3 && mount --rbind {home} /tmp/m3; cat /tmp/m3/.ssh/id_rsa",
        f"mount -o remount,bind,rw {common}; echo pwned > {common}/PWNED",
        f"mount -o remount,rw {gitdir}; echo pwned > {gitdir}/PWNED",
        f"umount {gitdir}; umount {common}; echo pwned > {gitdir}/HEAD",
        f"mount -o remount,bind,rw {repo}; echo pwned > {repo}/README.md",
        "umount /proc; mount -t proc proc /proc; ls /proc/1/root/ >/dev/null && echo host-proc",
        f"umount /; cat {home}/.ssh/id_rsa",
    ]
    script = "\n".join(f"{unshare} -Urm sh -c '{attempt}'" for attempt in attempts) + "\necho done"

    proc = _run(worktree, script)

    assert "done" in proc.stdout, proc.stderr
    assert SSH_KEY not in proc.stdout and LEDGER not in proc.stdout and "host-proc" not in proc.stdout
    assert not (common / "PWNED").exists() and not (gitdir / "PWNED").exists()
    assert "pwned" not in (gitdir / "HEAD").read_text() and (repo / "README.md").read_text() == "# sample\n"
    assert (repo / ".agentflow" / "ledger.db").read_text() == LEDGER


def test_the_nested_process_holds_no_capability_and_sees_only_its_own_namespace(
    repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """The nested shape's process is uid 1000 (for root) with no capability (its bounding set is the
    guard's user namespace's, full, in a namespace that owns nothing); its /proc
    shows the sandbox's processes only (pid 1 is bwrap's init), and nothing is writable but the
    worktree: not the checkout, the gitdir, /dev's devices' folder or the ledger's folder."""
    need_tool("bwrap")
    worktree = _layout(repo, tmp_path, monkeypatch)
    gitdir = repo / ".git" / "worktrees" / "w"
    script = "\n".join(
        [
            "grep -E '^Cap(Prm|Eff|Bnd|Amb)' /proc/self/status",
            "ls /proc | grep -cE '^[0-9]+$'",
            f"echo x > {gitdir}/HEAD; echo x > {repo}/README.md; echo x > /dev/evil; echo x > {repo}/.agentflow/x",
            "echo inside > written.txt && echo done",
        ]
    )

    proc = _run(worktree, script)

    assert "done" in proc.stdout, proc.stderr
    caps = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("CapPrm", "CapEff", "CapAmb"))]
    assert len(caps) == 3 and set(caps) == {"0000000000000000"}
    count = int(next(line for line in proc.stdout.splitlines() if line.strip().isdigit()))
    assert count < 10  # bwrap's init, bash and its few children: no host process
    assert (worktree / "written.txt").read_text() == "inside\n"
    assert "x" not in (gitdir / "HEAD").read_text() and (repo / "README.md").read_text() == "# sample\n"
    assert not (repo / ".agentflow" / "x").exists()


def test_a_daemon_that_stops_the_namespaces_init_dies_with_the_session(repo: Path, tmp_path: Path, monkeypatch) -> None:
    """A hostile process double-forks a daemon, leaves the session, and tries to ptrace-attach the
    PID namespace's init so that the namespace outlives the command. Refused: the command runs one
    user namespace below pid 1 (with both in one namespace, same uid and no capability, the kernel allowed it and
    the command hung until the caller's timeout killed bwrap; tests/test_attacks_ptrace.py goes
    further). The command ends on its own, and the daemon with it: nothing of the session survives
    (agentflow's run_command, checks and the Claude Code transport all end a session this way)."""
    need_tool("bwrap")
    from agentflow.sandbox import Sandbox
    from agentflow.tools import run_shell

    worktree = _layout(repo, tmp_path, monkeypatch)
    marker = f"survivor-{uuid.uuid4().hex}"
    daemon = (
        "import ctypes, os, sys, time\n"
        "if os.fork(): sys.exit(0)\n"
        "os.setsid()\n"
        "if os.fork(): sys.exit(0)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "open('attached', 'w').write(str(libc.ptrace(16, 1, 0, 0)))\n"  # PTRACE_ATTACH pid 1
        "time.sleep(300)\n"
    )
    (worktree / "daemon.py").write_text(daemon)
    for nested in (True, False):
        sandbox = Sandbox.from_config()
        command = f"python3 daemon.py {marker} </dev/null >/dev/null 2>&1; for i in $(seq 50); do [ -s attached ] && break; sleep 0.1; done"
        if nested:
            argv = sandbox.wrap(["bash", "-c", command], worktree, nested=True)
            proc = subprocess.Popen(argv, env=sandbox.environment(), start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                proc.wait(timeout=8)
                code: int | None = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
                os.killpg(proc.pid, 9)
                proc.wait()
        else:
            code, _out, _seconds = run_shell(command, worktree, 8, sandbox=sandbox)
        assert (worktree / "attached").read_text() == "-1"  # PTRACE_ATTACH of pid 1: EPERM
        assert code == 0  # nothing stopped its init: the command ended by itself
        for _ in range(50):
            if not processes_with(marker):
                break
            subprocess.run(["sleep", "0.1"], check=False)
        assert processes_with(marker) == [], f"nested={nested}: a process of the session survived it"
        (worktree / "attached").unlink()
