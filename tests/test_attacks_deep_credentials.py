"""Credentials deeper in the home, and root-only files under ``/opt`` and ``/home``.

The home stays readable in the sandbox (toolchains, virtual environments live there), minus a list
of credential files. Registry logins of build tools and package managers sit in folders of the home
(``~/.m2/settings.xml``, ``~/.gradle/gradle.properties``, ``~/.config/pip/pip.conf``, git's XDG
credential store, ...): a sandboxed check read them, and as root ``/root`` being private hid only
the files at its top (tested before the fix). They are on the list now.

As root the sandbox's uid is root's on the host's files, so a file only root may read is the
command's own: ``/etc``, ``/var/lib``, ... were scanned and their root-only entries hidden, but an
application's ``/opt/<app>/config/secrets.yml`` or a token root left in ``/home/<user>/`` was read
(tested before the fix). ``/opt`` (four levels) and ``/home`` (three) are scanned too.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
from pathlib import Path

import pytest

from agentflow import sandbox as sandbox_module
from agentflow.sandbox import CREDENTIALS, Sandbox
from agentflow.tools import run_shell
from tests.helpers import need_tool

SECRET = "tok-deep-0123456789abcdef"
ADDED = (
    ".m2/settings.xml",
    ".m2/settings-security.xml",
    ".gradle/gradle.properties",
    ".ivy2/.credentials",
    ".sbt/.credentials",
    ".config/pip/pip.conf",
    ".pip/pip.conf",
    ".config/uv/uv.toml",
    ".bundle/config",
    ".composer/auth.json",
    ".config/composer/auth.json",
    ".nuget/NuGet/NuGet.Config",
    ".config/NuGet/NuGet.Config",
    ".yarnrc.yml",
    ".config/git/credentials",
    ".pgpass",
    ".my.cnf",
    ".terraformrc",
    ".config/helm/repositories.yaml",
    ".config/helm/registry/config.json",
    ".config/doctl/config.yaml",
    ".config/hcloud/cli.toml",
    ".fly/config.yml",
    ".oci/config",
    ".databrickscfg",
    ".pulumi/credentials.json",
    ".config/sops/age/keys.txt",
    ".password-store/github.gpg",
    ".local/share/keyrings/login.keyring",
    ".kaggle/kaggle.json",
    ".huggingface/token",
    ".cache/huggingface/token",
    ".config/configstore/firebase-tools.json",
    ".tsh/keys/proxy/user",
    ".sqlite_history",
    ".rediscli_history",
)


def _sandbox(home: Path) -> Sandbox:
    need_tool("bwrap")
    return dataclasses.replace(Sandbox.from_config(), home=str(home))


@pytest.mark.parametrize("relative", ADDED)
def test_a_sandboxed_command_cannot_read_registry_logins_deeper_in_the_home(tmp_path: Path, relative: str) -> None:
    home = tmp_path / "home"
    target = home / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"token = {SECRET}\n")
    # what lives beside them stays readable: the local repository of Maven, a pip cache, a toolchain
    for kept in (".m2/repository/lib.jar", ".config/pip/README", ".cargo/bin/tool"):
        (home / kept).parent.mkdir(parents=True, exist_ok=True)
        (home / kept).write_text("toolchain\n")
    work = tmp_path / "work"
    work.mkdir()

    code, out, _ = run_shell(f"cat {target} 2>&1; cat {home}/.m2/repository/lib.jar", work, 30, sandbox=_sandbox(home))

    assert SECRET not in out, out
    assert "toolchain" in out, out


def test_the_hidden_list_names_them() -> None:
    named = set(CREDENTIALS)
    assert all(any(r == c or r.startswith(c + "/") for c in named) for r in ADDED), set(ADDED) - named


@pytest.fixture(params=["/opt", "/home"])
def stand_in(request):
    """A folder of root's in /opt or /home holding a root-only file two levels down, a root-only
    folder, and a world-readable file; removed after the test."""
    if os.geteuid() != 0:
        pytest.skip("only root's sandbox maps to root's files")
    top = Path(request.param)
    if not top.is_dir() or not os.access(top, os.W_OK):
        pytest.skip(f"{top} is not writable here")
    folder = top / f"agentflow-attack-{secrets.token_hex(6)}"
    try:
        (folder / "config").mkdir(parents=True, mode=0o755)
        folder.chmod(0o755)
        descriptor = os.open(folder / "config" / "secrets.yml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"token: {SECRET}\n")
        (folder / "private").mkdir(mode=0o700)
        (folder / "private" / "key").write_text(f"key = {SECRET}\n")
        (folder / "private" / "key").chmod(0o644)
        (folder / "config" / "app.yml").write_text("public: yes\n")
        (folder / "config" / "app.yml").chmod(0o644)
        sandbox_module.root_only_paths.cache_clear()
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        sandbox_module.root_only_paths.cache_clear()


def test_a_root_only_file_under_opt_or_home_is_hidden(tmp_path: Path, stand_in: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()

    command = f"cat {stand_in}/config/secrets.yml {stand_in}/private/key 2>&1; cat {stand_in}/config/app.yml"
    code, out, _ = run_shell(command, work, 30, sandbox=_sandbox(tmp_path / "home"))

    assert SECRET not in out, out
    assert "public: yes" in out, out  # what every user may read stays readable


def test_a_checkout_in_a_private_folder_of_home_works_and_its_neighbours_stay_hidden(tmp_path: Path) -> None:
    """A checkout below a private /home/<user> (0750, as Ubuntu makes them): the folder is not hidden
    whole (the command works in its checkout), its root-only entries are."""
    if os.geteuid() != 0 or not os.access("/home", os.W_OK):
        pytest.skip("needs root and a writable /home")
    folder = Path("/home") / f"agentflow-attack-{secrets.token_hex(6)}"
    try:
        folder.mkdir(mode=0o750)
        folder.chmod(0o750)
        (folder / "secret").write_text(f"token = {SECRET}\n")
        (folder / "secret").chmod(0o600)
        work = folder / "project"
        work.mkdir()
        (work / "app.py").write_text("print('app')\n")
        sandbox_module.root_only_paths.cache_clear()

        code, out, _ = run_shell(f"cat {folder}/secret 2>&1; cat app.py; touch made", work, 30,
                                 sandbox=_sandbox(tmp_path / "home"))  # fmt: skip

        assert SECRET not in out, out
        assert "print('app')" in out and (work / "made").exists(), out
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        sandbox_module.root_only_paths.cache_clear()
