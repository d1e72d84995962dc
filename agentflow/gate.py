"""The merge gate: is this exact content approved? (DESIGN.md "Git").

The gate recomputes everything from git and never trusts a note because of where it sits:

* A verdict note is bound to a *tree*. An approval holds for a commit only if the note's ``tree``
  equals that commit's tree, so a note copied by a rebase or amend (``notes.rewriteRef``) onto
  different content is stale, while a message-only amend (same tree) keeps its approval.
* On one commit, the latest verdict decides (by ``ts``, then line order): a later rejection revokes
  an earlier approval.
* When a signing key is configured (``AGENTFLOW_SIGNING_KEY``, or ``gate.require_signature``),
  only verdicts with a valid HMAC-SHA256 signature count; unsigned or mis-signed ones never open it.
* When the gate is closed it explains why: stale (naming the approved commit and what changed since),
  a clean rebase of an approved change (same ``git patch-id --verbatim``: needs re-verification on
  the new base), a verdict that is not an approval (with its blocking findings), a revoked approval.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from agentflow.config import Config
from agentflow.formats import one_line, workflow_command
from agentflow.git import TRAILER_PLAN, Repo
from agentflow.verdict import SIGNING_KEY_ENV, VerdictNote, signing_key

SHORT = 12


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

    note: VerdictNote
    commit: str
    index: int

    @property
    def order(self) -> tuple[datetime, int]:
        try:
            ts = datetime.fromisoformat(self.note.ts)
        except ValueError:
            ts = datetime.min
        return (ts if ts.tzinfo else ts.replace(tzinfo=UTC), self.index)


@dataclass(frozen=True)
class GateResult:
    """The gate's answer for one commit. ``open`` is the only thing that may let a merge through."""

    ref: str
    commit: str
    tree: str
    status: GateStatus
    reasons: list[str] = field(default_factory=list)
    note: VerdictNote | None = None  # the verdict that decided (or the approval that went stale)
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
            "note": self.note.model_dump(mode="json") if self.note else None,
        }


# -- reading notes -------------------------------------------------------------------------------


def parse_note_lines(commit: str, lines: Iterable[str]) -> tuple[list[NoteRecord], int]:
    """Verdict records in ``lines`` and the number of lines that are not verdicts (ignored)."""
    records: list[NoteRecord] = []
    bad = 0
    for index, line in enumerate(lines):
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            records.append(NoteRecord(VerdictNote.model_validate(data), commit, index))
        except (ValueError, ValidationError):
            bad += 1
    return records, bad


def latest(records: list[NoteRecord]) -> NoteRecord | None:
    """The verdict that decides for one commit: newest ``ts``, ties broken by line order."""
    return max(records, key=lambda r: r.order) if records else None


def is_approval(note: VerdictNote) -> bool:
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

    def check(self, note: VerdictNote) -> GateStatus | None:
        """None when the note's signature is acceptable, else UNSIGNED or BAD_SIGNATURE."""
        if not self.required:
            return None
        if not note.sig:
            return GateStatus.UNSIGNED
        if not self.key or not note.signature_valid(self.key):
            return GateStatus.BAD_SIGNATURE
        return None

    def signed(self, note: VerdictNote) -> bool:
        return bool(self.key and note.signature_valid(self.key))


