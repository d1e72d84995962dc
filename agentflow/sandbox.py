"""The sandbox every agent-caused process runs in (DESIGN.md "Trust boundary", docs/security.md).

One policy object, :class:`Sandbox`, built from config ``sandbox: {mode, network, env, hide}``,
turns a command into a bubblewrap (``bwrap``) invocation, after Codex's Linux sandbox:

* the root file system read-only (``--ro-bind / /``), a minimal ``/dev``, a private empty ``/tmp``;
* the session's worktree the only writable tree (plus what a caller names, e.g. Claude Code's
  own config folder); the worktree's ``.git`` pointer, its gitdir, the repository's common git dir
  and the user's checkout read-only; ``.agentflow/`` (ledger, other worktrees) replaced by an empty
  tmpfs, with only the session's own worktree bound back in;
* credentials invisible (``~/.ssh``, ``~/.aws``, ... and ``sandbox.hide``), the rest of the home
  readable (toolchains and virtual environments live there);
* new PID, IPC and UTS namespaces with a fresh ``/proc`` (no other process's ``environ`` is
  reachable), no network unless ``sandbox.network: true``, ``--die-with-parent``,
  ``--new-session``, every capability dropped; every process of a command dies with it (the
  namespace's init ends with the command, and killing ``bwrap`` kills the namespace);
* the command runs in a user namespace of its own, a child of the one bwrap's pid 1 is in
  (``unshare --user --map-current-user``, :func:`guard_argv`): pid 1 has the command's uid and no
  capability, and without that step any process of the command could ptrace it (or write its
  ``/proc/1/mem``) and clear its parent-death signal, after which the namespace, and its writable
  worktree, outlive a killed ``bwrap``. Across a user-namespace boundary the kernel refuses every
  ptrace-mode access (``ptrace``, ``/proc/1/mem``, ``environ``, ``fd``, ``process_vm_writev``,
  ``pidfd_getfd``) without ``CAP_SYS_PTRACE`` in pid 1's namespace, which no sandboxed process
  holds; the command's own processes share one namespace and can still trace each other. The
  sandbox is always in a user namespace (``--unshare-user``) where the command is agentflow's own
  uid (``NESTED_ID`` for root: the kernel lets no process without ``CAP_SETFCAP`` map uid 0 into a
  namespace of its own);
* ``nested=True`` (the Claude Code process, whose Bash tool starts a bubblewrap of its own): the
  same, with a ``/dev`` of device binds instead of a devpts mount, so that nothing is
  mounted over the fresh ``/proc`` and an inner bwrap can create its namespaces (and its own
  ``/proc``) inside ours. Every mount of ours is locked in an inner namespace: an inner root
  cannot unmount a hidden path or reach the host's ``/proc``;
* an environment built from an allowlist (``PATH``, ``LANG``, ``LC_*``, ``TERM``, ``TZ``, ``HOME``,
  ``TMPDIR`` and ``sandbox.env``), never a denylist.

``mode: auto`` (the default) and ``mode: bwrap`` fail closed when bwrap is missing or cannot create
namespaces (``SandboxUnavailable``, exit 2, one line naming the fix); ``mode: off`` runs commands
unconfined and :meth:`Sandbox.warning` says so on every run (the CLI prints it: domain code never
does). The probe (a sandbox of this shape that checks the guard holds: pid 1's ``environ`` is out
of the command's reach) runs once per process and is cached.

:func:`make_non_dumpable` is defence in depth for ``mode: off``: with ``PR_SET_DUMPABLE`` 0,
processes of the same user cannot read the orchestrator's ``/proc/<pid>/environ``.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agentflow.errors import ConfigError, UsageError
from agentflow.files import lstat_entries

if TYPE_CHECKING:
    from agentflow.config import SandboxConfig

SandboxName = Literal["bwrap", "off"]
ALLOWED_ENV = ("PATH", "LANG", "LC_*", "TERM", "TZ", "HOME", "TMPDIR")
# Credentials of the usual tools, relative to the home; hidden whatever sandbox.hide says.
CREDENTIALS = (
    ".ssh",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".kube",
    ".docker",
    ".gnupg",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".config/gh",
    ".config/agentflow",  # agentflow's own config folder
    ".claude/.credentials.json",  # Claude Code's login (only the claude-code process itself keeps it)
    ".claude.json",  # Claude Code's account file (bound back, writable, for the claude-code process)
    # other tools' tokens a developer or CI image often holds (tests/test_attacks_home_credentials.py)
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    ".config/hub",
    ".config/glab-cli",
    ".config/rclone",
    ".s3cfg",
    ".boto",
    ".config/op",
    ".config/containers/auth.json",
    # shell and REPL histories: where an `export TOKEN=...` typed by hand ends up
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    ".node_repl_history",
    ".sqlite_history",
    ".rediscli_history",
    # build tools' and package managers' registry logins, in folders of the home that stay readable
    # (toolchains): a sandboxed check read them, root's below /root too (tests/test_attacks_deep_credentials.py)
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
    ".config/git/credentials",  # git's credential store (XDG)
    ".pgpass",
    ".my.cnf",
    ".terraformrc",
    ".config/helm/repositories.yaml",
    ".config/helm/registry",
    ".config/doctl",
    ".config/hcloud",
    ".fly",
    ".oci",
    ".databrickscfg",
    ".pulumi/credentials.json",
    ".config/sops",
    ".password-store",
    ".local/share/keyrings",
    ".kaggle",
    ".huggingface/token",
    ".cache/huggingface/token",
    ".config/configstore",
    ".tsh",
    # other coding agents' and developer CLIs' logins, and more shells' histories: a sandboxed command
    # read them (tests/test_attacks_agent_credentials.py)
    ".config/github-copilot",  # Copilot's GitHub OAuth token (hosts.json, apps.json)
    ".codex/auth.json",  # OpenAI's Codex CLI
    ".gemini/oauth_creds.json",  # Gemini CLI
    ".gemini/.env",
    ".continue/config.json",  # Continue's model API keys
    ".continue/config.yaml",
    ".aider.conf.yml",
    ".cursor/mcp.json",  # MCP servers' environments (tokens)
    ".config/stripe/config.toml",
    ".sentryclirc",
    ".config/ngrok/ngrok.yml",
    ".ngrok2/ngrok.yml",
    ".wrangler/config/default.toml",
    ".config/.wrangler/config/default.toml",
    ".local/share/com.vercel.cli/auth.json",
    ".netlify/config.json",
    ".config/netlify/config.json",
    ".supabase/access-token",
    ".railway/config.json",
    ".config/pypoetry/auth.toml",
    ".bunfig.toml",
    ".dbt/profiles.yml",
    ".snowflake/connections.toml",
    ".snowsql/config",
    ".mc/config.json",  # MinIO's client
    ".config/scw/config.yaml",
    ".config/linode-cli",
    ".wakatime.cfg",
    ".local/share/fish/fish_history",
    ".local/share/atuin",
    ".zhistory",
    ".sh_history",
    ".irb_history",
    ".Rhistory",
)
# Where the tools keep those credentials when the environment moves them (XDG base folders: gh, git's
# credential store, rclone, helm...; a tool's own variable: GOOGLE_APPLICATION_CREDENTIALS is a CI
# job's service-account key): with XDG_CONFIG_HOME=/srv/cfg a sandboxed command read
# /srv/cfg/gh/hosts.yml, which the list above names only below the home (tests/test_attacks_xdg_credentials.py)
XDG_HOMES = (
    ("XDG_CONFIG_HOME", ".config/"),
    ("XDG_DATA_HOME", ".local/share/"),
    ("XDG_STATE_HOME", ".local/state/"),
    ("XDG_CACHE_HOME", ".cache/"),
)
CREDENTIAL_ENV = (  # a file or folder of credentials (KUBECONFIG: a list of them)
    "GH_CONFIG_DIR", "CLOUDSDK_CONFIG", "AZURE_CONFIG_DIR", "DOCKER_CONFIG", "GNUPGHOME", "KUBECONFIG",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH",
    "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AZURE_FEDERATED_TOKEN_FILE",
    "NPM_CONFIG_USERCONFIG", "npm_config_userconfig", "PIP_CONFIG_FILE", "UV_CONFIG_FILE", "GIT_CONFIG_GLOBAL",
    "TF_CLI_CONFIG_FILE", "NETRC", "PGPASSFILE", "BOTO_CONFIG", "HF_TOKEN_PATH", "RCLONE_CONFIG",
    "OP_CONFIG_DIR", "HELM_REGISTRY_CONFIG", "VAULT_CONFIG_PATH", "SOPS_AGE_KEY_FILE", "GH_COPILOT_CONFIG_DIR",
    "DIGITALOCEAN_CONFIG", "SNOWSQL_CONFIG", "MC_CONFIG_DIR",
    # histories kept elsewhere (the tokens typed into a shell or a client)
    "HISTFILE", "PYTHON_HISTORY", "NODE_REPL_HISTORY", "PSQL_HISTORY", "MYSQL_HISTFILE", "SQLITE_HISTORY",
    "REDISCLI_HISTFILE", "LESSHISTFILE",
    # Kerberos: a ticket cache (FILE:/DIR: prefixed) and keytabs, a service principal's keys
    "KRB5CCNAME", "KRB5_KTNAME", "KRB5_CLIENT_KTNAME",
)  # fmt: skip
_CACHE_TYPE = re.compile(r"^(FILE|DIR|WRFILE):")
# Sockets the environment names: an ssh or gpg agent (signs as the user), a container engine (runs a
# container as its daemon's user: outside the sandbox), the session bus (systemd-run --user), and
# the runtime folder that holds them when it is not below /run/user (hidden whole already)
SOCKET_ENV = ("SSH_AUTH_SOCK", "DOCKER_HOST", "CONTAINER_HOST", "GPG_AGENT_INFO", "DBUS_SESSION_BUS_ADDRESS",
              "XDG_RUNTIME_DIR", "BUILDKIT_HOST", "CONTAINERD_ADDRESS", "PODMAN_HOST")  # fmt: skip
_SOCKET_PATH = re.compile(r"^(?:unix://|unix:(?:.*[,:])?path=)?(/[^,;:]+)")
CREDENTIAL_ENV_HOMES = (  # a tool's home, with its credentials at these names
    ("CARGO_HOME", ("credentials", "credentials.toml")),
    ("HF_HOME", ("token", "stored_tokens")),
    ("GEM_HOME", ("credentials",)),
    ("POETRY_CONFIG_DIR", ("auth.toml",)),
    ("CLAUDE_CONFIG_DIR", (".credentials.json", ".claude.json")),  # bound back for the claude-code process
)
# Sockets of local daemons that a process could drive without any network namespace (a Unix socket
# with a path is reached through the file system, whatever --unshare-net says): container engines,
# VM and system managers, each a way to run a command outside the sandbox (as root, when agentflow
# runs as root: the sandbox's uid maps to it). tests/test_attacks_sockets.py
HIDDEN_SOCKETS = (
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/buildkit/buildkitd.sock",
    "/run/crio/crio.sock",
    "/run/systemd/private",  # systemd's own bus (root): systemd-run, outside every namespace
    "/run/dbus/system_bus_socket",  # the system bus: systemd's StartTransientUnit for root
    "/run/snapd.socket",
    "/run/snapd-snap.socket",
    "/var/run/libvirt/libvirt-sock",
    "/var/run/libvirt/virtqemud-sock",
    "/var/snap/lxd/common/lxd/unix.socket",
    "/var/lib/lxd/unix.socket",
    "/var/lib/incus/unix.socket",
)
# Container engines' and VM managers' sockets kept elsewhere than HIDDEN_SOCKETS says: dockerd's own
# containerd (/run/docker/containerd/containerd.sock, docker-in-docker's), containerd's ttrpc socket,
# k0s', MicroK8s' (below /var/snap), a second daemon's (docker-2.sock): found by name below these
# folders, once per process (tests/test_attacks_engine_sockets.py)
SOCKET_ROOTS = ("/run", "/var/run", "/var/snap")
ENGINE_SOCKETS = ("docker*.sock", "*containerd*.sock*", "podman*.sock", "buildkitd*.sock", "crio*.sock",
                  "libvirt-sock*", "virt*-sock*", "lxd*.sock*", "incus*.sock*")  # fmt: skip
SOCKET_DEPTH = 5


@functools.lru_cache(maxsize=4)
def engine_sockets(roots: tuple[str, ...]) -> tuple[str, ...]:
    """The Unix sockets below ``roots`` (``SOCKET_DEPTH`` levels; links not followed, ``/run/user``
    hidden whole already) whose names are those of ``ENGINE_SOCKETS``."""
    found: list[str] = []
    seen: set[str] = set()
    todo = [(os.path.realpath(root), 0) for root in roots if os.path.isdir(root)]
    while todo:
        folder, level = todo.pop()
        if folder in seen or folder == "/run/user":
            continue
        seen.add(folder)
        try:
            entries = lstat_entries(folder)
        except OSError:
            continue
        for entry, info in entries:
            mode = info.st_mode
            if stat.S_ISDIR(mode) and level + 1 < SOCKET_DEPTH:
                todo.append((entry.path, level + 1))
            elif stat.S_ISSOCK(mode) and any(fnmatch.fnmatchcase(entry.name, p) for p in ENGINE_SOCKETS):
                found.append(entry.path)
    return tuple(sorted(found))


# Where a host keeps files only root may read. As root the sandbox's uid maps to root's on the host's
# files (its own uid owns them), so a sandboxed command read /etc/shadow, /etc/gshadow, ssh host keys,
# sudoers, a database's data folder (tests/test_attacks_root_files.py): when agentflow runs as root,
# every entry below these folders that other users cannot read is hidden (root_only_paths).
ROOT_ONLY_ROOTS = ("/etc", "/var/lib", "/var/log", "/var/backups", "/var/spool", "/var/mail", "/boot", "/srv",
                   "/usr/local/etc", "/opt", "/home")  # fmt: skip
ROOT_ONLY_DEPTH = 8  # folders deeper than this below a root are not looked into (the scan stays cheap)
# Where applications and other users' homes live: a root-only file there (an application's
# /opt/<app>/config/secrets.yml, a token root left in /home/<user>/) was readable too (tested before
# the fix). Scanned less deep: toolchains there hold hundreds of thousands of files (a runner image's
# /opt/hostedtoolcache), and an application's secrets sit near its top. Other users' own private files
# need no hiding (root's sandbox has no capability to read them), but cost nothing to hide.
ROOT_ONLY_SHALLOW = {"/opt": 4, "/home": 3}
ROOT_HOME = "/root"
KEY_FILE_ENV = "AGENTFLOW_SIGNING_KEY_FILE"
# Never in a sandboxed process's environment, whatever sandbox.env or AGENTFLOW_COMMAND_PASS_ENV say.
NEVER_PASSED = frozenset({"AGENTFLOW_SIGNING_KEY", KEY_FILE_ENV})
# The uid and gid a nested sandbox runs as when agentflow runs as root: any uid but 0 (uid 0 without
# capabilities cannot map itself into the inner user namespace); it stands for agentflow's own uid,
# so file ownership and access are unchanged.
NESTED_ID = 1000
# What a nested sandbox's /dev holds (bwrap's --dev, without the devpts mount).
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
             ("/proc/self/fd/2", "/dev/stderr"))  # fmt: skip
FIX = (
    "install bubblewrap (apt-get install bubblewrap); on Ubuntu 24.04 allow unprivileged user namespaces "
    "(sysctl kernel.apparmor_restrict_unprivileged_userns=0); or set `sandbox: {mode: off}` in agentflow.yaml "
    "knowingly"
)
OFF_WARNING = (
    "warning: sandbox.mode is off: agent commands, checks and agent CLIs run unconfined, with your "
    "files, network and processes within reach (see docs/security.md)"
)


class SandboxUnavailable(UsageError):
    """The configured sandbox cannot run here (exit 2): fail closed rather than run unconfined."""


@dataclass(frozen=True)
class Sandbox:
    """How agent processes are confined; ``mode`` is what is really used (``bwrap`` or ``off``)."""

    mode: SandboxName = "bwrap"
    network: bool = False
    env_names: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    bwrap: str = "bwrap"
    home: str = field(default_factory=lambda: os.path.expanduser("~"))

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: SandboxConfig | None = None, *, where: str | None = None) -> Sandbox:
        """The sandbox ``config`` asks for; ``SandboxUnavailable`` when bwrap is needed and cannot run."""
        if config is None:
            from agentflow.config import SandboxConfig

            config = SandboxConfig()
        where = where or "agentflow.yaml"
        home = os.path.expanduser("~")
        hide = []
        for entry in config.hide:
            path = os.path.expanduser(entry)
            if not os.path.isabs(path):
                raise ConfigError(
                    f"sandbox.hide: {entry!r} is not an absolute path", where=where, fix="use /abs/path or ~/path"
                )
            hide.append(os.path.normpath(path))
        common = {"network": config.network, "env_names": tuple(config.env), "hide": tuple(hide), "home": home}
        if config.mode == "off":
            return cls(mode="off", **common)  # type: ignore[arg-type]
        return cls(mode="bwrap", bwrap=require_bwrap(where), **common)  # type: ignore[arg-type]

    @classmethod
    def off(cls) -> Sandbox:
        return cls(mode="off")

    @property
    def name(self) -> SandboxName:
        return self.mode

    def warning(self) -> str | None:
        """The line to show on every run without a sandbox (None when sandboxed)."""
        return OFF_WARNING if self.mode == "off" else None

    # -- environment ------------------------------------------------------------------------------

    def environment(self, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> dict[str, str]:
        """The child's environment: only allowlisted names (plus ``sandbox.env`` and ``extra``)."""
        environ = os.environ if environ is None else environ
        patterns = (*ALLOWED_ENV, *self.env_names, *extra)
        env = {k: v for k, v in environ.items() if any(fnmatch.fnmatchcase(k, p) for p in patterns)}
        # only the orchestrator signs: no pattern (``AGENTFLOW_*``, ``*``) or name passes the key, its
        # file's name, or its value under another name (tests/test_attacks_sandbox_env.py)
        from agentflow.redact import secret_values

        registered = secret_values({})  # the secrets agentflow itself read: the signing key
        for name in [k for k, v in env.items() if k in NEVER_PASSED or any(s in v for s in registered)]:
            del env[name]
        if self.mode == "bwrap":
            env["TMPDIR"] = "/tmp"  # the private one: the caller's TMPDIR is not mounted
        env.setdefault("PATH", os.defpath)
        # a check's or an agent's own git reads objects as agentflow's does: no replace ref or graft
        # stands in for what the tree holds (agentflow.git.GIT_OBJECTS_AS_STORED)
        from agentflow.git import GIT_OBJECTS_AS_STORED

        env.update(GIT_OBJECTS_AS_STORED)
        return env

    # -- the command line -------------------------------------------------------------------------

    def wrap(
        self,
        argv: Sequence[str],
        workdir: Path,
        *,
        writable: Sequence[Path] = (),
        readable: Sequence[Path] = (),
        network: bool | None = None,
        keep: Sequence[str] = (),
        nested: bool = False,
    ) -> list[str]:
        """``argv`` run in ``workdir`` inside the sandbox (``argv`` itself when the mode is off).

        ``writable``/``readable`` add binds (e.g. a prompt file outside the worktree); ``network``
        overrides ``sandbox.network`` (the claude-code process needs the model API); ``keep`` are
        credential paths that stay visible (Claude Code's own login, for the Claude Code process);
        ``nested`` lets the process start a sandbox of its own inside this one (Claude Code's Bash).
        """
        if self.mode == "off":
            return list(argv)
        options = self.arguments(workdir, writable=writable, readable=readable, network=network, keep=keep,
                                 nested=nested)  # fmt: skip
        own_session_keyring()  # what this thread starts next inherits an empty one
        return [self.bwrap, *options, "--", *guard_argv(), *argv]

    def arguments(
        self,
        workdir: Path,
        *,
        writable: Sequence[Path] = (),
        readable: Sequence[Path] = (),
        network: bool | None = None,
        keep: Sequence[str] = (),
        nested: bool = False,
    ) -> list[str]:
        """bwrap's options (everything before ``--``); binds in order: later ones win."""
        workdir = Path(os.path.realpath(workdir))
        gitdir, common, checkout = git_layout(workdir)
        net = self.network if network is None else network
        args = ["--ro-bind", "/", "/", *(nested_dev() if nested else ["--dev", "/dev"]), "--proc", "/proc"]
        args += ["--tmpfs", "/tmp", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent"]
        args += ["--new-session", "--cap-drop", "ALL", *user_args()]
        if not net:
            args.append("--unshare-net")
        # What lived under /tmp (a test's home or checkout, the Python environment agentflow runs
        # from: a virtualenv made there) and is meant to be readable: bind it back (bind_back: only
        # what bwrap's own mounts cover, each tree once).
        shown = _existing(self.home, checkout, common, gitdir, sys.prefix, sys.base_prefix, *readable)
        for path in bind_back(shown):
            args += ["--ro-bind", path, path]
        if os.path.isdir("/run/user"):
            args += ["--tmpfs", "/run/user"]  # per-user runtime sockets: ssh-agent, gpg-agent, dbus
        for sock in dict.fromkeys([*HIDDEN_SOCKETS, *engine_sockets(SOCKET_ROOTS)]):
            if os.path.exists(sock) and not os.path.islink(sock):
                args += ["--ro-bind", "/dev/null", sock]
        kept = {os.path.normpath(os.path.join(self.home, k)) for k in keep}
        if os.geteuid() == 0:  # root's files: readable by the sandbox's uid, which is root's on the host
            trees = _existing(workdir, *writable, checkout, common, gitdir, *readable)
            args += _hide_root_only(root_only(), [*shown, *trees], trees)
            proc, system = root_only_kernel_files()
            args += _hide_root_only(system, [], [])
            if not nested:  # the nested shape mounts nothing over /proc (an inner sandbox mounts its own)
                for path in proc:
                    args += ["--ro-bind", "/dev/null", path]
        from_env = {os.path.normpath(p) for p in env_credentials(os.environ)}
        named = {os.path.normpath(p) for p in self.hide}  # sandbox.hide: hidden even when empty now
        for path in self.hidden_paths():
            if path in kept or not os.path.lexists(path):
                continue
            if path in from_env and any(_under(p, path) for p in (*shown, str(workdir))):
                continue  # a variable naming a folder the command needs (its checkout, the Python it runs)
            if os.path.islink(path):
                # a link (dotfiles kept elsewhere, a Kubernetes secret's ..data): bwrap cannot mount
                # over it (every sandboxed command failed), so what it leads to is hidden
                path = os.path.realpath(path)
                if (
                    path in kept
                    or not os.path.exists(path)
                    or (_under(path, "/tmp") and not any(_under(path, p) for p in shown))
                ):
                    continue
            if path not in named and holds_nothing(path):
                continue  # nothing to hide, and perhaps gone before bwrap mounts over it (holds_nothing)
            if os.path.isdir(path):
                args += ["--tmpfs", path]
            else:
                args += ["--ro-bind", "/dev/null", path]
        if checkout is not None and os.path.isdir(os.path.join(checkout, ".agentflow")):
            args += ["--tmpfs", os.path.join(checkout, ".agentflow")]  # ledger, runs, other worktrees
        if checkout is not None and os.path.realpath(checkout) != str(workdir):
            args += _checkout_secrets(
                checkout, str(workdir), shown
            )  # the user's .env beside the code: no worktree needs it
        # a platform's and a CI runner's credentials: mounted for the job, or in the folders around it
        trees = _existing(workdir, *writable, checkout, common, gitdir)
        args += _runner_secrets(checkout or str(workdir), [*shown, *trees], trees)
        for path in _existing(workdir, *writable):
            args += ["--bind", path, path]
        dotgit = workdir / ".git"
        if dotgit.exists():
            args += ["--ro-bind", str(dotgit), str(dotgit)]  # the pointer to the gitdir, and the gitdir
        configs = [os.path.join(d, name) for d in (common, gitdir) if d for name in ("config", "config.worktree")]
        configs += _module_configs(common)  # a submodule's own config holds the job's token too
        configs += [os.path.join(self.home, ".gitconfig"), os.path.join(self.home, ".config", "git", "config")]
        if os.path.isabs(xdg := os.environ.get("XDG_CONFIG_HOME", "")):
            configs.append(os.path.join(xdg, "git", "config"))  # git's global config there
        for path in git_config_files([*configs, SYSTEM_GIT_CONFIG], self.home):
            if (clean := sanitized_git_config(path)) is not None:
                args += ["--ro-bind", clean, path]  # the same config without its credentials
        args += ["--chdir", str(workdir)]
        return args

    def hidden_paths(self) -> list[str]:
        homes = [self.home]
        if os.geteuid() == 0 and os.path.normpath(self.home) != ROOT_HOME:
            homes.append(ROOT_HOME)  # HOME elsewhere (a CI container's): root's own home holds root's secrets
        paths = [os.path.join(home, rel) for home in homes for rel in CREDENTIALS]
        paths += [p for p in env_credentials(os.environ) if not any(_under(h, p) for h in homes)]
        if os.geteuid() == 0:
            paths += [p for home in homes for p in private_home_files(home)]
        if key_file := os.environ.get(KEY_FILE_ENV):
            paths.append(os.path.abspath(os.path.expanduser(key_file)))
        return list(dict.fromkeys(os.path.normpath(p) for p in (*paths, *self.hide)))


# How many entries below a credential folder ``holds_nothing`` looks at before calling it full.
NOTHING_ENTRIES = 64


def holds_nothing(path: str) -> bool:
    """Whether ``path`` is an empty regular file, or a folder with nothing below it but such files and
    folders, or is gone: what another process's sandbox leaves for a moment. Claude Code's own Bash
    sandbox, run on the host (``sandbox.mode: off``, or a developer's Claude Code beside agentflow),
    makes ``~/.ssh`` an empty read-only file for each command (about 0.2 s) and removes it after; seen
    here, it was mounted over, and once gone bwrap could not make the mount point in the read-only
    home: "bwrap: Can't create file at /root/.ssh: Read-only file system" failed a sandbox at random.
    Such a path holds nothing to hide, as an absent one. A link, socket, FIFO or device, a file with
    content (or that cannot be read), a folder that cannot be listed or holds more than
    ``NOTHING_ENTRIES`` entries: not nothing."""
    todo, entries = [path], 0
    while todo:
        current = todo.pop()
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            continue
        except OSError:
            return False
        if stat.S_ISREG(info.st_mode):
            if info.st_size or not _reads_empty(current):
                return False
        elif stat.S_ISDIR(info.st_mode):
            try:
                names = os.listdir(current)
            except FileNotFoundError:
                continue
            except OSError:
                return False
            entries += len(names)
            if entries > NOTHING_ENTRIES:
                return False
            todo += [os.path.join(current, name) for name in names]
        else:
            return False
    return True


def _reads_empty(path: str) -> bool:
    """Whether a file whose size is 0 reads empty too (or is gone): a FUSE, proc or sys file says 0 and
    has content."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        return os.read(descriptor, 1) == b""
    except OSError:
        return False
    finally:
        os.close(descriptor)


def env_credentials(environ: Mapping[str, str]) -> list[str]:
    """The credential paths the environment names: ``CREDENTIALS`` below the XDG base folders it sets
    (absolute ones: the specification ignores relative ones), and ``CREDENTIAL_ENV``'s files and
    folders (relative ones from agentflow's folder, as the tool would read them), and the Unix sockets
    ``SOCKET_ENV`` names (``unix://``, D-Bus' ``unix:path=``, a plain path). Never ``/``."""
    paths: list[str] = []
    for name, prefix in XDG_HOMES:
        base = environ.get(name, "")
        if os.path.isabs(base):
            paths += [os.path.join(base, rel.removeprefix(prefix)) for rel in CREDENTIALS if rel.startswith(prefix)]
    for name in CREDENTIAL_ENV:
        value = _CACHE_TYPE.sub("", environ.get(name, ""))
        if name.startswith("KRB5") and re.match(r"^[A-Z]+:", value):
            continue  # KEYRING:, KCM:, MEMORY:, API:: no file
        paths += [p for p in (value.split(os.pathsep) if name == "KUBECONFIG" else [value]) if p and p != "-"]
    for name, files in CREDENTIAL_ENV_HOMES:
        if base := environ.get(name, ""):
            paths += [os.path.join(base, file) for file in files]
    for name in SOCKET_ENV:
        if (match := _SOCKET_PATH.match(environ.get(name, ""))) and not _under(match.group(1), "/run/user"):
            paths.append(match.group(1))  # below /run/user: hidden with it
    found = [os.path.abspath(os.path.expanduser(p)) for p in paths]
    return [p for p in dict.fromkeys(found) if os.path.dirname(p) != p]


# -- root's files ---------------------------------------------------------------------------------


def _private(mode: int) -> bool:
    """Whether no other user can read an entry of this mode: a file without ``o+r``, a folder without ``o+x``."""
    return not mode & (0o001 if stat.S_ISDIR(mode) else 0o004)


def _scan(root: str, depth: int) -> list[tuple[str, bool]]:
    """(path, is a folder) of every regular file or folder below ``root`` that other users cannot read; a
    private folder is listed whole and not looked into; links, devices and sockets are left alone."""
    found: list[tuple[str, bool]] = []
    todo = [(root, 0)]
    while todo:
        folder, level = todo.pop()
        try:
            entries = lstat_entries(folder)
        except OSError:
            continue
        for entry, info in entries:
            mode = info.st_mode
            if stat.S_ISDIR(mode):
                if _private(mode):
                    found.append((entry.path, True))
                elif level + 1 < depth:
                    todo.append((entry.path, level + 1))
            elif stat.S_ISREG(mode) and _private(mode) and info.st_size:  # an empty one (a lock) holds nothing
                found.append((entry.path, False))
    return sorted(found)


@functools.lru_cache(maxsize=8)
def root_only_paths(roots: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """What below ``roots`` only its owner (root) or group may read: once per process (tens of ms for a
    usual ``/etc`` and ``/var/lib``; every later sandbox only pays the binds)."""
    return tuple(
        item
        for root in roots
        if os.path.isdir(root)
        for item in _scan(root, ROOT_ONLY_SHALLOW.get(root, ROOT_ONLY_DEPTH))
    )


_ROOT_ONLY_LOCK = threading.Lock()


def root_only() -> tuple[tuple[str, bool], ...]:
    """``root_only_paths(ROOT_ONLY_ROOTS)``, scanned by one thread at a time: the runs of ``-j`` start
    their first sandboxes at the same moment, and each scanned on its own (four times the work, on one
    GIL, about 0.15 s of every run's wait under ``-j 4``); the others wait for the first one's scan."""
    with _ROOT_ONLY_LOCK:
        return root_only_paths(ROOT_ONLY_ROOTS)


def _hide_root_only(items: Iterable[tuple[str, bool]], bound: Sequence[str], trees: Sequence[str]) -> list[str]:
    """bwrap options hiding ``items``, except inside ``trees`` (the worktree, the checkout and its git
    data: the command's own files). A private folder holding a path the sandbox binds (a checkout or
    home below ``/var/lib``) is not hidden whole: its private entries are, the bound path's way excepted."""

    def holds(folder: str, path: str) -> bool:
        return path.startswith(folder.rstrip(os.sep) + os.sep)

    args: list[str] = []
    for path, _ in items:
        if any(path == tree or holds(tree, path) for tree in trees):
            continue
        try:  # as it is now: the scan is once per process, and bwrap cannot mount over a path gone since
            mode = os.lstat(path).st_mode  # (a rotated log: every later sandbox of the process failed)
        except OSError:
            continue
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            continue  # became a link (nothing to mount over) or a socket
        folder = stat.S_ISDIR(mode)
        if folder and any(path == b or holds(path, b) for b in bound):
            # a checkout in a private /home/<user>: looked into as shallowly as /home itself (a home is big)
            depth = next((d for r, d in ROOT_ONLY_SHALLOW.items() if holds(r, path)), ROOT_ONLY_DEPTH)
            args += _hide_root_only(_scan(path, depth), bound, trees)
        elif folder:
            args += ["--tmpfs", path]
        elif path not in bound:
            args += ["--ro-bind", "/dev/null", path]
    return args


# Kernel files only root may read, which the sandbox's uid (root's on the host) read too: /proc's
# host-wide timer list (every process's name and pid), page flags and counts, slab and vmalloc
# layouts (kernel addresses), /sys's firmware tables (ACPI, DMI with the machine's serial numbers and
# UUID, a QEMU fw_cfg blob that may hold a provisioning config) and DMI ids, the LSM's policy files.
# Hidden when agentflow runs as root (tests/test_attacks_kernel_files.py).
KERNEL_SCANS = (("/sys/firmware", 6), ("/sys/devices/virtual/dmi", 3), ("/sys/kernel/security", 3))


@functools.lru_cache(maxsize=1)
def root_only_kernel_files() -> tuple[tuple[str, ...], tuple[tuple[str, bool], ...]]:
    """(the files at the top of ``/proc`` that other users cannot read, what ``KERNEL_SCANS`` finds
    private below ``/sys``): once per process (procfs reports no size, so its files are not skipped
    as empty; the private folders and files of sysfs are listed as ``root_only_paths`` lists them)."""
    proc = []
    try:
        entries = lstat_entries("/proc")
    except OSError:
        entries = []
    for entry, info in entries:
        if entry.name.isdigit():
            continue
        if stat.S_ISREG(info.st_mode) and _private(info.st_mode) and info.st_mode & 0o400:
            proc.append(entry.path)
    system = [item for root, depth in KERNEL_SCANS if os.path.isdir(root) for item in _scan(root, depth)]
    return tuple(sorted(proc)), tuple(system)


# What stays visible at the top of root's home: git's config (bound as a copy without credentials).
HOME_KEPT = (".gitconfig",)


def private_home_files(home: str) -> list[str]:
    """The regular files at the top of ``home`` (root's, when agentflow runs as root) that no other user
    can read: all of them when the home itself is private (``/root`` is ``0700``), shell start-up files
    included (an ``export TOKEN=...`` in ``.bashrc`` or ``.profile``, a registry token in ``.yarnrc.yml``
    or ``.bunfig.toml``); folders (toolchains, caches) stay readable."""
    try:
        home_private = _private(os.stat(home).st_mode)
        entries = lstat_entries(home)
    except OSError:
        return []
    paths = []
    for entry, info in entries:
        shown = entry.name in HOME_KEPT or not info.st_size  # git's config; an empty file holds nothing
        if stat.S_ISREG(info.st_mode) and not shown and (home_private or _private(info.st_mode)):
            paths.append(entry.path)
    return sorted(paths)


# -- git's credentials ----------------------------------------------------------------------------

# What in a git config file is a credential: http.<url>.extraheader (actions/checkout persists the job's
# token there), every [credential] section (a helper may echo a password inline), and the user:password
# of a URL.
_SECTION = re.compile(r"^\s*\[\s*([A-Za-z0-9.-]+)")
_EXTRAHEADER = re.compile(r"^\s*extraheader\s*(=|$)", re.IGNORECASE)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s\"]+@")
CLEAN_PREFIX = "agentflow-gitconfig-"
_CLEAN_DIR: list[tuple[int, str]] = []  # (the pid that made it, the folder) of this process's copies
_CLEAN_LOCK = threading.Lock()  # -j builds start sandboxes from several threads at once


def _pid_namespace() -> str:
    """This process's PID namespace (its inode), so that a folder named after a pid is judged only by
    processes that see the same pids (a container sharing ``/tmp``)."""
    try:
        return os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]") or "0"
    except OSError:
        return "0"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's: alive
    return True


def sweep_clean_dirs(temp: str) -> list[str]:
    """Remove the copies' folders in ``temp`` that the processes which made them left behind: a
    process killed with ``SIGKILL`` or ``SIGTERM`` (a cancelled CI job, a test's kill, ``timeout``)
    runs no ``atexit`` handler, and every such process left its folder (54 after a day of tests).
    Only folders of this user, named ``agentflow-gitconfig-<pid namespace>-<pid>-...`` for this PID
    namespace and a pid that no longer runs, are removed (``shutil.rmtree`` follows no link);
    folders of the older naming (no pid) only when empty. Returns the removed folders."""
    own_ns, uid, removed = _pid_namespace(), os.getuid(), []
    try:
        entries = lstat_entries(temp)
    except OSError:
        return removed
    for entry, info in entries:
        if not entry.name.startswith(CLEAN_PREFIX) or not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
            continue
        parts = entry.name[len(CLEAN_PREFIX) :].split("-")
        if len(parts) == 3 and parts[0] == own_ns and parts[1].isdigit():
            if _alive(int(parts[1])):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
        elif len(parts) == 1:  # made by an older agentflow: no pid to ask
            try:
                os.rmdir(entry.path)  # only when empty: a running older process may still use it
            except OSError:
                continue
        else:
            continue
        if not os.path.lexists(entry.path):
            removed.append(entry.path)
    return removed


def _remove_clean_dir(pid: int, folder: str) -> None:
    if os.getpid() == pid:  # a forked child inherits the handler: the folder is its parent's
        shutil.rmtree(folder, ignore_errors=True)


def _clean_dir() -> str:
    """This process's folder for the copies (made on first use; removed at exit, and by the next
    agentflow process when this one is killed: ``sweep_clean_dirs``)."""
    import atexit
    import tempfile

    with _CLEAN_LOCK:  # two threads used to make one folder each, and only the first was ever removed
        pid = os.getpid()
        if _CLEAN_DIR and _CLEAN_DIR[0][0] == pid and os.path.isdir(_CLEAN_DIR[0][1]):
            return _CLEAN_DIR[0][1]
        temp = tempfile.gettempdir()
        sweep_clean_dirs(temp)
        folder = tempfile.mkdtemp(prefix=f"{CLEAN_PREFIX}{_pid_namespace()}-{pid}-", dir=temp)
        _CLEAN_DIR[:] = [(pid, folder)]
        atexit.register(_remove_clean_dir, pid, folder)
        return folder


@functools.lru_cache(maxsize=64)
def _sanitized(path: str, stamp: tuple[int, int, int]) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except OSError:
        return None
    kept, section = [], ""
    for line in text.splitlines(keepends=True):
        if match := _SECTION.match(line):
            section = match.group(1).lower()
        if section.split(".")[0] == "credential" or _EXTRAHEADER.match(line):
            continue
        kept.append(_USERINFO.sub(r"\1", line))
    clean = "".join(kept)
    if clean == text:
        return None
    import tempfile

    descriptor, target = tempfile.mkstemp(suffix=".config", dir=_clean_dir())
    with os.fdopen(descriptor, "w", encoding="utf-8", errors="surrogateescape") as handle:
        handle.write(clean)
    return target


def _after_fork() -> None:
    global _CLEAN_LOCK
    _CLEAN_LOCK = threading.Lock()  # another thread of the parent may have held it
    _sanitized.cache_clear()


# a forked child makes copies of its own: its parent's folder goes when the parent exits
os.register_at_fork(after_in_child=_after_fork)


SYSTEM_GIT_CONFIG = "/etc/gitconfig"
MAX_CONFIG_FILES = 64  # an include chain longer than git's own depth limit (10) is not followed further
_SECTION_HEADER = re.compile(r"^\s*\[[^\]]*\]")
_INCLUDE_PATH = re.compile(r"^\s*path\s*=\s*(.*)$", re.IGNORECASE)


MAX_MODULE_CONFIGS = 256


def _module_configs(common: str | None) -> list[str]:
    """The git configs of a repository's submodules (``<common>/modules/<name>/config``, nested ones
    ``modules/<a>/modules/<b>/config``) and of its other worktrees (``worktrees/<id>/config.worktree``):
    ``actions/checkout`` with ``submodules: true`` persists the job's token in each submodule's config
    (tests/test_attacks_submodule_credentials.py)."""
    if not common:
        return []
    found: list[str] = []
    try:
        worktrees = os.scandir(os.path.join(common, "worktrees"))
        found += [os.path.join(entry.path, "config.worktree") for entry in worktrees if entry.is_dir()]
    except OSError:
        pass
    todo = [os.path.join(common, "modules")]
    while todo and len(found) < MAX_MODULE_CONFIGS:
        folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            if os.path.isfile(os.path.join(entry.path, "config")) and os.path.isfile(os.path.join(entry.path, "HEAD")):
                found.append(os.path.join(entry.path, "config"))
                todo.append(os.path.join(entry.path, "modules"))
            else:
                todo.append(entry.path)  # a submodule named with a slash: modules/a/b/
    return [path for path in found if os.path.isfile(path)]


def git_config_files(paths: Iterable[str], home: str) -> list[str]:
    """``paths`` and every file they include (``[include]`` / ``[includeIf "..."]`` ``path``), transitively,
    each once: a credential kept in an included file (a common way to keep a token out of the main
    config) was read whole by every sandboxed process, and git put it into ``git config --list``."""
    found: list[str] = []
    todo = [os.path.normpath(p) for p in paths]
    while todo and len(found) < MAX_CONFIG_FILES:
        path = todo.pop(0)
        if path in found:
            continue
        found.append(path)
        todo += [p for p in _included(path, home) if p not in found]
    return found


def _included(path: str, home: str) -> list[str]:
    """The files ``path`` includes, as git resolves them: ``~/`` from the home, a relative path from the
    including file's folder. Read only when ``path`` is a regular file (never a FIFO's open)."""
    try:
        if not os.path.isfile(path):
            return []
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(descriptor, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return []
    result, section = [], ""
    for line in text.splitlines():
        if match := _SECTION.match(line):
            section = match.group(1).lower()
            header = _SECTION_HEADER.match(line)
            line = line[header.end() :] if header else ""  # git takes ``[include] path = x`` on one line too
        if section not in ("include", "includeif") or not (match := _INCLUDE_PATH.match(line)):
            continue
        value = _config_value(match.group(1))
        if not value:
            continue
        if value.startswith("~/"):
            value = os.path.join(home, value[2:])
        elif not os.path.isabs(value):
            value = os.path.join(os.path.dirname(path), value)
        result.append(os.path.normpath(value))
    return result


def _config_value(raw: str) -> str:
    """A git config value: quotes removed, a ``#`` or ``;`` comment outside them cut, ``\\`` and ``\"`` unescaped."""
    out, quoted, index = [], False, 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            out.append(raw[index + 1])
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char in "#;" and not quoted:
            break
        else:
            out.append(char)
        index += 1
    return "".join(out).strip()


def sanitized_git_config(path: str) -> str | None:
    """A copy of the git config file ``path`` without credentials, for the sandbox to see in its
    place (None when it holds none, or is missing). The git data stays readable in the sandbox (a
    builder runs ``git log``), and ``actions/checkout`` leaves the job's token in ``.git/config``:
    every sandboxed process read it, base64, with no secret name or token shape for ``redact``."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return _sanitized(os.path.realpath(path), (info.st_mtime_ns, info.st_size, info.st_ino))


GUARD_FIX = (
    "install util-linux 2.38 or later (its unshare runs every sandboxed command in a user namespace of its own); "
    "on Ubuntu 24.04 allow nested user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns=0); "
    "or set `sandbox: {mode: off}` in agentflow.yaml knowingly"
)
GUARD_PREFIX = "agentflow: sandbox guard: "
# What the probe runs inside the guard: pid 1's environ must be out of reach (a ptrace-mode read,
# refused like ptrace and /proc/1/mem), else the sandbox is refused.
GUARD_CHECK = (
    "if cat /proc/1/environ >/dev/null 2>&1; then "
    f"echo '{GUARD_PREFIX}a sandboxed process can reach pid 1 (ptrace, /proc/1/mem)' >&2; exit 1; fi"
)


@functools.lru_cache(maxsize=1)
def unshare_path() -> str:
    """util-linux's ``unshare``, by the host's absolute path (the sandbox's root is the host's, read-only)."""
    found = shutil.which("unshare", path=os.defpath)
    if not found:
        raise SandboxUnavailable("sandbox: util-linux's unshare is not installed", fix=GUARD_FIX)
    return os.path.realpath(found)


def guard_argv() -> list[str]:
    """What runs the command inside bwrap: a user namespace that is a child of pid 1's, so that no
    process of the command can ptrace pid 1 or write its memory; the command keeps its uid."""
    return [unshare_path(), "--user", "--map-current-user", "--"]


def nested_dev() -> list[str]:
    """A ``/dev`` for a nested sandbox: a tmpfs with binds of the basic devices and the usual links.

    bwrap's ``--dev`` mounts a devpts, which makes bwrap set the sandbox up as root of its user
    namespace and lay read-only binds over parts of ``/proc``; a proc with mounts over it cannot
    be mounted again inside, so an inner sandbox could not have a ``/proc`` of its own. No
    pseudo-terminals here (an inner bwrap's ``--dev`` makes its own)."""
    args = ["--tmpfs", "/dev"]
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            args += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    for target, link in DEV_LINKS:
        args += ["--symlink", target, link]
    return [*args, "--dir", "/dev/shm"]


def user_args() -> list[str]:
    """A user namespace where the process is agentflow's own uid (``NESTED_ID`` for root): not 0,
    so it holds no capability and can map itself into an inner user namespace (the guard's, an
    inner bwrap's)."""
    uid, gid = os.getuid() or NESTED_ID, os.getgid() or NESTED_ID
    return ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]


# Files beside the user's code that hold secrets and that no worktree or check needs (ignored,
# never committed; a worktree has its own copy of a tracked one): hidden at the top of the user's
# checkout when a command runs in another tree (tests/test_attacks_checkout_secrets.py).
CHECKOUT_SECRETS = (".env", ".env.*", ".envrc", ".npmrc", ".pypirc", ".netrc", ".git-credentials",
                    "gha-creds-*.json")  # google-github-actions/auth writes the job's key there  # fmt: skip


def _checkout_secrets(checkout: str, workdir: str, shown: Sequence[str]) -> list[str]:
    """bwrap options hiding ``CHECKOUT_SECRETS`` at the top of ``checkout``; a link's target is hidden
    where it lies, when the sandbox shows it (under the private ``/tmp`` only what ``shown`` binds back)."""
    try:
        names = os.listdir(checkout)
    except OSError:
        return []

    def under(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    args: list[str] = []
    for name in sorted(names):
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in CHECKOUT_SECRETS):
            continue
        target = os.path.realpath(os.path.join(checkout, name))
        if under(target, workdir) or (under(target, "/tmp") and not any(under(target, p) for p in shown)):
            continue  # the command's own tree, or out of its sight already
        if os.path.isdir(target):
            args += ["--tmpfs", target]
        elif os.path.isfile(target):
            args += ["--ro-bind", "/dev/null", target]
    return args


# Where a platform mounts a job's secrets: Kubernetes' service account token and the cloud identity
# tokens beside it (/var/run/secrets/..., world-readable by default), Docker's and Compose's secrets,
# systemd's credentials. Hidden whoever runs agentflow (tests/test_attacks_runner_secrets.py).
PLATFORM_SECRETS = ("/run/secrets", "/var/run/secrets", "/run/credentials")
# What a CI runner keeps in the folders around a job's checkout: a self-hosted GitHub Actions runner's
# RSA key and registration (its checkouts are below its folder, actions-runner/_work/<repo>/<repo>),
# Jenkins' master key and credentials (workspaces below $JENKINS_HOME/workspace), and the secrets that
# sit beside a user's code (CHECKOUT_SECRETS: a runner's own .env). GitLab Runner's file-type CI
# variables are in "<project dir>.tmp" beside the checkout.
RUNNER_SECRETS = (".credentials", ".credentials_rsaparams", ".runner", "secrets", "credentials.xml",
                  *CHECKOUT_SECRETS)  # fmt: skip
GITLAB_FILE_VARIABLES = ".tmp"


def _runner_secrets(checkout: str, bound: Sequence[str], trees: Sequence[str]) -> list[str]:
    """bwrap options hiding ``PLATFORM_SECRETS``, the ``RUNNER_SECRETS`` in every folder above
    ``checkout`` and GitLab's ``<checkout>.tmp``; never a folder that holds a ``bound`` path (a
    checkout below a folder named ``secrets``), nothing inside ``trees`` (the command's own), and
    nothing below the private ``/tmp`` that the sandbox does not show anyway."""

    def under(path: str, folder: str) -> bool:
        return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)

    checkout = os.path.realpath(checkout)
    candidates = [*PLATFORM_SECRETS, checkout + GITLAB_FILE_VARIABLES]
    folder = os.path.dirname(checkout)
    while True:
        candidates += [os.path.join(folder, name) for name in RUNNER_SECRETS]
        if folder == os.path.dirname(folder):
            break
        folder = os.path.dirname(folder)
    args: list[str] = []
    done: set[str] = set()
    for candidate in candidates:
        if "*" in candidate:
            parent, pattern = os.path.split(candidate)
            try:
                names = [n for n in os.listdir(parent) if fnmatch.fnmatchcase(n, pattern)]
            except OSError:
                continue
            paths = [os.path.join(parent, n) for n in sorted(names)]
        else:
            paths = [candidate]
        for path in paths:
            if not os.path.lexists(path):
                continue
            target = os.path.realpath(path)
            if target in done or any(under(b, target) for b in bound) or any(under(target, t) for t in trees):
                continue
            if under(target, "/tmp") and not any(under(target, p) for p in bound):
                continue  # out of the command's sight already (the private /tmp)
            done.add(target)
            if os.path.isdir(target):
                args += ["--tmpfs", target]
            elif os.path.exists(target):
                args += ["--ro-bind", "/dev/null", target]
    return args


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


# What bwrap mounts anew over the root's read-only bind, before the paths a sandbox shows are bound
# back: a private /tmp, a minimal /dev (a tmpfs in the nested shape), a fresh /proc.
FRESH_MOUNTS = ("/tmp", "/dev", "/proc")


def bind_back(shown: Sequence[str]) -> list[str]:
    """The paths of ``shown`` (real, existing) that need a bind to be seen: those below
    ``FRESH_MOUNTS``, each only once (not one inside another bound already). Anything else is seen
    already, read-only and with the host's mounts below it, through ``--ro-bind / /`` (recursive, the
    first mount of every sandbox), and binding it again over itself showed the same files: every bind
    costs bwrap a mount, a remount and a read of its mount table, and the kernel takes one lock for
    every namespace's mounts, so four sandboxes started at once (``-j 4``'s checks) waited for each
    other's (#19 item 5). What the sandbox hides is mounted after these binds, as before, so it
    covers them either way (docs/security.md "What a sandbox shows")."""
    under_fresh = sorted({p for p in shown if any(_under(p, m) for m in FRESH_MOUNTS)}, key=len)
    kept: list[str] = []
    for path in under_fresh:
        if not any(_under(path, top) for top in kept):
            kept.append(path)
    return [p for p in dict.fromkeys(shown) if p in kept]


def _existing(*paths: str | Path | None) -> list[str]:
    seen: list[str] = []
    for path in paths:
        if path is None:
            continue
        text = os.path.realpath(path)
        if os.path.exists(text) and text not in seen:
            seen.append(text)
    return seen


def git_layout(workdir: Path) -> tuple[str | None, str | None, str | None]:
    """(gitdir, common git dir, user's checkout) of ``workdir``, read from files (no git call).

    A linked worktree has a ``.git`` file naming its gitdir, whose ``commondir`` names the
    repository's git dir; the checkout is the folder that holds that git dir.
    """
    dotgit = workdir / ".git"
    try:
        if dotgit.is_dir():
            gitdir = str(dotgit)
        elif dotgit.is_file():
            line = dotgit.read_text(encoding="utf-8").strip()
            if not line.startswith("gitdir:"):
                return None, None, None
            gitdir = os.path.realpath(os.path.join(workdir, line.removeprefix("gitdir:").strip()))
        else:
            return None, None, None
        commondir = Path(gitdir) / "commondir"
        common = (
            os.path.realpath(os.path.join(gitdir, commondir.read_text(encoding="utf-8").strip()))
            if commondir.is_file()
            else gitdir
        )
    except OSError:
        return None, None, None
    checkout = str(Path(common).parent) if Path(common).name == ".git" else None
    return gitdir, common, checkout


# -- availability ---------------------------------------------------------------------------------


NESTED_FIX = (
    "allow nested user namespaces (user.max_user_namespaces > 0; on Ubuntu 24.04 "
    "sysctl kernel.apparmor_restrict_unprivileged_userns=0), or run the builder with another backend"
)


def require_nested(bwrap: str, where: str = "agentflow.yaml") -> None:
    """``SandboxUnavailable`` unless a bubblewrap sandbox can start inside a nested one of ours
    (what Claude Code's Bash sandbox does inside agentflow's)."""
    if problem := _probe(bwrap, nested=True):
        raise SandboxUnavailable(
            f"sandbox: a sandbox cannot start inside agentflow's here ({problem})", where=where, fix=NESTED_FIX
        )


def require_bwrap(where: str = "agentflow.yaml") -> str:
    """The path of a working bwrap, or ``SandboxUnavailable`` naming the fix."""
    from agentflow.git import trusted_path  # never a bwrap of the checkout (tests/test_attacks_path_entries.py)

    found = shutil.which("bwrap", path=trusted_path())
    if found is None:
        raise SandboxUnavailable("sandbox: bwrap (bubblewrap) is not installed", where=where, fix=FIX)
    try:
        unshare_path()
    except SandboxUnavailable as exc:
        raise SandboxUnavailable(exc.problem, where=where, fix=GUARD_FIX) from None
    problem = _probe(found)
    if problem and (problem.startswith(GUARD_PREFIX) or problem.split(":")[0].endswith("unshare")):
        problem = problem.removeprefix(GUARD_PREFIX)
        raise SandboxUnavailable(f"sandbox: pid 1 cannot be guarded here ({problem})", where=where, fix=GUARD_FIX)
    if problem:
        raise SandboxUnavailable(f"sandbox: bwrap cannot create namespaces here ({problem})", where=where, fix=FIX)
    return found


INNER_PROBE = ("--unshare-user", "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "--dev", "/dev", "--proc",
               "/proc", "--cap-drop", "ALL", "--", "/bin/true")  # fmt: skip


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str, nested: bool = False) -> str | None:
    """None when ``bwrap`` can build the sandbox (once per process; ``nested``: and a sandbox with
    its own namespaces and ``/proc`` inside it), else its one-line complaint."""
    argv = [bwrap, "--ro-bind", "/", "/", *(nested_dev() if nested else ["--dev", "/dev"]), "--proc", "/proc"]
    argv += ["--tmpfs", "/tmp", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"]
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", *user_args()]
    inner = f"; exec {shlex.quote(bwrap)} {shlex.join(INNER_PROBE)}" if nested else ""
    argv += ["--", *guard_argv(), "/bin/sh", "-c", GUARD_CHECK + inner]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, env={"PATH": os.defpath}, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    guard = [line for line in lines if line.startswith(GUARD_PREFIX) or line.split(":")[0].endswith("unshare")]
    return (guard or lines or [f"exit {proc.returncode}"])[-1]


# -- the session keyring ---------------------------------------------------------------------------

# keyctl(2)'s number (x86_64, aarch64): no namespace bwrap unshares holds the keyrings, and a process
# possesses every key of the session keyring it inherits (a login's Kerberos tickets, cifscreds'
# passwords, fscrypt keys): a sandboxed command read one (tests/test_attacks_session_keyring.py)
KEYCTL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine, 0) if hasattr(os, "uname") else 0
KEYCTL_JOIN_SESSION_KEYRING = 1
_KEYRING = threading.local()


def own_session_keyring() -> None:
    """Give the calling thread a new, empty session keyring (once per thread), which every process it
    starts inherits: credentials, the session keyring among them, are a thread's own in Linux, so the
    other threads of agentflow keep theirs. Nothing to do without keyrings (ENOSYS) or on another
    architecture."""
    if getattr(_KEYRING, "joined", False) or not KEYCTL or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).syscall(KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, None)
    except (OSError, AttributeError):
        return
    _KEYRING.joined = True


# -- defence in depth -----------------------------------------------------------------------------

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def make_non_dumpable() -> bool:
    """``prctl(PR_SET_DUMPABLE, 0)`` on Linux: same-user processes can no longer read this process's
    ``/proc/<pid>/environ`` or ptrace it. True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def is_dumpable() -> bool | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return bool(ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
