"""The fields of cron schedule expressions: the body of AWS's six-field `cron(...)` and the plain
five-field Unix cron, parsed into the minutes, hours, days, months and years they allow, and the
walk over the wall-clock times they match.

AWS (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html):
`minute hour day-of-month month day-of-week year`; exactly one of the day fields is `?`;
day-of-week 1-7 is SUN-SAT; day-of-month takes `L` (last day), `LW` (last weekday) and `15W`
(the weekday nearest the 15th, never leaving the month); day-of-week takes `L` (SAT, the last
day of the week), `6L` (the last Friday of the month) and `3#2` (the second Tuesday); years run
1970-2199. `L`, `W` and `#` must be the whole field (AWS allows one `#` expression only).

Unix: `minute hour day-of-month month day-of-week`, day-of-week 0-7 with 0 and 7 = Sunday; when
both day fields are restricted (neither starts with `*`) a day matching either runs (Vixie cron).

Everything here is naive wall-clock time: squall.manifest.schedule_expressions turns it into
instants of a time zone.
"""

from __future__ import annotations

import bisect
import calendar
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

FIRST_YEAR = 1970
LAST_YEAR = 2199
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
AWS_FIELDS = "minute hour day-of-month month day-of-week year"
SATURDAY, SUNDAY = 6, 0
"""Week days here count from 0 = Sunday."""

_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DIGITS = re.compile(r"[0-9]+")
_AWS_ONLY = re.compile(r"[?#]|\bLW?\b|[0-9]+[LW]\b", re.IGNORECASE)
_SHOWN = 60


class ScheduleExpressionError(ValueError):
    """A schedule expression or time zone that cannot be used; the message says what and where."""


class _FieldError(Exception):
    """A problem inside the fields; the parse functions prefix it with the whole expression."""


def quote(text: str) -> str:
    """`text` in double quotes as error messages show it (at most 60 characters)."""
    return json.dumps(text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "...", ensure_ascii=False)


# ------------------------------------------------------------------ model


@dataclass(frozen=True)
class MonthDays:
    """A day-of-month field: the `days` listed, or the `last` day (L), the `last_weekday` (LW)
    or the weekday nearest the `nearest_weekday`-th (15W)."""

    days: frozenset[int] = frozenset()
    last: bool = False
    last_weekday: bool = False
    nearest_weekday: int = 0

    def in_month(self, first_weekday: int, length: int) -> set[int]:
        if self.last:
            return {length}
        target = length if self.last_weekday else self.nearest_weekday
        if target:
            return {_nearest_weekday(target, first_weekday, length)} if target <= length else set()
        return {day for day in self.days if day <= length}


