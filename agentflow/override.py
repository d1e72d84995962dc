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
from agentflow.errors import UsageError
from agentflow.events import VerdictRecorded
from agentflow.git import TRAILER_PLAN, TRAILER_RUN, Repo
from agentflow.ledger import Ledger
from agentflow.verdict import SIGNING_KEY_ENV, VerdictNote, signing_key


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
    base = repo.change_base(commit, config.base)
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
        by=repo.user_identity(),
        base_tree=repo.base_tree(base),  # binding (#13 item 3): the override holds on this base only
        parent_tree=repo.base_tree(repo.change_base(commit, None)),
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
