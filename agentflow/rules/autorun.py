"""Auto-run rule: files that developer tools execute on their own when someone opens, checks out,
enters or commits in the change's tree, outside any sandbox.

A reviewer who checks the branch out to look at it (or a developer after the merge) runs them without
deciding to run the change's code: git hook managers (``.husky/``, ``lefthook.yml``, ``.githooks/``,
``.pre-commit-config.yaml``), editor and agent configuration (``.vscode/tasks.json`` with ``runOn:
folderOpen``, ``.vscode/settings.json`` naming an interpreter or a tool in the tree, ``.claude/``
hooks, ``.mcp.json``), dev containers (``postCreateCommand``), direnv's ``.envrc``, package managers'
own code and settings (``.yarnrc.yml``'s ``yarnPath``, ``.pnpmfile.cjs``, ``.npmrc``), build
wrappers and settings an IDE runs on import (``gradle/wrapper/``, ``.mvn/``, ``.cargo/config.toml``),
and a package manifest's lifecycle scripts (``prepare``, ``postinstall``) or hook-manager keys
(``package.json`` and pnpm's ``package.yaml``, compared parsed; pnpm's ``package.json5``, which no
library here parses, whenever it changes: a comment before a key, an escape in it or npm's
``dependencies`` script hid one from its lines). The checks never run these, and the verifier cannot
tell a harmless edit from one that runs code, so each added or changed one is a ``high``
``autorun_file`` finding: only a human override approves it. Deleting one is no finding. So is code a
build runs before anything is compiled, which an IDE also runs on opening or syncing the tree (Cargo's
build scripts: ``build.rs`` beside a ``Cargo.toml`` or what its ``package.build`` names, and that key;
Gradle's ``*.gradle(.kts)`` scripts and ``buildSrc/``): the checks may run them, sandboxed, but a
developer's editor runs them outside any sandbox (tests/test_attacks_build_scripts.py).
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any

from agentflow.rules import Finding, Rule, finding
from agentflow.rules.change import Change, FileDiff

RULE = "autorun_file"
LINK = "120000"

AUTORUN_PATH = re.compile(
    r"(^|/)("
    # git hooks and hook managers
    r"\.husky/.+|\.githooks/.+|\.git-hooks/.+|githooks/.+|git-hooks/.+|\.hooks/.+"
    r"|\.?lefthook(-local)?\.(ya?ml|json|toml)|\.lefthook/.+|\.overcommit\.ya?ml|\.pre-commit-config\.ya?ml"
    r"|\.pre-commit-hooks\.ya?ml|\.simple-git-hooks\.(c?js|json)|simple-git-hooks\.(c?js|json)|\.huskyrc(\.\w+)?"
    r"|\.lintstagedrc(\.\w+)?|lint-staged\.config\.[cm]?[jt]s"
    # editors and coding agents
    r"|\.vscode/(settings|tasks|mcp)\.json|[^/]*\.code-workspace|\.claude/.+|\.mcp\.json|\.cursor/.+"
    r"|\.gemini/.+|\.codex/.+|\.zed/.+|\.idea/.+|\.fleet/.+|\.nvim\.lua|\.nvimrc|\.exrc|\.lvimrc"
    # instructions coding agents load on their own (the top CLAUDE.md is a protected path already)
    r"|(?<=/)CLAUDE\.md|CLAUDE\.local\.md|AGENTS\.md|GEMINI\.md|\.cursorrules|\.windsurfrules|\.clinerules(/.+)?"
    r"|\.github/copilot-instructions\.md|\.github/instructions/.+"
    # containers and shells entered automatically
    r"|\.devcontainer/.+|\.devcontainer\.json|\.envrc|\.?mise(\.local)?\.toml|\.mise/.+|\.config/mise/.+"
    # package managers' own code and settings, build wrappers an IDE runs on import
    r"|\.yarnrc(\.ya?ml)?|\.yarn/(releases|plugins|sdks)/.+|\.pnpmfile\.c?js|\.npmrc|\.bunfig\.toml|bunfig\.toml"
    r"|gradle/wrapper/.+|\.mvn/.+|\.cargo/config(\.toml)?"
    # build scripts a build, and an IDE's sync of the project, runs first (Cargo's: cargo_build_script)
    r"|[^/]*\.gradle(\.kts)?|buildSrc/.+"
    r")$",
    re.IGNORECASE,  # macOS and Windows check `.VSCode/Tasks.json` out where `.vscode/tasks.json` is looked for
)
_LINK_DIRS = re.compile(r"(^|/)(\.[^/]+|githooks|git-hooks|gradle|gradle/wrapper|buildSrc)$", re.IGNORECASE)
# package.json: npm/yarn/pnpm run these scripts on `install` in the tree; the hook managers' keys (husky
# v4, simple-git-hooks, yorkie, pre-commit) and git hook names inside them run on commit, checkout, push
_PACKAGE_KEY = re.compile(
    r"""["'](?:(pre|post)?(install|prepare)|prepublish)["']\s*:"""
    r"""|["'](husky|simple-git-hooks|gitHooks|ghooks|pre-commit|pre-push|lint-staged|git-hooks)["']\s*:"""
    r"""|["'](applypatch-msg|pre-applypatch|post-applypatch|prepare-commit-msg|commit-msg|post-commit"""
    r"""|pre-rebase|post-checkout|post-merge|pre-merge-commit|post-rewrite|pre-auto-gc|reference-transaction"""
    r"""|push-to-checkout|sendemail-validate)["']\s*:"""
)


