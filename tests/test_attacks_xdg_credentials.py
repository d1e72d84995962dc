"""Credentials the environment moves out of the home: the sandbox hid them only at their default paths.

The credential list names ``~/.config/gh``, ``~/.config/git/credentials``, ``~/.local/share/atuin``...
below the home. With ``XDG_CONFIG_HOME`` (or ``XDG_DATA_HOME``) set elsewhere, gh, git's credential
store, rclone and the others keep them there, and a sandboxed command (a builder's, the change's check)
read them; so it did a CI job's service-account key named by ``GOOGLE_APPLICATION_CREDENTIALS``, a
``KUBECONFIG`` list, ``GH_CONFIG_DIR`` and ``CARGO_HOME``'s token (tested before the fix). The paths
the environment names are hidden too; a variable naming a folder the command needs is left alone.
"""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest

from agentflow.sandbox import Sandbox, env_credentials
from agentflow.tools import run_shell
from tests.helpers import git, need_tool

SECRET = "tok-0123456789abcdef"


def sandboxed(tmp_path: Path, command: str) -> str:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    sandbox = dataclasses.replace(Sandbox.from_config(), home=str(tmp_path / "home"))
    _, out, _ = run_shell(command, work, 30, sandbox=sandbox)
    return out


def plant(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"oauth_token: {SECRET}\n")
    return path


@pytest.mark.parametrize(
    ("variable", "value", "relative"),
    [
        ("XDG_CONFIG_HOME", "xdg", "xdg/gh/hosts.yml"),
        ("XDG_CONFIG_HOME", "xdg", "xdg/git/credentials"),
        ("XDG_CONFIG_HOME", "xdg", "xdg/gcloud/credentials.db"),
        ("XDG_DATA_HOME", "data", "data/atuin/key"),
        ("GH_CONFIG_DIR", "ghcfg", "ghcfg/hosts.yml"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "keys/sa.json", "keys/sa.json"),
        ("KUBECONFIG", "kube/a:kube/b", "kube/b"),
        ("CARGO_HOME", "cargo", "cargo/credentials.toml"),
        ("AWS_SHARED_CREDENTIALS_FILE", "aws-creds", "aws-creds"),
    ],
)
def test_a_sandboxed_command_cannot_read_credentials_the_environment_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, relative: str
) -> None:
    """The folders are in the home (shown to the sandbox: /tmp is not), as a dotfile manager keeps them."""
    need_tool("bwrap")
    home = tmp_path / "home"
    secret = plant(home / "elsewhere" / relative)
    (home / "elsewhere" / "tool.txt").write_text("toolchain\n")  # the rest stays readable
    monkeypatch.setenv(variable, ":".join(str(home / "elsewhere" / v) for v in value.split(":")))

    out = sandboxed(tmp_path, f"cat {secret} 2>&1; cat {home}/elsewhere/tool.txt")

    assert SECRET not in out, out
    assert "toolchain" in out, out


def test_a_variable_naming_a_folder_the_command_needs_hides_nothing_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("bwrap")
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("kept\n")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # above the home and the work folder
    monkeypatch.setenv("GNUPGHOME", str(home))

    out = sandboxed(tmp_path, f"cat {home}/notes.txt; echo ok > out.txt && cat out.txt")

    assert "kept" in out and "ok" in out, out


def test_relative_xdg_folders_are_ignored_and_root_is_never_hidden() -> None:
    found = env_credentials({"XDG_CONFIG_HOME": "rel", "KUBECONFIG": "/", "HF_HOME": "/srv/hf"})
    assert "/" not in found and not any(p.endswith("rel/gh") for p in found)
    assert "/srv/hf/token" in found


def test_git_config_below_xdg_config_home_is_shown_without_its_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("bwrap")
    home = tmp_path / "home"
    config = home / "xdg" / "git" / "config"
    config.parent.mkdir(parents=True)
    config.write_text(f'[user]\n\tname = Dev\n[http]\n\textraHeader = "Authorization: bearer {SECRET}"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))

    out = sandboxed(tmp_path, f"cat {config}")

    assert SECRET not in out and "Dev" in out, out


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SSH_AUTH_SOCK", "{sock}"),  # 1Password's or a forwarded agent kept in the home
        ("DOCKER_HOST", "unix://{sock}"),  # a rootless engine's socket: a container outside the sandbox
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path={sock},guid=0123"),  # systemd-run --user
        ("XDG_RUNTIME_DIR", "{folder}"),  # the runtime folder, not below /run/user
    ],
)
def test_a_sandboxed_command_cannot_reach_a_socket_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """A socket with a path is reached through the file system (a read-only bind does not stop
    ``connect``), whatever ``--unshare-net`` says; /run/user was hidden, sockets elsewhere were not."""
    import socket

    need_tool("bwrap")
    folder = tmp_path / "home" / ".run"
    folder.mkdir(parents=True)
    sock = folder / "agent.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    server.listen(1)
    monkeypatch.setenv(variable, value.format(sock=sock, folder=folder))
    probe = f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({str(sock)!r}); print('connected')"
    try:
        out = sandboxed(tmp_path, f"python3 -c {shlex.quote(probe)} 2>&1")
    finally:
        server.close()

    assert "connected" not in out, out


@pytest.mark.parametrize(
    ("variable", "prefix", "relative"),
    [
        ("HISTFILE", "", "hist/bash"),  # a shell history kept elsewhere
        ("PSQL_HISTORY", "", "hist/psql"),
        ("KRB5CCNAME", "FILE:", "krb/cc"),  # a Kerberos ticket cache
        ("KRB5CCNAME", "DIR:", "krb/ccdir/tkt"),
        ("KRB5_KTNAME", "", "krb/service.keytab"),  # a service principal's keys
    ],
)
def test_histories_and_kerberos_files_the_environment_names_are_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, prefix: str, relative: str
) -> None:
    need_tool("bwrap")
    home = tmp_path / "home"
    secret = plant(home / "elsewhere" / relative)
    named = secret.parent if prefix == "DIR:" else secret
    monkeypatch.setenv(variable, prefix + str(named))

    out = sandboxed(tmp_path, f"cat {secret} 2>&1")

    assert SECRET not in out, out


def test_a_kerberos_cache_in_the_keyring_names_no_file() -> None:
    assert env_credentials({"KRB5CCNAME": "KEYRING:persistent:0", "LESSHISTFILE": "-"}) == []


@pytest.mark.parametrize("named", [True, False])
def test_a_checks_tree_cannot_read_the_cloud_key_an_auth_step_wrote_into_the_checkout(
    repo: Path, monkeypatch: pytest.MonkeyPatch, named: bool
) -> None:
    """google-github-actions/auth writes the job's credentials to $GITHUB_WORKSPACE/gha-creds-<hash>.json
    (a service-account key with `credentials_json`) and exports GOOGLE_APPLICATION_CREDENTIALS."""
    need_tool("bwrap")
    key = repo / "gha-creds-0123abcd.json"
    key.write_text(f'{{"private_key": "{SECRET}"}}\n')
    if named:
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    worktree = repo / ".agentflow" / "worktrees" / "wt"
    git(repo, "worktree", "add", "-q", "--detach", str(worktree))

    _, out, _ = run_shell(f"cat {key} 2>&1; cat {repo / 'README.md'}", worktree, 30, sandbox=Sandbox.from_config())

    assert SECRET not in out and "# sample" in out, out
