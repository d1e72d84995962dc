"""The merge gate: is this exact content approved? (DESIGN.md "Git").

The gate recomputes everything from git and never trusts a note because of where it sits:

* A verdict note is bound to a *tree*. An approval holds for a commit only if the note's ``tree``
  equals that commit's tree, so a note copied by a rebase or amend (``notes.rewriteRef``) onto
  different content is stale, while a message-only amend (same tree) keeps its approval.
* An approval binds the change, not only the final tree: it holds for a commit only if the commit's
  base (its merge base with ``--base``; its first parent when it is already part of the base) has
  the approved base tree (the note's ``base_tree``; for older notes the tree of its ``base``
  commit; neither: no approval), and its first parent has the approved commit's parent tree (the
  note's ``parent_tree``) or the base tree. The approved tree re-parented onto anything else is stale.
* On one commit, the latest verdict decides (by ``ts``, then line order): a later rejection revokes
  an earlier approval. Every line ever recorded for the commit in the history of the notes ref
  counts (``notes.note_history``): deleting a rejection from the notes does not bring an approval back.
* A merge-queue commit (a chain of clean merges of approved heads onto ``--base``) passes when every
  merged-in head passes and every merge's tree is ``git merge-tree --write-tree`` of its parents.
* When a signing key is configured (``AGENTFLOW_SIGNING_KEY``, or ``gate.require_signature``),
  only verdicts with a valid HMAC-SHA256 signature count; unsigned or mis-signed ones never open it.
* When the gate is closed it explains why: stale (naming the approved commit and what changed since),
  a clean rebase of an approved change (same ``git patch-id --verbatim``: needs re-verification on
  the new base), a verdict that is not an approval (with its blocking findings), a revoked approval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from agentflow.errors import UsageError
from agentflow.git import EMPTY_TREE, STATE_DIR, TRAILER_PLAN, Repo, cat_file_objects, is_full_id
from agentflow.keys import SIGNING_KEY_ENV, signing_key
from agentflow.notes import NoteLine, note_history, parse_lines, tree_history
from agentflow.text import one_line

if TYPE_CHECKING:
    from agentflow.config import Config

SHORT = 12
MAX_QUEUE_MERGES = 100


class GateStatus(StrEnum):
    APPROVED = "approved"
    NO_VERDICT = "no_verdict"
    STALE = "stale"
    NOT_APPROVED = "not_approved"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    REVOKED = "revoked"
    NEEDS_REVERIFICATION = "needs_reverification"


@dataclass(frozen=True)
class NoteRecord:
    """One parsed verdict line: the note, the commit it is attached to, and its line number."""

    note: NoteLine
    commit: str
    index: int

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.note.timestamp, self.index)


@dataclass(frozen=True)
class GateResult:
    """The gate's answer for one commit. ``open`` is the only thing that may let a merge through."""

    ref: str
    commit: str
    tree: str
    status: GateStatus
    reasons: list[str] = field(default_factory=list)
    note: NoteLine | None = None  # the verdict that decided (or the approval that went stale)
    note_commit: str | None = None  # the commit that note is attached to
    signed: bool = False  # the deciding note carries a valid signature under the configured key

    @property
    def open(self) -> bool:
        return self.status is GateStatus.APPROVED

    @property
    def override(self) -> bool:
        return bool(self.note and self.note.override and self.open)

    @property
    def exit_code(self) -> int:
        return 0 if self.open else 1

    def headline(self) -> str:
        short = self.commit[:SHORT]
        if self.open:
            kind = "human override" if self.override else "approved"
            return f"gate open: {self.ref} ({short}) is {kind}"
        return f"gate closed: {self.ref} ({short}): {self.status.value.replace('_', ' ')}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "commit": self.commit,
            "tree": self.tree,
            "open": self.open,
            "status": self.status.value,
            "override": self.override,
            "signed": self.signed,
            "reasons": list(self.reasons),
            "note_commit": self.note_commit,
            "note": dict(self.note.data) if self.note else None,
        }


# -- reading notes -------------------------------------------------------------------------------


def parse_note_lines(commit: str, lines: Iterable[str]) -> tuple[list[NoteRecord], int]:
    """Verdict records in ``lines`` and the number of lines that are not verdicts (ignored).

    A line that names another commit (``commit``, signed with the rest) is that commit's verdict, not
    this one's: anyone who can push notes can copy a signed line onto a commit of their making with
    the same tree and parent, and that copy opened the gate after the verdict was revoked on the
    commit it was written for. It is ignored here; the same-tree search finds the original's note
    and judges it by its own history."""
    notes, bad = parse_lines(lines)
    own = [note for note in notes if note_commit_matches(note, commit)]
    return [NoteRecord(note, commit, index) for index, note in enumerate(own)], bad + len(notes) - len(own)


def note_commit_matches(note: NoteLine, commit: str) -> bool:
    """True when ``note`` may be ``commit``'s: it names that commit, or (a line from before the
    field) none."""
    named = note.data.get("commit")
    return named is None or named == commit