# The same keys where a manifest's keys may go unquoted (package.yaml, package.json5): at a line's
# start, or after `{` or `,`
_BARE_KEY = re.compile(
    r"""(?:^|[{,])\s*(?:-\s*)?["']?(?:(pre|post)?(install|prepare)|prepublish|husky|simple-git-hooks|gitHooks|ghooks"""
    r"""|pre-commit|pre-push|lint-staged|git-hooks|post-checkout|post-merge|post-rewrite|commit-msg)["']?\s*:"""
)
# The manifests a package manager runs install scripts from: npm, yarn and pnpm read package.json;
# pnpm reads package.yaml (js-yaml) or package.json5 (json5) where there is none
MANIFESTS = ("package.json", "package.yaml", "package.json5")


def _parse_manifest(name: str, text: str) -> Any:
    """A manifest's data (None when it does not parse, or is JSON5, which no library here reads: its
    added lines are matched instead). YAML through ``yamlsrc``: an alias bomb is refused, not walked."""
    import yaml

    from agentflow import yamlsrc

    try:
        if name == "package.json":
            return json.loads(text)
        if name == "package.yaml":
            return yamlsrc.load(text).data
    except (ValueError, yaml.YAMLError):
        pass
    return None


_HOOKS_PATH = re.compile(
    r"core\.hooks[Pp]ath[\s=]+['\"]?([^\s'\";&|]+)|\bhusky(?:\s+install)?\s+([^\s'\";&|-][^\s'\";&|]*)"
)


def hook_folders(change: Change) -> list[str]:
    """The git hook folders the tree's top manifest (``package.json``, ``package.yaml``) wires in its
    scripts (``git config core.hooksPath tools/hooks``, ``husky .config/husky``): a hook there runs
    on every commit and checkout."""
    values = []
    for name in MANIFESTS:
        text = change.read_new(name)
        data = _parse_manifest(name, text) if text else None
        scripts = data.get("scripts") if isinstance(data, dict) else None
        values += scripts.values() if isinstance(scripts, dict) else []
    folders = []
    for value in values:
        for match in _HOOKS_PATH.finditer(str(value)):
            folder = posixpath.normpath(match.group(1) or match.group(2)).strip("/")
            if folder not in (".", "", "install") and not folder.startswith(".."):  # `husky install`: .husky
                folders.append(folder)
    return folders


