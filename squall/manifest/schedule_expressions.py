"""Schedule expressions of squall.yaml's `- schedule:` trigger: parsing `rate(...)`, AWS's
`cron(...)` and plain 5-field cron, and telling when a schedule fires.

`parse_schedule(text)` gives a `RateSchedule` or a `CronSchedule`; both answer
`next_fire(after, tz=..., anchor=...)` (the first fire strictly after `after`) and
`fire_times(start, end, tz=..., anchor=...)` (the fires in [start, end), for missed runs).
Every datetime going in must be timezone-aware; every one coming out is in UTC. The fields of
cron expressions are squall.manifest.cron_fields' business; the user reference is docs/events.md.

Rates (`rate(5 minutes)`, AWS units minute/hour/day, singular for 1, plus squall's `second`)
measure absolute time from their `anchor`, the time the schedule was first deployed: they fire
at anchor, anchor + period, anchor + 2 * period, ... (EventBridge Scheduler's rate schedules
also start at once). The time zone does not matter: `rate(1 day)` is 24 hours, DST or not.

Crons fire at whole minutes of wall-clock time in the time zone `tz`, each matching wall-clock
time at most once:
- a time skipped by a spring-forward gap (02:30 on 2026-03-08 in America/New_York) fires at the
  first instant after the gap (03:00 EDT), so a daily 02:30 job still runs exactly once that
  day. EventBridge Scheduler skips such runs instead; squall chooses not to lose a daily or
  monthly run to a clock change. Several times in the same gap (`*/15 * * * *`) and a 03:00
  time make a single fire at that instant, never a burst.
- a time repeated by a fall-back (01:30 on 2026-11-01 in America/New_York) fires at its first
  occurrence only (01:30 EDT), as EventBridge Scheduler does. This holds for every cron, even
  `*/15 * * * *`: it runs 01:00-01:45 EDT and then not again until 02:00 EST, never twice at the
  same wall-clock time. Write a rate(...) for fixed intervals of real time.
"""

from __future__ import annotations

import difflib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import takewhile
from zoneinfo import ZoneInfo, available_timezones

from squall.manifest.cron_fields import (
    CronFields,
    ScheduleExpressionError,
    parse_aws_cron,
    parse_unix_cron,
    quote,
)

__all__ = [
    "CronSchedule",
    "RateSchedule",
    "Schedule",
    "ScheduleExpressionError",
    "parse_schedule",
    "validate_timezone",
]

MAX_EXPRESSION_LENGTH = 200
RATE_UNITS = {"second": timedelta(seconds=1), "minute": timedelta(minutes=1),
              "hour": timedelta(hours=1), "day": timedelta(days=1)}
"""Units of rate(...): AWS's minute, hour and day, and squall's second."""

_WRAPPED = re.compile(r"(rate|cron)\((.*)\)", re.DOTALL)
_EXAMPLES = 'write rate(5 minutes), cron(0 3 * * ? *) or a 5-field cron such as "0 3 * * *"'
_RESOLUTION = timedelta(microseconds=1)


# ------------------------------------------------------------------ schedules


@dataclass(frozen=True)
class Schedule(ABC):
    """A parsed schedule expression; `expression` is the text as written (surrounding spaces removed)."""

    expression: str

    def next_fire(self, after: datetime, *, tz: ZoneInfo, anchor: datetime) -> datetime | None:
        """The first fire strictly after `after`, in UTC; None if the schedule never fires again.

        Crons read `tz` (the zone of their wall-clock times) and rates `anchor` (when the
        schedule was first deployed); a caller passes both whatever the kind.
        """
        after, anchor = _in_utc(after=after, anchor=anchor)
        return next(self._fires_after(after, tz, anchor), None)

    def fire_times(self, start: datetime, end: datetime, *, tz: ZoneInfo,
                   anchor: datetime) -> Iterator[datetime]:
        """The fires in [start, end), in order and in UTC (`tz` and `anchor` as in `next_fire`)."""
        start, end, anchor = _in_utc(start=start, end=end, anchor=anchor)
        return takewhile(lambda fire: fire < end, self._fires_after(start - _RESOLUTION, tz, anchor))

    @abstractmethod
    def _fires_after(self, after: datetime, tz: ZoneInfo, anchor: datetime) -> Iterator[datetime]:
        """Every fire strictly after `after`, increasing; all three datetimes in UTC."""


@dataclass(frozen=True)
class RateSchedule(Schedule):
    """`rate(N unit)`: fires every `period` of absolute time, starting at the anchor."""

    period: timedelta

    def _fires_after(self, after: datetime, tz: ZoneInfo, anchor: datetime) -> Iterator[datetime]:
        index = 0 if after < anchor else (after - anchor) // self.period + 1
        while True:
            try:
                fire = (anchor + index * self.period).astimezone(UTC)
            except OverflowError:
                return
            yield fire
            index += 1


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """`cron(...)` or a 5-field cron: fires at the wall-clock times `fields` match, in `tz`."""

    fields: CronFields

    def _fires_after(self, after: datetime, tz: ZoneInfo, anchor: datetime) -> Iterator[datetime]:
        # Wall-clock order is instant order (`_instant` never goes back), and every wall-clock
        # time before the minute of `after` maps to an instant at or before `after`.
        start = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        latest = after
        for wall in self.fields.wall_times(start):
            fire = _instant(wall, tz)
            if fire > latest:
                latest = fire
                yield fire


