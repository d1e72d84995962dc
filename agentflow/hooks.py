"""Local git hooks that refuse unapproved merges and pushes to protected branches.

Advisory by nature: ``--no-verify`` skips them and anyone can delete them. They catch mistakes
early; the real enforcement is ``agentflow gate`` as a required CI check.

* ``pre-merge-commit`` (``git merge`` creating a merge commit) and ``pre-commit`` while a merge is in
  progress (``MERGE_HEAD`` exists, e.g. concluding a conflicted merge): when the current branch is
  protected, every commit being merged in must pass the gate. Merges into other branches (updating
  a plan branch from main, say) are not checked. Fast-forward and squash merges do not run
  ``pre-merge-commit`` (a git fact); ``pre-push`` catches those.
* ``pre-push``: for each pushed ref that is a protected branch, every commit the push adds to it
  (first-parent chain) must pass the gate, or be a merge commit whose merged-in (second) parent
  passes it and whose tree is exactly the clean merge of its parents (what ``agentflow merge`` writes).
  Commits that change only plan files (``.plans/*.md``, regular files) pass: plans are written on main.

Install keeps existing hooks: a foreign hook is renamed ``<hook>.agentflow-orig`` and run first by
ours; uninstall puts it back. Hooks call ``<the installing python> -m agentflow`` so PATH does not matter.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from agentflow.errors import UsageError
from agentflow.gate import GateResult, GateStatus, evaluate_gate, evaluate_merge_commit
from agentflow.git import Repo

if TYPE_CHECKING:  # a hook reads the config as the gate does (configfile.config_view), without pydantic
    from agentflow.config import Config

HOOKS = ("pre-merge-commit", "pre-commit", "pre-push")
MARKER = "# agentflow-hook"
ORIG_SUFFIX = ".agentflow-orig"
ZERO = "0" * 40

_HEADER = """#!/bin/sh
{marker} v1: {hook}
# Installed by `agentflow hooks install`; `agentflow hooks uninstall` restores any previous hook
# (kept as {hook}{orig_suffix} and run first). Advisory only: `--no-verify` skips it; the CI gate
# (`agentflow gate` as a required check) is the real enforcement.
orig="$(dirname "$0")/{hook}{orig_suffix}"
"""

_PLAIN_BODY = """if [ -x "$orig" ]; then
    "$orig" "$@" || exit $?
fi
exec {command} "$@"
"""

_PRE_COMMIT_BODY = """if [ -x "$orig" ]; then
    "$orig" "$@" || exit $?
fi
# only a commit that concludes a merge is checked; skip starting Python otherwise
[ -f "$(git rev-parse --git-path MERGE_HEAD)" ] || exit 0
exec {command} "$@"
"""

_STDIN_BODY = """input=$(cat)
if [ -x "$orig" ]; then
    printf '%s\\n' "$input" | "$orig" "$@" || exit $?
fi
printf '%s\\n' "$input" | {command} "$@"
"""


def hooks_dir(repo: Repo) -> Path:
    """Where git looks for hooks (honours ``core.hooksPath``).

    Read from the config, not ``rev-parse --git-path hooks``: agentflow's own git calls override
    ``core.hooksPath`` (they run no hook), so git would answer ``/dev/null``.
    """
    configured = repo.configured("core.hooksPath")
    if configured:
        path = Path(os.path.expanduser(configured))
        return path if path.is_absolute() else (repo.root / path)
    path = Path(repo.git("rev-parse", "--git-common-dir")) / "hooks"
    return path if path.is_absolute() else (repo.root / path)


def hook_script(hook: str, python: str = sys.executable) -> str:
    command = f"{shlex.quote(python)} -P -m agentflow hooks run {hook}"
    body = {"pre-push": _STDIN_BODY, "pre-commit": _PRE_COMMIT_BODY}.get(hook, _PLAIN_BODY)
    return _HEADER.format(marker=MARKER, hook=hook, orig_suffix=ORIG_SUFFIX) + body.format(command=command)


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def install(repo: Repo, python: str = sys.executable) -> list[str]:
    """Install (or refresh) the hooks; returns one line per hook saying what was done."""
    directory = hooks_dir(repo)
    directory.mkdir(parents=True, exist_ok=True)
    done = []
    for hook in HOOKS:
        path, orig = directory / hook, directory / f"{hook}{ORIG_SUFFIX}"
        if path.exists() and not is_ours(path):
            if orig.exists():
                raise UsageError(
                    f"both {path} and {orig} exist and neither is agentflow's",
                    fix=f"merge them by hand into {orig}, remove {path}, then install again",
                )
            path.rename(orig)
            done.append(f"{hook}: installed; the existing hook now runs first from {orig.name}")
        elif path.exists():
            done.append(f"{hook}: refreshed")
        else:
            done.append(f"{hook}: installed")
        path.write_text(hook_script(hook, python), encoding="utf-8")
        path.chmod(0o755)
    return done


def uninstall(repo: Repo) -> list[str]:
    """Remove agentflow's hooks and restore the ones they replaced."""
    directory = hooks_dir(repo)
    done = []
    for hook in HOOKS:
        path, orig = directory / hook, directory / f"{hook}{ORIG_SUFFIX}"
        if path.exists() and not is_ours(path):
            done.append(f"{hook}: left alone (not agentflow's)")
            continue
        installed = path.exists()
        if installed:
            path.unlink()
        if orig.exists():
            orig.rename(path)
            done.append(f"{hook}: removed; restored the previous hook")
        else:
            done.append(f"{hook}: {'removed' if installed else 'not installed'}")
    return done


