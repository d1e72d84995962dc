"""The kernel's session keyring, which every process inherits.

A login session's keyring holds what ``pam_keyinit``, Kerberos (``KRB5CCNAME=KEYRING:...``, the
persistent keyring linked into it), ``cifscreds`` or ``fscrypt`` put there: tickets, passwords,
encryption keys. bwrap and the guard's user namespaces keep it (keyrings are not part of any
namespace it unshares), and a process possesses every key of its session keyring: a sandboxed
command read a key of agentflow's session keyring with ``keyctl`` (tested before the fix). Every
sandbox now starts in a new, empty session keyring of its own."""

from __future__ import annotations

import ctypes
import platform
import sys
from pathlib import Path

import pytest

from agentflow.sandbox import KEYCTL, Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

SECRET = b"krb5-ticket-0123456789abcdef"
ADD_KEY = {"x86_64": 248, "aarch64": 217}
KEYCTL_JOIN_SESSION_KEYRING = 1
SESSION = -3

READER = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
kid = libc.syscall({keyctl}, 10, -3, b"user", b"agentflow-test", 0)  # KEYCTL_SEARCH in @s
buf = ctypes.create_string_buffer(200)
n = libc.syscall({keyctl}, 11, kid, buf, 200) if kid > 0 else -1  # KEYCTL_READ
print("read:", buf.value.decode() if n > 0 else "nothing")
"""


def test_a_sandboxed_command_cannot_read_the_session_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need_tool("bwrap")
    from agentflow import sandbox

    monkeypatch.setattr(sandbox._KEYRING, "joined", False, raising=False)  # as in a fresh agentflow process
    machine = platform.machine()
    if machine not in ADD_KEY:
        pytest.skip(f"no keyctl numbers for {machine}")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None) < 0:  # a session keyring of this test's own
        pytest.skip("no kernel keyrings here")
    if libc.syscall(ADD_KEY[machine], b"user", b"agentflow-test", SECRET, len(SECRET), SESSION) < 0:
        pytest.skip("cannot add a key")

    _code, out, _ = run_shell(
        f"{sys.executable} -c '{READER.format(keyctl=KEYCTL)}'", tmp_path, 30, sandbox=Sandbox.from_config()
    )

    assert SECRET.decode() not in out, out
    assert "read: nothing" in out, out
