"""Red team of the sandbox's PID namespace: a process that makes the namespace outlive its command.

bwrap kills a sandbox whose parent dies through one thing only: the parent-death signal of the
namespace's pid 1 (``--die-with-parent``). Whoever can run code in pid 1 can clear it. Inside the
sandbox pid 1 has the command's uid and no capability, and this kernel has no Yama, so a process
of the command can ptrace it: the attack below attaches to pid 1, makes it call
``prctl(PR_SET_PDEATHSIG, 0)`` by pointing its registers at a ``syscall`` instruction of its own
code, restores it and detaches. The command then hangs until the caller's timeout kills ``bwrap``;
pid 1 no longer dies with it, so the namespace, its processes and its writable bind of the worktree
stay: the builder's process keeps writing into the worktree after its command "ended" (while
agentflow commits it, or during the verifier's turn). The defence (agentflow.sandbox's guard): the
command runs in a user namespace that is a child of pid 1's, across which the kernel refuses every
ptrace-mode access to pid 1; ``test_without_the_guard_pid_1_is_within_reach`` shows the attack's
first steps still work here without it."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import git, need_tool, processes_with

# Runs inside the sandbox: leaves the command's session, attacks pid 1, then keeps writing into the
# worktree for 20 seconds. attack.log says what each step gave.
DAEMON = r"""
import ctypes, os, sys, time
if os.fork(): sys.exit(0)
os.setsid()
if os.fork(): sys.exit(0)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
NAMES = ("r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax rip cs eflags rsp ss "
         "fs_base gs_base ds es fs gs").split()
class Regs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_ulonglong) for name in NAMES]
PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_SINGLESTEP, PTRACE_ATTACH, PTRACE_DETACH = 12, 13, 9, 16, 17
WALL = 0x40000000

def log(text):
    with open("attack.log", "a") as f:
        f.write(text + "\n")

def mem_open():
    try:
        os.close(os.open("/proc/1/mem", os.O_RDWR))
        return "opened"
    except OSError as exc:
        return exc.strerror

def syscall_instruction():
    with open("/proc/1/maps") as maps:
        regions = [line.split()[:2] for line in maps]
    fd = os.open("/proc/1/mem", os.O_RDONLY)
    try:
        for span, perms in regions:
            if "x" not in perms:
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                found = os.pread(fd, end - start, start).find(b"\x0f\x05")
            except OSError:
                continue
            if found >= 0:
                return start + found
    finally:
        os.close(fd)
    return None

def clear_pdeathsig():
    if libc.ptrace(PTRACE_ATTACH, 1, None, None) != 0:
        return "attach: " + os.strerror(ctypes.get_errno())
    os.waitpid(1, WALL)
    gadget = syscall_instruction()
    if gadget is None:
        return "no syscall instruction"
    saved, regs = Regs(), Regs()
    libc.ptrace(PTRACE_GETREGS, 1, None, ctypes.byref(saved))
    ctypes.pointer(regs)[0] = saved
    regs.rax, regs.orig_rax, regs.rip = 157, 2**64 - 1, gadget  # prctl, no syscall restart
    regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8 = 1, 0, 0, 0, 0  # PR_SET_PDEATHSIG, 0
    libc.ptrace(PTRACE_SETREGS, 1, None, ctypes.byref(regs))
    libc.ptrace(PTRACE_SINGLESTEP, 1, None, None)
    os.waitpid(1, WALL)
    libc.ptrace(PTRACE_GETREGS, 1, None, ctypes.byref(regs))
    libc.ptrace(PTRACE_SETREGS, 1, None, ctypes.byref(saved))
    libc.ptrace(PTRACE_DETACH, 1, None, None)
    return "prctl: " + str(ctypes.c_longlong(regs.rax).value)

log("mem: " + mem_open())
try:
    log(clear_pdeathsig())
except Exception as exc:
    log("error: " + repr(exc))
for _ in range(400):
    with open("survivor.txt", "a") as f:
        f.write("x")
    time.sleep(0.05)
