"""The built-in dataset: labelled changes to the demo project (Capsulary), generated from a compact
spec (edits as data), with the scripted verifier's answers so the whole eval runs offline.

The script is a fixed set of answers a verifier gave, mistakes included (one plausible wrong change
approved, one clean change blocked, one finding on the wrong line): the figures it yields measure
the eval pipeline, and ``--backend anthropic`` measures a real model on the same cases.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflow.demo.sample import PROJECT
from agentflow.eval.dataset import Case, Gold

CONFIG = (
    "# the built-in eval's configuration: the demo project, its tests as the check\n"
    "base: main\n"
    'checks: ["python3 -m unittest -q"]\n'
    "patterns: {file: CLAUDE.md}\n"
)
E, T, K, S = "app/entities.py", "tests/test_entities.py", "app/keys.py", "app/simulate.py"

ROLE_OLD = """class RoleAssignment:
    tenant_id: str
    role_id: str
    account_id: str

    def key(self) -> str:
        return f"TENANT#{self.tenant_id}#ROLE#{self.role_id}"
"""
ROLE_FIXED = """class RoleAssignment:
    tenant_id: str
    capsule_id: str
    role_id: str
    account_id: str

    def key(self) -> str:
        return scoped_key(tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="ROLE", entity_id=self.role_id)
"""
GROUP_OLD = """class SecurityGroup:
    tenant_id: str
    group_id: str
    rules: tuple[str, ...] = ()

    def key(self) -> str:
        return f"TENANT#{self.tenant_id}#SECURITYGROUP#{self.group_id}"
"""
GROUP_FIXED = """class SecurityGroup:
    tenant_id: str
    capsule_id: str
    group_id: str
    rules: tuple[str, ...] = ()

    def key(self) -> str:
        return scoped_key(
            tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="SECURITYGROUP", entity_id=self.group_id
        )
"""
ROLE_TEST_OLD = """        event = RoleAssignment("t1", "admin", "a1").created_event()
        self.assertEqual(event["account_id"], "a1")
"""
ROLE_TEST_FIXED = """        event = RoleAssignment("t1", "c1", "admin", "a1").created_event()
        self.assertEqual(event["account_id"], "a1")
        self.assertEqual(event["capsule_id"], "c1")
        self.assertEqual(event["key"], "TENANT#t1#CAPSULE#c1#ROLE#admin")
"""
GROUP_TEST_OLD = """        event = SecurityGroup("t1", "g1", ("allow:443",)).updated_event()
"""
GROUP_TEST_FIXED = """        event = SecurityGroup("t1", "c1", "g1", ("allow:443",)).updated_event()
        self.assertEqual(event["key"], "TENANT#t1#CAPSULE#c1#SECURITYGROUP#g1")
"""
ISOLATION_PLAN = """# Capsule isolation for {what}

## Requirements

1. {what} MUST carry `capsule_id` and build its key with `scoped_key` (keyword arguments).
2. Its event MUST carry `capsule_id`.

## Acceptance criteria

- AC1: the key of {what} starts with `TENANT#<tenant>#CAPSULE#<capsule>#`.
- AC2: the tests pass.
"""
API_PLAN = """# List a tenant's documents

## Requirements

1. Add `GET /tenants/{tenant_id}/documents` to `app/api.py`; `capsule_id` is a QUERY parameter
   (`?capsule_id=`), never a path segment, so one route serves every capsule.

## Acceptance criteria

- AC1: the route is declared with `tenant_id` as its only path parameter and `capsule_id` as a query parameter.
"""
API_GOOD = '''"""The HTTP routes of the service."""

ROUTES = {
    "GET /tenants/{tenant_id}/documents": {
        "path_params": ["tenant_id"],
        "query_params": ["capsule_id"],
        "handler": "list_documents",
    },
}
'''
API_BAD = '''"""The HTTP routes of the service."""

ROUTES = {
    "GET /tenants/{tenant_id}/documents/{capsule_id}": {
        "path_params": ["tenant_id", "capsule_id"],
        "query_params": [],
        "handler": "list_documents",
    },
}
'''
API_TEST = """import unittest

from app.api import ROUTES


class Routes(unittest.TestCase):
    def test_documents_route_is_declared(self):
        self.assertIn("list_documents", [r["handler"] for r in ROUTES.values()])


if __name__ == "__main__":
    unittest.main()
"""
FOLDER = """

