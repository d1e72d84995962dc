"""The period a metrics report covers: ``--since``/``--until`` parsed into a half-open UTC interval."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from agentflow.errors import UsageError
from agentflow.metrics._record import record

DEFAULT_SINCE = "7d"

_RELATIVE = re.compile(r"^\s*(\d+)\s*([hdw])\s*$", re.IGNORECASE)
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def utc(ts: datetime) -> datetime:
    """``ts`` in UTC; a naive time is taken to be UTC already."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@record(frozen=True)
class Period:
    """A half-open interval ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __init__(self, start: datetime, end: datetime) -> None:
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def __contains__(self, ts: datetime | None) -> bool:
        if ts is None:
            return False
        return self.start <= (ts if ts.tzinfo is UTC else utc(ts)) < self.end

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> Period:
        """The period of the same length immediately before this one."""
        return Period(self.start - self.length, self.start)

    def days(self) -> list[date]:
        """Every UTC calendar day the period touches, in order."""
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _parse_moment(value: str, *, option: str, end_of_day: bool) -> datetime:
    """An ISO date or date-time; a bare date means its midnight (or the next one for ``--until``)."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        if option == "--until":  # a date or a date-time only: a duration is counted back from it
            raise UsageError(
                f"--until {value!r} is not an ISO date", fix="use e.g. --until 2026-11-30 or --until 2026-11-30T12:00"
            ) from None
        raise UsageError(
            f"{option} {value!r} is neither a duration nor an ISO date",
            fix=f"use e.g. {option} 7d, 2w, 24h or {option} 2026-11-20",
        ) from None


def _whole_second_after(now: datetime | None) -> datetime:
    """``now`` rounded up to a whole second: tidy timestamps that still include what just happened."""
    moment = utc(now or datetime.now(UTC))
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def parse_period(since: str | None, until: str | None, now: datetime | None = None) -> Period:
    """The period ``--since``/``--until`` describe; ``since`` defaults to ``7d`` and ``until`` to now.

    ``since`` is a duration (``24h``, ``7d``, ``2w``) counted back from ``until``, or an ISO date
    (its midnight UTC) or date-time. A bare ``until`` date includes that whole day.
    """
    end = _parse_moment(until, option="--until", end_of_day=True) if until else _whole_second_after(now)
    since = since or DEFAULT_SINCE
    match = _RELATIVE.match(since)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        if amount <= 0:
            raise UsageError(f"--since {since!r} is an empty period", fix="use a positive duration such as 7d")
        try:
            start = end - timedelta(hours=amount * _UNIT_HOURS[unit])
        except OverflowError:  # beyond datetime's year 1
            raise UsageError(
                f"--since {since!r} reaches back before the year 1", fix="use a shorter duration or an ISO date"
            ) from None
    else:
        start = _parse_moment(since, option="--since", end_of_day=False)
    if start >= end:
        raise UsageError(
            f"the period is empty: --since {start:%Y-%m-%d %H:%M} is not before --until {end:%Y-%m-%d %H:%M}",
            fix="pick a --since earlier than --until",
        )
    return Period(start, end)