@dataclass(frozen=True)
class WeekDays:
    """A day-of-week field (0 = Sunday): every one of `days`, or with `nth` the nth (1-5) or
    last (-1) of the single day in `days`."""

    days: frozenset[int]
    nth: int = 0

    def in_month(self, first_weekday: int, length: int) -> set[int]:
        if not self.nth:
            return {day for day in range(1, length + 1) if (first_weekday + day - 1) % 7 in self.days}
        (weekday,) = self.days
        first = 1 + (weekday - first_weekday) % 7
        day = first + 7 * ((length - first) // 7 if self.nth < 0 else self.nth - 1)
        return {day} if day <= length else set()


@dataclass(frozen=True)
class DayRule:
    """Both day fields; None is `?`. With `either` (Unix, both restricted) a day matching one
    of them is enough, otherwise it must match both."""

    month_days: MonthDays | None
    week_days: WeekDays | None
    either: bool = False


@dataclass(frozen=True)
class CronFields:
    """What a cron expression allows, each tuple sorted."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: DayRule
    months: tuple[int, ...]
    years: tuple[int, ...]

    def days_of(self, year: int, month: int) -> tuple[int, ...]:
        """The days of that month the day fields match, in order."""
        return _days_of(self.days, year, month)

    def wall_times(self, start: datetime) -> Iterator[datetime]:
        """The naive wall-clock times matched, in order, from the naive `start` on (seconds ignored).

        The work is per matching day and time: months and years that cannot match are skipped.
        """
        first_day, first_time = start.date(), (start.hour, start.minute)
        for year in self.years[bisect.bisect_left(self.years, start.year):]:
            for month in self.months:
                if (year, month) < (first_day.year, first_day.month):
                    continue
                for day in self.days_of(year, month):
                    today = date(year, month, day)
                    if today < first_day:
                        continue
                    for hour in self.hours:
                        for minute in self.minutes:
                            if today > first_day or (hour, minute) >= first_time:
                                yield datetime(year, month, day, hour, minute)


def _nearest_weekday(day: int, first_weekday: int, length: int) -> int:
    """The Monday-to-Friday day nearest `day` in its month (Quartz's `W`: never another month)."""
    weekday = (first_weekday + day - 1) % 7
    if weekday == SATURDAY:
        return day - 1 if day > 1 else day + 2
    if weekday == SUNDAY:
        return day + 1 if day < length else day - 2
    return day


@lru_cache(maxsize=4096)
def _days_of(rule: DayRule, year: int, month: int) -> tuple[int, ...]:
    monday_based, length = calendar.monthrange(year, month)
    first_weekday = (monday_based + 1) % 7
    by_month = rule.month_days.in_month(first_weekday, length) if rule.month_days else None
    by_week = rule.week_days.in_month(first_weekday, length) if rule.week_days else None
    if by_month is None or by_week is None:
        days = by_month if by_week is None else by_week
        return tuple(sorted(days if days is not None else range(1, length + 1)))
    return tuple(sorted(by_month | by_week if rule.either else by_month & by_week))


# ------------------------------------------------------------------ parsing


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    """Names of low, low + 1, ... (any case)."""
    steps: bool = True


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, MONTH_NAMES)
_AWS_DAY_OF_WEEK = _Field("day-of-week", 1, 7, DAY_NAMES, steps=False)
_UNIX_DAY_OF_WEEK = _Field("day-of-week", 0, 7, DAY_NAMES)
_YEAR = _Field("year", FIRST_YEAR, LAST_YEAR)


def parse_aws_cron(expression: str, body: str) -> CronFields:
    """The fields of `cron(body)`; errors start with `expression`."""
    try:
        return _aws_fields(body)
    except _FieldError as error:
        raise ScheduleExpressionError(f"{expression}: {error}") from None


def parse_unix_cron(expression: str) -> CronFields:
    """The fields of a five-field Unix cron such as `*/5 * * * *`."""
    try:
        return _unix_fields(expression)
    except _FieldError as error:
        raise ScheduleExpressionError(f"{quote(expression)}: {error}") from None


def _aws_fields(body: str) -> CronFields:
    parts = body.split()
    if len(parts) != 6:
        raise _FieldError(f"cron(...) takes 6 fields ({AWS_FIELDS}), not {len(parts)}; "
                          "for example cron(0 3 * * ? *) runs at 03:00 every day")
    minute, hour, month_day, month, week_day, year = parts
    for name, text in (("minute", minute), ("hour", hour), ("month", month), ("year", year)):
        if "?" in text:
            raise _FieldError(f"? is only allowed in day-of-month and day-of-week, not in {name}")
    if month_day == "?" and week_day == "?":
        raise _FieldError("day-of-month and day-of-week cannot both be ?; write * in one of them")
    if month_day != "?" and week_day != "?":
        raise _FieldError("day-of-month and day-of-week cannot both be given; write ? in one of them")
    return _fields(minute, hour, DayRule(_aws_month_days(month_day), _aws_week_days(week_day)),
                   month, _values(_YEAR, year))


def _unix_fields(text: str) -> CronFields:
    if _AWS_ONLY.search(text):
        raise _FieldError("?, L, W and # are AWS syntax: write the 6-field form, as in cron(0 3 L * ? *)")
    minute, hour, month_day, month, week_day = text.split()
    either = not month_day.startswith("*") and not week_day.startswith("*")
    week_days = frozenset(value % 7 for value in _values(_UNIX_DAY_OF_WEEK, week_day))
    rule = DayRule(MonthDays(days=_values(_DAY_OF_MONTH, month_day)), WeekDays(week_days), either)
    return _fields(minute, hour, rule, month, frozenset(range(FIRST_YEAR, LAST_YEAR + 1)))


def _fields(minute: str, hour: str, days: DayRule, month: str, years: frozenset[int]) -> CronFields:
    fields = CronFields(tuple(sorted(_values(_MINUTE, minute))), tuple(sorted(_values(_HOUR, hour))),
                        days, tuple(sorted(_values(_MONTH, month))), tuple(sorted(years)))
    _check_days_occur(fields)
    return fields


def _check_days_occur(fields: CronFields) -> None:
    """Reject day-of-month values no chosen month has (`30 FEB`) when the week day cannot help."""
    rule = fields.days
    if rule.month_days is None or rule.either or (rule.week_days and len(rule.week_days.days) < 7):
        return
    month_days = rule.month_days
    if month_days.last or month_days.last_weekday:
        return
    first = min(month_days.days) if month_days.days else month_days.nearest_weekday
    if first > max(_LONGEST_MONTH[month - 1] for month in fields.months):
        months = ",".join(MONTH_NAMES[month - 1] for month in fields.months)
        raise _FieldError(f"day-of-month {first} never occurs in {months}")


def _aws_month_days(text: str) -> MonthDays | None:
    upper = text.upper()
    if upper == "?":
        return None
    if upper in ("L", "LW"):
        return MonthDays(last=upper == "L", last_weekday=upper == "LW")
    if "L" in upper or "W" in upper:
        nearest = re.fullmatch(r"([0-9]+)W", upper)
        if not nearest:
            raise _FieldError(f"day-of-month {quote(text)}: L and W must be the whole field, "
                              "as in L (last day), LW (last weekday) or 15W (weekday nearest the 15th)")
        return MonthDays(nearest_weekday=_value(_DAY_OF_MONTH, nearest[1]))
    return MonthDays(days=_values(_DAY_OF_MONTH, text))


def _aws_week_days(text: str) -> WeekDays | None:
    upper = text.upper()
    if upper == "?":
        return None
    if "#" in upper:
        day, _, nth = upper.partition("#")
        if "," in upper or "-" in upper:
            raise _FieldError(f"day-of-week {quote(text)}: # takes a single day and is the whole field, "
                              "as in 3#2 (the second Tuesday)")
        if nth not in ("1", "2", "3", "4", "5"):
            raise _FieldError(f"day-of-week {quote(text)}: the number after # must be 1-5, "
                              "as in 3#2 (the second Tuesday)")
        return WeekDays(frozenset({_value(_AWS_DAY_OF_WEEK, day) - 1}), nth=int(nth))
    if upper == "L":
        return WeekDays(frozenset({SATURDAY}))
    if upper.endswith("L"):
        if "," in upper or "-" in upper:
            raise _FieldError(f"day-of-week {quote(text)}: L takes a single day and is the whole field, "
                              "as in 6L (the last Friday)")
        return WeekDays(frozenset({_value(_AWS_DAY_OF_WEEK, upper[:-1]) - 1}), nth=-1)
    return WeekDays(frozenset(value - 1 for value in _values(_AWS_DAY_OF_WEEK, text)))


def _values(field: _Field, text: str) -> frozenset[int]:
    """A field of `*`, numbers, names, ranges and steps, separated by commas."""
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _FieldError(f"{field.name} {quote(text)} has an empty item; separate values with "
                              "single commas, as in 1,15")
        values.update(_item(field, item))
    return frozenset(values)


def _item(field: _Field, item: str) -> range:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not field.steps:
            raise _FieldError(f"{field.name} does not allow / (in {quote(item)}); list the days, as in 2,4,6")
        if not _DIGITS.fullmatch(step_text) or int(step_text) == 0:
            raise _FieldError(f"the step of {field.name} {quote(item)} must be a positive whole number, "
                              "as in */5")
        step = int(step_text)
    if base == "*":
        return range(field.low, field.high + 1, step)
    first, dash, last = base.partition("-")
    if not dash:
        low = _value(field, base)
        return range(low, field.high + 1 if slash else low + 1, step)
    if not first or not last:
        raise _FieldError(f"{field.name} {quote(item)} is not a range such as {field.low}-{field.low + 1}")
    low, high = _value(field, first), _value(field, last)
    if high < low:
        raise _FieldError(f"{field.name} range {quote(base)} runs backwards; write the smaller value "
                          "first, or two ranges separated by a comma")
    return range(low, high + 1, step)


def _value(field: _Field, token: str) -> int:
    upper = token.upper()
    if upper in field.names:
        return field.low + field.names.index(upper)
    if not _DIGITS.fullmatch(token):
        names = f" or a name {field.names[0]}-{field.names[-1]}" if field.names else ""
        raise _FieldError(f"{field.name} value {quote(token)} is not a number {field.low}-{field.high}{names}")
    value = int(token)
    if not field.low <= value <= field.high:
        raise _FieldError(f"{field.name} {value} is out of range {field.low}-{field.high}")
    return value
