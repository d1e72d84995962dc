"""Option and argument values converted without pydantic where typer's own conversion is plain.

typer 0.29 converts every parameter's value through a pydantic ``TypeAdapter`` built on first use
(``typer._coercion.build_runtime_param``), even a ``None`` default: importing pydantic and building
the adapters was most of the start-up of ``agentflow status`` (#19 item 1). ``lighten(command)``
gives each parameter a converter that returns what typer's would for the values the CLI's own
annotations take (``str``, ``bool``, ``int``, ``float``, ``Path``, a ``StrEnum`` of choices, lists of
those) and hands anything else (a value it does not recognise, every error) to typer's converter, so
a bad value gets typer's own message. ``tests/test_cli_lazy.py`` compares the two on every parameter
of every command. With a typer whose internals differ, ``lighten`` does nothing (typer's converters
stay, slower but the same).
"""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

try:  # typer's private coercion layer (0.29); absent or different: nothing is replaced
    from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
    from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path
    from typer.core import _TyperParameter
except ImportError:  # pragma: no cover - another typer
    RuntimeParam = None  # type: ignore[assignment,misc]

_INT = re.compile(r"-?[0-9]{1,18}")
_FLOAT = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?")


class _Slow(Exception):
    """This value needs typer's own (pydantic) conversion."""


def _number(kind: type, info: Any, value: Any) -> Any:
    if info.clamp:
        raise _Slow
    if type(value) is kind:
        number = value
    elif type(value) is str and value.isascii() and (_INT if kind is int else _FLOAT).fullmatch(value):
        number = kind(value)
    else:
        raise _Slow
    if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
        raise _Slow
    return number


def _leaf(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    """What typer's ``build_leaf_adapter`` conversion returns for ``value``, or ``_Slow``."""
    if info.parser is not None:
        raise _Slow
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return coerce_cli_choice(value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
    if annotation is bool or annotation is str:
        if type(value) is annotation:
            return value
        raise _Slow
    if annotation is int or annotation is float:
        return _number(annotation, info, value)
    if routes_to_path(annotation, info) and annotation is Path and info.path_type is None:
        if type(value) is str:
            value = Path(value)  # what typer's TypeAdapter(Path) makes of a string
        elif not isinstance(value, Path):
            raise _Slow
        return coerce_cli_path(value, info, path_type=Path, param=param, ctx=ctx)
    raise _Slow


if RuntimeParam is not None:

    class LightRuntimeParam(RuntimeParam):
        """typer's conversion without pydantic for plain values; typer's own for the rest. A plain
        subclass of typer's frozen dataclass: a dataclass of its own costs about 1 ms at start-up."""

        descriptor: TypeDescriptor

        def __init__(self, annotation: Any, parameter_info: Any, descriptor: TypeDescriptor) -> None:
            super().__init__(parameter_info=parameter_info, annotation=annotation)
            object.__setattr__(self, "descriptor", descriptor)

        def __setattr__(self, name: str, value: Any) -> None:  # frozen, as typer's own are
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self, name: str) -> None:
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            annotation, info = self.descriptor.annotation, self.descriptor.parameter_info
            try:
                if get_origin(annotation) is list:
                    (item_type,) = get_args(annotation)
                    items = value if isinstance(value, (list, tuple)) else [value]
                    return [_leaf(item_type, info, item, param, ctx) for item in items]
                return _leaf(annotation, info, value, param, ctx)
            except Exception:  # noqa: BLE001 - _Slow, or an error typer must word: its own converter decides
                full = build_runtime_param(self.descriptor)
                param._runtime_param = full
                return full._coerce_value(value, param=param, ctx=ctx)


def _lighten_param(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if (
        isinstance(param, _TyperParameter)
        and getattr(param, "_runtime_param", False) is None
        and isinstance(descriptor, TypeDescriptor)
        and descriptor.file_annotation is None
    ):
        param._runtime_param = LightRuntimeParam(
            annotation=descriptor.annotation, parameter_info=descriptor.parameter_info, descriptor=descriptor
        )


def lighten(command: Any) -> None:
    """Give every typer parameter of ``command`` (and of its subcommands) the light converter,
    the ``--help`` option click makes per command on first use included."""
    if RuntimeParam is None:  # pragma: no cover - another typer
        return
    for param in command.params:
        _lighten_param(param)
    make_help_option = command.get_help_option
    if not getattr(make_help_option, "lightened", False):

        def get_help_option(ctx: Any) -> Any:
            option = make_help_option(ctx)
            if option is not None:
                _lighten_param(option)
            return option

        get_help_option.lightened = True  # type: ignore[attr-defined]
        command.get_help_option = get_help_option
    commands = getattr(command, "commands", None)
    if isinstance(commands, dict):
        for sub in commands.values():
            lighten(sub)
