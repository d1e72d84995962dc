"""Run a day of Capsulary traffic and write the events it emits as JSON Lines.

    python -m app.simulate logs/events.jsonl

Entities are built from a request context through their own constructors, so the log shows
exactly what the code emits.
"""

import dataclasses
import json
import random
import sys
from pathlib import Path

from app.entities import Account, Capsule, Document, RoleAssignment, SecurityGroup, Tenant

EVENTS = 600


def build(cls, context: dict):
    """Build ``cls`` from the request context, passing the fields the entity declares."""
    return cls(**{f.name: context[f.name] for f in dataclasses.fields(cls) if f.name in context})


def traffic(rng: random.Random):
    tenants = [f"t{n}" for n in range(1, 5)]
    for tenant in tenants:
        yield build(Tenant, {"tenant_id": tenant, "plan": "pro"}).created_event()
    for n in range(EVENTS - len(tenants)):
        tenant = rng.choice(tenants)
        context = {
            "tenant_id": tenant,
            "capsule_id": f"{tenant}-c{rng.randint(1, 3)}",
            "account_id": f"a{rng.randint(1, 40)}",
            "email": f"user{n}@example.com",
            "role_id": rng.choice(["admin", "editor", "viewer"]),
            "group_id": f"g{rng.randint(1, 9)}",
            "rules": ["allow:443"],
            "name": f"capsule {n}",
            "document_id": f"d{n}",
            "shared_with": f"a{rng.randint(1, 40)}",
        }
        kind = rng.choices(["account", "capsule", "document", "role", "group"], weights=[4, 1, 3, 2, 2])[0]
        if kind == "capsule":
            event = build(Capsule, context).created_event()
        elif kind == "document":
            event = build(Document, context).shared_event()
        elif kind == "account":
            event = build(Account, context).created_event()
        elif kind == "role":
            event = build(RoleAssignment, context).created_event()
        else:
            event = build(SecurityGroup, context).updated_event()
        event["ts"] = f"2026-11-{20 + n % 7:02d}T{n % 24:02d}:{n % 60:02d}:00Z"
        event["actor"] = {"id": context["account_id"], "ip": f"10.0.{rng.randint(0, 9)}.{rng.randint(1, 250)}"}
        yield event


def main(path: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for event in traffic(random.Random(348)):
            f.write(json.dumps(event, default=list) + "\n")
    print(f"wrote {EVENTS} events to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "logs/events.jsonl")
