"""The config's files, and the config read without pydantic by commands that only look at it.

``agentflow.config`` validates the config with pydantic models; importing and building them is
most of the start-up of ``agentflow status`` and ``agentflow gate`` (#19). ``config_view`` gives
those commands what ``agentflow.config.config_from_texts`` would, as a read-only ``ConfigView``
with the same attributes and values, when the config is plainly valid: every key one the models
know, every value of the type the models keep as it is (an integer where a float is wanted is
made a float, as pydantic does) and within their bounds. Anything else (an unknown key, another
type, a value out of range, check objects, duplicate keys, a syntax error) goes to
``config_from_texts`` itself, so every problem is reported by the models, in their words. ``SCHEMA``
is the models' fields, defaults and bounds; ``tests/test_configfile.py`` derives it from the
models and compares, and checks the view against the models on variations of every field.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from agentflow.errors import ConfigError
from agentflow.files import read_text_file
from agentflow.models import BACKEND_NAMES

if TYPE_CHECKING:
    from agentflow.config import Config

CONFIG_FILE = "agentflow.yaml"
PYPROJECT = "pyproject.toml"


def read_config_file(root: Path, name: str) -> str | None:
    """The text of ``root/name`` (None when absent); exit 2 naming the file when unreadable."""
    path = root / name
    if not path.exists():
        return None
    if path.is_symlink() or not path.is_file():
        _regular_in(root, path, name)
    return read_text_file(path, where=name, error=ConfigError)


def _regular_in(root: Path, path: Path, name: str) -> None:
    """A config file that is a symbolic link must lead to a regular file inside ``root``: the checkout
    may be a pull request's, whose link to a FIFO or /dev/zero made every command hang, and whose link
    out of the repository made agentflow (unsandboxed) read a file of the host."""
    real = path.resolve()
    if real.is_file() and real.is_relative_to(root.resolve()):
        return
    raise ConfigError(
        f"not a regular file in the repository (it leads to {real})",
        where=name,
        fix=f"replace {name} with the file itself, or a link to a file inside the repository",
    )


def pyproject_section(text: str | None) -> object | None:
    """The ``[tool.agentflow]`` table of a pyproject.toml text (None when absent)."""
    if text is None:
        return None
    import tomllib  # imported here: most checkouts configure agentflow in agentflow.yaml (start-up)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(exc), where=PYPROJECT, fix="fix the TOML syntax") from None
    except RecursionError:  # arrays nested thousands deep (a pull request's pyproject.toml): exit 2, not 3
        raise ConfigError("nested too deep", where=PYPROJECT, fix="fix the TOML") from None
    tool = data.get("tool", {})
    return tool.get("agentflow") if isinstance(tool, dict) else None


# -- the models' fields: (kind, default, bounds); a section is (("section", SCHEMA), default values) --


def _role(model: str) -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    return {
        "backend": (("literal", BACKEND_NAMES), "anthropic", {}),
        "model": ("str", model, {}),
        "script": ("str?", None, {}),
        "command": ("str?", None, {}),
    }


def _defaults(schema: dict[str, Any]) -> dict[str, Any]:
    return {name: default for name, (_, default, _) in schema.items()}


_ROLE = _role("claude-sonnet-5-5")
_LIMITS = {
    "max_cycles": ("int", 3, {"ge": 1, "le": 20}),
    "max_turns": ("int", 60, {"ge": 1}),
    "max_tokens": ("int", 4_000_000, {"ge": 1}),
    "session_cost_usd": ("float", 5.0, {"gt": 0}),
    "run_cost_usd": ("float", 20.0, {"gt": 0}),
    "session_seconds": ("float", 1800.0, {"gt": 0}),
    "command_timeout": ("float", 600.0, {"gt": 0}),
    "output_tokens": ("int", 8192, {"ge": 256}),
}
_THRESHOLDS = {
    "sibling_share": ("float", 0.5, {"gt": 0, "lt": 1}),
    "min_family": ("int", 3, {"ge": 2}),
    "scope_share": ("float", 0.5, {"gt": 0, "lt": 1}),
}
_EVENTS = {
    "paths": ("strs", [], {}),
    "type_field": ("str?", None, {}),
    "isolation_fields": ("strs", ["tenant_id", "capsule_id"], {}),
    "exempt_types": ("strs", [], {}),
    "required": ("strs_by_str", {}, {}),
    "infer_scope": ("bool", True, {}),
    "thresholds": (("section", _THRESHOLDS), _defaults(_THRESHOLDS), {}),
}
_GATE = {
    "require_signature": ("bool", False, {}),
    "override_not_by_author": ("bool", False, {}),
    "require_sandbox": ("bool", False, {}),
    "protected_branches": ("strs", ["main", "master"], {}),
}
_PATTERNS = {"file": ("str", "CLAUDE.md", {}), "token_budget": ("int", 6000, {"ge": 100})}
_SANDBOX = {
    "mode": (("literal", ("auto", "bwrap", "off")), "auto", {}),
    "network": ("bool", False, {}),
    "env": ("strs", [], {}),
    "hide": ("strs", [], {}),
}
_MODELS = {
    "builder": (("section", _ROLE), _defaults(_ROLE), {}),
    "verifier": (("section", _ROLE), _defaults(_ROLE), {}),
    "evaluator": (("section", _ROLE), _defaults(_role("claude-haiku-5-5")), {}),
}
SCHEMA: dict[str, tuple[Any, Any, dict[str, Any]]] = {
    "base": ("str", "main", {}),
    "checks": ("checks", [], {}),
    "models": (("section", _MODELS), _defaults(_MODELS), {}),
    "limits": (("section", _LIMITS), _defaults(_LIMITS), {}),
    "events": (("section", _EVENTS), _defaults(_EVENTS), {}),
    "gate": (("section", _GATE), _defaults(_GATE), {}),
    "patterns": (("section", _PATTERNS), _defaults(_PATTERNS), {}),
    "sandbox": (("section", _SANDBOX), _defaults(_SANDBOX), {}),
}


class ConfigView(SimpleNamespace):
    """A read-only look at a valid config: the attributes of ``agentflow.config.Config`` (and of
    its sections), with its values."""

    def to_dict(self) -> dict[str, Any]:
        """What ``Config.model_dump()`` gives (``source`` excluded, as there)."""
        return {
            name: value.to_dict() if isinstance(value, ConfigView) else copy.deepcopy(value)
            for name, value in vars(self).items()
            if name != "source"
        }


class _Other(Exception):
    """Not plainly valid: the models decide."""


def _within(number: float, bounds: dict[str, Any]) -> bool:
    return not (
        ("ge" in bounds and number < bounds["ge"])
        or ("gt" in bounds and number <= bounds["gt"])
        or ("le" in bounds and number > bounds["le"])
        or ("lt" in bounds and number >= bounds["lt"])
    )


def _value(kind: Any, value: Any, bounds: dict[str, Any]) -> Any:
    if isinstance(kind, tuple) and kind[0] == "section":
        return _section(kind[1], value)
    if isinstance(kind, tuple):  # literal
        if type(value) is not str or value not in kind[1]:
            raise _Other
        return value
    if kind in ("str", "bool"):
        if type(value) is not (str if kind == "str" else bool):
            raise _Other
        return value
    if kind == "str?":
        if value is not None and type(value) is not str:
            raise _Other
        return value
    if kind in ("int", "float"):
        if type(value) is not int and (kind == "int" or type(value) is not float):
            raise _Other
        try:
            number = value if kind == "int" else float(value)  # pydantic makes a JSON/YAML integer a float
        except OverflowError:
            raise _Other from None
        if (kind == "float" and not math.isfinite(number)) or not _within(number, bounds):
            raise _Other
        return number
    if kind in ("strs", "checks"):  # check objects ({run, junit}) are the models' to read
        if type(value) is not list or any(type(item) is not str for item in value):
            raise _Other
        return list(value)
    if kind == "strs_by_str":
        if type(value) is not dict or any(type(k) is not str for k in value):
            raise _Other
        return {key: _value("strs", item, {}) for key, item in value.items()}
    raise _Other  # pragma: no cover - a kind SCHEMA does not use


def _section(schema: dict[str, Any], data: Any) -> ConfigView:
    if type(data) is not dict or any(type(key) is not str or key not in schema for key in data):
        raise _Other
    values = {}
    for name, (kind, default, bounds) in schema.items():
        if name in data:
            values[name] = _value(kind, data[name], bounds)
        elif isinstance(kind, tuple) and kind[0] == "section":
            values[name] = _section(kind[1], copy.deepcopy(default))
        else:
            values[name] = copy.deepcopy(default)
    return ConfigView(**values)


def plain_config(data: Any) -> ConfigView | None:
    """The view of config data (a parsed agentflow.yaml or [tool.agentflow]) when it is plainly
    valid, else None (the models decide)."""
    try:
        return _section(SCHEMA, {} if data is None else data)
    except _Other:
        return None


_PARSED: dict[str, Any] = {}  # YAML text -> its data: the gate reads the checkout's and the base's, mostly the same


def _yaml_data(text: str) -> Any:
    """The data of an agentflow.yaml text, or ``_Other`` when the models' reader must word a problem."""
    if text not in _PARSED:
        import yaml

        from agentflow import yamlsrc

        try:
            source = yamlsrc.load(text)
        except yaml.YAMLError:
            source = None
        _PARSED[text] = _Other if source is None or source.duplicates else source.data
    return copy.deepcopy(_PARSED[text])


