"""Files only root may read, when agentflow runs as root (CI runners and containers often do).

The sandbox runs the command as uid 1000 of a user namespace that bwrap, run by root, maps to root on
the host: the host's files owned by root are the command's own, so their owner bits apply. Through the
read-only root bind a sandboxed check read ``/etc/shadow``, ``/etc/gshadow``, the ssh host keys, any
file of ``/etc`` or ``/var/lib`` only root could read, and root's dotfiles (an ``export TOKEN=`` in
``.bashrc``, a registry token in ``.yarnrc.yml``) not on the credential list (tested before the fix).
Now every entry below ``/etc``, ``/var/lib``, ``/var/log``, ... that other users cannot read is
hidden, as are the regular files at the top of root's home (all of them when the home is private,
as ``/root`` is) and ``/root``'s credentials when ``HOME`` is elsewhere.

This machine runs as root: the tests use the real ``/etc/shadow`` where it is readable, and stand-ins
(a root-only file and folder made in ``/etc`` for the test and removed after it; private files in a
test home).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from agentflow import sandbox as sandbox_module
from agentflow.sandbox import Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root's sandbox maps to root's files")
SECRET = "root-only-0123456789abcdef"


def sandbox(home: Path) -> Sandbox:
    need_tool("bwrap")
    return dataclasses.replace(Sandbox.from_config(), home=str(home))


def real_root_files() -> list[str]:
    paths = ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", *glob.glob("/etc/ssh/ssh_host_*_key")]
    return [p for p in paths if os.path.isfile(p) and not os.stat(p).st_mode & 0o004]


@pytest.mark.parametrize("path", real_root_files() or ["/etc/shadow"])
def test_a_sandboxed_command_cannot_read_the_hosts_root_only_files(tmp_path: Path, path: str) -> None:
    if not os.path.isfile(path):
        pytest.skip(f"{path} is not on this machine")
    content = Path(path).read_text(errors="replace").strip()
    if not content:
        pytest.skip(f"{path} is empty")
    work = tmp_path / "work"
    work.mkdir()

    code, out, _ = run_shell(f"cat {path} 2>&1; cat /etc/passwd", work, 30, sandbox=sandbox(tmp_path / "home"))

    assert content.splitlines()[0] not in out, out
    assert "root:x:0:0" in out, out  # what every user may read stays readable


@pytest.fixture
def etc_stand_in():
    """A root-only file and a root-only folder (with a world-readable file inside) in /etc."""
    if not os.access("/etc", os.W_OK):
        pytest.skip("/etc is not writable here")
    name = f"/etc/agentflow-attack-{secrets.token_hex(6)}"
    folder = Path(name + ".d")
    try:
        descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"secret = {SECRET}\n")
        folder.mkdir(mode=0o750)
        (folder / "token").write_text(f"token = {SECRET}\n")
        (folder / "token").chmod(0o644)  # readable by anyone who could enter the folder: nobody but root
        sandbox_module.root_only_paths.cache_clear()
        yield Path(name), folder
    finally:
        Path(name).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        sandbox_module.root_only_paths.cache_clear()


def test_a_root_only_file_and_folder_in_etc_are_hidden(tmp_path: Path, etc_stand_in) -> None:
    path, folder = etc_stand_in
    work = tmp_path / "work"
    work.mkdir()

    code, out, _ = run_shell(f"cat {path} {folder}/token 2>&1; ls -A {folder}", work, 30,
                             sandbox=sandbox(tmp_path / "home"))  # fmt: skip

    assert SECRET not in out, out
    assert "token" not in out.replace(f"{folder}/token", ""), out  # the folder is empty inside


def test_a_root_only_file_that_goes_away_after_the_scan_breaks_no_later_sandbox(tmp_path: Path, etc_stand_in) -> None:
    """The scan is once per process, and a root-only file may go away later (log rotation, a package
    manager, a lock): bwrap could not mount over the missing path in the read-only root and refused
    every later sandboxed command of the process, so each check of a long build failed (found by
    par4's benchmark while these stand-ins came and went). A file made root-only in its place is
    hidden as a folder or file, whichever it is now."""
    path, folder = etc_stand_in
    work = tmp_path / "work"
    work.mkdir()
    box = sandbox(tmp_path / "home")
    assert run_shell("true", work, 30, sandbox=box)[0] == 0  # scanned: both stand-ins listed
    assert (str(path), False) in sandbox_module.root_only() and (str(folder), True) in sandbox_module.root_only()
    path.unlink()
    shutil.rmtree(folder)
    folder.write_text(f"secret = {SECRET}\n")  # the folder's name now a root-only file
    folder.chmod(0o600)

    try:
        code, out, _ = run_shell(f"echo ran; cat {path} {folder} 2>&1", work, 30, sandbox=box)
    finally:
        folder.unlink()  # the fixture removes a folder

    assert "ran" in out, out
    assert SECRET not in out, out


def test_root_dotfiles_at_the_top_of_a_private_home_are_hidden(tmp_path: Path) -> None:
    home = tmp_path / "root"
    (home / ".cargo" / "bin").mkdir(parents=True)
    (home / ".cargo" / "bin" / "tool").write_text("toolchain\n")
    for name in (".bashrc", ".profile", ".yarnrc.yml", ".bunfig.toml"):
        (home / name).write_text(f"export TOKEN={SECRET}\n")
        (home / name).chmod(0o644)
    home.chmod(0o700)  # as /root is: nobody but root reads anything in it
    work = tmp_path / "work"
    work.mkdir()

    code, out, _ = run_shell(f"cat {home}/.bashrc {home}/.profile {home}/.yarnrc.yml {home}/.bunfig.toml 2>&1; "
                             f"cat {home}/.cargo/bin/tool", work, 30, sandbox=sandbox(home))  # fmt: skip

    assert SECRET not in out, out
    assert "toolchain" in out, out  # folders (toolchains, caches) stay readable


def test_a_private_file_at_the_top_of_an_open_home_is_hidden_and_a_public_one_is_not(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    (home / ".private").write_text(f"{SECRET}\n")
    (home / ".private").chmod(0o600)
    (home / ".tool-versions").write_text("python 3.12\n")
    (home / ".tool-versions").chmod(0o644)
    work = tmp_path / "work"
    work.mkdir()

    code, out, _ = run_shell(f"cat {home}/.private {home}/.tool-versions 2>&1", work, 30, sandbox=sandbox(home))

    assert SECRET not in out, out
    assert "python 3.12" in out, out


def test_roots_credentials_are_hidden_when_home_is_elsewhere(tmp_path: Path, monkeypatch) -> None:
    root_home = tmp_path / "roothome"
    (root_home / ".ssh").mkdir(parents=True)
    (root_home / ".ssh" / "id_ed25519").write_text(f"{SECRET}\n")
    (root_home / ".ssh" / "id_ed25519").chmod(0o644)
    (root_home / ".git-credentials").write_text(f"https://u:{SECRET}@example.com\n")
    (root_home / ".git-credentials").chmod(0o644)
    monkeypatch.setattr(sandbox_module, "ROOT_HOME", str(root_home))
    work = tmp_path / "work"
    work.mkdir()
    box = sandbox(tmp_path / "ci-home")  # HOME=/github/home in a container job: /root is not the home
    argv = box.wrap(["sh", "-c", f"cat {root_home}/.ssh/id_ed25519 {root_home}/.git-credentials 2>&1; echo done"],
                    work, readable=[root_home])  # fmt: skip

    out = subprocess.run(argv, capture_output=True, text=True, env=box.environment(), timeout=30, check=False).stdout

    assert SECRET not in out, out
    assert "done" in out, out


def test_a_checkout_below_a_private_folder_stays_usable_and_the_rest_is_hidden(tmp_path: Path, monkeypatch) -> None:
    var = tmp_path / "var"  # a CI runner's state folder: private, holding the job's checkout
    ci = var / "ci"
    work = ci / "builds" / "work"
    work.mkdir(parents=True)
    (work / "code.py").write_text("print('code')\n")
    (ci / "runner.token").write_text(f"{SECRET}\n")
    (ci / "runner.token").chmod(0o600)
    (ci / "keys").mkdir(mode=0o700)
    (ci / "keys" / "k").write_text(f"{SECRET}\n")
    ci.chmod(0o700)
    monkeypatch.setattr(sandbox_module, "ROOT_ONLY_ROOTS", (str(var),))
    box = sandbox(var)  # the home binds var back into the sandbox's private /tmp

    code, out, _ = run_shell(f"cat {ci}/runner.token {ci}/keys/k 2>&1; cat code.py; echo x > new.txt && echo wrote",
                             work, 30, sandbox=box)  # fmt: skip

    assert SECRET not in out, out
    assert "print('code')" in out and "wrote" in out, out
    assert (work / "new.txt").read_text() == "x\n"
