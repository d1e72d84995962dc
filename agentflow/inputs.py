"""Trusted inputs: what judges a change, read once when a run starts and never again.

The config (with its checks and the ``command`` backend's command), the builder and verifier
prompts, the patterns (CLAUDE.md) and the plan decide how a change is built and judged, so nothing
an agent or the change itself can write may alter them mid-run:

* ``build`` reads them from the user's checkout (``from_checkout``) before any session starts;
* ``verify`` reads them from the base revision (``from_revision``: ``git show <base>:<path>``), so
  a pull request that edits its own ``agentflow.yaml`` or ``prompts/verifier.md`` is judged by the
  base's (a plan that is new in the change is read from the head: there is no other);
* ``build --resume`` continues with what the run recorded (``from_record``), whatever the files
  say now.

``TrustedInputs.record()`` goes into the run's first event (``run_started``): the sha256 of every
input and its text. A change under verification that touches one of these files gets a
``protected_path`` finding (high: it blocks approval; ``approve --override`` is the human's way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentflow.configfile import CONFIG_FILE, PYPROJECT, pyproject_section, read_config_file
from agentflow.errors import ConfigError, UsageError
from agentflow.files import read_text_file
from agentflow.git import Repo, run_git

if TYPE_CHECKING:  # plans and patterns are imported where they are parsed: `gate` needs only the config
    from agentflow.config import Config
    from agentflow.configfile import ConfigView
    from agentflow.gate import GateTarget
    from agentflow.patterns import Pattern
    from agentflow.plans import Plan

ROLES = ("builder", "verifier")
BUILTIN = "builtin:"  # names of the prompts shipped with agentflow in the record

PROTECTED_PATTERN = "protected_path"
PROTECTED_FILES = (CONFIG_FILE, "CLAUDE.md", ".gitlab-ci.yml")
PROTECTED_FOLDERS = ("prompts/", ".github/workflows/")

Reader = Callable[[str], str | None]


def sha256(text: str) -> str:
    import hashlib  # here, as prompts below: `gate` reads only the config (start-up)

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrustedInputs:
    """The inputs of one run, as read when it started."""

    source: str  # "checkout", "base <commit>" or "recorded"
    texts: Mapping[str, str]  # input name (repository path, or builtin:...) -> text
    config: Config
    plan: Plan | None
    patterns: tuple[Pattern, ...]
    prompt_names: Mapping[str, str]  # role -> the name of its template in ``texts``
    # the change wrote the plan (new in it: ``verify`` read it from the head) or chose it (an
    # ``Agentflow-Plan`` trailer agentflow's build did not bind, ``trailer_plan``): its scope must not
    # soften a rule (``test_deleted``, ``assertion_removed``: high, else medium), nor may it choose
    # which patterns the verifier reads
    plan_from_change: bool = False

    def hashes(self) -> dict[str, str]:
        return {name: sha256(text) for name, text in sorted(self.texts.items())}

    def record(self) -> dict[str, Any]:
        """The ``run_started`` fields that let a resumed run use exactly these inputs."""
        return {
            "inputs_source": self.source,
            "inputs": self.hashes(),
            "inputs_text": dict(sorted(self.texts.items())),
        }

    def render(self, role: str, context: dict[str, Any]) -> tuple[str, str]:
        """The role's system prompt and first message, from the recorded template."""
        from agentflow import prompts

        name = self.prompt_names[role]
        return prompts.split_prompt(prompts.render_text(self.texts[name], name, **context), role)

    @property
    def prompts_sha(self) -> str:
        from agentflow import prompts

        return prompts.texts_sha([self.texts[self.prompt_names[role]].encode("utf-8") for role in ROLES])