def latest(records: list[NoteRecord]) -> NoteRecord | None:
    """The verdict that decides for one commit: newest ``ts``, ties broken by line order."""
    return max(records, key=lambda r: r.order) if records else None


def is_approval(note: NoteLine) -> bool:
    """An approval: outcome approved, and an override only with a stated reason."""
    if note.outcome != "approved":
        return False
    return not note.override or bool((note.reason or "").strip())


@dataclass(frozen=True)
class SignaturePolicy:
    """Which signatures count: ``required`` when a key or ``gate.require_signature`` is configured."""

    key: str | None
    required: bool

    @classmethod
    def from_config(cls, config: Config | None, key: str | None = None) -> SignaturePolicy:
        key = key if key is not None else signing_key()
        return cls(key=key, required=bool(key) or bool(config and config.gate.require_signature))

    def check(self, note: NoteLine) -> GateStatus | None:
        """None when the note's signature is acceptable, else UNSIGNED or BAD_SIGNATURE."""
        if not self.required:
            return None
        if not note.sig:
            return GateStatus.UNSIGNED
        if not self.key or not note.signature_valid(self.key):
            return GateStatus.BAD_SIGNATURE
        return None

    def signed(self, note: NoteLine) -> bool:
        return bool(self.key and note.signature_valid(self.key))

    def counted(self, records: list[NoteRecord]) -> list[NoteRecord]:
        """The records that may decide: when signatures are required and some are acceptably signed,
        those alone. An unsigned or mis-signed line is anybody's (whoever can push notes): counted, one
        dated 9999 was "the latest verdict" of an approved commit, closing its gate for good. With no
        signed record at all, all of them (the gate then says the latest is unsigned)."""
        if not self.required:
            return records
        signed = [r for r in records if self.check(r.note) is None]
        return signed or records


class NoteIndex:
    """The repository's verdict notes, read lazily and with as few ``git`` processes as possible.

    ``history(commit)``: every line ever recorded for a commit (one ``git log`` for all asked);
    ``by_commit``: the current notes of every commit (for the same-tree and stale searches).
    """

    def __init__(self, repo: Repo):
        self.repo = repo
        self._history: dict[str, list[NoteRecord]] = {}
        self.ignored_lines: dict[str, int] = {}

    def history(self, *commits: str) -> None:
        """Read the full note history of ``commits`` (those not read yet), in one git process."""
        todo = [c for c in commits if c not in self._history]
        if not todo:
            return
        lines = note_history(self.repo.root, todo)
        for commit in todo:
            records, bad = parse_note_lines(commit, lines.get(commit, []))
            self._history[commit] = records
            if bad:
                self.ignored_lines[commit] = bad

    def records(self, commit: str) -> list[NoteRecord]:
        self.history(commit)
        return self._history[commit]

    @cached_property
    def by_commit(self) -> dict[str, list[NoteRecord]]:
        result = {}
        for commit, lines in self.repo.notes_map().items():
            records, _ = parse_note_lines(commit, lines)
            if records:
                result[commit] = records
        return result

    @cached_property
    def _trees(self) -> dict[str, str]:
        return self.repo.trees(list(self.by_commit))

    def tree_of(self, commit: str) -> str | None:
        return self._trees.get(commit)

    def deciding(self, policy: SignaturePolicy, exclude: str | None = None) -> list[NoteRecord]:
        """For each other noted commit, its deciding verdict, if it is genuine and acceptably signed.

        Genuine: the note's tree is the tree of the commit it is attached to (not a copied note).
        Current notes only: used for candidates, which are re-read with their full history before
        anything opens (``_Context._same_tree_verdict``), and for diagnostics of a closed gate.
        """
        result = []
        for commit, records in self.by_commit.items():
            if commit == exclude:
                continue
            record = latest(policy.counted(records))
            if record is None or policy.check(record.note) is not None:
                continue
            if record.note.tree != self.tree_of(commit):
                continue
            result.append(record)
        return result


# -- the gate ------------------------------------------------------------------------------------


def evaluate_gate(
    repo: Repo,
    ref: str = "HEAD",
    *,
    base: str | None = None,
    config: Config | None = None,
    key: str | None = None,
    queue: bool = True,
    target: GateTarget | None = None,
) -> GateResult:
    """Evaluate the gate for ``ref``. Raises GitError (exit 2) when ``ref`` names no commit.

    ``base`` (default: the configured base branch) is the target the change is bound to (its merge
    base with ``ref`` must have the approved base tree), is used to recognise a clean rebase of an
    approved change and to scope the search for the approval that went stale. ``queue``: a commit
    that is a chain of merges onto ``base`` is judged as a merge-queue commit. ``target``: what
    ``GateTarget`` resolved for this ``ref`` (used only when its base is the one judged by).
    """
    base = base or (config.base if config else "main")
    if target is None or target.ref != ref or target.asked != base:
        target = None
        commit, tree, parents = repo.commit_info(ref)
        base, base_sha = _resolve_base(repo, base)
    else:
        commit, tree, parents = target.commit, target.tree, target.parents
        base, base_sha = target.base, target.base_commit
    policy = SignaturePolicy.from_config(config, key)
    ctx = _Context(repo, ref, commit, tree, parents, policy, base, NoteIndex(repo), base_sha)
    if target is not None:  # already read: the merge base and the trees below REF
        ctx.__dict__["forks"] = target.forks
        ctx.__dict__["_base_trees"] = target.trees
    ctx.require_sandbox = bool(config and config.gate.require_sandbox)
    ctx.checks = required_checks(config)
    if policy.required and not policy.key:
        return ctx.result(
            GateStatus.UNSIGNED,
            [
                f"gate.require_signature is true but {SIGNING_KEY_ENV} is not set, so no verdict can be "
                f"checked (set {SIGNING_KEY_ENV} or AGENTFLOW_SIGNING_KEY_FILE to the team's signing key, e.g. "
                "from a CI secret)"
            ],
        )
    result = ctx.evaluate()
    if result.open and result.override and config is not None and config.gate.override_not_by_author:
        result = _override_by_author(repo, ctx, result)
    if not result.open and queue and len(parents) == 2 and ctx.base_commit and ctx.base_commit != commit:
        chain = evaluate_merge_chain(repo, ref, commit, tree, ctx.base_commit, config=config, key=key)
        if chain is not None:
            return chain
    return result