"""


def _layout(repo: Path, tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    worktree = repo / ".agentflow" / "worktrees" / "w"
    git(repo, "worktree", "add", "-q", str(worktree), "-b", "w")
    (worktree / "daemon.py").write_text(DAEMON)
    return worktree


def _run(worktree: Path, command: str, nested: bool) -> int | None:
    """The command as agentflow runs it, with a 6 s timeout: ``run_shell`` (run_command, checks, the
    command backend), or, nested, the way the Claude Code transport starts and kills its process."""
    from agentflow.sandbox import Sandbox
    from agentflow.tools import run_shell

    sandbox = Sandbox.from_config()
    if not nested:
        return run_shell(command, worktree, 6, sandbox=sandbox)[0]
    argv = sandbox.wrap(["bash", "-c", command], worktree, nested=True)
    proc = subprocess.Popen(argv, env=sandbox.environment(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        return proc.wait(timeout=6)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        return None


@pytest.mark.parametrize("nested", [False, True], ids=["default", "nested"])
def test_a_tracer_that_clears_the_inits_parent_death_signal_does_not_outlive_the_command(
    repo: Path, tmp_path: Path, monkeypatch, nested: bool
) -> None:
    """The attack of the module docstring, in both sandbox shapes. After the command returns
    (killed at its timeout) nothing of it is left: no process, and nothing written into the
    worktree. The attack fails where it starts: pid 1 cannot be ptraced, nor its memory opened."""
    need_tool("bwrap")
    if platform.machine() != "x86_64":
        pytest.skip("the attack's register layout is x86_64's")  # the defence is not arch-specific
    worktree = _layout(repo, tmp_path, monkeypatch)
    marker = f"survivor-{uuid.uuid4().hex}"
    command = f"python3 daemon.py {marker} </dev/null >/dev/null 2>&1; sleep 30 # {marker}"
    survivor = worktree / "survivor.txt"
    try:
        code = _run(worktree, command, nested)
        returned = time.monotonic()
        log = (worktree / "attack.log").read_text() if (worktree / "attack.log").exists() else ""
        assert code is None, log  # it hung until the timeout
        survivor.unlink(missing_ok=True)
        while time.monotonic() - returned < 2 and not survivor.exists():
            time.sleep(0.1)
        assert not survivor.exists(), f"a process of the command wrote into the worktree after it returned: {log}"
        assert processes_with(marker) == [], f"a process of the command survived it: {log}"
        assert "attach: Operation not permitted" in log and "mem: Permission denied" in log, log
    finally:
        for pid in processes_with(marker):
            os.kill(pid, 9)


# Runs inside the sandbox: every other way into pid 1's memory or files, each line "what: result".
PROBE = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = libc.syscall.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
L = ctypes.c_long
def err():
    return os.strerror(ctypes.get_errno())
def attempt(name, fn):
    try:
        print(name + ": " + str(fn()))
    except OSError as exc:
        print(name + ": " + exc.strerror)
def attach(pid):
    if libc.ptrace(16, pid, None, None) != 0:
        return err()
    os.waitpid(pid, 0x40000000)
    libc.ptrace(17, pid, None, 0)
    return "attached"
def opened(path, flags=os.O_RDONLY):
    os.close(os.open(path, flags))
    return "opened"
class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
def vm_write():
    start = int(open("/proc/1/maps").readline().split("-")[0], 16) if os.access("/proc/1/maps", os.R_OK) else 0x400000
    buf = ctypes.create_string_buffer(8)
    local, remote = IOVec(ctypes.addressof(buf), 8), IOVec(start, 8)
    n = libc.syscall(L(311), L(1), ctypes.byref(local), L(1), ctypes.byref(remote), L(1), L(0))  # process_vm_writev
    return err() if n < 0 else "wrote"
def getfd():
    pidfd = os.pidfd_open(1)
    fd = libc.syscall(L(438), L(pidfd), L(0), L(0))  # pidfd_getfd of pid 1's stdin
    return err() if fd < 0 else "got"
attempt("ptrace", lambda: attach(1))
attempt("mem", lambda: opened("/proc/1/mem", os.O_RDWR))
attempt("environ", lambda: opened("/proc/1/environ"))
attempt("fd", lambda: opened("/proc/1/fd/0"))
attempt("ns", lambda: opened("/proc/1/ns/user"))
attempt("root", lambda: os.listdir("/proc/1/root/"))
attempt("process_vm_writev", vm_write)
attempt("pidfd_getfd", getfd)
child = os.fork()
if child == 0:
    time.sleep(5)
    os._exit(0)
attempt("own child", lambda: attach(child))
os.kill(child, 9)
"""
DENIED = {"ptrace": "Operation not permitted", "mem": "Permission denied", "environ": "Permission denied",
          "fd": "Permission denied", "ns": "Permission denied", "root": "Permission denied",
          "process_vm_writev": "Permission denied", "pidfd_getfd": "Operation not permitted"}  # fmt: skip


