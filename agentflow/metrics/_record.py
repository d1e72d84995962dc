"""Dataclasses that cost almost nothing to define: ``@record`` (#19 item 1).

``@dataclass`` writes each class's ``__init__``, ``__repr__`` and ``__eq__`` (and, frozen, its
``__setattr__``, ``__delattr__`` and ``__hash__``) as source text and compiles it when the module is
imported: about 0.8 ms a class here, 1.3 ms frozen, and ``agentflow metrics`` defines 18 of them
(its facts, its period and its typed report) on every run. A ``@record`` class is the same
dataclass (``fields``, ``asdict``, ``replace`` and ``is_dataclass`` see it as one) whose
``__init__`` the class writes itself, in its module's source (compiled once, into its bytecode);
``__repr__``, ``__eq__`` and, frozen, the rest are this module's, written once for every class and
behaving as ``@dataclass``'s do. ``tests/test_metrics_records.py`` checks every record against the
dataclass ``@dataclass`` would make of the same fields: the same signature, repr, equality, hash,
``asdict`` and frozenness.

A record's ``__init__`` takes its fields in order, with the same defaults; a ``default_factory``
field defaults to ``FACTORY`` and is made by its factory when not given, as ``@dataclass``'s is.
"""

from __future__ import annotations

from _thread import get_ident
from dataclasses import FrozenInstanceError, dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


class _Factory:
    """The default of a ``default_factory`` field in a record's ``__init__`` (as ``@dataclass``'s)."""

    def __repr__(self) -> str:
        return "<factory>"


FACTORY: Any = _Factory()
_REPRS: set[tuple[int, int]] = set()  # (object, thread) reprs under way: a record inside itself shows "..."


def _repr(self: Any) -> str:
    key = (id(self), get_ident())
    if key in _REPRS:
        return "..."
    _REPRS.add(key)
    try:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_fields__)
        return f"{self.__class__.__qualname__}({shown})"
    finally:
        _REPRS.discard(key)


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        names = self.__record_fields__
        return tuple(getattr(self, name) for name in names) == tuple(getattr(other, name) for name in names)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, name) for name in self.__record_fields__))


def record(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """``cls`` as a dataclass with its own ``__init__``: ``@dataclass``'s repr, equality and (``frozen``)
    immutability and hash, none of them compiled at import."""

    def wrap(cls: type[T]) -> type[T]:
        if "__init__" not in cls.__dict__:
            raise TypeError(f"@record class {cls.__qualname__} writes its own __init__")
        made: Any = dataclass(init=False, repr=False, eq=False)(cls)
        made.__record_fields__ = tuple(f.name for f in fields(made))
        made.__repr__, made.__eq__ = _repr, _eq
        params = made.__dataclass_params__  # what the class does, as ``@dataclass(frozen=frozen)`` says
        params.init = params.repr = params.eq = True
        if frozen:
            names = frozenset(made.__record_fields__)

            def __setattr__(self: Any, name: str, value: Any) -> None:
                if type(self) is made or name in names:
                    raise FrozenInstanceError(f"cannot assign to field {name!r}")
                super(made, self).__setattr__(name, value)

            def __delattr__(self: Any, name: str) -> None:
                if type(self) is made or name in names:
                    raise FrozenInstanceError(f"cannot delete field {name!r}")
                super(made, self).__delattr__(name)

            made.__setattr__, made.__delattr__, made.__hash__ = __setattr__, __delattr__, _hash
            params.frozen = True
        else:
            made.__hash__ = None  # as a dataclass with eq and not frozen: unhashable
        return made

    return wrap if cls is None else wrap(cls)