def required_checks(config: Config | None) -> tuple[tuple[str, bool], ...]:
    """``(command, junit)`` of each check the config names, its command as a verdict note records it
    (stripped, redacted: ``agentflow.verdict.note_checks``)."""
    if config is None or not config.checks:
        return ()
    from agentflow.redact import redact

    found = []
    for check in config.checks:
        run, junit = (check, False) if isinstance(check, str) else (check.run, bool(check.junit))
        if run.strip():
            found.append((redact(run.strip()), junit))
    return tuple(dict.fromkeys(found))


def _override_by_author(repo: Repo, ctx: _Context, result: GateResult) -> GateResult:
    """``gate.override_not_by_author``: an override written by an author of the commits it approves, or
    one that names nobody, does not open the gate (``approve --override`` refuses to write either)."""
    from dataclasses import replace

    from agentflow.override import authored_by

    note = result.note
    by = (note.by or "").strip() if note is not None else ""
    if not by:
        reason = "gate.override_not_by_author is true and the override does not record who made it"
    elif (author := authored_by(repo, by, ctx.base_commit, result.commit)) is not None:
        reason = (
            f"gate.override_not_by_author is true and the override is by {by}, who authored {author[:SHORT]} "
            "of the commits it approves"
        )
    else:
        return result
    return replace(result, status=GateStatus.NOT_APPROVED, reasons=[reason])


def base_names(base: str) -> list[str]:
    """The names ``base`` is looked up by, in order: a full ref or object id as it is; else the branch
    ``refs/heads/<base>``, the remote-tracking ``refs/remotes/<base>`` (``origin/main``) and
    ``refs/remotes/origin/<base>`` (CI checkouts have no local main), and only then ``base`` as git
    resolves it (a tag, ``HEAD~1``). git itself looks in ``refs/tags/`` before the branches, so a tag
    named ``main`` or ``origin/main`` (a pull request's author can push one; CI fetches every tag)
    would otherwise decide which commit is the base, and with it the config and what is verified."""
    if base.startswith("refs/") or is_full_id(base):
        return [base]
    return [f"refs/heads/{base}", f"refs/remotes/{base}", f"refs/remotes/origin/{base}", base]


def resolve_base(repo: Repo, base: str) -> str:
    """The name to ask git for ``base`` by (``base_names``): a branch of that name before a tag.
    ``UsageError`` when only a tag has that name (never taken for a base spelled as a branch)."""
    name, _, tag_only = _lookup(repo, base)
    if tag_only:
        raise UsageError(
            f"base {base!r} names no branch here, only a tag (refs/tags/{base}), which is not taken as a base",
            where=str(repo.root),
            fix=f"fetch the branch (`git fetch origin {base.removeprefix('origin/')}`), or pass --base refs/tags/{base} "
            "if the tag is meant",
        )
    return name


def _resolve_base(repo: Repo, base: str) -> tuple[str, str | None]:
    """``resolve_base`` and the commit it names (None when none does, or only a tag of that name)."""
    name, commit, _ = _lookup(repo, base)
    return name, commit


def _lookup(repo: Repo, base: str) -> tuple[str, str | None, bool]:
    """(name, commit, only a tag has the name): every name asked in one ``git cat-file --batch``,
    the commit they peel to as ``git rev-parse --verify`` would name it. A short name that no branch
    has but a tag has (``origin/main`` in a clone that lacks the branch: a pull request's author can
    push the tag) names nothing."""
    candidates = base_names(base)
    tag = [f"refs/tags/{base}"] if len(candidates) > 1 else []
    found = cat_file_objects(repo.root, [f"{c}^{{commit}}" for c in (*candidates, *tag)])
    tagged = bool(tag) and found[-1] is not None
    for candidate, item in zip(candidates, found, strict=False):
        if item is None or item[1] != "commit" or candidate.startswith("-"):
            continue
        if candidate == base and tagged:
            return base, None, True
        return candidate, item[0], False
    return base, None, False