def _builtin(name: str) -> str | None:
    from agentflow import prompts

    path = prompts.builtin_dir("prompts") / name.removeprefix(BUILTIN).removeprefix("prompts/")
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _collect(
    read: Reader, source: str, plan_path: str | None, root: Path, read_plan: Reader | None = None
) -> TrustedInputs:
    from agentflow.patterns import parse_patterns
    from agentflow.plans import parse_plan

    texts: dict[str, str] = {}

    def take(name: str, reader: Reader = read) -> str | None:
        text = reader(name)
        if text is not None:
            texts[name] = text
        return text

    yaml_text = take(CONFIG_FILE)
    pyproject_text = take(PYPROJECT) if yaml_text is None and pyproject_section(read(PYPROJECT)) is not None else None
    from agentflow.config import config_from_texts

    config = config_from_texts(yaml_text, pyproject_text)
    patterns_file = config.patterns.file
    patterns_text = take(patterns_file)
    patterns = tuple(parse_patterns(patterns_text, source=Path(patterns_file).name)) if patterns_text else ()
    names = {}
    for role in ROLES:
        override = f"prompts/{role}.md"
        builtin = f"{BUILTIN}prompts/{role}.md"
        if take(override) is not None:
            names[role] = override
        elif take(builtin) is not None:
            names[role] = builtin
        else:
            raise UsageError(f"no prompt template for role {role!r}", fix="reinstall agentflow")
    plan = None
    if plan_path is not None:
        text = take(plan_path, read_plan or read)
        if text is None:
            raise UsageError(
                "no such plan file", where=plan_path, fix="check the path, or list plans with `agentflow status`"
            )
        plan = parse_plan(text, root / plan_path)
    return TrustedInputs(source, texts, config, plan, patterns, names)


def _rel(root: Path, path: Path) -> str:
    """A plan's name among the inputs: its path in the repository (absolute when outside it)."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path.resolve())


def from_checkout(root: Path, plan_path: Path | None = None) -> TrustedInputs:
    """The inputs in the user's checkout at ``root`` (``build``)."""

    def read(name: str) -> str | None:
        if name.startswith(BUILTIN):
            return _builtin(name)
        if name in (CONFIG_FILE, PYPROJECT):
            return read_config_file(root, name)
        path = root / name
        if not path.is_file():
            return None
        return read_text_file(path, where=name)

    return _collect(read, "checkout", _rel(root, plan_path) if plan_path else None, root)


def show(repo: Repo, commit: str, name: str) -> str | None:
    """``git show commit:name`` as text; None when the revision has no such file."""
    out = run_git(["cat-file", "blob", f"{commit}:{name}"], repo.root, text=False)
    if out.returncode != 0:
        return None
    try:
        return out.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("not UTF-8 text", where=f"{commit[:12]}:{name}", fix="save it as UTF-8") from None


def from_revision(repo: Repo, commit: str, plan_path: str | None = None, head: str | None = None) -> TrustedInputs:
    """The inputs as the revision ``commit`` (the base of a verification) has them. A plan the base
    lacks (new in the change) is read from ``head``."""

    def read(name: str) -> str | None:
        return _builtin(name) if name.startswith(BUILTIN) else show(repo, commit, name)

    from_head: list[str] = []

    def read_plan(name: str) -> str | None:
        text = show(repo, commit, name)
        if text is not None or head is None:
            return text
        from_head.append(name)
        return show(repo, head, name)

    inputs = _collect(read, f"base {commit}", plan_path, repo.root, read_plan)
    return replace(inputs, plan_from_change=True) if from_head else inputs


def trailer_plan(repo: Repo, inputs: TrustedInputs, head: str) -> TrustedInputs:
    """``inputs`` for a plan that only an ``Agentflow-Plan`` trailer of the change named (``verify``
    without ``--plan``): the trailer is the change's text, so a pull request could name any plan of
    the base, a past test clean-up whose scope names the tests, and have its test deletions judged as
    that plan's (medium findings, not blocking; tests/test_attacks_trailer_plan.py). The plan's scope
    is trusted only when agentflow's own build made ``head`` for that plan (``built_for``); otherwise
    the plan counts as the change's (``plan_from_change``): its criteria and checks still apply."""
    if inputs.plan is None or inputs.plan_from_change:
        return inputs
    from agentflow.keys import signing_key

    if built_for(repo, head, str(inputs.plan.id), signing_key(), inputs.config.gate.require_signature):
        return inputs
    return replace(inputs, plan_from_change=True)