def _in_utc(**moments: datetime) -> list[datetime]:
    """The aware `moments` in UTC: Python adds to and compares datetimes of one tzinfo by their
    wall-clock fields, which a DST change makes wrong."""
    for name, moment in moments.items():
        if moment.utcoffset() is None:
            raise ValueError(f"{name} must be a timezone-aware datetime, got {moment.isoformat()}")
    return [moment.astimezone(UTC) for moment in moments.values()]


# ------------------------------------------------------------------ wall-clock time and DST


def _instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The UTC instant a naive wall-clock time of `tz` fires at: itself, its first occurrence
    when a fall-back repeats it, or the end of the gap when a spring-forward skips it."""
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    return _gap_end(first)


def _gap_end(skipped: datetime) -> datetime:
    """The transition instant (in UTC) of the gap holding the aware wall-clock time `skipped`.

    Read with the offset from before the gap (fold=0) and from after it (fold=1), `skipped`
    gives two instants on either side of the transition; bisect to the second.
    """
    low, high = sorted((skipped.replace(fold=1).astimezone(UTC), skipped.replace(fold=0).astimezone(UTC)))
    tz = skipped.tzinfo
    offset_after = high.astimezone(tz).utcoffset()
    before, after = 0, int((high - low).total_seconds())
    while after - before > 1:
        middle = (before + after) // 2
        if (low + timedelta(seconds=middle)).astimezone(tz).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return low + timedelta(seconds=after)


# ------------------------------------------------------------------ parsing


def parse_schedule(text: str) -> Schedule:
    """`rate(N unit)`, `cron(6 AWS fields)` or a 5-field Unix cron; raises ScheduleExpressionError."""
    expression = text.strip()
    if not expression:
        raise ScheduleExpressionError(f"the schedule expression is empty; {_EXAMPLES}")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ScheduleExpressionError(f"schedule expression {quote(expression)} is too long "
                                      f"({len(expression)} characters, at most {MAX_EXPRESSION_LENGTH})")
    wrapped = _WRAPPED.fullmatch(expression)
    if wrapped:
        kind, body = wrapped.groups()
        if kind == "rate":
            return RateSchedule(expression, _rate_period(expression, body))
        return CronSchedule(expression, parse_aws_cron(expression, body))
    if expression.startswith(("rate(", "cron(")):
        raise ScheduleExpressionError(f'{expression}: missing ")" at the end')
    fields = expression.split()
    if len(fields) == 5:
        return CronSchedule(expression, parse_unix_cron(expression))
    if len(fields) == 6:
        raise ScheduleExpressionError(f"{quote(expression)}: a 6-field cron is AWS syntax; write it as "
                                      f"cron({' '.join(fields)})")
    raise ScheduleExpressionError(f"unknown schedule expression {quote(expression)}; {_EXAMPLES}")


def _rate_period(expression: str, body: str) -> timedelta:
    parts = body.split()
    if len(parts) != 2:
        raise ScheduleExpressionError(f"{expression}: write a number and a unit, as in rate(5 minutes)")
    number, unit = parts
    if not re.fullmatch(r"[0-9]+", number) or int(number) == 0:
        raise ScheduleExpressionError(f"{expression}: the value must be a positive whole number")
    value = int(number)
    singular = unit.removesuffix("s")
    if singular not in RATE_UNITS:
        units = [*RATE_UNITS, *(name + "s" for name in RATE_UNITS)]
        close = difflib.get_close_matches(unit.lower(), units, n=1)
        guess = f' (did you mean "{close[0]}"?)' if close else ""
        raise ScheduleExpressionError(f"{expression}: unknown unit {quote(unit)}{guess}; "
                                      "use minute(s), hour(s), day(s) or second(s)")
    correct = singular if value == 1 else singular + "s"
    if unit != correct:
        rule = "singular for 1" if value == 1 else "plural for values other than 1"
        raise ScheduleExpressionError(f"{expression}: write rate({value} {correct}); the unit is {rule}")
    try:
        return value * RATE_UNITS[singular]
    except OverflowError:
        raise ScheduleExpressionError(f"{expression}: the value is too large") from None


# ------------------------------------------------------------------ time zones


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (`Europe/Paris`, `UTC`); raises ScheduleExpressionError."""
    names = _zone_names()
    if name in names:
        return ZoneInfo(name)
    same_letters = [zone for zone in names if zone.lower() == name.lower()]
    close = same_letters or difflib.get_close_matches(name, sorted(names), n=1)
    hint = f"did you mean {quote(close[0])}?" if close else 'use an IANA name such as "Europe/Paris" or "UTC"'
    raise ScheduleExpressionError(f"unknown time zone {quote(name)}; {hint}")