class GateTarget:
    """What the gate resolved for REF and its base, once: the base's config is read from it
    (``inputs.gate_inputs``) and ``evaluate_gate`` judges with it instead of asking git again.

    ``fork``: the merge base of REF and the base (None without a base); ``blobs``: the base's config
    files at its tip, ``base_commit`` (path -> content, None when absent): a change chooses its merge
    base, and with it which of the base's past configs would judge it; ``trees``: the trees of REF's change base
    and first parent; all read in one ``git cat-file --batch``."""

    __slots__ = ("ref", "asked", "commit", "tree", "parents", "base", "base_commit", "fork", "forks", "blobs", "trees")

    def __init__(self, repo: Repo, ref: str, base: str, paths: tuple[str, ...] = ()):
        self.ref, self.asked = ref, base
        self.commit, self.tree, self.parents = repo.commit_info(ref)
        self.base, self.base_commit = _resolve_base(repo, base)
        self.forks = merge_bases(repo, self.commit, self.base_commit) if self.base_commit else []
        self.fork: str | None = self.forks[0] if self.forks else None
        change_base = _change_base(self.fork, self.commit, self.parents)
        commits = [c for c in (change_base, self.parents[0] if self.parents else None) if c]
        # the config at the base's tip: today's rules, not those of the merge base the change chose
        shown = [f"{self.base_commit}:{path}" for path in paths] if self.base_commit else []
        found = cat_file_objects(repo.root, [*shown, *(f"{c}^{{commit}}" for c in commits)])
        self.blobs: dict[str, bytes | None] = {
            path: item[2] if item is not None and item[1] == "blob" else None
            for path, item in zip(paths if self.base_commit else (), found, strict=False)
        }
        self.trees: dict[str, str] = {}
        for commit, item in zip(commits, found[len(shown) :], strict=True):
            tree = _commit_tree(item)
            if tree is not None:
                self.trees[commit] = tree


def _commit_tree(found: tuple[str, str, bytes] | None) -> str | None:
    """The tree a raw commit object names (its first line, ``tree <id>``)."""
    if found is None or found[1] != "commit" or not found[2].startswith(b"tree "):
        return None
    return found[2][5 : found[2].find(b"\n")].decode() or None


def merge_bases(repo: Repo, commit: str, base: str) -> list[str]:
    """Every best common ancestor of ``commit`` and ``base`` (``git merge-base --all``), the one
    ``git merge-base`` prints first. More than one (a criss-cross history) binds no approval: a merge
    starts from all of them, an approval from one (``_Context._bound``)."""
    return repo.git("merge-base", "--all", commit, base, check=False).split()


def _change_base(fork: str | None, commit: str, parents: list[str]) -> str | None:
    if fork and fork != commit:
        return fork
    return parents[0] if parents else None


