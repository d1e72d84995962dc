"""``@record`` (``agentflow.metrics._record``): each record of the metrics report, its facts and its
period behaves as the dataclass ``@dataclass`` makes of the same fields. The records write their own
``__init__`` (nothing compiled at import, #19 item 1), so a field added to a class but not to its
``__init__`` (or with another default) must fail here."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime

import pytest

from agentflow.metrics import _record, facts, model, period

RECORDS = [
    *(getattr(model, name) for name in model.__all__ if inspect.isclass(getattr(model, name))),
    facts.Usage,
    facts.VerdictFact,
    facts.RunFact,
    facts.SessionFact,
    facts.CommitFact,
    facts.Facts,
    period.Period,
]
FROZEN = {facts.Usage, period.Period}


def _reference(cls: type) -> type:
    """The dataclass ``@dataclass`` makes of ``cls``'s fields (same names, types, defaults, order)."""
    spec = []
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            spec.append((f.name, f.type, dataclasses.field(default_factory=f.default_factory)))
        elif f.default is not dataclasses.MISSING:
            spec.append((f.name, f.type, dataclasses.field(default=f.default)))
        else:
            spec.append((f.name, f.type))
    return dataclasses.make_dataclass(
        cls.__name__, spec, frozen=cls in FROZEN, namespace={"__qualname__": cls.__qualname__}
    )


def _values(cls: type, salt: int) -> dict[str, object]:
    """A distinct value for every field (``salt`` varies them), nested lists and dicts included."""
    out: dict[str, object] = {}
    for n, f in enumerate(dataclasses.fields(cls)):
        out[f.name] = [salt, n] if f.default_factory is not dataclasses.MISSING else f"{f.name}-{salt}-{n}"
    return out


def test_every_record_is_one() -> None:
    assert len(RECORDS) == 18
    for cls in RECORDS:
        assert dataclasses.is_dataclass(cls) and "__init__" in cls.__dict__, cls
        assert cls.__repr__ is _record._repr and cls.__eq__ is _record._eq, cls


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_a_record_behaves_as_its_dataclass(cls: type) -> None:
    ref = _reference(cls)
    ours, theirs = inspect.signature(cls), inspect.signature(ref)
    assert list(ours.parameters) == list(theirs.parameters)
    for name, param in ours.parameters.items():
        other = theirs.parameters[name]
        assert param.kind == other.kind, name
        assert repr(param.default) == repr(other.default), name  # "<factory>" for a default_factory
        if param.default is not inspect.Parameter.empty and param.default is not _record.FACTORY:
            assert param.default == other.default, name
    values = _values(cls, 1)
    required = {
        name: value for name, value in values.items() if ours.parameters[name].default is inspect.Parameter.empty
    }
    for args, kwargs in [((), values), (tuple(values.values()), {}), ((), required)]:
        a, b = cls(*args, **kwargs), ref(*args, **kwargs)
        assert repr(a) == repr(b)
        assert dataclasses.asdict(a) == dataclasses.asdict(b) and dataclasses.astuple(a) == dataclasses.astuple(b)
        assert a == cls(*args, **kwargs) and (a != cls(*args, **kwargs)) is False
        assert a != cls(**_values(cls, 2)) and (a == b) is False  # another class: not equal, as dataclasses
        assert dataclasses.replace(a) == a and dataclasses.replace(a) is not a
    made = cls(**required)
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(made, f.name) == f.default_factory()
            assert getattr(made, f.name) is not getattr(cls(**required), f.name)  # a new one each time
    if cls in FROZEN:
        assert hash(made) == hash(ref(**required))
        name = dataclasses.fields(cls)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
            setattr(made, name, 1)
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot delete field"):
            delattr(made, name)
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.other = 1  # type: ignore[attr-defined]
    else:
        with pytest.raises(TypeError, match="unhashable"):
            hash(made)
    with pytest.raises(TypeError):
        cls(*values.values(), "one too many")
    if required:
        with pytest.raises(TypeError):
            cls()


def test_a_record_inside_itself_shows_dots_as_a_dataclass_does() -> None:
    run = facts.RunFact("r", None)
    run.verdicts.append(run)  # type: ignore[arg-type]
    assert repr(run).endswith("verdicts=[...], synthetic=False)")
    assert repr(run) == repr(run)  # the guard is released after each repr


def test_the_period_and_usage_keep_their_methods() -> None:
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC)
    week = period.Period(start, end)
    assert week.previous() == period.Period(datetime(2026, 10, 25, tzinfo=UTC), start)
    assert start in week and end not in week and len(week.days()) == 7
    assert facts.Usage(1, 2) + facts.Usage(cache_read=3) == facts.Usage(1, 2, 3, 0)
    assert {week: 1}[period.Period(start, end)] == 1


def test_a_record_must_write_its_init() -> None:
    with pytest.raises(TypeError, match="writes its own __init__"):

        @_record.record
        class Bare:
            x: int
