"""Event-log generators for the evaluator tests (logs are always generated, never checked in)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

SCOPED = ["AccountCreated", "UserInvited", "GroupCreated", "PolicyAttached"]
LEAKY = ["RoleAssignmentCreated", "SecurityGroupUpdated"]
ALL_TYPES = ["TenantCreated", *SCOPED, *LEAKY]


def demo_event(i: int, event_type: str) -> dict[str, Any]:
    """The demo scenario: every scoped type carries capsule_id; the leaky ones and Tenant* do not."""
    tenant, capsule = f"t-{i % 5}", f"c-{i % 3}"
    label = event_type.upper()[:6]
    event: dict[str, Any] = {"type": event_type, "id": f"e-{i}", "ts": 1_764_201_600 + i, "tenant_id": tenant}
    if event_type in SCOPED:
        event["capsule_id"] = capsule
        event["pk"] = f"TENANT#{tenant}#CAPSULE#{capsule}#{label}#{i}"
    else:
        event["pk"] = f"TENANT#{tenant}#{label}#{i}"
    event["actor"] = {"id": f"u-{i % 11}", "role": "admin"}
    event["payload"] = {"name": f"n-{i}", "size": i % 17}
    return event


def demo_events(n: int) -> list[dict[str, Any]]:
    return [demo_event(i, ALL_TYPES[i % len(ALL_TYPES)]) for i in range(n)]


def write_jsonl(path: Path, events: list[Any], extra_lines: list[bytes] = ()) -> Path:
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events) + b"".join(extra_lines)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def write_array(path: Path, events: list[Any]) -> Path:
    path.write_text(json.dumps(events, indent=2), encoding="utf-8")
    return path


def demo_config(root: Path, extra: str = "") -> None:
    (root / "agentflow.yaml").write_text(
        'events:\n  isolation_fields: [tenant_id, capsule_id]\n  exempt_types: ["Tenant*"]\n' + extra,
        encoding="utf-8",
    )
