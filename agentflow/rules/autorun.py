"""Auto-run rule: files that developer tools execute on their own when someone opens, checks out,
enters or commits in the change's tree, outside any sandbox.

A reviewer who checks the branch out to look at it (or a developer after the merge) runs them without
deciding to run the change's code: git hook managers (``.husky/``, ``lefthook.yml``, ``.githooks/``,
``.pre-commit-config.yaml``), editor and agent configuration (``.vscode/tasks.json`` with ``runOn:
folderOpen``, ``.vscode/settings.json`` naming an interpreter or a tool in the tree, ``.claude/``
hooks, ``.mcp.json``), dev containers (``postCreateCommand``), direnv's ``.envrc``, package managers'
own code and settings (``.yarnrc.yml``'s ``yarnPath``, ``.pnpmfile.cjs``, ``.npmrc``), build
wrappers and settings an IDE runs on import (``gradle/wrapper/``, ``.mvn/``, ``.cargo/config.toml``),
and ``package.json`` lifecycle scripts (``prepare``, ``postinstall``) or hook-manager keys. The
checks never run these, and the verifier cannot tell a harmless edit from one that runs code, so
each added or changed one is a ``high`` ``autorun_file`` finding: only a human override approves
it. Deleting one is no finding.
"""

from __future__ import annotations

import re

from agentflow.rules import Finding, Rule, finding
from agentflow.rules.change import Change

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
    # containers and shells entered automatically
    r"|\.devcontainer/.+|\.devcontainer\.json|\.envrc|\.?mise(\.local)?\.toml|\.mise/.+|\.config/mise/.+"
    # package managers' own code and settings, build wrappers an IDE runs on import
    r"|\.yarnrc(\.ya?ml)?|\.yarn/(releases|plugins|sdks)/.+|\.pnpmfile\.c?js|\.npmrc|\.bunfig\.toml|bunfig\.toml"
    r"|gradle/wrapper/.+|\.mvn/.+|\.cargo/config(\.toml)?"
    r")$",
    re.IGNORECASE,  # macOS and Windows check `.VSCode/Tasks.json` out where `.vscode/tasks.json` is looked for
)
_LINK_DIRS = re.compile(r"(^|/)(\.[^/]+|githooks|git-hooks|gradle|gradle/wrapper)$", re.IGNORECASE)
# package.json: npm/yarn/pnpm run these scripts on `install` in the tree; the hook managers' keys (husky
# v4, simple-git-hooks, yorkie, pre-commit) and git hook names inside them run on commit, checkout, push
_PACKAGE_KEY = re.compile(
    r"""["'](?:(pre|post)?(install|prepare)|prepublish)["']\s*:"""
    r"""|["'](husky|simple-git-hooks|gitHooks|ghooks|pre-commit|pre-push|lint-staged|git-hooks)["']\s*:"""
    r"""|["'](applypatch-msg|pre-applypatch|post-applypatch|prepare-commit-msg|commit-msg|post-commit"""
    r"""|pre-rebase|post-checkout|post-merge|pre-merge-commit|post-rewrite|pre-auto-gc|reference-transaction"""
    r"""|push-to-checkout|sendemail-validate)["']\s*:"""
)


def check_autorun(change: Change) -> list[Finding]:
    found: list[Finding] = []
    for file in change.files:
        if file.status == "deleted":
            continue
        path = _as_checked_out(file.path)
        if AUTORUN_PATH.search(path) or file.mode == LINK and _LINK_DIRS.search(path):
            found.append(
                finding(
                    RULE,
                    f"{file.path} is{' a link to' if file.mode == LINK else ''} what developer tools run on their own (opening, checking out, entering or "
                    "committing in the tree) outside any sandbox; the checks never ran it",
                    file=file.path,
                    suggestion="change it on the base branch; a human who read it approves with "
                    "`agentflow approve --override --reason ...`",
                )
            )
            continue
        if path.rsplit("/", 1)[-1].lower() != "package.json":
            continue
        for line in file.added:
            if _PACKAGE_KEY.search(line.text):
                found.append(
                    finding(
                        RULE,
                        f"{file.path} changes a script npm runs on install or a git hook: "
                        f"`{' '.join(line.text.split())[:120]}`",
                        file=file.path,
                        line=line.new,
                        suggestion="change it on the base branch; a human who read it approves with "
                        "`agentflow approve --override --reason ...`",
                    )
                )
    return found


def _as_checked_out(path: str) -> str:
    """``path`` as Windows names it: trailing dots and spaces of each component dropped (``.vscode. /``
    is ``.vscode/`` there)."""
    return "/".join(part.rstrip(". ") or part for part in path.split("/"))


RULES = [
    Rule(
        RULE,
        "files developer tools run on their own when the tree is opened, checked out, entered or committed in "
        "(git hook managers, .vscode/.claude/.devcontainer config, .envrc, package managers' code, package.json "
        "install scripts and hooks)",
        "high",
        check_autorun,
    ),
]