@dataclass
class _Context:
    repo: Repo
    ref: str
    commit: str
    tree: str
    parents: list[str]
    policy: SignaturePolicy
    base: str
    index: NoteIndex
    base_commit: str | None = None  # the commit ``base`` names (resolved once, with it)
    require_sandbox: bool = False  # gate.require_sandbox: verdicts of unsandboxed runs never open it
    checks: tuple[tuple[str, bool], ...] = ()  # the base's checks today, (command, junit): an approval passed each

    def result(self, status: GateStatus, reasons: list[str], record: NoteRecord | None = None) -> GateResult:
        note = record.note if record else None
        return GateResult(
            ref=self.ref,
            commit=self.commit,
            tree=self.tree,
            status=status,
            reasons=reasons,
            note=note,
            note_commit=record.commit if record else None,
            signed=bool(note and self.policy.signed(note)),
        )

    def evaluate(self) -> GateResult:
        own = self.index.records(self.commit)
        copied: NoteRecord | None = None
        if own:
            decided = self._own_verdict(own)
            if isinstance(decided, GateResult):
                return decided
            copied = decided
        same_tree = self._same_tree_verdict()
        if same_tree is not None:
            return same_tree
        return self._diagnose_closed(copied)

    def _own_verdict(self, own: list[NoteRecord]) -> GateResult | NoteRecord:
        """The verdict of REF's own notes, or the deciding record when it was written for other content."""
        own = self.policy.counted(own)
        record = latest(own)
        assert record is not None
        note = record.note
        if note.tree != self.tree:
            return record  # copied by a rebase/amend from other content: recompute, never trust
        problem = self.policy.check(note)
        if problem is not None:
            return self.result(problem, [self._signature_reason(problem, record)], record)
        if is_approval(note):
            return (
                self._unsandboxed(record)
                or self._bound(record)
                or self._unchecked(record)
                or self._legacy_revoked(record)
                or self.result(GateStatus.APPROVED, self._approval_reasons(record), record)
            )
        return self._not_approved(record, own)

    def _unsandboxed(self, record: NoteRecord) -> GateResult | None:
        """With ``gate.require_sandbox``: an approval whose run did not record ``"sandbox": "bwrap"``
        (mode off, or a note from before the field) does not open the gate; a human override does."""
        sandbox = record.note.sandbox
        if not self.require_sandbox or record.note.override or sandbox == "bwrap":
            return None
        what = f"sandbox {sandbox!r}" if sandbox else "no sandbox recorded"
        return self.result(
            GateStatus.NOT_APPROVED,
            [
                f"gate.require_sandbox is true but the approval on {record.commit[:SHORT]} comes from a run with "
                f"{what} (re-run `agentflow verify` with the sandbox on)"
            ],
            record,
        )

    def _unchecked(self, record: NoteRecord) -> GateResult | None:
        """An approval whose run did not pass every check the base's config names today (its command,
        as a JUnit check when the config says so) does not open the gate: it was verified under the
        base's older checks (a check added to main after the change was verified; an approval of the
        same change in another repository, a fork, whose main checks less), and the gate reads today's
        rules as verify does (tests/test_attacks_gate_checks.py). A human override does."""
        if not self.checks or record.note.override:
            return None
        passed = {
            (check.get("command"), check.get("junit") is True)
            for check in record.note.checks
            if isinstance(check, dict) and check.get("passed") is True
        }
        missing = [
            command
            for command, junit in self.checks
            if (command, True) not in passed and (junit or (command, False) not in passed)
        ]
        if not missing:
            return None
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        return self.result(
            GateStatus.NEEDS_REVERIFICATION,
            [
                f"the approval on {record.commit[:SHORT]} did not pass the check {missing[0]!r}{more} that the "
                f"config of {self.base} names now (re-run `agentflow verify`)"
            ],
            record,
        )

    # -- binding: the approval holds on the base it was given on ---------------------------------

    @cached_property
    def change_base(self) -> str | None:
        """Where this commit's change starts: its merge base with the target, or, when the commit is
        already part of the target (or there is no target), its first parent. None for a root commit."""
        return _change_base(self.fork, self.commit, self.parents)

    @cached_property
    def _base_trees(self) -> dict[str, str]:
        """Trees of the change base and the first parent, in one git process."""
        wanted = [c for c in (self.change_base, self.parents[0] if self.parents else None) if c]
        return self.repo.trees(wanted) if wanted else {}

    @property
    def change_base_tree(self) -> str | None:
        return self._base_trees.get(self.change_base) if self.change_base else EMPTY_TREE

    @property
    def parent_tree(self) -> str | None:
        return self._base_trees.get(self.parents[0]) if self.parents else EMPTY_TREE

    def approved_base_tree(self, note: NoteLine) -> str | None:
        """The base tree the approval was given on: ``base_tree``, else the tree of its ``base`` commit."""
        if note.base_tree:
            return note.base_tree
        if note.base:
            return self.repo.trees([note.base]).get(note.base)
        return None

    def approved_parent_tree(self, record: NoteRecord) -> str | None:
        """The tree of the approved commit's first parent: the note's ``parent_tree``, else read from
        the approved commit when that is another commit (None: unknown, for an older note on REF)."""
        value = record.note.parent_tree
        if isinstance(value, str) and value:
            return value
        if record.commit == self.commit:
            return None
        parents = self.repo.commit_info(record.commit)[2]
        return self.repo.trees(parents[:1]).get(parents[0]) if parents else EMPTY_TREE

    def _bound(self, record: NoteRecord) -> GateResult | None:
        """None when the approval binds this change; else the stale result.

        Bound: this commit's change base (merge base with the target) has the approved base tree, and
        its first parent has the tree the approved commit's parent had (a message-only amend) or the
        approved base tree (the approved change squashed onto its base). The approved tree on any
        other parent is another change: it may undo what happened below it.
        """
        chain = self._chain_problem(record)
        if chain is not None:
            return chain
        if len(self.forks) > 1:
            return self.result(
                GateStatus.STALE,
                [
                    f"{self.commit[:SHORT]} has {len(self.forks)} merge bases with {self.base} "
                    f"({', '.join(f[:SHORT] for f in self.forks)}: a criss-cross history): a merge starts from all "
                    "of them, the approval was given on one, so what the merge changes was never verified",
                    f"rebase the change onto {self.base} and run `agentflow verify` on it",
                ],
                record,
            )
        approved = self.approved_base_tree(record.note)
        actual = self.change_base_tree
        approved_parent = self.approved_parent_tree(record)
        parent_ok = approved_parent is None or self.parent_tree in (approved_parent, approved)
        if approved is not None and approved == actual and parent_ok:
            return None
        on = f"base {(record.note.base or '?')[:SHORT]}" + (f" (tree {approved[:SHORT]})" if approved else "")
        if approved is not None and approved == actual:  # the base matches; the parent does not
            sits = f"{self.parents[0][:SHORT]} (tree {(self.parent_tree or '?')[:SHORT]})"
        else:
            sits = (self.change_base or "no parent")[:SHORT] + (f" (tree {actual[:SHORT]})" if actual else "")
        if approved is None:
            why = (
                "the approval records no base tree and its base commit is not available here, so it cannot be "
                "bound to this change (fetch the base, or re-run `agentflow verify`)"
            )
        else:
            why = (
                "the same tree on another base is a different change (it may undo what the base did since): "
                "run `agentflow verify` on this commit"
            )
        return self.result(
            GateStatus.STALE,
            [f"stale: approved on {on}, this commit sits on {sits}", why],
            record,
        )

    def _legacy_revoked(self, record: NoteRecord) -> GateResult | None:
        """An approval written before verdict lines named their commit (no ``commit``) cannot show
        that it sits where it was written: copied from its commit onto a sibling with the same tree
        and parent, it opened the gate there after a later verdict revoked it on the original
        (tests/test_attacks_legacy_replay.py). Such an approval holds only while no later verdict
        about the same change (this tree on the same base tree), on any commit, ever recorded in the
        notes history, says otherwise; a line that names its commit needs none of this."""
        note = record.note
        if note.data.get("commit") is not None:
            return None
        base_tree = self.approved_base_tree(note)
        later = []
        for commit, other in tree_history(self.repo.root, self.tree):
            if commit == record.commit or other.timestamp < note.timestamp or self.policy.check(other) is not None:
                continue  # its own commit's later verdicts have decided already (by time, then line order)
            if (other_base := self.approved_base_tree(other)) is not None and other_base != base_tree:
                continue  # the same tree on another base: another change
            if not is_approval(other):
                later.append(NoteRecord(other, commit, 0))
        if not later:
            return None
        revoking = latest(later)
        assert revoking is not None
        return self.result(
            GateStatus.REVOKED,
            [
                f"the approval on {record.commit[:SHORT]} ({note.ts}) names no commit (written before verdicts did), "
                f"and the same change on {revoking.commit[:SHORT]} was judged {revoking.note.outcome} later "
                f"({revoking.note.ts})",
                "run `agentflow verify` on this commit",
            ],
            record,
        )

    def _chain_problem(self, record: NoteRecord) -> GateResult | None:
        """Closed when the local ledger holds the approval's run and its hash chain is broken (#13 item 2)."""
        run, head = record.note.run, record.note.chain
        if not isinstance(run, str) or record.note.override:
            return None
        if not (self.repo.root / STATE_DIR / "ledger.db").exists():
            return None  # no ledger here (a CI clone): ``ledger_chain_problem`` says the same, unimported
        from agentflow.chain import ledger_chain_problem

        problem = ledger_chain_problem(self.repo.root, run, head if isinstance(head, str) else None, self.policy.key)
        return self.result(GateStatus.NOT_APPROVED, [problem], record) if problem else None

    def _signature_reason(self, problem: GateStatus, record: NoteRecord) -> str:
        where = f"the latest verdict on {record.commit[:SHORT]} ({record.note.outcome}, {record.note.ts})"
        if problem is GateStatus.UNSIGNED:
            return (
                f"{where} is unsigned but a signing key is configured; only signed verdicts count "
                f"(re-run `agentflow verify` with {SIGNING_KEY_ENV} set)"
            )
        return (
            f"{where} has a signature that does not match the configured key: forged, altered, or signed "
            "with another key (re-run `agentflow verify`)"
        )

    def _approval_reasons(self, record: NoteRecord) -> list[str]:
        note = record.note
        what = "approved by the verifier"
        if note.override:
            what = f"human override by {note.by or 'unknown'}: {note.reason}"
        context = [note.ts] + ([f"plan {note.plan}"] if note.plan else []) + ([f"run {note.run}"] if note.run else [])
        details = [f"{what} ({', '.join(context)})"]
        if record.commit != self.commit:
            details.append(
                f"approval recorded on {record.commit[:SHORT]}, which has the identical tree {self.tree[:SHORT]} "
                "(message-only change)"
            )
        details.append("signature valid" if self.policy.signed(note) else "unsigned (no signing key configured)")
        return details

    def _not_approved(self, record: NoteRecord, own: list[NoteRecord]) -> GateResult:
        note = record.note
        earlier = [r for r in own if r is not record and r.order < record.order and is_approval(r.note)]
        reasons = []
        if note.outcome == "approved" and note.override:
            reasons.append("an override without a reason does not count (use `agentflow approve --override --reason`)")
        else:
            decision = f" (decision: {note.decision})" if note.decision else ""
            reasons.append(f"latest verdict ({note.ts}) is {note.outcome}{decision}")
            if note.reason:
                reasons.append(f"why: {one_line(note.reason)}")
        reasons += [_finding_line(f) for f in note.findings if f.get("severity") in ("critical", "high")][:10]
        if earlier:
            reasons.insert(0, f"approval of {earlier[-1].note.ts} was revoked by a later {note.outcome} verdict")
            return self.result(GateStatus.REVOKED, reasons, record)
        return self.result(GateStatus.NOT_APPROVED, reasons, record)

    def _same_tree_verdict(self) -> GateResult | None:
        """A genuine verdict on another commit with exactly this tree (e.g. before a message-only amend).

        Candidates come from the current notes; each is then judged from its full note history
        (a deleted rejection still counts) and its approval must be bound to this commit's base.
        """
        quick = [r for r in self.index.deciding(self.policy, exclude=self.commit) if r.note.tree == self.tree]
        if not quick:
            return None
        self.index.history(*(r.commit for r in quick))
        candidates = []
        for commit in {r.commit for r in quick}:
            record = latest(self.policy.counted(self.index.records(commit)))
            if record is not None and record.note.tree == self.tree and self.policy.check(record.note) is None:
                candidates.append(record)
        record = latest(candidates)
        if record is None:
            return None
        if is_approval(record.note):
            return (
                self._unsandboxed(record)
                or self._bound(record)
                or self._unchecked(record)
                or self._legacy_revoked(record)
                or self.result(GateStatus.APPROVED, self._approval_reasons(record), record)
            )
        return self.result(
            GateStatus.NOT_APPROVED,
            [
                f"the same content (tree {self.tree[:SHORT]}) on {record.commit[:SHORT]} was last judged "
                f"{record.note.outcome} ({record.note.ts})"
            ],
            record,
        )

    def _diagnose_closed(self, copied: NoteRecord | None) -> GateResult:
        approvals = [r for r in self.index.deciding(self.policy, exclude=self.commit) if is_approval(r.note)]
        rebased = self._rebased_from(approvals)
        if rebased is not None:
            return rebased
        stale = self._stale_from(approvals, copied)
        if stale is not None:
            return stale
        reasons = [
            f"no verdict on {self.commit[:SHORT]} (run `agentflow verify`, or `agentflow notes fetch` if it was "
            "verified elsewhere)"
        ]
        if ignored := self.index.ignored_lines.get(self.commit):
            reasons.append(f"{ignored} note line(s) on it are not verdicts and were ignored")
        return self.result(GateStatus.NO_VERDICT, reasons)

    @cached_property
    def forks(self) -> list[str]:
        """REF's merge bases with the base (``merge_bases``; none when the base does not exist)."""
        return merge_bases(self.repo, self.commit, self.base_commit) if self.base_commit else []

    @property
    def fork(self) -> str | None:
        """Where REF's branch left the base (None when the base does not exist)."""
        return self.forks[0] if self.forks else None

    def _rebased_from(self, approvals: list[NoteRecord]) -> GateResult | None:
        """An approved change whose patch equals REF's patch against the base: a clean rebase."""
        fork = self.fork
        if fork is None or fork == self.commit or not approvals:
            return None
        patch = self.repo.patch_id(fork, self.commit)
        if patch is None:
            return None
        for record in sorted(approvals, key=lambda r: r.order, reverse=True):
            if record.note.patch_id and record.note.patch_id != patch:
                continue  # a cheap filter only: a match is recomputed below, never taken from the note
            their_base = self._base_of(record)
            if their_base and their_base != record.commit and self.repo.patch_id(their_base, record.commit) == patch:
                return self.result(
                    GateStatus.NEEDS_REVERIFICATION,
                    [
                        f"approved change, needs re-verification on the new base: {record.commit[:SHORT]} was approved "
                        f"({record.note.ts}) on base {their_base[:SHORT]}; this commit is the same patch on "
                        f"{self.base} at {fork[:SHORT]}",
                        "run `agentflow verify` on this commit",
                    ],
                    record,
                )
        return None

    def _base_of(self, record: NoteRecord) -> str | None:
        """The base the approved commit was verified on: the note's, if it is an ancestor, else the fork point."""
        base = record.note.base
        if base and self.repo.ok("merge-base", "--is-ancestor", base, record.commit):
            return base
        return self.repo.git("merge-base", record.commit, self.base, check=False) or None

    def _branch_commits(self, fork: str | None) -> set[str]:
        """Commits of REF's branch: reachable from REF but not from the base (bounded)."""
        args = ["rev-list", "--max-count=2000", self.commit] + ([f"^{fork}"] if fork else [])
        return set(self.repo.git(*args, check=False).split())

    def _stale_from(self, approvals: list[NoteRecord], copied: NoteRecord | None) -> GateResult | None:
        """The latest approval of an earlier version of this change, and what changed since."""
        fork = self.fork
        plan = self.repo.trailers(self.commit).get(TRAILER_PLAN) or (copied.note.plan if copied else None)
        on_branch = self._branch_commits(fork) if fork != self.commit else set()
        related = []
        for record in approvals:
            same_plan = plan is not None and record.note.plan is not None and str(record.note.plan) == str(plan)
            copied_from = copied is not None and record.note.tree == copied.note.tree
            if same_plan or copied_from or record.commit in on_branch:
                related.append(record)
        record = latest(related)
        if record is None:
            if copied is None:
                return None
            return self.result(
                GateStatus.STALE,
                [
                    f"the note on this commit was written for tree {copied.note.tree[:SHORT]} but the commit's tree is "
                    f"{self.tree[:SHORT]}: copied by a rebase or amend, so it does not cover this content",
                    "run `agentflow verify` on this commit",
                ],
                copied,
            )
        stat = self.repo.diffstat(record.commit, self.commit)
        files = self.repo.changed_files(record.commit, self.commit)
        shown = ", ".join(files[:8]) + (f" and {len(files) - 8} more" if len(files) > 8 else "")
        return self.result(
            GateStatus.STALE,
            [
                f"approval of {record.commit[:SHORT]} ({record.note.ts}) is stale: the code changed since it was "
                "approved",
                f"changed since approval: {stat}" + (f" ({shown})" if shown else ""),
                f"see `git diff {record.commit[:SHORT]} {self.commit[:SHORT]}`; run `agentflow verify` on this commit",
            ],
            record,
        )