class NoteIndex:
    """All verdict notes of the repository, read once (one ``git`` call per kind of question)."""

    def __init__(self, repo: Repo):
        self.repo = repo
        self.by_commit: dict[str, list[NoteRecord]] = {}
        self.ignored_lines: dict[str, int] = {}
        for commit, lines in repo.notes_map().items():
            records, bad = parse_note_lines(commit, lines)
            if records:
                self.by_commit[commit] = records
            if bad:
                self.ignored_lines[commit] = bad
        self._trees = repo.trees(list(self.by_commit))

    def tree_of(self, commit: str) -> str | None:
        return self._trees.get(commit)

    def deciding(self, policy: SignaturePolicy, exclude: str | None = None) -> list[NoteRecord]:
        """For each other noted commit, its deciding verdict, if it is genuine and acceptably signed.

        Genuine: the note's tree is the tree of the commit it is attached to (not a copied note).
        """
        result = []
        for commit, records in self.by_commit.items():
            if commit == exclude:
                continue
            record = latest(records)
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
) -> GateResult:
    """Evaluate the gate for ``ref``. Raises GitError (exit 2) when ``ref`` names no commit.

    ``base`` (default: the configured base branch) is only used to recognise a clean rebase of an
    approved change and to scope the search for the approval that went stale.
    """
    commit = repo.rev(ref)
    tree = repo.tree(commit)
    policy = SignaturePolicy.from_config(config, key)
    base = resolve_base(repo, base or (config.base if config else "main"))
    ctx = _Context(repo, ref, commit, tree, policy, base, NoteIndex(repo))
    if policy.required and not policy.key:
        return ctx.result(
            GateStatus.UNSIGNED,
            [
                f"gate.require_signature is true but {SIGNING_KEY_ENV} is not set, so no verdict can be "
                f"checked (set {SIGNING_KEY_ENV} to the team's signing key, e.g. from a CI secret)"
            ],
        )
    return ctx.evaluate()


def resolve_base(repo: Repo, base: str) -> str:
    """``base`` if it names a commit, else ``origin/<base>`` if that does (CI checkouts have no local main)."""
    for candidate in (base, f"origin/{base}"):
        if repo.ok("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"):
            return candidate
    return base


@dataclass
class _Context:
    repo: Repo
    ref: str
    commit: str
    tree: str
    policy: SignaturePolicy
    base: str
    index: NoteIndex

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
        own = self.index.by_commit.get(self.commit, [])
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
        record = latest(own)
        assert record is not None
        note = record.note
        if note.tree != self.tree:
            return record  # copied by a rebase/amend from other content: recompute, never trust
        problem = self.policy.check(note)
        if problem is not None:
            return self.result(problem, [self._signature_reason(problem, record)], record)
        if is_approval(note):
            return self.result(GateStatus.APPROVED, self._approval_reasons(record), record)
        return self._not_approved(record, own)

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
        """A genuine verdict on another commit with exactly this tree (e.g. before a message-only amend)."""
        candidates = [r for r in self.index.deciding(self.policy, exclude=self.commit) if r.note.tree == self.tree]
        record = latest(candidates)
        if record is None:
            return None
        if is_approval(record.note):
            return self.result(GateStatus.APPROVED, self._approval_reasons(record), record)
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
    def fork(self) -> str | None:
        """Where REF's branch left the base (None when the base does not exist)."""
        if not self.repo.ok("rev-parse", "--verify", "--quiet", f"{self.base}^{{commit}}"):
            return None
        out = self.repo.git("merge-base", self.commit, self.base, check=False)
        return out or None

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
    where = finding.get("file") or ""
    if where and finding.get("line"):
        where = f"{where}:{finding['line']}"
    prefix = f"{finding.get('severity', '?')} finding {finding.get('id', '?')}"
    return f"{prefix}{' at ' + where if where else ''}: {one_line(finding.get('message', ''))}"


# -- merge commits (pre-push rule) ---------------------------------------------------------------


