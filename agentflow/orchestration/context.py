"""What sessions are given: scope findings, rendered prompts, plan and patterns context, evaluator
findings, and the per-role model configuration (``effective_role``, ``validate_backends``,
``ModelPool``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentflow import prompts
from agentflow.config import Config, RoleModel
from agentflow.errors import UsageError
from agentflow.ledger import Ledger
from agentflow.models import BACKEND_NAMES, VERIFIER_BACKENDS
from agentflow.models.base import Model
from agentflow.orchestration.api import BuildOptions, ModelFactory
from agentflow.paths import glob_match
from agentflow.patterns import Pattern, render_patterns, select_patterns
from agentflow.plans import Plan
from agentflow.prompts import DEFAULT_SYSTEM as DEFAULT_SYSTEM  # re-exported
from agentflow.prompts import TASK_MARKER as TASK_MARKER
from agentflow.prompts import split_prompt

SCOPE_PATTERN = "scope"


def in_scope(path: str, scope: Sequence[str]) -> bool:
    """True when ``scope`` is empty (no restriction) or a glob (or folder prefix) matches ``path``."""
    if not scope:
        return True
    for glob in scope:
        glob = glob.strip().removeprefix("./")
        if glob_match(path, glob) or path.startswith(glob.rstrip("/") + "/"):
            return True
    return False


def scope_findings(files: Sequence[str], scope: Sequence[str]) -> list[dict[str, Any]]:
    """Files changed outside the plan's scope, as medium findings with ids stable across cycles."""
    return [
        {
            "id": f"scope:{path}",
            "severity": "medium",
            "file": path,
            "line": None,
            "pattern": SCOPE_PATTERN,
            "message": f"{path} is outside the plan's scope ({', '.join(scope)})",
            "suggestion": "revert the change or widen the plan's scope explicitly",
        }
        for path in files
        if not in_scope(path, scope)
    ]


def render_role_prompt(role: str, root: Path, context: dict[str, Any]) -> tuple[str, str]:
    return split_prompt(prompts.render(role, root, **context), role)