# -- what the hooks check ------------------------------------------------------------------------


@dataclass(frozen=True)
class HookCheck:
    """One gate evaluation made by a hook, and what it was about."""

    subject: str
    result: GateResult


def is_protected(branch: str, config: Config) -> bool:
    name = branch.removeprefix("refs/heads/")
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in config.gate.protected_branches)


def config_at(repo: Repo, commit: str) -> Config:
    """The config committed at ``commit``, an invalid one counting as the defaults (main, master
    protected): ``agentflow.inputs.committed_config``'s ``defaults`` policy. The work tree holds what
    is checked out or being merged, which a branch writes."""
    from agentflow.inputs import config_at as committed

    return committed(repo, commit, invalid="defaults")


def protected_by(repo: Repo, branch: str, config: Config, tip: str | None) -> Config | None:
    """The config to judge a merge or push into ``branch`` by, or None when it is not protected.

    Protected when the work tree's config or the config at the branch's current ``tip`` (the
    remote's commit for a push, HEAD for a merge) says so; judged by the tip's config, with the
    work tree's ``gate.require_signature`` kept (it may only make it stricter). A branch's own
    ``agentflow.yaml`` (``protected_branches: [nothing]``) used to turn the hooks off for its
    push to main and for its merge into main."""
    from agentflow.configfile import kept_stricter

    trusted = config_at(repo, tip) if tip and tip != ZERO and repo.ok("cat-file", "-e", f"{tip}^{{commit}}") else None
    if trusted is None and tip and tip != ZERO:
        trusted = _last_seen_config(repo, branch)
    if not is_protected(branch, config) and (trusted is None or not is_protected(branch, trusted)):
        return None
    return config if trusted is None else kept_stricter(trusted, config)


def _last_seen_config(repo: Repo, branch: str) -> Config:
    """The config to judge a push over a remote commit the clone does not have (the remote moved since
    the last fetch): the remote-tracking branch's, the last state of the branch the clone saw, else
    agentflow's defaults (main, master protected). The work tree's alone let a branch's
    ``protected_branches: [nothing]`` through (tests/test_attacks_checkout_defaults.py)."""
    from agentflow.configfile import config_view

    name = branch.removeprefix("refs/heads/")
    refs = repo.git("for-each-ref", "--format=%(refname)", "refs/remotes/", check=False).split()
    seen = [
        config
        for ref in refs
        if ref.endswith(f"/{name}") and ref.count("/") == name.count("/") + 3  # refs/remotes/<remote>/<name>
        if (config := config_at(repo, ref)) is not None
    ]
    protecting = [config for config in seen if is_protected(branch, config)]
    return (protecting or seen or [config_view(None, None)])[0]