def evaluate_merge_commit(repo: Repo, ref: str, *, config: Config | None = None, key: str | None = None) -> GateResult:
    """The gate for a commit pushed to a protected branch.

    A commit passes if the gate is open for it, or if it is a two-parent merge whose merged-in
    (second) parent passes the gate and whose tree is exactly the clean merge of its parents (what
    ``agentflow merge`` creates): nothing was changed in the merge commit itself.
    """
    direct = evaluate_gate(repo, ref, config=config, key=key)
    if direct.open:
        return direct
    parents = repo.git("rev-list", "--parents", "-n", "1", direct.commit).split()[1:]
    if len(parents) != 2:
        return direct
    first, second = parents
    merged_in = evaluate_gate(repo, second, base=first, config=config, key=key)
    clean = repo.merge_tree(first, second)
    if not merged_in.open:
        return GateResult(
            ref=ref,
            commit=direct.commit,
            tree=direct.tree,
            status=merged_in.status,
            reasons=[f"merge commit: its merged-in parent {second[:SHORT]} does not pass the gate", *merged_in.reasons],
            note=merged_in.note,
            note_commit=merged_in.note_commit,
            signed=merged_in.signed,
        )
    if clean is None or clean != direct.tree:
        return GateResult(
            ref=ref,
            commit=direct.commit,
            tree=direct.tree,
            status=GateStatus.STALE,
            reasons=[
                f"merge commit: its tree is not the clean merge of {first[:SHORT]} and the approved {second[:SHORT]} "
                "(conflict resolutions or edits in a merge commit are unverified code)"
            ],
            note=merged_in.note,
            note_commit=merged_in.note_commit,
            signed=merged_in.signed,
        )
    return GateResult(
        ref=ref,
        commit=direct.commit,
        tree=direct.tree,
        status=GateStatus.APPROVED,
        reasons=[
            f"merge commit: clean merge of the approved {second[:SHORT]} into {first[:SHORT]}",
            *merged_in.reasons,
        ],
        note=merged_in.note,
        note_commit=merged_in.note_commit,
        signed=merged_in.signed,
    )


# -- reporting -----------------------------------------------------------------------------------


def render_text(result: GateResult) -> str:
    """One line verdict, then the reasons indented."""
    return "\n".join([result.headline(), *(f"  {reason}" for reason in result.reasons)])


def render_json(result: GateResult) -> str:
    return json.dumps(result.to_dict(), indent=2, sort_keys=True)


def render_github(result: GateResult) -> str:
    """GitHub Actions workflow commands: one ``::error`` (closed) or ``::notice`` (open) annotation."""
    level = "notice" if result.open else "error"
    return workflow_command(
        level, "\n".join([result.headline(), *result.reasons]), title=f"agentflow gate ({result.status.value})"
    )


def step_summary(result: GateResult) -> str:
    """Markdown for ``$GITHUB_STEP_SUMMARY``."""
    icon = "✅" if result.open else "❌"
    lines = [
        f"### {icon} agentflow gate: {'open' if result.open else 'closed'} ({result.status.value})",
        "",
        f"`{result.ref}` at `{result.commit[:SHORT]}` (tree `{result.tree[:SHORT]}`)",
        "",
        *(f"- {reason}" for reason in result.reasons),
    ]
    note = result.note
    if note is not None:
        lines += [
            "",
            "| verdict | plan | run | at | signed | override |",
            "|---|---|---|---|---|---|",
            f"| {note.outcome} | {note.plan or ''} | {note.run or ''} | {note.ts} | {'yes' if result.signed else 'no'} "
            f"| {'yes: ' + (note.reason or '') if note.override else 'no'} |",
        ]
    return "\n".join(lines) + "\n"


_CODE_QUALITY_SEVERITY = {"critical": "critical", "high": "major", "medium": "minor", "low": "minor", "info": "info"}


def render_codequality(result: GateResult) -> str:
    """A GitLab code-quality report (Code Climate JSON): the closed gate, and the deciding verdict's findings."""
    issues: list[dict[str, Any]] = []

    def issue(check: str, description: str, severity: str, path: str = ".", line: int = 1) -> None:
        fingerprint = hashlib.sha256(f"{check}\0{path}\0{line}\0{description}".encode()).hexdigest()
        issues.append(
            {
                "type": "issue",
                "check_name": check,
                "description": description,
                "severity": severity,
                "fingerprint": fingerprint,
                "location": {"path": path, "lines": {"begin": line}},
            }
        )

    if not result.open:
        issue(f"agentflow-gate-{result.status.value}", "; ".join([result.headline(), *result.reasons]), "blocker")
    for finding in result.note.findings if result.note and not result.open else []:
        issue(
            f"agentflow-{finding.get('pattern') or 'finding'}",
            f"{finding.get('id', '?')}: {finding.get('message', '')}",
            _CODE_QUALITY_SEVERITY.get(str(finding.get("severity")), "info"),
            str(finding.get("file") or "."),
            int(finding.get("line") or 1),
        )
    return json.dumps(issues, indent=2)
