"""``agentflow init``: the files a repository needs, created without ever clobbering the user's own.

Every file is created only when missing; ``force`` overwrites the files agentflow owns (config,
example plan, workflow, CLAUDE.md). ``.gitignore`` is only ever appended to, and only once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agentflow.errors import UsageError
from agentflow.plans import PLANS_DIR, find_plans

IGNORE_ENTRY = ".agentflow/"
EXAMPLE_PLAN = f"{PLANS_DIR}/1-example-health-endpoint.md"

Status = Literal["created", "overwritten", "updated", "skipped"]


@dataclass(frozen=True)
class Action:
    path: str
    status: Status
    note: str = ""

    def __str__(self) -> str:
        return f"{self.status:<11} {self.path}" + (f"  ({self.note})" if self.note else "")


CONFIG_TEMPLATE = """\
# agentflow configuration. Every value shown is the default; delete what you do not change.
# Unknown keys are errors, so a typo never passes silently. Reference: `agentflow --help`.

base: main                     # the branch changes are verified against

checks: []                     # commands every change must pass, e.g. ["ruff check .", "pytest -q"] (what runs no code first)
                               # with evidence: [{run: "pytest -q --junitxml={report}", junit: true}]

models:                        # per role: backend anthropic | scripted | command | claude-code
  builder:
    backend: anthropic
    model: claude-sonnet-5-5
  verifier:
    backend: anthropic
    model: claude-sonnet-5-5
  evaluator:
    backend: anthropic
    model: claude-haiku-5-5

limits:
  max_cycles: 3                # builder/verifier rework cycles before a run is capped
  max_turns: 60                # model calls per session
  max_tokens: 4000000          # input + output tokens per session
  session_cost_usd: 5.0
  run_cost_usd: 20.0           # budget for a whole run, all cycles
  session_seconds: 1800
  command_timeout: 600         # seconds per run_command or check
  output_tokens: 8192          # max tokens per model reply

patterns:
  file: CLAUDE.md
  token_budget: 6000           # patterns picked for a plan that names none

events:                        # what `agentflow evaluate` checks in application event logs
  paths: []                    # e.g. ["logs/events.jsonl"]
  type_field: null             # null: detect type / event_type / detail-type / CloudEvents
  isolation_fields: [tenant_id, capsule_id]
  exempt_types: []             # globs, e.g. ["Tenant*"]
  required: {}                 # scope field -> fields every event carrying it must have

gate:
  require_signature: false     # true: only HMAC-signed verdicts (AGENTFLOW_SIGNING_KEY) open the gate
  override_not_by_author: false  # true: refuse `approve --override` by an author of the approved commits
  protected_branches: [main, master]
"""

EXAMPLE_PLAN_TEXT = """\
---
id: 1
title: Add a health endpoint
status: draft                # draft | ready
patterns: []                 # CLAUDE.md pattern ids; empty: agentflow picks relevant ones and says which
scope: []                    # paths the builder may change, e.g. ["src/**", "tests/**"]
checks: []                   # commands that must pass besides agentflow.yaml's, e.g. ["pytest -q"]
# max_cycles: 3              # overrides limits.max_cycles
# estimate: 4h               # your manual estimate (h, d, w), for `agentflow metrics`
---
## Context

An example plan written by `agentflow init`: edit it or delete it. Load balancers need a cheap way
to know that the service is up.

## Requirements

1. `GET /health` MUST answer 200 with the JSON body `{"status": "ok"}`.
2. The endpoint MUST NOT touch the database.

## Acceptance criteria

- AC1: a test requests `/health` and asserts status 200 and the body `{"status": "ok"}`.
- AC2: the handler does not import the database module.
"""

CLAUDE_TEMPLATE = """\
# Project conventions

Each `##` section is one pattern that agentflow's builder and verifier follow. Keep the four parts
(*When to use*, *Pattern*, *Anti-patterns*, *Rationale*); `agentflow patterns lint` checks them.
A plan names the patterns that apply with `patterns: [error-handling]`.

## Error handling

**When to use:** every function that can fail because of input, I/O or another service.

**Pattern:**

```python
class NotFound(AppError):
    status = 404

def load_user(user_id: str) -> User:
    user = db.get(user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user
```

**Anti-patterns:** returning `None` or `-1` for errors; `except Exception: pass`; logging an error
and carrying on as if it had not happened.

**Rationale:** typed errors reach one handler that turns them into the right status and message;
swallowed errors turn into wrong data far from their cause.

## Tests

**When to use:** every change in behaviour.

**Pattern:** a test through the public interface that fails without the change, no network, no sleeps.

```python
def test_missing_user_is_404(client):
    assert client.get("/users/nope").status_code == 404
```

**Anti-patterns:** tests that assert only that no exception was raised; mocking the unit under test.