def config_view(yaml_text: str | None, pyproject_text: str | None) -> ConfigView | Config:
    """``agentflow.config.config_from_texts(yaml_text, pyproject_text)``, as a ``ConfigView`` when
    the config is plainly valid (see the module docstring); otherwise that function's ``Config``,
    or its ``ConfigError``."""
    data: Any = {}
    where = None
    if yaml_text is not None:
        data = _yaml_data(yaml_text)
        where = CONFIG_FILE
    else:
        section = pyproject_section(pyproject_text)
        if section is not None:
            data, where = section, "pyproject.toml [tool.agentflow]"
    view = None if data is _Other else plain_config(data)
    if view is None:
        from agentflow.config import config_from_texts

        return config_from_texts(yaml_text, pyproject_text)
    view.source = where
    return view


def load_config_view(root: Path) -> ConfigView | Config:
    """``config_view`` of the repository at ``root`` (what ``agentflow.config.load_config`` reads)."""
    yaml_text = read_config_file(root, CONFIG_FILE)
    return config_view(yaml_text, read_config_file(root, PYPROJECT) if yaml_text is None else None)


def kept_stricter(trusted: ConfigView | Config, local: ConfigView | Config) -> ConfigView | Config:
    """``trusted`` (the config a change cannot edit: a branch's tip), with ``gate.require_signature``
    true when the checkout's ``local`` config asks for it: the checkout may only make it stricter."""
    if not local.gate.require_signature or trusted.gate.require_signature:
        return trusted
    if isinstance(trusted, ConfigView):
        stricter = copy.copy(trusted)
        stricter.gate = copy.copy(trusted.gate)
        stricter.gate.require_signature = True
        return stricter
    return trusted.model_copy(update={"gate": trusted.gate.model_copy(update={"require_signature": True})})
