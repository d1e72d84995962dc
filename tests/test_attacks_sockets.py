"""Attacks through local daemons' Unix sockets, which ``--unshare-net`` does not separate.

A Unix socket with a path is reached through the file system, so a sandboxed process (no network
at all) still connects to every daemon socket the read-only root shows and its uid may open. The
sandbox hid Docker's and containerd's; the other container engines, VM managers, systemd's own bus
and the system D-Bus (``StartTransientUnit``: a command outside every namespace, as root when
agentflow runs as root, whose uid the sandbox's maps to) stayed reachable. They are hidden too.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from agentflow import sandbox as sandbox_module
from agentflow.sandbox import HIDDEN_SOCKETS, Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

CONNECT = (
    "python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
    "print(s.recv(16).decode())' {path} 2>&1"
)


@pytest.fixture
def daemon(tmp_path: Path):
    """A listening socket that greets whoever connects (a daemon's API, for the test)."""
    path = tmp_path / "daemon.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(4)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(b"daemon-hello")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()
    server.close()


def test_a_sandboxed_process_reaches_a_daemon_socket_without_network(daemon: Path, tmp_path: Path) -> None:
    """The attack's premise: no network namespace stops a Unix socket with a path."""
    need_tool("bwrap")
    work = tmp_path / "work"
    work.mkdir()
    code, out, _ = run_shell(CONNECT.format(path=daemon), work, 30, sandbox=Sandbox.from_config(), readable=[tmp_path])
    assert "daemon-hello" in out, out


def test_a_listed_daemon_socket_is_hidden(daemon: Path, tmp_path: Path, monkeypatch) -> None:
    need_tool("bwrap")
    monkeypatch.setattr(sandbox_module, "HIDDEN_SOCKETS", (str(daemon),))
    work = tmp_path / "work"
    work.mkdir()
    code, out, _ = run_shell(CONNECT.format(path=daemon), work, 30, sandbox=Sandbox.from_config(), readable=[tmp_path])
    assert "daemon-hello" not in out and "Connection refused" in out, out


@pytest.mark.parametrize(
    "path",
    [
        "/run/systemd/private",
        "/run/dbus/system_bus_socket",
        "/run/podman/podman.sock",
        "/run/buildkit/buildkitd.sock",
        "/var/run/libvirt/libvirt-sock",
        "/var/snap/lxd/common/lxd/unix.socket",
        "/var/lib/incus/unix.socket",
        "/run/snapd.socket",
    ],
)
def test_the_daemons_that_run_commands_outside_the_sandbox_are_listed(path: str) -> None:
    assert path in HIDDEN_SOCKETS