@dataclass(frozen=True)
class Folder:
    tenant_id: str
    capsule_id: str
    folder_id: str

    def key(self) -> str:
        return scoped_key(tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="FOLDER", entity_id=self.folder_id)

    def created_event(self) -> dict:
        return {"type": "FolderCreated", "key": self.key(), **asdict(self)}
"""


@dataclass(frozen=True)
class Spec:
    """One case: ``edits`` are (file, old text, new text) replacements (old ``None``: append; a file
    that does not exist yet is created); ``gold`` is (file, snippet of the changed text, summary),
    its lines found in the changed file; ``verdict`` is what the scripted verifier answers."""

    id: str
    label: str
    tags: tuple[str, ...]
    plan: str
    edits: tuple[tuple[str, str | None, str], ...]
    gold: tuple[tuple[str, str, str], ...] = ()
    decision: str | None = None  # the scripted verifier's decision; default: the right one
    finding_at: tuple[str, str] | None = None  # (file, snippet) where the verifier puts its finding
    summary: str = ""


def _iso(what: str) -> str:
    return ISOLATION_PLAN.format(what=what)


NESTED_ROLE = """@dataclass(frozen=True)
class Scope:
    tenant_id: str
    capsule_id: str


@dataclass(frozen=True)
class RoleAssignment:
    scope: Scope
    role_id: str
    account_id: str

    def key(self) -> str:
        return f"TENANT#{self.scope.tenant_id}#ROLE#{self.role_id}"
"""
NESTED_GROUP = """class SecurityGroup:
    tenant_id: str
    group_id: str
    placement: dict = None  # {"capsule_id": ...}
    rules: tuple[str, ...] = ()

    def key(self) -> str:
        return f"TENANT#{self.tenant_id}#SECURITYGROUP#{self.group_id}"
"""
MISSING_SEGMENT_GROUP = """class SecurityGroup:
    tenant_id: str
    capsule_id: str
    group_id: str
    rules: tuple[str, ...] = ()

    def key(self) -> str:
        return f"TENANT#{self.tenant_id}#SECURITYGROUP#{self.group_id}"
"""
MISSING_SEGMENT_ROLE = """class RoleAssignment:
    tenant_id: str
    capsule_id: str
    role_id: str
    account_id: str

    def key(self) -> str:
        return f"TENANT#{self.tenant_id}#{self.capsule_id}#ROLE#{self.role_id}"
"""
SWAPPED_ROLE = """class RoleAssignment:
    tenant_id: str
    capsule_id: str
    role_id: str
    account_id: str

    def key(self) -> str:
        return scoped_key(tenant_id=self.capsule_id, capsule_id=self.tenant_id, kind="ROLE", entity_id=self.role_id)
"""
HIDDEN_EVENT_ROLE = (
    ROLE_FIXED
    + """
    def created_event(self) -> dict:
        fields = {k: v for k, v in asdict(self).items() if k != "capsule_id"}
        return {"type": "RoleAssignmentCreated", "key": self.key(), **fields}
"""
)
ROLE_EVENT_OLD = """    def created_event(self) -> dict:
        return {"type": "RoleAssignmentCreated", "key": self.key(), **asdict(self)}