def merge_heads(repo: Repo, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The commits being merged in.

    ``pre-commit`` concluding a merge sees them in ``MERGE_HEAD``; ``pre-merge-commit`` runs before
    git writes that file, but git exports ``GITHEAD_<commit>=<name>`` for each merged commit.
    """
    path = Path(repo.git("rev-parse", "--git-path", "MERGE_HEAD"))
    path = path if path.is_absolute() else repo.root / path
    try:
        heads = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        heads = []
    heads += [name.removeprefix("GITHEAD_") for name in environ if name.startswith("GITHEAD_")]
    return list(dict.fromkeys(h for h in heads if len(h) >= 40))


def check_merge(repo: Repo, config: Config) -> list[HookCheck]:
    """``pre-merge-commit`` / ``pre-commit``: a merge into a protected branch merges only approved commits."""
    heads = merge_heads(repo)
    branch = repo.current_branch()
    if not heads or branch is None:
        return []
    head = repo.git("rev-parse", "--verify", "--quiet", "HEAD", check=False) or None
    judged = protected_by(repo, branch, config, head)
    if judged is None:
        return []
    config = judged
    return [
        HookCheck(f"merging {head[:12]} into {branch}", evaluate_gate(repo, head, base=branch, config=config))
        for head in heads
    ]


MAX_PUSHED_COMMITS = 100


def pushed_commits(repo: Repo, local_sha: str, remote_sha: str) -> list[str]:
    """The first-parent commits a push adds to a branch, newest first (at most MAX_PUSHED_COMMITS + 1).

    First-parent only: the commits of a merged plan branch sit behind its (checked) merge commit.
    """
    if remote_sha == ZERO:
        return [local_sha]  # creating the branch (e.g. the first push of a project): its tip only
    known = repo.ok("cat-file", "-e", f"{remote_sha}^{{commit}}")
    exclude = [f"^{remote_sha}"] if known else ["--not", "--remotes"]
    out = repo.git("rev-list", "--first-parent", f"--max-count={MAX_PUSHED_COMMITS + 1}", local_sha, *exclude)
    return out.split()


def check_push(repo: Repo, config: Config, stdin: str) -> list[HookCheck]:
    """``pre-push``: every commit a push adds to a protected branch passes the gate (or is a clean merge of one)."""
    checks = []
    for line in stdin.splitlines():
        parts = line.split()
        if len(parts) != 4:
            continue
        _local_ref, local_sha, remote_ref, remote_sha = parts
        if local_sha == ZERO or not remote_ref.startswith("refs/heads/"):
            continue
        judged = protected_by(repo, remote_ref, config, remote_sha)
        if judged is None:
            continue
        commits = pushed_commits(repo, local_sha, remote_sha)
        if len(commits) > MAX_PUSHED_COMMITS:
            tip = evaluate_merge_commit(repo, local_sha, config=judged)
            too_many = GateResult(
                ref=local_sha,
                commit=tip.commit,
                tree=tip.tree,
                status=GateStatus.NO_VERDICT,
                reasons=[f"more than {MAX_PUSHED_COMMITS} new commits on a protected branch; push them in steps"],
            )
            checks.append(HookCheck(f"pushing to {remote_ref}", too_many))
            continue
        for commit in commits:
            if plan_only(repo, commit):
                continue  # the user's own plan files: input to agentflow, not code it must verify
            result = evaluate_merge_commit(repo, commit, config=judged)
            checks.append(HookCheck(f"pushing {commit[:12]} to {remote_ref}", result))
    return checks


def plan_only(repo: Repo, commit: str) -> bool:
    """A non-merge commit that changes nothing but plan files (``.plans/*.md``), each a regular file.

    Writing plans on main is how work starts (`agentflow plan new`, commit, build), so the push hook
    lets such commits through; any other file in the same commit makes it a change to verify. So does
    a symbolic link or a gitlink under ``.plans/`` (a link to code, a submodule whose content no one
    verified: let through as "plan-only" before, ``tests/test_attacks_plan_only_push.py``): the
    entries are read with ``--raw -z`` (modes, and paths as stored, never quoted)."""
    parents = repo.git("rev-list", "--parents", "-n", "1", commit).split()[1:]
    if len(parents) > 1:
        return False
    raw = repo.git("diff-tree", "--no-commit-id", "--raw", "-z", "-r", "--root", "--no-renames", commit)
    from agentflow.planfiles import PLANS_DIR

    fields = raw.split("\0")
    entries = [(fields[i], fields[i + 1]) for i in range(0, len(fields) - 1, 2)]
    if not entries:
        return False
    for status, path in entries:
        parts = status.lstrip(":").split()
        if len(parts) < 5 or not path.startswith(f"{PLANS_DIR}/") or not path.endswith(".md"):
            return False
        old_mode, new_mode = parts[0], parts[1]
        if new_mode not in REGULAR_MODES and not (new_mode == "000000" and old_mode in REGULAR_MODES):
            return False  # a link, a gitlink, or a link or gitlink turned into something else
    return True


REGULAR_MODES = ("100644", "100755")


def outdated(repo: Repo, hook: str) -> str | None:
    """What is wrong with an installed hook of agentflow's written before it ran Python with ``-P``
    (None when it is current): such a hook imports a module ``agentflow`` from the top of the
    checkout first, where a branch can put one (tests/test_attacks_cwd_imports.py)."""
    path = hooks_dir(repo) / hook
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if MARKER not in text or " -P -m agentflow " in text:
        return None
    return (
        f"{path} starts Python without -P, so an agentflow/ folder at the top of the checkout would answer "
        "instead of agentflow (refresh it: `agentflow hooks install`)"
    )


def run_hook(repo: Repo, hook: str, config: Config, stdin: str = "") -> list[HookCheck]:
    if hook in ("pre-merge-commit", "pre-commit"):
        return check_merge(repo, config)
    if hook == "pre-push":
        return check_push(repo, config, stdin)
    raise UsageError(f"unknown hook {hook!r}", fix=f"one of {', '.join(HOOKS)}")
