"""Which open findings concern a plan: matched by event type names and entity words.

A finding concerns a plan when the plan's title, body or scope mentions the finding's event type
(``RoleAssignmentCreated``) or its entity (``RoleAssignment``, also written ``role assignment(s)``,
``role_assignment`` or ``role-assignment``). Matching is case-insensitive and on word boundaries,
so ``Role`` alone does not match: a field name alone (``capsule_id``) is too common to select on.
"""

from __future__ import annotations

import re
from typing import Any

# Verb-like suffixes of event type names: RoleAssignmentCreated -> RoleAssignment.
_SUFFIXES = (
    "Created",
    "Updated",
    "Deleted",
    "Removed",
    "Added",
    "Changed",
    "Granted",
    "Revoked",
    "Assigned",
    "Started",
    "Ended",
    "Completed",
    "Failed",
    "Invited",
    "Attached",
    "Detached",
    "Exported",
    "Event",
)


def _words(name: str) -> list[str]:
    return re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", name)


def entity_of(event_type: str) -> str:
    """``RoleAssignmentCreated`` -> ``RoleAssignment`` (unchanged when no known suffix)."""
    for suffix in _SUFFIXES:
        if event_type.endswith(suffix) and len(event_type) > len(suffix):
            return event_type[: -len(suffix)]
    return event_type


def _variants(name: str) -> set[str]:
    words = [w.lower() for w in _words(name)] or [name.lower()]
    return {name.lower(), "".join(words), " ".join(words), "_".join(words), "-".join(words)}


def _mentions(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(phrase)}(?:e?s)?(?![A-Za-z0-9])", text) is not None


def concerns(finding: dict[str, Any], text: str) -> bool:
    event_type = str(finding.get("event_type") or "")
    if not event_type:
        return False
    candidates = _variants(event_type) | _variants(entity_of(event_type))
    return any(_mentions(text, c) for c in candidates if len(c) >= 3)


def relevant_findings(findings: list[dict[str, Any]], plan: Any) -> list[dict[str, Any]]:
    """The findings whose event type or entity the plan (title, body, scope) mentions, in order."""
    parts = [str(getattr(plan, "title", "") or ""), str(getattr(plan, "body", "") or "")]
    parts += [str(s) for s in (getattr(plan, "scope", None) or [])]
    text = "\n".join(parts).lower()
    return [f for f in findings if concerns(f, text)]