"""

SPECS: tuple[Spec, ...] = (
    # -- correct fixes ------------------------------------------------------------------------------
    Spec(
        "fix-role-assignment",
        "approve",
        ("fix", "isolation"),
        _iso("RoleAssignment"),
        ((E, ROLE_OLD, ROLE_FIXED), (T, ROLE_TEST_OLD, ROLE_TEST_FIXED)),
    ),
    Spec(
        "fix-security-group",
        "approve",
        ("fix", "isolation"),
        _iso("SecurityGroup"),
        ((E, GROUP_OLD, GROUP_FIXED), (T, GROUP_TEST_OLD, GROUP_TEST_FIXED)),
    ),
    Spec(
        "fix-both-entities",
        "approve",
        ("fix", "isolation"),
        _iso("RoleAssignment and SecurityGroup"),
        (
            (E, ROLE_OLD, ROLE_FIXED),
            (E, GROUP_OLD, GROUP_FIXED),
            (T, ROLE_TEST_OLD, ROLE_TEST_FIXED),
            (T, GROUP_TEST_OLD, GROUP_TEST_FIXED),
        ),
    ),
    Spec("add-folder-entity", "approve", ("fix", "isolation"), _iso("the new Folder entity"), ((E, None, FOLDER),)),
    Spec(
        "documents-route-query-param",
        "approve",
        ("fix", "api"),
        API_PLAN,
        (("app/api.py", None, API_GOOD), ("tests/test_api.py", None, API_TEST)),
    ),
    # -- plausible but wrong ------------------------------------------------------------------------
    Spec(
        "nested-scope-hides-capsule",
        "reject",
        ("wrong", "isolation", "nested-struct"),
        _iso("RoleAssignment"),
        (
            (E, "@dataclass(frozen=True)\n" + ROLE_OLD, NESTED_ROLE),
            (T, ROLE_TEST_OLD, ROLE_TEST_OLD.replace('"t1", "admin"', 'Scope("t1", "c1"), "admin"')),
            (T, "RoleAssignment, SecurityGroup, Tenant", "RoleAssignment, Scope, SecurityGroup, Tenant"),
            (T, "from app.entities import", "from app.entities import"),
        ),
        (
            (
                E,
                'return f"TENANT#{self.scope.tenant_id}#ROLE#{self.role_id}"',
                "capsule_id is nested in scope and the key skips the CAPSULE# segment",
            ),
        ),
    ),
    Spec(
        "nested-placement-hides-capsule",
        "reject",
        ("wrong", "isolation", "nested-struct"),
        _iso("SecurityGroup"),
        ((E, GROUP_OLD, NESTED_GROUP),),
        ((E, "placement: dict = None", "capsule_id hidden in an untyped placement dict; key unscoped"),),
        decision="approve",
        summary="SecurityGroup now records its capsule placement.",
    ),
    Spec(
        "group-key-missing-capsule-segment",
        "reject",
        ("wrong", "isolation", "key-template"),
        _iso("SecurityGroup"),
        (
            (E, GROUP_OLD, MISSING_SEGMENT_GROUP),
            (T, GROUP_TEST_OLD, GROUP_TEST_OLD.replace('"t1", "g1"', '"t1", "c1", "g1"')),
        ),
        ((E, 'return f"TENANT#{self.tenant_id}#SECURITYGROUP#{self.group_id}"', "key template lacks CAPSULE#"),),
    ),
    Spec(
        "role-key-missing-capsule-label",
        "reject",
        ("wrong", "isolation", "key-template"),
        _iso("RoleAssignment"),
        (
            (E, ROLE_OLD, MISSING_SEGMENT_ROLE),
            (T, ROLE_TEST_OLD, ROLE_TEST_OLD.replace('"t1", "admin"', '"t1", "c1", "admin"')),
        ),
        (
            (
                E,
                'return f"TENANT#{self.tenant_id}#{self.capsule_id}#ROLE#{self.role_id}"',
                "hand-built key without the CAPSULE label",
            ),
        ),
    ),
    Spec(
        "role-key-swapped-ids",
        "reject",
        ("wrong", "isolation", "explicit-params"),
        _iso("RoleAssignment"),
        (
            (E, ROLE_OLD, SWAPPED_ROLE),
            (T, ROLE_TEST_OLD, ROLE_TEST_OLD.replace('"t1", "admin"', '"t1", "c1", "admin"')),
        ),
        ((E, "scoped_key(tenant_id=self.capsule_id", "tenant and capsule swapped"),),
    ),
    Spec(
        "role-event-drops-capsule",
        "reject",
        ("wrong", "isolation"),
        _iso("RoleAssignment"),
        (
            (E, ROLE_OLD + "\n" + ROLE_EVENT_OLD, HIDDEN_EVENT_ROLE),
            (T, ROLE_TEST_OLD, ROLE_TEST_OLD.replace('"t1", "admin"', '"t1", "c1", "admin"')),
        ),
        ((E, 'if k != "capsule_id"', "the event leaves capsule_id out"),),
    ),
    Spec(
        "documents-route-path-param",
        "reject",
        ("wrong", "api", "query-param"),
        API_PLAN,
        (("app/api.py", None, API_BAD), ("tests/test_api.py", None, API_TEST)),
        (
            (
                "app/api.py",
                '"GET /tenants/{tenant_id}/documents/{capsule_id}"',
                "capsule_id declared as a path parameter",
            ),
        ),
    ),
    Spec(
        "scoped-key-renamed-arg",
        "reject",
        ("wrong", "breaking-helper"),
        "# Rename scoped_key's entity_id to item_id\n",
        (
            (
                K,
                'kind: str, entity_id: str) -> str:\n    return f"TENANT#{tenant_id}#CAPSULE#{capsule_id}#{kind}#{entity_id}"',
                'kind: str, item_id: str) -> str:\n    return f"TENANT#{tenant_id}#CAPSULE#{capsule_id}#{kind}#{item_id}"',
            ),
        ),
        ((K, "item_id: str", "callers in app/entities.py still pass entity_id"),),
        decision="approve",
        summary="Renamed the argument.",
    ),
    Spec(
        "platform-key-needs-region",
        "reject",
        ("wrong", "breaking-helper"),
        "# Platform keys carry a region\n",
        (
            (
                K,
                'def platform_key(*, kind: str, entity_id: str) -> str:\n    return f"PLATFORM#{kind}#{entity_id}"',
                'def platform_key(*, region: str, kind: str, entity_id: str) -> str:\n    return f"PLATFORM#{region}#{kind}#{entity_id}"',
            ),
        ),
        ((K, "region: str", "Tenant.key() still calls platform_key without region"),),
    ),
    Spec(
        "test-weakened-role",
        "reject",
        ("wrong", "weakened-test", "isolation"),
        _iso("RoleAssignment"),
        (
            (E, ROLE_OLD, MISSING_SEGMENT_ROLE),
            (
                T,
                ROLE_TEST_OLD,
                ROLE_TEST_OLD.replace('"t1", "admin"', '"t1", "c1", "admin"')
                + '        self.assertTrue(event["key"].startswith("TENANT#t1"))\n',
            ),
        ),
        (
            (E, 'return f"TENANT#{self.tenant_id}#{self.capsule_id}#ROLE#{self.role_id}"', "key skips CAPSULE#"),
            (T, 'self.assertTrue(event["key"].startswith("TENANT#t1"))', "the test only checks the prefix"),
        ),
    ),
    Spec(
        "test-skipped-group",
        "reject",
        ("wrong", "weakened-test"),
        _iso("SecurityGroup"),
        (
            (
                E,
                GROUP_OLD,
                GROUP_FIXED.replace(
                    'capsule_id=self.capsule_id, kind="SECURITYGROUP"', 'capsule_id="", kind="SECURITYGROUP"'
                ),
            ),
            (
                T,
                "    def test_security_group_event_carries_rules(self):\n",
                '    @unittest.skip("flaky")\n    def test_security_group_event_carries_rules(self):\n',
            ),
        ),
        (
            (T, '@unittest.skip("flaky")', "the failing test is skipped instead of fixed"),
            (E, 'capsule_id="", kind="SECURITYGROUP"', "the key ignores the capsule"),
        ),
        finding_at=(T, "def test_security_group_event_carries_rules"),
    ),
    Spec(
        "folder-uses-platform-key",
        "reject",
        ("wrong", "isolation"),
        _iso("the new Folder entity"),
        (
            (
                E,
                None,
                FOLDER.replace(
                    'scoped_key(tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="FOLDER", entity_id=self.folder_id)',
                    'platform_key(kind="FOLDER", entity_id=self.folder_id)',
                ),
            ),
        ),
        ((E, 'platform_key(kind="FOLDER"', "user data under a platform-level key"),),
    ),
    # -- clean changes ------------------------------------------------------------------------------
    Spec(
        "docstring-keys",
        "approve",
        ("clean",),
        "# Document the key helpers\n",
        (
            (
                K,
                "def platform_key(*, kind: str, entity_id: str) -> str:\n",
                'def platform_key(*, kind: str, entity_id: str) -> str:\n    """Keys of platform-level entities (tenants) only."""\n',
            ),
        ),
    ),
    Spec(
        "test-tenant-event",
        "approve",
        ("clean", "tests"),
        "# Cover the tenant event\n",
        (
            (
                T,
                "    def test_tenant_is_platform_level(self):\n",
                '    def test_tenant_event_type(self):\n        self.assertEqual(Tenant("t1", "pro").created_event()["type"], "TenantCreated")\n\n'
                "    def test_tenant_is_platform_level(self):\n",
            ),
        ),
    ),
    Spec(
        "simulate-seed-constant",
        "approve",
        ("clean",),
        "# Name the simulation seed\n",
        ((S, "EVENTS = 600\n", "EVENTS = 600\nSEED = 348\n"), (S, "random.Random(348)", "random.Random(SEED)")),
    ),
    Spec(
        "tenant-display-name",
        "approve",
        ("clean", "isolation"),
        "# Tenants get a display name\n",
        (
            (
                E,
                "    tenant_id: str\n    plan: str\n",
                '    tenant_id: str\n    plan: str\n    display_name: str = ""\n',
            ),
        ),
        decision="request_changes",
        finding_at=(E, "display_name"),
        summary="Tenant has no capsule_id (flagged although tenants are platform-level).",
    ),
    Spec(
        "account-key-comment",
        "approve",
        ("clean",),
        "# Explain the account key\n",
        (
            (
                E,
                '    def key(self) -> str:\n        return scoped_key(\n            tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="ACCOUNT"',
                "    def key(self) -> str:\n        # accounts live inside a capsule\n        return scoped_key(\n"
                '            tenant_id=self.tenant_id, capsule_id=self.capsule_id, kind="ACCOUNT"',
            ),
        ),
    ),
)


def _apply(root: Path, spec: Spec) -> dict[str, str]:
    files: dict[str, str] = {}
    for name, old, new in spec.edits:
        path = root / name
        text = files.get(name, path.read_text(encoding="utf-8") if path.exists() else "")
        if old is None:
            text += new
        else:
            if old not in text:
                raise AssertionError(f"built-in case {spec.id}: edit of {name} does not apply")
            text = text.replace(old, new, 1)
        files[name] = text
    return files


def _lines(text: str, snippet: str) -> tuple[int, int]:
    start = text.index(snippet)
    first = text.count("\n", 0, start) + 1
    return first, first + snippet.count("\n")


def builtin_cases() -> list[Case]:
    cases = []
    for spec in SPECS:
        files = _apply(PROJECT, spec)
        gold = tuple(Gold(f, _lines(files[f], snip), s) for f, snip, s in spec.gold)
        cases.append(
            Case(
                id=spec.id,
                label=spec.label,
                base="HEAD",
                repo=None,
                patch="",
                plan=spec.plan,
                gold=gold,
                tags=spec.tags,
                where=f"builtin:{spec.id}",
                files=files,
            )
        )
    return cases


def builtin_script() -> dict[str, Any]:
    """The scripted verifier's sessions, one per built-in case, in dataset order."""
    sessions = []
    for number, (spec, case) in enumerate(zip(SPECS, builtin_cases(), strict=True), start=1):
        decision = spec.decision or ("approve" if spec.label == "approve" else "request_changes")
        findings = []
        if decision != "approve":
            targets = [spec.finding_at] if spec.finding_at else [(f, snip) for f, snip, _ in spec.gold[:1]]
            if not targets and case.files:  # a wrong change without gold: point at the first changed file
                name = next(iter(case.files))
                targets = [(name, case.files[name].splitlines()[0])]
            for index, (name, snip) in enumerate(targets, start=1):
                line = _lines(case.files[name], snip)[0]
                findings.append(
                    {
                        "id": f"F{index}",
                        "severity": "high",
                        "file": name,
                        "line": line,
                        "message": (spec.gold[0][2] if spec.gold else "the change does not meet the plan"),
                    }
                )
        criteria = [
            {"id": ac, "status": "met" if decision == "approve" else "unmet", "evidence": next(iter(case.files))}
            for ac in re.findall(r"^- (AC\d+):", spec.plan, re.MULTILINE)
        ]
        summary = spec.summary or ("The change meets the plan." if decision == "approve" else "Changes are needed.")
        usage = {"input_tokens": 3000 + 97 * number, "output_tokens": 300 + 11 * number}
        turns = [
            {
                "tool_calls": [{"name": "read_file", "input": {"path": next(iter(case.files))}}],
                "usage": usage,
                "cost_usd": round(0.012 + 0.0007 * number, 4),
            },
            {
                "tool_calls": [
                    {
                        "name": "submit_verdict",
                        "input": {"decision": decision, "summary": summary, "criteria": criteria, "findings": findings},
                    }
                ],
                "usage": {"input_tokens": 400, "output_tokens": 250 + 7 * number},
                "cost_usd": round(0.006 + 0.0003 * number, 4),
            },
        ]
        sessions.append(turns)
    return {"verifier": sessions}


def create_base(root: Path) -> None:
    """The demo project with the built-in config, committed on ``main`` with a fixed date."""
    shutil.copytree(PROJECT, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "agentflow.yaml").write_text(CONFIG, encoding="utf-8")
    (root / ".gitignore").write_text(".agentflow/\n__pycache__/\nlogs/\n", encoding="utf-8")
    from agentflow.eval.runner import _GIT_ENV
    from agentflow.git import git_env

    env = git_env(_GIT_ENV)  # agentflow's git environment: no API key, signing key or token
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "--no-verify", "-m", "Capsulary")):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=env)
