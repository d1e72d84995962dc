"""Human overrides: ``agentflow approve --override --reason ...``.

An override is an explicit, recorded exception, never a silent one: it is a verdict note marked
``override: true`` with the reason and the git identity of whoever made it, bound to the tree of the
commit like any other approval (so it goes stale on the next change), signed when a key is
configured, and recorded in the ledger as ``VerdictRecorded(override=True)`` so metrics count it
separately from verifier approvals.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentflow.config import Config
from agentflow.errors import AgentflowError, ExitCode, UsageError
from agentflow.events import VerdictRecorded
from agentflow.git import TRAILER_PLAN, TRAILER_RUN, Repo
from agentflow.ledger import Ledger
from agentflow.verdict import SIGNING_KEY_ENV, VerdictNote, signing_key


class OverrideRefused(AgentflowError):
    """An override the configuration forbids (``gate.override_not_by_author``): exit 1, not approved."""

    exit_code = ExitCode.NOT_APPROVED


@dataclass(frozen=True)
class OverrideResult:
    commit: str
    note: VerdictNote

    @property
    def signed(self) -> bool:
        return self.note.sig is not None


def approve_override(repo: Repo, ref: str, reason: str, *, config: Config, ledger: Ledger) -> OverrideResult:
    """Write an override approval for ``ref`` and record it; UsageError without a reason."""
    reason = reason.strip()
    if not reason:
        raise UsageError("an override needs a reason", fix='pass --reason "why this is approved without a verifier"')
    key = signing_key()
    if config.gate.require_signature and not key:
        raise UsageError(
            f"gate.require_signature is true but {SIGNING_KEY_ENV} is not set, so the override cannot be signed",
            fix=f"set {SIGNING_KEY_ENV} to the team's signing key",
        )
    commit = repo.rev(ref)
    trailers = repo.trailers(commit)
    from agentflow.gate import resolve_base  # the base branch, never a tag named like it

    base = repo.change_base(commit, resolve_base(repo, config.base))
    by = repo.user_identity()
    if config.gate.override_not_by_author and (author := authored_by(repo, by, base, commit)):
        raise OverrideRefused(
            f"gate.override_not_by_author is true and {by} authored {author[:12]} of the commits this override "
            "would approve",
            where=config.source or "agentflow.yaml",
            fix="ask someone who did not write the change to review it and record the override",
        )
    note = VerdictNote(
        plan=trailers.get(TRAILER_PLAN),
        run=trailers.get(TRAILER_RUN),
        outcome="approved",
        decision="override",
        tree=repo.tree(commit),
        base=base,
        patch_id=repo.patch_id(base, commit) if base and base != commit else None,
        override=True,
        reason=reason,
        by=by,
        base_tree=repo.base_tree(base),  # binding (#13 item 3): the override holds on this base only
        parent_tree=repo.base_tree(repo.change_base(commit, None)),
        commit=commit,  # a copy of the line on another commit decides nothing there (agentflow.gate)
    )
    if key:
        note = note.signed(key)
    repo.append_note(commit, note.to_line())
    ledger.append(
        VerdictRecorded(
            run_id=note.run,
            cycle=0,
            commit=commit,
            outcome="approved",
            decision="override",
            reason=reason,
            override=True,
            signed=note.sig is not None,
        )
    )
    return OverrideResult(commit, note)


def _identity_key(identity: str) -> str:
    """The email of ``Name <email>`` (lower case), else the name: how two identities are compared."""
    if "<" in identity and identity.rstrip().endswith(">"):
        return identity.rsplit("<", 1)[1].rstrip("> ").strip().lower()
    return identity.strip().lower()


def authored_by(repo: Repo, identity: str, base: str | None, commit: str) -> str | None:
    """A commit of the change (base..commit, or ``commit`` alone) whose author is ``identity`` (None
    for none, and for an empty identity)."""
    if not identity.strip():
        return None
    span = f"{base}..{commit}" if base and base != commit else commit
    limit = [] if base and base != commit else ["-1"]
    out = repo.git("log", *limit, "--format=%H%x09%an <%ae>", span)
    me = _identity_key(identity)
    for line in out.splitlines():
        sha, _, author = line.partition("\t")
        if _identity_key(author) == me:
            return sha
    return None
