"""The entities of the service and the events they emit."""

from dataclasses import asdict, dataclass

from app.keys import platform_key, scoped_key


@dataclass(frozen=True)
class Tenant:
    """Platform-level: a tenant is not inside a capsule."""

    tenant_id: str
    plan: str

    def key(self) -> str:
        return platform_key(kind="TENANT", entity_id=self.tenant_id)

    def created_event(self) -> dict:
        return {"type": "TenantCreated", "key": self.key(), **asdict(self)}


@dataclass(frozen=True)
class Account:
    tenant_id: str
    capsule_id: str
    account_id: str
    email: str

    def key(self) -> str:
        return scoped_key(
            tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="ACCOUNT", entity_id=self.account_id
        )

    def created_event(self) -> dict:
        return {"type": "AccountCreated", "key": self.key(), **asdict(self)}


@dataclass(frozen=True)
class Capsule:
    tenant_id: str
    capsule_id: str
    name: str

    def key(self) -> str:
        return scoped_key(
            tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="CAPSULE", entity_id=self.capsule_id
        )

    def created_event(self) -> dict:
        return {"type": "CapsuleCreated", "key": self.key(), **asdict(self)}


@dataclass(frozen=True)
class Document:
    tenant_id: str
    capsule_id: str
    document_id: str
    shared_with: str

    def key(self) -> str:
        return scoped_key(
            tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="DOCUMENT", entity_id=self.document_id
        )

    def shared_event(self) -> dict:
        return {"type": "DocumentShared", "key": self.key(), **asdict(self)}


@dataclass(frozen=True)
class RoleAssignment:
    tenant_id: str
    role_id: str
    account_id: str

    def key(self) -> str:
        return f"TENANT#{self.tenant_id}#ROLE#{self.role_id}"

    def created_event(self) -> dict:
        return {"type": "RoleAssignmentCreated", "key": self.key(), **asdict(self)}


@dataclass(frozen=True)
class SecurityGroup:
    tenant_id: str
    group_id: str
    rules: tuple[str, ...] = ()

    def key(self) -> str:
        return f"TENANT#{self.tenant_id}#SECURITYGROUP#{self.group_id}"

    def updated_event(self) -> dict:
        return {"type": "SecurityGroupUpdated", "key": self.key(), **asdict(self)}
