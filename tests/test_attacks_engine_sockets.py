"""Container engines' sockets at paths the fixed list did not name.

``HIDDEN_SOCKETS`` named Docker's, containerd's and the other engines' usual sockets, but a dockerd
that runs its own containerd (docker-in-docker, the CI images that start ``dockerd`` themselves)
serves the full containerd API at ``/run/docker/containerd/containerd.sock``, and k0s, MicroK8s
(below ``/var/snap``) and a second daemon (``docker-2.sock``) keep theirs elsewhere: a sandboxed
process connected to it (tested before the fix with a socket there), and through it a container
engine runs a privileged container, outside the sandbox. Sockets with engines' names are now found
below ``/run`` and ``/var/snap`` and hidden too."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from agentflow import sandbox as sandbox_module
from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

CONNECT = (
    "python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
    "print(s.recv(16).decode())' {path} 2>&1"
)


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A listening socket where dockerd keeps its own containerd's, below a stand-in for /run."""
    run = tmp_path / "run"
    path = run / "docker" / "containerd" / "containerd.sock"
    path.parent.mkdir(parents=True)
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
            conn.sendall(b"engine-hello")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setattr(sandbox_module, "SOCKET_ROOTS", (str(run),), raising=False)
    yield path
    stop.set()
    thread.join()
    server.close()


def test_a_container_engines_socket_found_by_name_is_hidden(engine: Path, tmp_path: Path) -> None:
    need_tool("bwrap")
    work = tmp_path / "work"
    work.mkdir()

    _code, out, _ = run_shell(CONNECT.format(path=engine), work, 30, sandbox=Sandbox.from_config(), readable=[tmp_path])

    assert "engine-hello" not in out and "Connection refused" in out, out


def test_other_sockets_stay_reachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database's socket (test suites use it) is no engine's: not hidden."""
    need_tool("bwrap")
    run = tmp_path / "run"
    (run / "postgresql").mkdir(parents=True)
    path = run / "postgresql" / ".s.PGSQL.5432"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    monkeypatch.setattr(sandbox_module, "SOCKET_ROOTS", (str(run),), raising=False)
    work = tmp_path / "work"
    work.mkdir()

    _code, out, _ = run_shell(
        f"test -S {path} && echo socket-there", work, 30, sandbox=Sandbox.from_config(), readable=[tmp_path]
    )

    server.close()
    assert "socket-there" in out, out