def _finding_line(finding: dict[str, Any]) -> str:
    where = one_line(str(finding.get("file") or ""))
    if where and finding.get("line"):
        where = f"{where}:{one_line(str(finding['line']))}"
    prefix = f"{one_line(str(finding.get('severity', '?')))} finding {one_line(str(finding.get('id', '?')))}"
    message = f": {one_line(str(finding['message']))}" if finding.get("message") else ""  # older notes only
    return f"{prefix}{' at ' + where if where else ''}{message}"


# -- merge commits (pre-push rule) ---------------------------------------------------------------


def evaluate_merge_commit(repo: Repo, ref: str, *, config: Config | None = None, key: str | None = None) -> GateResult:
    """The gate for a commit pushed to a protected branch.

    A commit passes if the gate is open for it (bound to its first parent: the branch it is pushed
    onto), or if it is a two-parent merge whose merged-in (second) parent passes the gate and whose
    tree is exactly the clean merge of its parents (what ``agentflow merge`` creates): nothing was
    changed in the merge commit itself.
    """
    commit, tree, parents = repo.commit_info(ref)
    direct = evaluate_gate(repo, commit, base=parents[0] if parents else None, config=config, key=key, queue=False)
    if direct.open or len(parents) != 2:
        return direct if direct.ref == ref else _with_ref(direct, ref)
    return _merge_link(repo, ref, commit, tree, parents[0], parents[1], config=config, key=key)


