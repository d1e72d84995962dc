"""Configuration: ``agentflow.yaml`` or ``[tool.agentflow]`` in pyproject.toml.

Validated by pydantic with unknown keys rejected; every problem is reported as ``file: key: problem``.
Commands that only look at the config (``status``, ``gate``, the git hooks) read it through
``agentflow.configfile.config_view``, which needs no pydantic for a plainly valid one.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentflow import yamlsrc
from agentflow.configfile import CONFIG_FILE, PYPROJECT, pyproject_section, read_config_file
from agentflow.errors import ConfigError
from agentflow.models import BACKEND_NAMES

Role = Literal["builder", "verifier", "evaluator"]
Backend = Literal[BACKEND_NAMES]  # type: ignore[valid-type]  # the names of agentflow.models.BACKENDS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


CHECK_KEYS = ("run", "junit")


class CheckSpec(_Strict):
    """A check: a shell command; with ``junit: true`` it must leave a JUnit XML report at ``{report}``
    (agentflow substitutes a shell-quoted path) and the report decides too (``agentflow.evidence``)."""

    run: str = Field(min_length=1)
    junit: bool = False


def validate_checks(value: object) -> object:
    """Checks are strings or ``{run, junit}`` objects; an unknown key in an object names the key."""
    if not isinstance(value, list):
        return value
    for index, item in enumerate(value):
        if isinstance(item, dict):
            unknown = [str(k) for k in item if k not in CHECK_KEYS]
            if unknown:
                raise ValueError(
                    f"checks[{index}]: {unknown[0]}: unknown key in a check (a check has `run` and `junit`)"
                )
            if "run" not in item:
                raise ValueError(f"checks[{index}]: a check object needs `run` (the command)")
            if not isinstance(item["run"], str) or not item["run"].strip():
                raise ValueError(f"checks[{index}].run: the command must be a non-empty string")
            if not isinstance(item.get("junit", False), bool):
                raise ValueError(f"checks[{index}].junit: must be true or false")
        elif not isinstance(item, str):
            raise ValueError(f"checks[{index}]: a check is a command string or {{run: ..., junit: true}}")
    return value


def check_spec(entry: str | CheckSpec) -> CheckSpec:
    return entry if isinstance(entry, CheckSpec) else CheckSpec(run=entry)


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


class EventThresholds(_Strict):
    """Thresholds of the evaluator's sibling rules (docs/evaluator.md, "Families and thresholds")."""

    sibling_share: float = Field(0.5, gt=0, lt=1, description="a field 'most' siblings carry: more than this share")
    min_family: int = Field(3, ge=2, description="types in a family (with the type itself) to compare domain fields")
    scope_share: float = Field(0.5, gt=0, lt=1, description="an inferred scope: in more than this share of types")


class Events(_Strict):
    paths: list[str] = []
    type_field: str | None = None
    isolation_fields: list[str] = ["tenant_id", "capsule_id"]
    exempt_types: list[str] = Field(default_factory=list, description="globs, e.g. Tenant*")
    required: dict[str, list[str]] = Field(
        default_factory=dict, description="scope field -> fields every event carrying it must have"
    )
    infer_scope: bool = Field(True, description="infer scope fields (tenant-, org-, repo-like) from the logs")
    thresholds: EventThresholds = Field(default_factory=EventThresholds)


class Gate(_Strict):
    require_signature: bool = False
    override_not_by_author: bool = Field(
        False, description="refuse `approve --override` by an author of the commits it approves"
    )
    require_sandbox: bool = Field(False, description="verdicts of runs without the sandbox never open the gate")
    protected_branches: list[str] = ["main", "master"]


class SandboxConfig(_Strict):
    """Where agent processes run (agentflow.sandbox, docs/security.md)."""

    mode: Literal["auto", "bwrap", "off"] = "auto"
    network: bool = Field(False, description="let sandboxed commands reach the network")
    env: list[str] = Field(default_factory=list, description="extra variable names (or NAME_* globs) passed in")
    hide: list[str] = Field(default_factory=list, description="more absolute or ~/ paths made invisible")

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false


class PatternsConfig(_Strict):
    file: str = "CLAUDE.md"
    token_budget: int = Field(6000, ge=100)