def check_autorun(change: Change) -> list[Finding]:
    found: list[Finding] = []
    hooks = hook_folders(change)
    for file in change.files:
        if file.status == "deleted" or _empty(file):
            continue
        path = _as_checked_out(file.path)
        if any(file.path.startswith(folder + "/") for folder in hooks):
            found.append(
                finding(
                    RULE,
                    f"{file.path} is in a git hook folder package.json wires (core.hooksPath): git runs it on "
                    "commit, checkout or push, outside any sandbox; the checks never ran it",
                    file=file.path,
                    suggestion="change it on the base branch; a human who read it approves with "
                    "`agentflow approve --override --reason ...`",
                )
            )
            continue
        if (through := _through_link(change, file.path)) is not None:
            found.append(
                finding(
                    RULE,
                    f"{file.path} is what the link {through.encode('utf-8', 'surrogateescape').decode('utf-8', 'replace')} leads to, which developer tools run (or their agents "
                    "obey) on their own outside any sandbox; the checks never ran it",
                    file=file.path,
                    suggestion="change it on the base branch; a human who read it approves with "
                    "`agentflow approve --override --reason ...`",
                )
            )
            continue
        if AUTORUN_PATH.search(path) or file.mode == LINK and _LINK_DIRS.search(path):
            found.append(
                finding(
                    RULE,
                    f"{file.path} is{' a link to' if file.mode == LINK else ''} what developer tools run (or their agents obey) on their own (opening, checking out, entering or "
                    "committing in the tree) outside any sandbox; the checks never ran it",
                    file=file.path,
                    suggestion="change it on the base branch; a human who read it approves with "
                    "`agentflow approve --override --reason ...`",
                )
            )
            continue
        if (build := cargo_build_script(change, file)) is not None:
            found.append(
                finding(
                    RULE,
                    f"{file.path} {build}, which Cargo runs before compiling the package (and rust-analyzer when an "
                    "editor opens the tree) outside any sandbox on a developer's machine",
                    file=file.path,
                    suggestion="change it on the base branch; a human who read it approves with "
                    "`agentflow approve --override --reason ...`",
                )
            )
            continue
        if path.rsplit("/", 1)[-1].lower() not in MANIFESTS:
            continue
        found += _package_findings(change, file)
    return found


def _cargo_build(text: str | None) -> object:
    """A ``Cargo.toml``'s ``package.build`` (None when absent or unreadable, ``...`` when it does not parse)."""
    import tomllib

    try:
        package = tomllib.loads(text or "").get("package")
    except tomllib.TOMLDecodeError:
        return ...
    return package.get("build") if isinstance(package, dict) else None


def cargo_build_script(change: Change, file: FileDiff) -> str | None:
    """What makes ``file`` Cargo build code (a phrase), or None: the build script of the nearest
    ``Cargo.toml`` above it (``build.rs`` beside it unless ``build = false``, or the file its
    ``package.build`` names), or that key of a ``Cargo.toml`` changed to anything but ``false``. A
    ``Cargo.toml`` that does not parse runs nothing, but a ``build.rs`` beside it counts (fail closed)."""
    name = file.path.rsplit("/", 1)[-1]
    if name == "Cargo.toml":
        new = change.new_text(file)
        old = "" if file.status == "added" else _old_text(file, new) if new is not None else None
        build = _cargo_build(new)
        if build is not False and build is not None and (old is None or _cargo_build(old) != build):
            return "sets the package's build script (`package.build`)"
        if build is None and old is not None and _cargo_build(old) is False:
            return "turns the package's build script (`build.rs`) back on"
        return None
    if not name.endswith(".rs"):
        return None
    parts = file.path.split("/")[:-1]
    for depth in range(len(parts), -1, -1):  # the nearest package above the file
        manifest = "/".join([*parts[:depth], "Cargo.toml"])
        text = change.read_new(manifest)
        if not text:
            continue
        build = _cargo_build(text)
        base = "/".join(parts[:depth])
        if build is ... or build is None or build is True:
            named = posixpath.join(base, "build.rs")
        elif isinstance(build, str):
            named = posixpath.normpath(posixpath.join(base, build))
        else:
            return None
        return f"is the build script of {manifest}" if named == file.path else None
    return None


