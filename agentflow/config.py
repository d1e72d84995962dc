"""Configuration: ``agentflow.yaml`` or ``[tool.agentflow]`` in pyproject.toml.

Validated by pydantic with unknown keys rejected; every problem is reported as ``file: key: problem``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentflow.errors import ConfigError

CONFIG_FILE = "agentflow.yaml"
Role = Literal["builder", "verifier", "evaluator"]
Backend = Literal["anthropic", "scripted", "command", "claude-code"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoleModel(_Strict):
    backend: Backend = "anthropic"
    model: str = "claude-sonnet-5-5"
    script: str | None = Field(None, description="scripted backend: path of the script file")
    command: str | None = Field(
        None, description="command backend: shell command, {prompt_file} is replaced by the prompt's path"
    )


class Models(_Strict):
    builder: RoleModel = RoleModel()
    verifier: RoleModel = RoleModel()
    evaluator: RoleModel = RoleModel(model="claude-haiku-5-5")

    def for_role(self, role: Role) -> RoleModel:
        return getattr(self, role)


class Limits(_Strict):
    max_cycles: int = Field(3, ge=1, le=20)
    max_turns: int = Field(60, ge=1, description="model calls per session")
    max_tokens: int = Field(4_000_000, ge=1, description="input+output tokens per session")
    session_cost_usd: float = Field(5.0, gt=0)
    run_cost_usd: float = Field(20.0, gt=0, description="budget for a whole run (all cycles)")
    session_seconds: float = Field(1800, gt=0, description="wall time per session")
    command_timeout: float = Field(600, gt=0, description="seconds per run_command / check")
    output_tokens: int = Field(8192, ge=256, description="max_tokens per model reply")


class Events(_Strict):
    paths: list[str] = []
    type_field: str | None = None
    isolation_fields: list[str] = ["tenant_id", "capsule_id"]
    exempt_types: list[str] = Field(default_factory=list, description="globs, e.g. Tenant*")
    required: dict[str, list[str]] = Field(
        default_factory=dict, description="scope field -> fields every event carrying it must have"
    )


class Gate(_Strict):
    require_signature: bool = False
    protected_branches: list[str] = ["main", "master"]


class PatternsConfig(_Strict):
    file: str = "CLAUDE.md"
    token_budget: int = Field(6000, ge=100)


class Config(_Strict):
    base: str = "main"
    checks: list[str] = []
    models: Models = Models()
    limits: Limits = Limits()
    events: Events = Events()
    gate: Gate = Gate()
    patterns: PatternsConfig = PatternsConfig()
    source: str | None = Field(None, exclude=True, description="where this config was read from")


def _format_validation(where: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{where}: {key}: {problem}")
    return "\n".join(lines)


def parse_config(data: object, where: str) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of sections", where=where, fix="see `agentflow init`")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(where, exc)) from None
    config.source = where
    return config


def load_config(root: Path) -> Config:
    """Read the config of the repository at ``root`` (defaults when there is none)."""
    yaml_path = root / CONFIG_FILE
    if yaml_path.exists():
        try:
            data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError(f"{problem}", where=f"{yaml_path.name}{line}", fix="fix the YAML syntax") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read: {exc}", where=yaml_path.name) from None
        return parse_config(data, yaml_path.name)
    pyproject = root / "pyproject.toml"
    if pyproject.exists():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(exc), where="pyproject.toml", fix="fix the TOML syntax") from None
        section = data.get("tool", {}).get("agentflow")
        if section is not None:
            return parse_config(section, "pyproject.toml [tool.agentflow]")
    return Config()