def built_for(repo: Repo, commit: str, plan_id: str, key: str | None, require_signature: bool = False) -> bool:
    """Whether a verdict line ever recorded on ``commit`` says that agentflow's build made it for
    ``plan_id``: it names this commit (``commit``: a line copied from another commit does not count),
    its tree and the plan, has a builder session (a ``verify`` run's line has none: otherwise the
    first verification of a pull request would bind the plan its trailer named for the next one), and
    is validly signed when a key is configured (unsigned lines are anybody's who can push notes)."""
    from agentflow.notes import note_history, parse_line

    tree = repo.trees([commit]).get(commit)
    for line in note_history(repo.root, [commit]).get(commit, []):
        note = parse_line(line)
        if note is None or note.data.get("commit") != commit or note.tree != tree or note.plan != plan_id:
            continue
        if not isinstance(note.data.get("builder"), dict) or note.override:
            continue
        if (key and not note.signature_valid(key)) or (not key and require_signature):
            continue
        return True
    return False


def from_record(
    root: Path, hashes: Mapping[str, str], texts: Mapping[str, str], plan_path: str | None
) -> TrustedInputs:
    """The inputs a run recorded in its ``run_started`` (``--resume``); their hashes must match."""
    for name, digest in hashes.items():
        if name not in texts or sha256(texts[name]) != digest:
            raise UsageError(
                f"the run's recorded input {name} does not match its hash",
                where="run_started",
                fix="start a new run: this one cannot be resumed with the inputs it started with",
            )
    if set(texts) - set(hashes):
        raise UsageError("the run's recorded inputs have no hashes", where="run_started", fix="start a new run")
    return _collect(lambda name: texts.get(name), "recorded", plan_path, root)


def plan_path_of(root: Path, plan: Plan) -> str:
    return _rel(root, plan.path)


def gate_inputs(repo: Repo, ref: str, base: str | None = None) -> tuple[Config | ConfigView, GateTarget]:
    """The config ``agentflow gate`` judges ``ref`` by, and what it resolved to find it (handed to
    ``evaluate_gate``, which then asks git nothing twice). The config is the base's, at its tip (the
    base branch, or ``origin/<base>``, as the gate resolves it), which the change cannot edit, and
    never that of the merge base, which the change chooses (a branch forked before the base tightened
    its rules was judged by the older ones). The checkout's may only make it stricter (``gate.require_signature``).
    Without ``--base`` the base is ``default_base``'s (following the base's own config once); only
    when the checkout names the default base and the clone has no such commit is there no base
    revision to read, and the checkout's config judges."""
    from agentflow.configfile import config_view, kept_stricter
    from agentflow.gate import GateTarget

    local = config_view(read_config_file(repo.root, CONFIG_FILE), read_config_file(repo.root, PYPROJECT))
    if base is not None:
        target = GateTarget(repo, ref, base, (CONFIG_FILE, PYPROJECT))
        if target.base_commit is None:
            # judged with no base at all, the change would be bound to its own first parent and judged by
            # the checkout's config (in CI the pull request's): fail closed on the base it was asked for
            raise UsageError(
                f"--base {base} names no commit here (a tag of that name is not taken for a branch)",
                where=str(repo.root),
                fix=f"fetch it (`git fetch origin {base.removeprefix('origin/')}`) or pass the branch the change "
                "merges into",
            )
        return kept_stricter(_tip_config(target), local), target
    targets: dict[str, GateTarget] = {}

    def own_base(name: str) -> str | None:
        if name not in targets:
            targets[name] = GateTarget(repo, ref, name, (CONFIG_FILE, PYPROJECT))
        found = targets[name]
        return _tip_config(found).base if found.base_commit is not None else None

    chosen = default_base(local.base, own_base, follow=True, option="--base")
    target = targets[chosen]
    if target.base_commit is None:
        if chosen != DEFAULT_BASE:
            # a base the checkout (a pull request's) names and the clone lacks: judged by the checkout's
            # own config, bound to its first parent (tests/test_attacks_default_base.py)
            raise UsageError(
                f"the checkout's config names base {chosen!r}, which names no commit here",
                where=CONFIG_FILE,
                fix=f"fetch it (`git fetch origin {chosen}`) or pass --base with the branch the change merges into",
            )
        return local, target  # a clone without the default base: no base revision to read
    return kept_stricter(_tip_config(target), local), target


DEFAULT_BASE = "main"  # the config's default ``base:`` (agentflow.config.Config.base)


