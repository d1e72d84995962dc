"""Storage keys. Every user-scoped key is TENANT#<tenant>#CAPSULE#<capsule>#<KIND>#<id>."""


def scoped_key(*, tenant_id: str, capsule_id: str, kind: str, entity_id: str) -> str:
    return f"TENANT#{tenant_id}#CAPSULE#{capsule_id}#{kind}#{entity_id}"


def platform_key(*, kind: str, entity_id: str) -> str:
    return f"PLATFORM#{kind}#{entity_id}"