class Config(_Strict):
    base: str = "main"
    checks: list[str | CheckSpec] = []
    models: Models = Models()
    limits: Limits = Limits()
    events: Events = Events()
    gate: Gate = Gate()
    patterns: PatternsConfig = PatternsConfig()
    sandbox: SandboxConfig = SandboxConfig()
    source: str | None = Field(None, exclude=True, description="where this config was read from")

    _checks = field_validator("checks", mode="before")(validate_checks)


def _known_keys(path: tuple[str | int, ...]) -> list[str]:
    """The keys the config accepts at ``path`` (for "did you mean"), empty where it takes any key."""
    model: type[BaseModel] = Config
    for part in path:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [name for name, field in model.model_fields.items() if not field.exclude]


def _problem(err: dict, where: str, source: yamlsrc.YamlSource | None) -> str:
    path = tuple(str(p) for p in err["loc"])
    key = ".".join(path) or "(top level)"
    line = source.line(path) if source is not None else None
    place = f"{where}:{line}" if line else where
    if err["type"] == "extra_forbidden":
        known = _known_keys(err["loc"][:-1])
        close = difflib.get_close_matches(path[-1], known, n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"valid keys: {', '.join(known)}" if known else ""
        return f"{place}: {key}: unknown key" + (f" ({hint})" if hint else "")
    problem = err["msg"].removeprefix("Value error, ")
    expected = (err.get("ctx") or {}).get("expected")
    if err["type"] == "literal_error" and isinstance(err.get("input"), str) and expected:
        options = [option.strip().strip("'") for option in str(expected).replace(" or ", ", ").split(",")]
        close = difflib.get_close_matches(err["input"], options, n=1)
        if close:
            problem += f" (did you mean `{close[0]}`?)"
    if err["type"] == "model_type":  # "Input should be a valid dictionary or instance of Limits"
        first = next(iter(_known_keys(err["loc"])), "key")
        problem = f"a section: its keys go below it, e.g. `{path[-1]}: {{{first}: ...}}` (see `agentflow init`)"
    elif err["type"] == "list_type":
        problem += " (write a list, e.g. `[first, second]`)"
    elif not problem.endswith(")") and (default := _default(err["loc"])) is not None:
        problem += f" (the default is `{default}`)"
    return f"{place}: {key}: {problem}"


def _default(path: tuple[str | int, ...]) -> str | None:
    """The default of the scalar at ``path`` as written in YAML (``3``, ``main``, ``false``, ``null``),
    or None for a section, a list or mapping, an item of one, a key of a free mapping."""
    import json

    value: object = Config()
    for part in path:
        if not isinstance(value, BaseModel) or not isinstance(part, str) or part not in type(value).model_fields:
            return None
        value = getattr(value, part)
    if isinstance(value, (BaseModel, list, dict)):
        return None  # a section or a collection: the problem is in what it holds, not in its default
    return value if isinstance(value, str) else json.dumps(value)


def parse_config(data: object, where: str, source: yamlsrc.YamlSource | None = None) -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of sections", where=where, fix="see `agentflow init`")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_problem(err, where, source) for err in exc.errors())) from None
    config.source = where
    return config


def load_config(root: Path) -> Config:
    """Read the config of the repository at ``root`` (defaults when there is none)."""
    yaml_text = read_config_file(root, CONFIG_FILE)
    return config_from_texts(yaml_text, read_config_file(root, PYPROJECT) if yaml_text is None else None)


def config_from_texts(yaml_text: str | None, pyproject_text: str | None) -> Config:
    """The config that ``agentflow.yaml`` (first) or ``[tool.agentflow]`` of pyproject.toml give,
    from their texts (a checkout's files, a revision's blobs, or what a run recorded)."""
    if yaml_text is not None:
        try:
            source = yamlsrc.load(yaml_text)
        except yaml.YAMLError as exc:
            line, problem = yamlsrc.syntax_error(exc)
            where = f"{CONFIG_FILE}:{line}" if line else CONFIG_FILE
            raise ConfigError(problem, where=where, fix="fix the YAML syntax") from None
        for path, line, first in source.duplicates:
            raise ConfigError(
                f"{'.'.join(path)}: duplicate key (first on line {first})",
                where=f"{CONFIG_FILE}:{line}",
                fix="keep one of them: YAML would silently use the last",
            )
        return parse_config(source.data, CONFIG_FILE, source)
    section = pyproject_section(pyproject_text)
    if section is not None:
        return parse_config(section, "pyproject.toml [tool.agentflow]")
    return Config()