def default_base(named: str, own_base: Callable[[str], str | None], *, follow: bool, option: str) -> str:
    """The base a command takes when none was passed (``gate`` without ``--base``, ``merge`` without
    ``--into``): the checkout's ``base:`` (``named``), which a checked-out branch writes (a pull
    request's ``base: release``, or ``base: side`` for a side branch its author pushed with a looser
    config), counts only if the base's own config agrees. ``own_base(name)`` is the base the config at
    ``name``'s tip names, None when ``name`` names no commit here. The one policy of both commands:

    * ``named`` names no commit: ``named`` (the caller refuses, or, for the default base, has none);
    * its own config names ``named`` too: ``named``;
    * it names another base and ``follow`` (the gate, which only reads): that base, once, when its own
      config names it too; one that names yet another base, or no commit, is exit 2 asking for
      ``option`` (following it to a missing base judged the change by the checkout's config, bound to
      nothing: tests/test_attacks_default_base.py);
    * it names another base without ``follow`` (merge, which moves the branch): exit 2 asking for
      ``option``: a merge lands only where the user and the base both said.
    """
    name = named.removeprefix("refs/heads/")
    own = own_base(name)
    if own is None or own.removeprefix("refs/heads/") == name:
        return name
    own = own.removeprefix("refs/heads/")
    if not follow:
        raise UsageError(
            f"the checkout's config names base {name!r}, but {name}'s own config names {own!r} "
            "(a checked-out branch may set base: to redirect its merge)",
            where=CONFIG_FILE,
            fix=f"pass {option} with the branch to merge into",
        )
    further = own_base(own)
    if further is None or further.removeprefix("refs/heads/") != own:
        what = f"whose own config names {further!r}" if further is not None else "which names no commit here"
        raise UsageError(
            f"the checkout's base {name!r} names base {own!r}, {what}",
            where=CONFIG_FILE,
            fix=f"pass {option} with the branch the change merges into",
        )
    return own


InvalidConfig = Literal["refuse", "defaults"]


def committed_config(blobs: Mapping[str, bytes | None], commit: str, *, invalid: InvalidConfig) -> Config | ConfigView:
    """The config committed at ``commit``, from the blobs of its ``agentflow.yaml`` and
    ``pyproject.toml`` there (None: absent; ``agentflow.yaml`` first, as everywhere). The one reader of
    a committed config, with each caller's policy for one that cannot be read, named by the caller:

    * ``refuse`` (``gate``, ``merge``: the base's tip, a trusted input): a file that is not UTF-8 or
      a config that does not validate is exit 2 naming ``<commit>:<file>``; judging by anything
      else than what the base says would be a guess;
    * ``defaults`` (the git hooks: the tip of the branch pushed to or merged into): such a config
      counts as agentflow's defaults (main and master protected), a byte that is not UTF-8 as U+FFFD;
      a hook must decide, and an unreadable config at a protected branch's tip must not unprotect it.
    """
    from agentflow.configfile import config_view

    strict = invalid == "refuse"
    try:
        yaml_text = _decoded(blobs.get(CONFIG_FILE), commit, CONFIG_FILE, strict)
        pyproject = _decoded(blobs.get(PYPROJECT), commit, PYPROJECT, strict) if yaml_text is None else None
        return config_view(yaml_text, pyproject)
    except (ConfigError, UsageError):
        if strict:
            raise
        return config_view(None, None)


def config_at(repo: Repo, commit: str, *, invalid: InvalidConfig) -> Config | ConfigView:
    """``committed_config`` of ``commit`` (a commit id or ref), its two files read in one
    ``git cat-file --batch``; a commit that does not exist has none (the defaults)."""
    from agentflow.git import cat_file_objects

    names = (CONFIG_FILE, PYPROJECT)
    found = cat_file_objects(repo.root, [f"{commit}:{name}" for name in names])
    blobs = {
        name: item[2] if item is not None and item[1] == "blob" else None
        for name, item in zip(names, found, strict=True)
    }
    return committed_config(blobs, commit, invalid=invalid)


def _tip_config(target: GateTarget) -> Config | ConfigView:
    """The config at the tip of ``target``'s base, from the blobs it read (exit 2 when unreadable)."""
    assert target.base_commit is not None
    return committed_config(target.blobs, target.base_commit, invalid="refuse")


def _decoded(blob: bytes | None, commit: str, name: str, strict: bool = True) -> str | None:
    """A file read from a revision as text (``show``'s error when it is not UTF-8 and ``strict``)."""
    if blob is None:
        return None
    if not strict:
        return blob.decode("utf-8", "replace")
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("not UTF-8 text", where=f"{commit[:12]}:{name}", fix="save it as UTF-8") from None