def evaluate_merge_chain(
    repo: Repo,
    ref: str,
    commit: str,
    tree: str,
    base: str,
    *,
    config: Config | None = None,
    key: str | None = None,
) -> GateResult | None:
    """A merge-queue commit: a first-parent chain of two-parent merges from ``commit`` down to ``base``.

    Open only when every merge is clean (its tree is ``git merge-tree --write-tree`` of its parents)
    and every merged-in head passes the gate bound to the chain below it. None when ``commit`` is not
    such a chain (some link is not a merge, or ``base`` is not on its first-parent line).
    """
    links: list[tuple[str, str, str, str]] = []  # (merge, its tree, first parent, merged-in head)
    current = commit
    while current != base:
        if len(links) >= MAX_QUEUE_MERGES:
            return None
        _, current_tree, parents = repo.commit_info(current)
        if len(parents) != 2:
            return None
        links.append((current, current_tree, parents[0], parents[1]))
        current = parents[0]
    heads = []
    for merge, merge_tree, first, second in reversed(links):  # from the base up: the order the queue merged them
        link = _merge_link(repo, ref, merge, merge_tree, first, second, config=config, key=key)
        if not link.open:
            return GateResult(
                ref=ref,
                commit=commit,
                tree=tree,
                status=link.status,
                reasons=[
                    f"merge-queue commit: {len(links)} merge(s) onto {base[:SHORT]}; the one of {second[:SHORT]} "
                    f"({merge[:SHORT]}) does not pass",
                    *link.reasons,
                ],
                note=link.note,
                note_commit=link.note_commit,
                signed=link.signed,
            )
        heads.append(second[:SHORT])
    return GateResult(
        ref=ref,
        commit=commit,
        tree=tree,
        status=GateStatus.APPROVED,
        reasons=[
            f"merge-queue commit: clean merges of the approved {', '.join(heads)} onto {base[:SHORT]}",
        ],
    )