def _probe(worktree: Path, nested: bool, prefix: str = "", sandbox=None) -> dict[str, str]:
    from agentflow.sandbox import Sandbox

    (worktree / "probe.py").write_text(PROBE)
    sandbox = sandbox or Sandbox.from_config()
    argv = sandbox.wrap(["sh", "-c", f"{prefix}python3 probe.py"], worktree, nested=nested)
    proc = subprocess.run(argv, env=sandbox.environment(), capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return dict(line.split(": ", 1) for line in proc.stdout.splitlines())


@pytest.mark.parametrize(("nested", "prefix"), [(False, ""), (True, ""), (True, "unshare -Ur ")],
                         ids=["default", "nested", "inner-root"])  # fmt: skip
def test_no_process_of_the_command_reaches_pid_1s_memory_or_files(
    repo: Path, tmp_path: Path, monkeypatch, nested: bool, prefix: str
) -> None:
    """Variants of the attack: ptrace, /proc/1/mem, environ, fd, ns, root, process_vm_writev and
    pidfd_getfd of pid 1 are all refused, in both shapes and for a root of an inner user namespace
    (``unshare -Ur`` inside the nested shape: capabilities in its own namespace only). The command's
    processes can still trace each other (the guard separates them from pid 1, not from each other)."""
    need_tool("bwrap")
    if platform.machine() != "x86_64":
        pytest.skip("the probe's syscall numbers are x86_64's")
    worktree = _layout(repo, tmp_path, monkeypatch)
    got = _probe(worktree, nested, prefix)
    assert {k: got.get(k) for k in DENIED} == DENIED, got
    assert got["own child"] == "attached", got


def test_without_the_guard_pid_1_is_within_reach(repo: Path, tmp_path: Path, monkeypatch) -> None:
    """What makes the tests above meaningful: on this kernel (no Yama), the same probe in a sandbox
    without the guard (bwrap's init and the command in one user namespace) attaches to pid 1 and
    opens its memory for writing, the first steps of the attack of the module docstring."""
    need_tool("bwrap")
    if platform.machine() != "x86_64":
        pytest.skip("the probe's syscall numbers are x86_64's")
    if (
        Path("/proc/sys/kernel/yama/ptrace_scope").exists()
        and Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip() != "0"
    ):
        pytest.skip("Yama restricts ptrace here: the unguarded baseline cannot be shown")  # fmt: skip
    import agentflow.sandbox as sandbox

    worktree = _layout(repo, tmp_path, monkeypatch)
    monkeypatch.setattr(sandbox, "guard_argv", list)  # (the start-up probe would refuse this sandbox)
    got = _probe(worktree, nested=False, sandbox=sandbox.Sandbox(bwrap=shutil.which("bwrap") or "bwrap"))
    assert (got["ptrace"], got["mem"], got["environ"], got["fd"], got["pidfd_getfd"]) == (
        "attached",
        "opened",
        "opened",
        "opened",
        "got",
    ), got
    assert got["process_vm_writev"] in ("wrote", "Bad address"), got  # allowed (a read-only page: EFAULT)


def test_a_sandbox_whose_pid_1_is_within_reach_is_refused_at_start(monkeypatch) -> None:
    """Fail closed: the probe behind ``mode: auto | bwrap`` checks the guard from inside. Without it
    (here: removed) pid 1's environ is readable, and no sandbox is available (exit 2, one line
    naming the problem and the fix); with an ``unshare`` that cannot make the namespace (here: an
    option it does not know, as util-linux before 2.38), the same; with no ``unshare``, one line."""
    need_tool("bwrap")
    import agentflow.sandbox as sandbox

    fix = (
        "(install util-linux 2.38 or later (its unshare runs every sandboxed command in a user namespace of its own); "
    )
    cases = [
        (list, "a sandboxed process can reach pid 1 (ptrace, /proc/1/mem)"),
        (
            lambda: [sandbox.unshare_path(), "--user", "--map-nobody", "--"],
            f"{sandbox.unshare_path()}: unrecognized option '--map-nobody'",
        ),
    ]
    for guard, problem in cases:
        monkeypatch.setattr(sandbox, "guard_argv", guard)
        refused = _refused(sandbox)
        assert refused.exit_code == 2
        assert str(refused).startswith(f"agentflow.yaml: sandbox: pid 1 cannot be guarded here ({problem}) {fix}")
        assert "\n" not in str(refused)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, path=None: "/usr/bin/bwrap" if name == "bwrap" else None)
    assert str(_refused(sandbox)).startswith("agentflow.yaml: sandbox: util-linux's unshare is not installed (install")


def _refused(sandbox):
    """The ``SandboxUnavailable`` that ``require_bwrap`` raises, its probe and ``unshare`` looked up
    afresh (and forgotten again for the next test)."""
    caches = (sandbox._probe, sandbox.unshare_path)
    for cache in caches:
        cache.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailable) as raised:
            sandbox.require_bwrap()
    finally:
        for cache in caches:
            cache.cache_clear()
    return raised.value


def test_an_unshare_planted_in_the_worktree_does_not_run(repo: Path, tmp_path: Path, monkeypatch) -> None:
    """The guard runs before the command, in the worktree an earlier command of the builder wrote:
    an ``unshare`` there, first on ``PATH``, is never run (the guard is the host's, by absolute path)."""
    need_tool("bwrap")
    from agentflow.sandbox import Sandbox
    from agentflow.tools import run_shell

    worktree = _layout(repo, tmp_path, monkeypatch)
    planted = worktree / "unshare"
    planted.write_text(f'#!/bin/sh\ntouch {worktree / "planted-ran"}\nshift 3\nexec "$@"\n')
    planted.chmod(0o755)
    sandbox = Sandbox.from_config()
    env = {**sandbox.environment(), "PATH": f"{worktree}:{os.defpath}"}

    code, out, _ = run_shell("echo ran", worktree, 30, env, sandbox)

    assert (code, out) == (0, "ran\n")
    assert not (worktree / "planted-ran").exists()