_LIFECYCLE = ("preinstall", "install", "postinstall", "prepublish", "preprepare", "prepare", "postprepare",
              "dependencies")  # fmt: skip
_HOOK_KEYS = ("husky", "simple-git-hooks", "gitHooks", "ghooks", "pre-commit", "pre-push", "lint-staged", "git-hooks")


def _package_findings(change: Change, file: FileDiff) -> list[Finding]:
    """What a manifest change sets that npm or pnpm runs on install (``scripts``' lifecycle entries) or
    a hook manager on commit, checkout, push: the parsed files compared (a ``"pr\\u0065pare"`` key, a
    key on one line and its value on the next), else, when one side does not parse (or is JSON5), the
    added lines."""
    suggestion = "change it on the base branch; a human who read it approves with `agentflow approve --override`"
    name = file.path.rsplit("/", 1)[-1].lower()
    keys = _package_keys(change, file, name)
    if keys is None:  # unparsed on one side: each added line that names such a key; a binary one whole
        pattern = _PACKAGE_KEY if name == "package.json" else _BARE_KEY
        hits = [(line.new, " ".join(line.text.split())[:120]) for line in file.added if pattern.search(line.text)]
        if file.binary and not file.lines:
            hits = [(None, f"a {name} git calls binary")]
    else:
        hits = [(_line_naming(file, key.rsplit(".", 1)[-1]), key) for key in keys]
    if name == "package.json5" and not hits:  # no JSON5 parser here: a script its lines do not show
        return [
            finding(
                RULE,
                f"{file.path} changes: agentflow does not parse JSON5, and pnpm runs the install scripts a "
                "package.json5 sets however they are written (a comment before the key, an escape in it, npm's "
                "`dependencies` script), so no line shows whether it sets one",
                file=file.path,
                line=next((line.new for line in file.added), None),
                suggestion=suggestion,
            )
        ]
    return [
        finding(
            RULE,
            f"{file.path} changes a script npm or pnpm runs on install or a git hook: `{what}`",
            file=file.path,
            line=number,
            suggestion=suggestion,
        )
        for number, what in hits
    ]


def _package_keys(change: Change, file: FileDiff, name: str) -> list[str] | None:
    new_text = change.new_text(file)
    if new_text is None:
        return None
    old_text = "{}" if file.status == "added" else _old_text(file, new_text)
    new = _parse_manifest(name, new_text)
    old = _parse_manifest(name, old_text) if old_text is not None else None
    if not isinstance(new, dict) or not isinstance(old, dict):
        return None

    def part(data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key)
        return value if isinstance(value, dict) else {}

    changed = [f"scripts.{k}" for k in _LIFECYCLE if part(new, "scripts").get(k) != part(old, "scripts").get(k)]
    changed += [k for k in _HOOK_KEYS if new.get(k) != old.get(k)]
    changed += [f"config.{k}" for k in _HOOK_KEYS if part(new, "config").get(k) != part(old, "config").get(k)]
    return [k for k in changed if _present(new, k)]


def _present(data: dict[str, Any], key: str) -> bool:
    head, _, rest = key.partition(".")
    return head in data and (not rest or isinstance(data[head], dict) and rest in data[head])


def _line_naming(file: FileDiff, key: str) -> int | None:
    return next((line.new for line in file.added if key in line.text), next((x.new for x in file.added), None))


