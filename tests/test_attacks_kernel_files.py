"""Kernel files only root may read, from a sandbox of agentflow run as root.

The sandbox's uid maps to root's on the host, so root-only files of ``/proc`` and ``/sys`` were the
command's own (tested before the fix, as root: each of these was read): ``/proc/timer_list`` (every
host process's name and pid, from outside the sandbox's PID namespace), ``/proc/kpageflags`` and
``/proc/kpagecount`` (physical page state), ``/proc/vmallocinfo`` and ``/proc/slabinfo`` (kernel
addresses and layout), and ``/sys/firmware`` (ACPI and DMI tables: the machine's serial numbers and
UUID; on QEMU, fw_cfg blobs that may hold a provisioning config). They are now hidden (``/proc``'s
in the default shape only: the nested shape mounts nothing over its ``/proc``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool


def _root_only(paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
            with open(path, "rb") as handle:
                readable = bool(handle.read(1))
        except OSError:
            continue
        if stat.S_ISREG(mode) and not mode & 0o004 and readable:
            found.append(path)
    return found


CANDIDATES = ["/proc/timer_list", "/proc/kpageflags", "/proc/kpagecount", "/proc/vmallocinfo", "/proc/slabinfo"]


def _firmware() -> list[str]:
    found = []
    for folder, _dirs, files in os.walk("/sys/firmware"):
        found += [os.path.join(folder, name) for name in files]
        if len(found) > 200:
            break
    return found


@pytest.fixture
def worktree(repo: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("as another user the sandbox has no root-only file to read")
    need_tool("bwrap")
    return repo


def test_root_only_proc_and_sys_files_are_hidden(worktree: Path) -> None:
    targets = _root_only(CANDIDATES) + _root_only(_firmware())[:20]
    if not targets:
        pytest.skip("no root-only /proc or /sys/firmware file here")
    command = " ".join(f"head -c 64 {path} 2>/dev/null | wc -c;" for path in targets) + " head -1 /proc/cpuinfo"

    _code, out, _ = run_shell(command, worktree, 30, sandbox=Sandbox.from_config())

    counts = out.split()[: len(targets)]
    assert counts == ["0"] * len(targets), list(zip(targets, counts, strict=False))
    assert "processor" in out  # the world-readable ones stay


def test_the_nested_shape_keeps_its_proc_unmounted(worktree: Path) -> None:
    """An inner sandbox (Claude Code's Bash) still mounts a /proc of its own inside the nested shape."""
    need_tool("bwrap")
    sandbox = Sandbox.from_config()
    inner = "bwrap --unshare-user --unshare-pid --ro-bind / / --dev /dev --proc /proc -- cat /proc/self/stat"
    argv = sandbox.wrap(["/bin/sh", "-c", inner], worktree, nested=True)
    import subprocess

    proc = subprocess.run(argv, capture_output=True, text=True, env=sandbox.environment(), timeout=30, check=False)

    assert proc.returncode == 0, proc.stderr
