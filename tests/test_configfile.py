"""The config read without pydantic (agentflow.configfile, #19): the models' schema, the same values
for every config the models accept plainly, and the models' own errors for everything else."""

from __future__ import annotations

import copy
import json
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentflow.config import Config, config_from_texts
from agentflow.configfile import SCHEMA, ConfigView, config_view, kept_stricter, plain_config
from agentflow.errors import ConfigError
from agentflow.project import CONFIG_TEMPLATE

KINDS = {str: "str", str | None: "str?", int: "int", float: "float", bool: "bool", list[str]: "strs"}


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """SCHEMA's shape, derived from the pydantic models."""
    out = {}
    for name, field in model.model_fields.items():
        if field.exclude:
            continue  # `source`: set by the reader, not read from the file
        annotation = field.annotation
        default = field.get_default(call_default_factory=True)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            kind: Any = ("section", _schema_of(annotation))
            default = default.model_dump()
        elif typing.get_origin(annotation) is typing.Literal:
            kind = ("literal", typing.get_args(annotation))
        elif annotation == dict[str, list[str]]:
            kind = "strs_by_str"
        elif typing.get_origin(annotation) is list and len(typing.get_args(typing.get_args(annotation)[0])) == 2:
            kind = "checks"  # list[str | CheckSpec]
        else:
            kind = KINDS[annotation]
        bounds = {}
        for item in field.metadata:
            for bound in ("ge", "gt", "le", "lt"):
                if getattr(item, bound, None) is not None:
                    bounds[bound] = getattr(item, bound)
        out[name] = (kind, default, bounds)
    return out


def _schema_with_defaults_as_dicts(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        name: ((kind[0], _schema_with_defaults_as_dicts(kind[1])) if kind[0] == "section" else kind, default, bounds)
        if isinstance(kind, tuple)
        else (kind, default, bounds)
        for name, (kind, default, bounds) in schema.items()
    }


def test_the_schema_is_the_models() -> None:
    assert _schema_with_defaults_as_dicts(SCHEMA) == _schema_of(Config)


def _models(data: Any) -> tuple[str, Any]:
    try:
        config = config_from_texts(json.dumps(data), None)  # JSON is YAML
    except ConfigError as exc:
        return "error", str(exc)
    return "ok", config.model_dump()


def _variants(data: Any, path: tuple[Any, ...] = ()) -> list[Any]:
    """``data`` with one value replaced, one key dropped or one unknown key added, at every place."""
    samples: list[Any] = [None, True, False, 0, 1, -1, 2, 7, 20, 21, 99, 100, 255, 256, 10**400, 0.5, 1.0, 1.5, 0.0]
    samples += [float("inf"), float("nan"), "", "x", "off", "auto", "scripted", "nope", [], ["a"], [1], {}, {"k": []}]
    samples += [{"k": ["v"]}, {"k": "v"}, {1: ["v"]}, [{"run": "pytest", "junit": True}], ["pytest -q", ""]]
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            for sample in samples:
                found.append((path + (key,), sample))
            found += _variants(value, path + (key,))
            found.append((path + (key,), "<drop>"))
        found.append((path + ("unknown_key",), 1))
    return found


def _apply(data: dict[str, Any], where: tuple[Any, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    node = changed
    for key in where[:-1]:
        node = node[key]
    if value == "<drop>":
        node.pop(where[-1], None)
    else:
        node[where[-1]] = value
    return changed


def test_the_view_equals_the_models_or_leaves_it_to_them() -> None:
    template = json.loads(json.dumps(Config().model_dump()))  # every section and field, as init writes them
    plain = 0
    cases = [template, {}, None] + [_apply(template, where, value) for where, value in _variants(template)]
    for data in cases:
        view = plain_config(data)
        verdict, dumped = _models(data)
        if view is not None:
            assert verdict == "ok", (data, dumped)
            assert view.to_dict() == dumped, data
            plain += 1
    assert len(cases) > 1500 and plain > 250  # most that the models take as they are (337 of 1953)


@pytest.mark.parametrize(
    "yaml_text",
    [
        CONFIG_TEMPLATE,
        "",
        "base: develop\nlimits:\n  session_seconds: 90\n",
        "models:\n  evaluator:\n    backend: scripted\n    script: s.json\n",  # the class's defaults, not the field's
        "gate:\n  require_signature: true\n  protected_branches: [main, 'release/*']\n",
    ],
)
def test_config_view_of_plain_yaml_needs_no_models(yaml_text: str) -> None:
    view = config_view(yaml_text, None)
    assert isinstance(view, ConfigView)
    config = config_from_texts(yaml_text, None)
    assert view.to_dict() == config.model_dump() and view.source == config.source


@pytest.mark.parametrize(
    "yaml_text",
    [
        "limits:\n  max_cycles: 50\n",
        "gaet:\n  require_signature: true\n",
        "base: main\nbase: develop\n",
        "base: [unclosed\n",
        "- a list\n",
        "checks:\n  - {run: pytest, junit: true}\n",
        "sandbox:\n  mode: off\n",  # YAML's false, which the model reads as "off"
        "limits:\n  max_turns: '60'\n",
    ],
)
def test_anything_else_is_read_by_the_models(yaml_text: str) -> None:
    try:
        expected: Any = config_from_texts(yaml_text, None).model_dump()
    except ConfigError as exc:
        with pytest.raises(ConfigError) as raised:
            config_view(yaml_text, None)
        assert str(raised.value) == str(exc)
        return
    got = config_view(yaml_text, None)
    assert not isinstance(got, ConfigView) and got.model_dump() == expected


def test_pyproject_and_no_config() -> None:
    pyproject = (
        '[project]\nname = "x"\n\n[tool.agentflow]\nbase = "trunk"\n\n[tool.agentflow.gate]\nrequire_sandbox = true\n'
    )
    for texts in [(None, pyproject), (None, None), (None, "[project]\nname = 'x'\n")]:
        view, config = config_view(*texts), config_from_texts(*texts)
        assert isinstance(view, ConfigView)
        assert view.to_dict() == config.model_dump() and view.source == config.source
    with pytest.raises(ConfigError, match="pyproject.toml"):
        config_view(None, "[tool.agentflow\n")


def test_a_stricter_checkout_requires_signatures_on_either_kind() -> None:
    view = config_view("base: main\n", None)
    models = config_from_texts("checks:\n  - {run: pytest, junit: true}\n", None)
    strict_checkout = config_view("gate:\n  require_signature: true\n", None)
    for config in (view, models):
        stricter = kept_stricter(config, strict_checkout)
        assert stricter.gate.require_signature is True and config.gate.require_signature is False
        assert stricter.base == config.base and stricter.gate.protected_branches == ["main", "master"]
        assert kept_stricter(config, view) is config  # a checkout that asks nothing more changes nothing


def test_the_view_is_what_gate_and_hooks_read(tmp_path: Path) -> None:
    """Every attribute the gate and the hooks read of a config exists on the view."""
    view = config_view(CONFIG_TEMPLATE, None)
    assert isinstance(view, types.SimpleNamespace)
    for path in ("base", "gate.require_signature", "gate.require_sandbox", "gate.override_not_by_author"):
        node: Any = view
        for part in path.split("."):
            node = getattr(node, part)
    assert view.gate.protected_branches == ["main", "master"] and view.patterns.file == "CLAUDE.md"