**Rationale:** the verifier approves changes whose behaviour is demonstrated, not described.
"""


def _write(root: Path, relative: str, text: str, force: bool, reason: str = "exists; --force overwrites") -> Action:
    path = root / relative
    if path.exists() and not force:
        return Action(relative, "skipped", reason)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return Action(relative, "created")
    if path.read_bytes() == text.encode("utf-8"):
        return Action(relative, "skipped", "already as agentflow writes it")
    backup = path.with_name(path.name + ".bak")
    path.replace(backup)  # --force never loses the user's version: it moves aside, then the new file
    path.write_text(text, encoding="utf-8")
    return Action(relative, "overwritten", f"your version is in {backup.name}")


def _example_plan(root: Path, force: bool) -> Action:
    existing = find_plans(root)
    if existing and not (force and (root / EXAMPLE_PLAN).exists()):
        if (root / EXAMPLE_PLAN).exists():
            return Action(EXAMPLE_PLAN, "skipped", "exists; --force overwrites")
        return Action(f"{PLANS_DIR}/", "skipped", f"already holds {len(existing)} plan(s)")
    return _write(root, EXAMPLE_PLAN, EXAMPLE_PLAN_TEXT, force)


def _config(root: Path, force: bool) -> Action:
    """agentflow.yaml, unless pyproject.toml already configures agentflow (the YAML would silently win)."""
    pyproject = root / "pyproject.toml"
    if not (root / "agentflow.yaml").exists() and not force and pyproject.is_file():
        import tomllib

        try:
            configured = "agentflow" in tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            configured = False
        if configured:
            return Action("agentflow.yaml", "skipped", "configured in pyproject.toml [tool.agentflow]")
    return _write(root, "agentflow.yaml", config_text(root), force)


def config_text(root: Path) -> str:
    """The commented config, with ``base`` set to the branch checked out now (main, master, ...)."""
    import re

    from agentflow.git import Repo

    branch = Repo(root).current_branch() or "main"
    if branch.startswith("agentflow/"):
        branch = "main"

    def base_line(match: re.Match[str]) -> str:
        text = f"base: {branch}"
        return text.ljust(len(match.group(0))) if len(text) < len(match.group(0)) else text + " "

    return re.sub(r"^base: main *(?=#)", base_line, CONFIG_TEMPLATE, count=1, flags=re.MULTILINE)


def ensure_ignored(root: Path, entry: str = IGNORE_ENTRY) -> Action:
    """Append ``entry`` to ``.gitignore`` unless an equivalent line is there (idempotent)."""
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    bare = entry.strip("/")
    if any(line.strip().strip("/") == bare for line in text.splitlines()):
        return Action(".gitignore", "skipped", f"already ignores {entry}")
    prefix = "" if not text or text.endswith("\n") else "\n"
    path.write_text(f"{text}{prefix}{entry}\n", encoding="utf-8")
    return Action(".gitignore", "updated" if text else "created", f"ignores {entry}")


def init_project(
    root: Path,
    *,
    ci: str | None = None,
    force: bool = False,
    action: str | None = None,
    install: str | None = None,
    fanout: bool = False,
    max_parallel: int | None = None,
) -> list[Action]:
    """Create agentflow's files in the repository at ``root``; returns what was done to each.

    The CI files are worked out first: a missing or floating agentflow pin stops init before it
    writes anything (see ``agentflow.ci``)."""
    from agentflow.ci import DEFAULT_MAX_PARALLEL, ci_files

    ci_options = (action, install, max_parallel) != (None, None, None) or fanout
    if ci is None and ci_options:
        raise UsageError(
            "--action, --install, --fanout and --max-parallel choose what the CI files run", fix="add --ci github"
        )
    files = (
        ci_files(
            ci,
            action=action,
            install=install,
            fanout=fanout,
            max_parallel=DEFAULT_MAX_PARALLEL if max_parallel is None else max_parallel,
        )
        if ci is not None
        else []
    )
    targets = ["agentflow.yaml", EXAMPLE_PLAN, "CLAUDE.md", ".gitignore", *(path for path, _ in files)]
    for relative in targets:  # before anything is written: init creates all of its files or none
        folders = [folder for folder in reversed(Path(relative).parents) if folder != Path(".")]
        blocker = next(
            (folder for folder in folders if (root / folder).exists() and not (root / folder).is_dir()), None
        )
        if blocker is None and (root / relative).exists() and not (root / relative).is_file():
            blocker = Path(relative)
        if blocker is not None:
            raise UsageError(
                f"is in the way: agentflow init writes {relative}",
                where=blocker,
                fix="move it aside and run init again",
            )
    actions = [
        _config(root, force),
        _example_plan(root, force),
        _write(root, "CLAUDE.md", CLAUDE_TEMPLATE, force),
        ensure_ignored(root),
    ]
    actions += [_write(root, path, text, force) for path, text in files]
    return actions