def _plan_context(plan: Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    return {
        "id": plan.id,
        "title": plan.title,
        "path": _display(plan.path),
        "text": plan.text,
        "body": plan.body,
        "scope": list(plan.scope),
        "checks": list(plan.checks),
        "criteria": [{"id": c.id, "text": c.text} for c in plan.criteria],
    }


FINDING_KEYS = ("id", "severity", "file", "line", "pattern", "message", "suggestion")
EVALUATOR_KEYS = ("id", "rule", "severity", "event_type", "field", "message", "evidence")


def _complete(item: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Every key a template may use present (None when absent): templates use StrictUndefined."""
    return {**{key: None for key in keys}, **item}


def _findings_view(findings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [_complete(f, FINDING_KEYS) for f in findings]


def _display(path: Path, base: Path | None = None) -> str:
    """``path`` relative to ``base`` (default: the cwd) when it is inside, else as given."""
    try:
        return str(path.resolve().relative_to((base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def choose_patterns_text(patterns: list[Pattern], plan: Plan | None, budget: int) -> str:
    """The patterns for the prompt: the plan's selection, or (no plan) all that fit the budget."""
    if plan is not None:
        chosen = select_patterns(patterns, plan, budget)
    else:
        chosen, used = [], 0
        for pattern in patterns:
            if used + pattern.tokens <= budget:
                chosen.append(pattern)
                used += pattern.tokens
    return render_patterns(chosen)


def evaluator_findings(ledger: Ledger | None, plan: Plan | None) -> list[dict[str, Any]]:
    """Open evaluator findings that concern the plan (all of them when there is no plan)."""
    if ledger is None:
        return []
    findings = ledger.open_findings()
    if not findings or plan is None:
        return [_complete(f, EVALUATOR_KEYS) for f in findings]
    from agentflow.evaluator import relevant_findings  # lazy: only when there are findings to filter

    return [_complete(f, EVALUATOR_KEYS) for f in relevant_findings(findings, plan)]


def effective_role(config: Config, role: str, options: BuildOptions, root: Path) -> RoleModel:
    """The role's model config after ``--backend``, ``--model`` and ``--script``."""
    cfg = config.models.for_role(role)  # type: ignore[arg-type]
    update: dict[str, Any] = {}
    if options.script is not None:
        update["script"] = str(options.script.resolve())
        update["backend"] = options.backend or "scripted"
    if options.backend:
        update["backend"] = options.backend
    if options.model:
        update["model"] = options.model
    cfg = cfg.model_copy(update=update)
    if cfg.script and not Path(cfg.script).is_absolute():
        cfg = cfg.model_copy(update={"script": str((root / cfg.script).resolve())})
    return cfg


def validate_backends(config: Config, options: BuildOptions, root: Path, roles: Sequence[str]) -> dict[str, RoleModel]:
    """Per-role model config, refusing combinations that cannot work before anything starts."""
    chosen = {}
    for role in roles:
        cfg = effective_role(config, role, options, root)
        if cfg.backend not in BACKEND_NAMES:
            raise UsageError(f"unknown backend {cfg.backend!r}", fix=f"use one of {', '.join(BACKEND_NAMES)}")
        if options.models is None:
            if role == "verifier" and cfg.backend not in VERIFIER_BACKENDS:
                raise UsageError(
                    f"the {cfg.backend} backend can only be the builder (a verifier must submit a verdict)",
                    where=config.source or "agentflow.yaml",
                    fix="set models.verifier.backend to anthropic, scripted or claude-code",
                )
            if cfg.backend == "scripted" and not cfg.script:
                raise UsageError(
                    f"the scripted backend needs a script for the {role}",
                    fix="pass --script FILE or set models.<role>.script",
                )
            if cfg.backend == "scripted" and not Path(cfg.script or "").is_file():
                if options.script is not None:
                    raise UsageError("no such script file", where=cfg.script, fix="pass an existing --script FILE")
                key = f"models.{role}.script"  # the config's, never passed: the fix is in the file
                raise UsageError(
                    f"{key} names {config.models.for_role(role).script}, no such file",  # type: ignore[arg-type]
                    where=config.source or "agentflow.yaml",
                    fix=f"set {key} to an existing script (relative to the repository root) or pass --script FILE",
                )
            if cfg.backend == "command" and not cfg.command:
                raise UsageError(
                    "the command backend needs a command",
                    where=config.source or "agentflow.yaml",
                    fix="set models.builder.command, e.g. 'my-agent --prompt-file {prompt_file}'",
                )
        chosen[role] = cfg
    return chosen


class ModelPool:
    """Models of one run, created once: a script is loaded once so each session takes its next
    entry, and an API client is built (and its key checked) before anything starts."""

    def __init__(
        self,
        roles: dict[str, RoleModel],
        factory: ModelFactory | None,
        root: Path | None = None,
        played: dict[str, int] | None = None,
    ):
        self.roles = roles
        self.factory = factory
        self.root = root or Path.cwd()
        self.played = played or {}  # resuming with the run's own script: sessions per role already played
        self._scripts: dict[str, Any] = {}
        self._api: dict[str, Model] = {}

    def check(self) -> None:
        """Fail now (exit 2) on what would fail at the first session: no API key, a broken script,
        a missing extra."""
        if self.factory is not None:
            return
        for role, cfg in self.roles.items():
            if cfg.backend in ("anthropic", "scripted"):
                self.model(role, 1)  # builds the client, or reads and validates the whole script
            elif cfg.backend == "claude-code":
                from agentflow.models.claude_code import ensure_available

                ensure_available()

    def model(self, role: str, cycle: int) -> Model | None:
        if self.factory is not None:
            return self.factory(role, cycle)
        cfg = self.roles[role]
        if cfg.backend == "scripted":
            from agentflow.models.scripted import ScriptedModel

            script = str(cfg.script)
            if script not in self._scripts:
                self._scripts[script] = ScriptedModel.load(Path(script))
                self._scripts[script].skip(self.played)
            return self._scripts[script].for_role(role)
        if cfg.backend == "anthropic":
            if role not in self._api:
                from agentflow.models.registry import get_model

                self._api[role] = get_model(cfg, root=self.root, role=role)
            return self._api[role]
        return None  # external agents (command, claude-code): run_role_session runs them

    def recorded(self) -> dict[str, dict[str, Any]]:
        """The roles' effective model settings, as the run's first event records them for ``--resume``."""
        if self.factory is not None:
            return {}
        return {role: cfg.model_dump(exclude_none=True) for role, cfg in self.roles.items()}

    def describe(self) -> dict[str, str]:
        if self.factory is not None:
            return {role: "function" for role in self.roles}
        return {role: describe_role(cfg) for role, cfg in self.roles.items()}


def describe_role(cfg: RoleModel) -> str:
    """``backend:model`` (a scripted role is named by its script, the model name means nothing there)."""
    if cfg.backend == "scripted":
        return f"scripted:{Path(cfg.script or '?').name}"
    if cfg.backend == "command":
        return f"command:{(cfg.command or '?').split()[0]}"
    return f"{cfg.backend}:{cfg.model}"