def _merge_link(
    repo: Repo,
    ref: str,
    commit: str,
    tree: str,
    first: str,
    second: str,
    *,
    config: Config | None,
    key: str | None,
) -> GateResult:
    """One merge commit: its merged-in parent must pass (bound to the first parent) and the merge be clean."""
    merged_in = evaluate_gate(repo, second, base=first, config=config, key=key, queue=False)

    def result(status: GateStatus, reasons: list[str]) -> GateResult:
        return GateResult(
            ref=ref,
            commit=commit,
            tree=tree,
            status=status,
            reasons=reasons,
            note=merged_in.note,
            note_commit=merged_in.note_commit,
            signed=merged_in.signed,
        )

    if not merged_in.open:
        return result(
            merged_in.status,
            [f"merge commit: its merged-in parent {second[:SHORT]} does not pass the gate", *merged_in.reasons],
        )
    clean = repo.merge_tree(first, second)
    if clean is None or clean != tree:
        return result(
            GateStatus.STALE,
            [
                f"merge commit: its tree is not the clean merge of {first[:SHORT]} and the approved {second[:SHORT]} "
                "(conflict resolutions or edits in a merge commit are unverified code)"
            ],
        )
    return result(
        GateStatus.APPROVED,
        [f"merge commit: clean merge of the approved {second[:SHORT]} into {first[:SHORT]}", *merged_in.reasons],
    )


def _with_ref(result: GateResult, ref: str) -> GateResult:
    from dataclasses import replace

    return replace(result, ref=ref)