# -- protected paths ------------------------------------------------------------------------------------


GITLINK_PATTERN = "gitlink"
GITLINK_MODE = "160000"


def changed_entries(repo: Repo, base: str, head: str) -> list[tuple[str, str]]:
    """``(new mode, path)`` of every file ``base..head`` changes, from ``git diff --raw -z``: paths as
    git stores them (never quoted, so a non-ASCII patterns file is recognised), modes to tell a
    submodule (``160000``) from a file. A deleted file's new mode is ``000000``."""
    out = run_git(["diff", "--no-renames", "--raw", "-z", f"{base}..{head}"], repo.root, text=False)
    if out.returncode != 0:
        detail = out.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UsageError(
            f"`git diff {base[:12]}..{head[:12]}` failed: {detail[-1] if detail else out.returncode}",
            where=str(repo.root),
            fix="check that both revisions exist (fetch the base)",
        )
    fields = out.stdout.split(b"\0")
    entries = []
    for header, path in zip(fields[0::2], fields[1::2], strict=False):
        parts = header.split()
        if header.startswith(b":") and len(parts) >= 2:
            entries.append((parts[1].decode(), path.decode("utf-8", "surrogateescape")))
    return entries


def protected_findings(repo: Repo, base: str, head: str, config: Config | None = None) -> list[dict[str, Any]]:
    """One high finding per trusted-input file that ``base..head`` changes (``protected_path``), and one
    per submodule it adds or moves (``gitlink``: the content it names is not in the change)."""
    changed = changed_entries(repo, base, head)
    if not changed:
        return []
    from agentflow.plans import PLANS_DIR

    patterns_file = config.patterns.file if config is not None else "CLAUDE.md"
    listed = run_git(["ls-tree", "-r", "-z", "--name-only", base, "--", PLANS_DIR + "/"], repo.root, text=False)
    base_plans = {name.decode("utf-8", "surrogateescape") for name in listed.stdout.split(b"\0") if name}
    findings = []
    for mode, path in changed:
        if mode == GITLINK_MODE:
            findings.append(_gitlink_finding(repo, head, path))
            continue
        shown = displayable(path)
        if path in PROTECTED_FILES or path == patterns_file or path.startswith(PROTECTED_FOLDERS):
            what = "a trusted input"
        elif path == PYPROJECT and _section_changed(repo, base, head):
            what = "a trusted input (its [tool.agentflow] table)"
        elif path in base_plans and path.endswith(".md"):
            what = "a plan the base already has"
        else:
            continue
        findings.append(
            {
                "id": f"{PROTECTED_PATTERN}:{shown}",
                "severity": "high",
                "file": shown,
                "line": None,
                "pattern": PROTECTED_PATTERN,
                "message": f"{shown} is {what}: a change under verification may not change what judges it",
                "suggestion": "revert it here and change it on the base branch; a human who agrees approves with "
                "`agentflow approve --override`",
            }
        )
    return findings


def displayable(path: str) -> str:
    """A path read from git with ``surrogateescape`` (kept so for git's own arguments) as text a
    finding may carry: bytes that are not UTF-8 as U+FFFD. A pull request's file name of such bytes
    ended ``verify`` with an internal error when its finding was written (tests/test_attacks_file_names.py)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _gitlink_finding(repo: Repo, head: str, path: str) -> dict[str, Any]:
    target = repo.git("rev-parse", "--verify", "--quiet", f"{head}:{path}", check=False)
    shown = displayable(path)
    return {
        "id": f"{GITLINK_PATTERN}:{shown}",
        "severity": "high",
        "file": shown,
        "line": None,
        "pattern": GITLINK_PATTERN,
        "message": f"{shown} is a submodule pointing at commit {target[:12] or '?'}: its code is not in the change, "
        "so neither the verifier nor the checks saw what a clone with submodules fetches",
        "suggestion": "vendor the code into the change, or add the submodule on the base branch; a human who "
        "reviewed that commit approves with `agentflow approve --override`",
    }


def _section_changed(repo: Repo, base: str, head: str) -> bool:
    try:
        return pyproject_section(show(repo, base, PYPROJECT)) != pyproject_section(show(repo, head, PYPROJECT))
    except (ConfigError, UsageError):
        return True  # unreadable on one side: it changed