def _old_text(file: FileDiff, new_text: str) -> str | None:
    """The old file, from the new one and the diff's hunks (None when they do not fit together)."""
    new = new_text.split("\n")
    if new and new[-1] == "":
        new.pop()
    old: list[str] = []
    next_old, offset = 1, 0  # an unchanged old line k is new line k + offset

    def at(number: int) -> str:
        if not 1 <= number <= len(new):
            raise IndexError(number)
        return new[number - 1]

    try:
        for index, line in enumerate(file.lines):
            last = index == len(file.lines) - 1 and line.kind == " " and line.text == ""
            if last and (line.new is None or not 1 <= line.new <= len(new) or new[line.new - 1] != ""):
                break  # the diff's last newline, read as an empty context line
            if line.kind != "-" and (line.new is None or at(line.new) != line.text):
                return None
            if line.kind == "+":
                offset += 1
                continue
            if line.old is None:
                return None
            while next_old < line.old:
                old.append(at(next_old + offset))
                next_old += 1
            old.append(line.text)
            next_old = line.old + 1
            offset -= line.kind == "-"
        while 1 <= next_old + offset <= len(new):
            old.append(at(next_old + offset))
            next_old += 1
    except IndexError:
        return None
    return "\n".join(old)


def _empty(file: FileDiff) -> bool:
    """A new empty file: it runs nothing (Claude Code's Bash sandbox leaves empty ``.npmrc``,
    ``.yarnrc``, ``bunfig.toml`` mount points in the tree it confines)."""
    return file.status == "added" and not file.lines and not file.binary and file.mode != LINK


def link_wanted(path: str) -> bool:
    """Whether a symbolic link at ``path`` is one whose target the rule follows (``Change.links``)."""
    path = _as_checked_out(path)
    return bool(AUTORUN_PATH.search(path) or _LINK_DIRS.search(path))


def _through_link(change: Change, path: str) -> str | None:
    """The link of the new tree at an auto-run path that leads to ``path`` (itself or a folder above it)."""
    added = {f.path for f in change.files if f.mode == LINK}  # a link the change adds is a finding itself
    for link, target in sorted(change.links.items()):
        if link == path or link in added or target.startswith("/"):
            continue
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target.strip()))
        if resolved == ".." or resolved.startswith("../"):
            continue  # outside the tree: not the change's
        if resolved == ".":  # all of it (`.githooks -> .`): the tool reads the top's files as its folder's
            if "/" in path or _HOOK_DIR.search(_as_checked_out(link)) and path.lower() not in GIT_HOOKS:
                continue  # a hook folder's other files, as every other folder's, run nothing
            seen_as = _as_checked_out(f"{link}/{path}")
        elif path == resolved or path.startswith(resolved + "/"):
            seen_as = _as_checked_out(link + path[len(resolved) :])
        else:
            continue
        if AUTORUN_PATH.search(seen_as):
            return link
    return None


# The hooks git runs by name (githooks(5)), and the folders hook managers keep them in
GIT_HOOKS = frozenset((
    "applypatch-msg", "pre-applypatch", "post-applypatch", "pre-commit", "pre-merge-commit", "prepare-commit-msg",
    "commit-msg", "post-commit", "pre-rebase", "post-checkout", "post-merge", "pre-push", "pre-receive", "update",
    "proc-receive", "post-receive", "post-update", "reference-transaction", "push-to-checkout", "pre-auto-gc",
    "post-rewrite", "sendemail-validate", "fsmonitor-watchman", "p4-changelist", "p4-prepare-changelist",
    "p4-post-changelist", "p4-pre-submit", "post-index-change"
))  # fmt: skip
_HOOK_DIR = re.compile(r"(^|/)(\.?git-?hooks|\.hooks|\.husky)$", re.IGNORECASE)


def _as_checked_out(path: str) -> str:
    """``path`` as Windows names it: trailing dots and spaces of each component dropped (``.vscode. /``
    is ``.vscode/`` there)."""
    return "/".join(part.rstrip(". ") or part for part in path.split("/"))


RULES = [
    Rule(
        RULE,
        "files developer tools run on their own when the tree is opened, checked out, entered or committed in "
        "(git hook managers, .vscode/.claude/.devcontainer config, .envrc, package managers' code, install "
        "scripts and hooks of package.json, package.yaml, package.json5)",
        "high",
        check_autorun,
    ),
]
