"""Unit tests of squall.manifest.schedule_expressions and squall.manifest.cron_fields (pure, no I/O)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.manifest.schedule_expressions import (
    CronSchedule,
    RateSchedule,
    Schedule,
    ScheduleExpressionError,
    parse_schedule,
    validate_timezone,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
ZONE_UTC = ZoneInfo("UTC")
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Australia/Sydney",
         "America/Santiago", "Asia/Kolkata", "UTC"]
ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)
"""The anchor passed where only crons are involved (crons ignore it)."""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
        microsecond: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=UTC)


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0,
          fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold)


def next_fire(expression: str, after: datetime, tz: ZoneInfo = ZONE_UTC) -> datetime | None:
    return parse_schedule(expression).next_fire(after, tz=tz, anchor=ANCHOR)


def fires(expression: str, start: datetime, end: datetime, tz: ZoneInfo = ZONE_UTC) -> list[datetime]:
    return list(parse_schedule(expression).fire_times(start, end, tz=tz, anchor=ANCHOR))


def local_fires(expression: str, start: datetime, end: datetime, tz: ZoneInfo) -> list[datetime]:
    """The fires as naive wall-clock times of `tz`."""
    return [fire.astimezone(tz).replace(tzinfo=None) for fire in fires(expression, start, end, tz)]


def error_of(expression: str) -> str:
    with pytest.raises(ScheduleExpressionError) as caught:
        parse_schedule(expression)
    return str(caught.value)


# ------------------------------------------------------------------ rate(...)


@pytest.mark.parametrize("expression, period", [
    ("rate(1 minute)", timedelta(minutes=1)),
    ("rate(5 minutes)", timedelta(minutes=5)),
    ("rate(1 hour)", timedelta(hours=1)),
    ("rate(12 hours)", timedelta(hours=12)),
    ("rate(1 day)", timedelta(days=1)),
    ("rate(2 days)", timedelta(days=2)),
    ("rate(1 second)", timedelta(seconds=1)),
    ("rate(30 seconds)", timedelta(seconds=30)),
    ("  rate( 10   minutes )  ", timedelta(minutes=10)),
])
def test_rate_periods(expression: str, period: timedelta) -> None:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, RateSchedule)
    assert schedule.period == period
    assert schedule.expression == expression.strip()


@pytest.mark.parametrize("expression, message", [
    ("rate(0 minutes)", "rate(0 minutes): the value must be a positive whole number"),
    ("rate(-1 minutes)", "the value must be a positive whole number"),
    ("rate(1.5 hours)", "the value must be a positive whole number"),
    ("rate(five minutes)", "the value must be a positive whole number"),
    ("rate(1 minutes)", "rate(1 minutes): write rate(1 minute); the unit is singular for 1"),
    ("rate(1 seconds)", "write rate(1 second)"),
    ("rate(5 minute)", "rate(5 minute): write rate(5 minutes); the unit is plural for values other than 1"),
    ("rate(2 day)", "write rate(2 days)"),
    ("rate(5 mins)", 'unknown unit "mins" (did you mean "minutes"?); use minute(s), hour(s), day(s)'),
    ("rate(5 weeks)", 'unknown unit "weeks"'),
    ("rate(5)", "write a number and a unit, as in rate(5 minutes)"),
    ("rate()", "write a number and a unit"),
    ("rate(5 minutes", 'rate(5 minutes: missing ")" at the end'),
    ("rate(99999999999999 days)", "the value is too large"),
])
def test_rate_errors(expression: str, message: str) -> None:
    assert message in error_of(expression)


def test_rate_fires_at_the_anchor_and_every_period_after_it() -> None:
    schedule = parse_schedule("rate(5 minutes)")
    anchor = utc(2026, 1, 1, 10, 0, 7)
    assert schedule.next_fire(utc(2025, 12, 31), tz=ZONE_UTC, anchor=anchor) == anchor
    assert schedule.next_fire(anchor, tz=ZONE_UTC, anchor=anchor) == utc(2026, 1, 1, 10, 5, 7)
    assert schedule.next_fire(utc(2026, 1, 1, 10, 5, 6), tz=ZONE_UTC, anchor=anchor) == utc(2026, 1, 1, 10, 5, 7)
    assert schedule.next_fire(utc(2026, 1, 1, 10, 5, 7), tz=ZONE_UTC, anchor=anchor) == utc(2026, 1, 1, 10, 10, 7)
    assert schedule.next_fire(utc(2026, 3, 1), tz=ZONE_UTC, anchor=anchor) == utc(2026, 3, 1, 0, 0, 7)


def test_second_rates_fire_every_second() -> None:
    schedule = parse_schedule("rate(1 second)")
    anchor = utc(2026, 1, 1, 0, 0, 0)
    times = list(schedule.fire_times(utc(2026, 1, 1, 0, 0, 10), utc(2026, 1, 1, 0, 0, 14),
                                     tz=NEW_YORK, anchor=anchor))
    assert times == [utc(2026, 1, 1, 0, 0, second) for second in range(10, 14)]


def test_rates_measure_absolute_time_across_dst() -> None:
    schedule = parse_schedule("rate(1 day)")
    anchor = local(NEW_YORK, 2026, 3, 7, 12, 0)
    fire = schedule.next_fire(anchor, tz=NEW_YORK, anchor=anchor)
    assert fire == utc(2026, 3, 8, 17, 0)  # 24 hours after 17:00 UTC
    assert fire.astimezone(NEW_YORK).hour == 13  # New York's day was 23 hours long
    after_gap = schedule.next_fire(local(NEW_YORK, 2026, 3, 8, 12, 30), tz=NEW_YORK, anchor=anchor)
    assert after_gap == fire  # 12:30 EDT is 16:30 UTC: before the fire, though after 12:00 local


def test_rate_results_are_utc_whatever_the_zone_of_the_inputs() -> None:
    anchor = local(BERLIN, 2026, 6, 1, 9, 0)
    fire = parse_schedule("rate(1 hour)").next_fire(anchor, tz=BERLIN, anchor=anchor)
    assert fire is not None and fire.tzinfo is UTC
    assert fire == utc(2026, 6, 1, 8, 0)


@given(offset=st.integers(-10**9, 10**9), value=st.integers(1, 500),
       unit=st.sampled_from(["second", "minute", "hour", "day"]))
def test_rate_next_fire_is_the_first_anchored_time_after(offset: int, value: int, unit: str) -> None:
    expression = f"rate({value} {unit}{'s' if value > 1 else ''})"
    schedule = parse_schedule(expression)
    assert isinstance(schedule, RateSchedule)
    anchor = utc(2026, 1, 1, 12)
    after = anchor + timedelta(seconds=offset, microseconds=offset % 7)
    fire = schedule.next_fire(after, tz=ZONE_UTC, anchor=anchor)
    assert fire is not None and fire > after and fire >= anchor
    assert (fire - anchor) % schedule.period == timedelta(0)
    assert fire - schedule.period <= after or fire == anchor


# ------------------------------------------------------------------ dispatch and general errors


@pytest.mark.parametrize("expression, message", [
    ("every 5 min", ('unknown schedule expression "every 5 min"; write rate(5 minutes), cron(0 3 * * ? *) '
                     'or a 5-field cron such as "0 3 * * *"')),
    ("", "the schedule expression is empty"),
    ("   ", "the schedule expression is empty"),
    ("0 3 * * ? *", '"0 3 * * ? *": a 6-field cron is AWS syntax; write it as cron(0 3 * * ? *)'),
    ("cron(0 3 * * ? *", 'missing ")" at the end'),
    ("Rate(5 minutes)", "unknown schedule expression"),
    ("cron(" + "1," * 150 + "2 * * * ? *)", "is too long"),
])
def test_expression_errors(expression: str, message: str) -> None:
    assert message in error_of(expression)


def test_errors_are_value_errors() -> None:
    assert issubclass(ScheduleExpressionError, ValueError)


def test_parse_gives_the_kind_of_schedule() -> None:
    assert isinstance(parse_schedule("cron(0 3 * * ? *)"), CronSchedule)
    assert isinstance(parse_schedule("0 3 * * *"), CronSchedule)
    assert isinstance(parse_schedule("rate(1 day)"), Schedule)


def test_naive_datetimes_are_refused() -> None:
    schedule = parse_schedule("cron(0 3 * * ? *)")
    with pytest.raises(ValueError, match="after must be a timezone-aware datetime"):
        schedule.next_fire(datetime(2026, 1, 1), tz=ZONE_UTC, anchor=ANCHOR)
    with pytest.raises(ValueError, match="anchor must be a timezone-aware datetime"):
        schedule.next_fire(ANCHOR, tz=ZONE_UTC, anchor=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="end must be a timezone-aware datetime"):
        schedule.fire_times(ANCHOR, datetime(2026, 1, 1), tz=ZONE_UTC, anchor=ANCHOR)


# ------------------------------------------------------------------ cron(...) fields


@pytest.mark.parametrize("expression, after, expected", [
    ("cron(0 10 * * ? *)", utc(2026, 1, 1, 9, 59), utc(2026, 1, 1, 10, 0)),
    ("cron(0 10 * * ? *)", utc(2026, 1, 1, 10, 0), utc(2026, 1, 2, 10, 0)),
    ("cron(0 10 * * ? *)", utc(2026, 1, 1, 9, 59, 59, 999999), utc(2026, 1, 1, 10, 0)),
    ("cron(15 12 * * ? *)", utc(2026, 1, 1, 12, 15, 30), utc(2026, 1, 2, 12, 15)),
    ("cron(0/15 * * * ? *)", utc(2026, 1, 1, 10, 1), utc(2026, 1, 1, 10, 15)),
    ("cron(1/10 * * * ? *)", utc(2026, 1, 1, 10, 1), utc(2026, 1, 1, 10, 11)),
    ("cron(*/20 * * * ? *)", utc(2026, 1, 1, 10, 41), utc(2026, 1, 1, 11, 0)),
    ("cron(10-20/5 8-9 * * ? *)", utc(2026, 1, 1, 8, 21), utc(2026, 1, 1, 9, 10)),
    ("cron(0 8 1 * ? *)", utc(2026, 1, 1, 8, 1), utc(2026, 2, 1, 8, 0)),
    ("cron(0 0 1,15 * ? *)", utc(2026, 1, 2), utc(2026, 1, 15)),
    ("cron(0 0 1/10 * ? *)", utc(2026, 1, 22), utc(2026, 1, 31)),
    ("cron(0 0 1 JAN,jul ? *)", utc(2026, 1, 2), utc(2026, 7, 1)),
    ("cron(0 0 1 FEB-APR ? *)", utc(2026, 4, 2), utc(2027, 2, 1)),
    ("cron(0 0 1 */6 ? *)", utc(2026, 1, 2), utc(2026, 7, 1)),
    ("cron(0 0 31 * ? *)", utc(2026, 1, 31, 0, 1), utc(2026, 3, 31)),
    ("cron(0 0 29 2 ? *)", utc(2026, 1, 1), utc(2028, 2, 29)),
])
def test_cron_fields(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire(expression, after) == expected


def test_aws_day_of_week_counts_from_sunday() -> None:
    monday = date(2026, 1, 5)
    assert monday.weekday() == 0
    for number, name, offset in [(1, "SUN", 6), (2, "MON", 0), (3, "TUE", 1), (7, "SAT", 5)]:
        expected = utc(2026, 1, 5 + offset, 12)
        assert next_fire(f"cron(0 12 ? * {number} *)", utc(2026, 1, 5)) == expected
        assert next_fire(f"cron(0 12 ? * {name} *)", utc(2026, 1, 5)) == expected
        assert next_fire(f"cron(0 12 ? * {name.lower()} *)", utc(2026, 1, 5)) == expected


def test_weekdays_range() -> None:
    times = fires("cron(0 18 ? * MON-FRI *)", utc(2026, 1, 1), utc(2026, 1, 12))
    assert [fire.day for fire in times] == [1, 2, 5, 6, 7, 8, 9]  # Jan 1 2026 is a Thursday
    assert fires("cron(0 18 ? * 2-6 *)", utc(2026, 1, 1), utc(2026, 1, 12)) == times


def test_question_mark_in_day_of_month_with_star_day_of_week_is_every_day() -> None:
    times = fires("cron(0 6 ? * * *)", utc(2026, 1, 1), utc(2026, 1, 8))
    assert len(times) == 7


@pytest.mark.parametrize("expression, after, expected", [
    ("cron(0 0 L * ? *)", utc(2026, 2, 1), utc(2026, 2, 28)),
    ("cron(0 0 L * ? *)", utc(2028, 2, 1), utc(2028, 2, 29)),
    ("cron(0 0 L * ? *)", utc(2026, 2, 28), utc(2026, 3, 31)),
    ("cron(0 0 LW * ? *)", utc(2026, 5, 1), utc(2026, 5, 29)),  # May 31 2026 is a Sunday
    ("cron(0 0 LW * ? *)", utc(2026, 1, 1), utc(2026, 1, 30)),  # Jan 31 2026 is a Saturday
    ("cron(0 0 lw * ? *)", utc(2026, 6, 1), utc(2026, 6, 30)),  # a Tuesday
    ("cron(0 0 15W * ? *)", utc(2026, 8, 1), utc(2026, 8, 14)),  # Saturday 15th: Friday
    ("cron(0 0 15W * ? *)", utc(2026, 2, 1), utc(2026, 2, 16)),  # Sunday 15th: Monday
    ("cron(0 0 15W * ? *)", utc(2026, 4, 1), utc(2026, 4, 15)),  # a Wednesday
    ("cron(0 0 1W * ? *)", utc(2026, 7, 31), utc(2026, 8, 3)),  # Saturday 1st: Monday 3rd, same month
    ("cron(0 0 31W * ? *)", utc(2026, 5, 1), utc(2026, 5, 29)),  # Sunday 31st: Friday 29th
    ("cron(0 0 31W * ? *)", utc(2026, 4, 1), utc(2026, 5, 29)),  # April has no 31st
    ("cron(0 0 ? * L *)", utc(2026, 1, 5), utc(2026, 1, 10)),  # L: Saturday, the last day of the week
    ("cron(0 0 ? * 6L *)", utc(2026, 1, 1), utc(2026, 1, 30)),  # the last Friday
    ("cron(0 0 ? * FRIL *)", utc(2026, 5, 1), utc(2026, 5, 29)),
    ("cron(0 0 ? * 3#2 *)", utc(2026, 1, 1), utc(2026, 1, 13)),  # the second Tuesday
    ("cron(0 0 ? * TUE#2 *)", utc(2026, 1, 13), utc(2026, 2, 10)),
    ("cron(0 0 ? * 2#5 *)", utc(2026, 1, 1), utc(2026, 3, 30)),  # the next fifth Monday
    ("cron(0 0 ? 2 1#5 *)", utc(2026, 1, 1), utc(2032, 2, 29)),  # a fifth Sunday in February
])
def test_special_days(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire(expression, after) == expected


@pytest.mark.parametrize("expression, after, expected", [
    ("cron(0 0 1 1 ? 2030)", utc(2026, 5, 1), utc(2030, 1, 1)),
    ("cron(0 0 1 1 ? 2030)", utc(2030, 1, 1), None),
    ("cron(0 0 1 1 ? 2027-2033/3)", utc(2027, 1, 1), utc(2030, 1, 1)),
    ("cron(0 0 1 1 ? 2027,2029)", utc(2027, 6, 1), utc(2029, 1, 1)),
    ("cron(0 0 1 1 ? 2025/5)", utc(2026, 1, 1), utc(2030, 1, 1)),
    ("cron(0 0 29 2 ? 2027)", utc(2026, 1, 1), None),
    ("cron(0 0 1 1 ? 1970)", utc(2026, 1, 1), None),
    ("cron(59 23 31 12 ? 2199)", utc(2199, 12, 31, 23, 58), utc(2199, 12, 31, 23, 59)),
    ("cron(59 23 31 12 ? *)", utc(2199, 12, 31, 23, 59), None),
])
def test_year_field(expression: str, after: datetime, expected: datetime | None) -> None:
    assert next_fire(expression, after) == expected


@pytest.mark.parametrize("expression, message", [
    ("cron(0 3 * * * *)", ("cron(0 3 * * * *): day-of-month and day-of-week cannot both be given; "
                           "write ? in one of them")),
    ("cron(0 3 1 * MON *)", "cannot both be given; write ? in one of them"),
    ("cron(0 3 ? * ? *)", "day-of-month and day-of-week cannot both be ?; write * in one of them"),
    ("cron(0 3 * * ?)", "cron(...) takes 6 fields (minute hour day-of-month month day-of-week year), not 5"),
    ("cron(0 3 * * ? * *)", "takes 6 fields"),
    ("cron(? 3 * * ? *)", "? is only allowed in day-of-month and day-of-week, not in minute"),
    ("cron(0 3 * * ? ?)", "not in year"),
    ("cron(60 3 * * ? *)", "cron(60 3 * * ? *): minute 60 is out of range 0-59"),
    ("cron(0 24 * * ? *)", "hour 24 is out of range 0-23"),
    ("cron(0 3 0 * ? *)", "day-of-month 0 is out of range 1-31"),
    ("cron(0 3 32 * ? *)", "day-of-month 32 is out of range 1-31"),
    ("cron(0 3 * 13 ? *)", "month 13 is out of range 1-12"),
    ("cron(0 3 * FOO ? *)", 'month value "FOO" is not a number 1-12 or a name JAN-DEC'),
    ("cron(0 3 ? * 0 *)", "day-of-week 0 is out of range 1-7"),
    ("cron(0 3 ? * 8 *)", "day-of-week 8 is out of range 1-7"),
    ("cron(0 3 ? * SUNDAY *)", 'day-of-week value "SUNDAY" is not a number 1-7 or a name SUN-SAT'),
    ("cron(0 3 * * ? 1969)", "year 1969 is out of range 1970-2199"),
    ("cron(0 3 * * ? 2200)", "year 2200 is out of range 1970-2199"),
    ("cron(x 3 * * ? *)", 'minute value "x" is not a number 0-59'),
    ("cron(5-1 3 * * ? *)", 'minute range "5-1" runs backwards'),
    ("cron(0 3 ? * FRI-MON *)", 'day-of-week range "FRI-MON" runs backwards'),
    ("cron(0/0 3 * * ? *)", 'the step of minute "0/0" must be a positive whole number'),
    ("cron(*/x 3 * * ? *)", "must be a positive whole number"),
    ("cron(1,,2 3 * * ? *)", 'minute "1,,2" has an empty item'),
    ("cron(-5 3 * * ? *)", 'minute "-5" is not a range such as 0-1'),
    ("cron(0 3 ? * 1/2 *)", "day-of-week does not allow /"),
    ("cron(0 3 1,L * ? *)", 'day-of-month "1,L": L and W must be the whole field'),
    ("cron(0 3 W * ? *)", "L and W must be the whole field"),
    ("cron(0 3 32W * ? *)", "day-of-month 32 is out of range 1-31"),
    ("cron(0 3 ? * 3#1,6#3 *)", "# takes a single day and is the whole field"),
    ("cron(0 3 ? * 3#6 *)", "the number after # must be 1-5"),
    ("cron(0 3 ? * 8#1 *)", "day-of-week 8 is out of range 1-7"),
    ("cron(0 3 ? * 1-5L *)", "L takes a single day"),
    ("cron(0 3 30 2 ? *)", "cron(0 3 30 2 ? *): day-of-month 30 never occurs in FEB"),
    ("cron(0 3 31 APR,JUN ? *)", "day-of-month 31 never occurs in APR,JUN"),
    ("cron(0 3 31W 2 ? *)", "day-of-month 31 never occurs in FEB"),
])
def test_cron_errors(expression: str, message: str) -> None:
    assert message in error_of(expression)


def test_next_fire_does_not_walk_minute_by_minute() -> None:
    started = time.perf_counter()
    assert next_fire("cron(0 0 29 2 ? *)", utc(2097, 3, 1)) == utc(2104, 2, 29)
    assert next_fire("cron(0 0 ? 2 1#5 2101-2199)", utc(2026, 1, 1)) == utc(2128, 2, 29)
    assert next_fire("cron(0 0 ? 2 2#5 2101-2103)", utc(2026, 1, 1)) is None
    assert next_fire("cron(* * * * ? *)", utc(2026, 1, 1, 23, 59, 30)) == utc(2026, 1, 2)
    assert time.perf_counter() - started < 0.5


# ------------------------------------------------------------------ 5-field Unix cron


@pytest.mark.parametrize("expression, after, expected", [
    ("*/5 * * * *", utc(2026, 1, 1, 10, 2), utc(2026, 1, 1, 10, 5)),
    ("0 3 * * *", utc(2026, 1, 1, 3, 0), utc(2026, 1, 2, 3, 0)),
    ("0 12 * * 0", utc(2026, 1, 5), utc(2026, 1, 11, 12)),  # Sunday
    ("0 12 * * 7", utc(2026, 1, 5), utc(2026, 1, 11, 12)),  # Sunday too
    ("0 12 * * 1", utc(2026, 1, 5, 13), utc(2026, 1, 12, 12)),  # Monday
    ("0 12 * * sun", utc(2026, 1, 5), utc(2026, 1, 11, 12)),
    ("0 12 * * 5-7", utc(2026, 1, 5), utc(2026, 1, 9, 12)),
    ("0 0 1 jan *", utc(2026, 1, 2), utc(2027, 1, 1)),
])
def test_unix_cron(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire(expression, after) == expected


def test_unix_cron_runs_on_either_day_field_when_both_are_restricted() -> None:
    times = fires("0 0 13 * 5", utc(2026, 1, 1), utc(2026, 2, 1))
    assert [fire.day for fire in times] == [2, 9, 13, 16, 23, 30]  # Fridays and Tuesday the 13th


def test_unix_cron_needs_both_day_fields_when_one_starts_with_a_star() -> None:
    times = fires("0 0 */2 * 5", utc(2026, 1, 1), utc(2026, 2, 1))
    assert [fire.day for fire in times] == [9, 23]  # the odd-numbered Fridays


@pytest.mark.parametrize("expression, message", [
    ("0 3 L * *", '"0 3 L * *": ?, L, W and # are AWS syntax: write the 6-field form'),
    ("0 3 ? * 1", "AWS syntax"),
    ("0 3 * * 1#2", "AWS syntax"),
    ("0 3 15W * *", "AWS syntax"),
    ("0 3 * * 8", "day-of-week 8 is out of range 0-7"),
    ("60 3 * * *", "minute 60 is out of range 0-59"),
    ("0 3 30 2 *", "day-of-month 30 never occurs in FEB"),
    ("0 3 * * MON-SUN", 'day-of-week range "MON-SUN" runs backwards'),
])
def test_unix_cron_errors(expression: str, message: str) -> None:
    assert message in error_of(expression)


# ------------------------------------------------------------------ time zones and DST


def test_cron_runs_in_the_given_time_zone() -> None:
    assert next_fire("cron(0 9 * * ? *)", utc(2026, 1, 1), BERLIN) == utc(2026, 1, 1, 8)
    assert next_fire("cron(0 9 * * ? *)", utc(2026, 7, 1), BERLIN) == utc(2026, 7, 1, 7)
    assert next_fire("0 9 * * *", utc(2026, 1, 1, 15), NEW_YORK) == utc(2026, 1, 2, 14)


def test_results_are_utc() -> None:
    fire = next_fire("cron(0 9 * * ? *)", local(BERLIN, 2026, 1, 1), BERLIN)
    assert fire is not None and fire.tzinfo is UTC


@pytest.mark.parametrize("tz, day, expected", [
    (NEW_YORK, date(2026, 3, 8), utc(2026, 3, 8, 7, 0)),  # 02:30 EST does not exist: 03:00 EDT
    (BERLIN, date(2026, 3, 29), utc(2026, 3, 29, 1, 0)),  # 02:30 CET does not exist: 03:00 CEST
])
def test_spring_forward_runs_a_skipped_time_once_at_the_end_of_the_gap(tz: ZoneInfo, day: date,
                                                                       expected: datetime) -> None:
    start = datetime.combine(day, datetime.min.time(), tz)
    times = fires("cron(30 2 * * ? *)", start, start + timedelta(days=2), tz)
    assert times[0] == expected
    assert times[0].astimezone(tz).replace(tzinfo=None) == datetime.combine(day, datetime.min.time()).replace(hour=3)
    assert times[1].astimezone(tz).hour == 2 and times[1].astimezone(tz).minute == 30
    assert len(times) == 2


@pytest.mark.parametrize("tz, day, expected", [
    (NEW_YORK, date(2026, 11, 1), utc(2026, 11, 1, 5, 30)),  # 01:30 EDT, not 01:30 EST
    (BERLIN, date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),  # 02:30 CEST, not 02:30 CET
])
def test_fall_back_runs_a_repeated_time_once_at_its_first_occurrence(tz: ZoneInfo, day: date,
                                                                     expected: datetime) -> None:
    hour = 1 if tz is NEW_YORK else 2
    start = datetime.combine(day, datetime.min.time(), tz)
    times = fires(f"cron(30 {hour} * * ? *)", start, start + timedelta(days=1), tz)
    assert times == [expected]
    assert next_fire(f"cron(30 {hour} * * ? *)", expected, tz) == expected + timedelta(days=1, hours=1)


def test_fall_back_second_occurrence_does_not_fire_again() -> None:
    second = local(NEW_YORK, 2026, 11, 1, 1, 10, fold=1)  # 01:10 EST
    assert next_fire("cron(30 1 * * ? *)", second, NEW_YORK) == local(NEW_YORK, 2026, 11, 2, 1, 30)
    assert next_fire("*/15 * * * *", second, NEW_YORK) == local(NEW_YORK, 2026, 11, 1, 2, 0)


def test_quarter_hours_on_a_fall_back_night() -> None:
    times = fires("*/15 * * * *", utc(2026, 11, 1, 4, 40), utc(2026, 11, 1, 7, 20), NEW_YORK)
    assert times == [utc(2026, 11, 1, 4, 45), utc(2026, 11, 1, 5), utc(2026, 11, 1, 5, 15),
                     utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 5, 45),  # 01:00-01:45 EDT
                     utc(2026, 11, 1, 7), utc(2026, 11, 1, 7, 15)]  # 02:00 EST on


def test_quarter_hours_on_a_spring_forward_night() -> None:
    walls = local_fires("cron(0/15 * * * ? *)", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 7, 31), NEW_YORK)
    assert [(wall.hour, wall.minute) for wall in walls] == [(1, 30), (1, 45), (3, 0), (3, 15), (3, 30)]


def test_hourly_jobs_across_both_transitions_in_berlin() -> None:
    spring = local_fires("0 * * * *", local(BERLIN, 2026, 3, 29), local(BERLIN, 2026, 3, 29, 5), BERLIN)
    assert [wall.hour for wall in spring] == [0, 1, 3, 4]
    autumn = fires("0 * * * *", local(BERLIN, 2026, 10, 25), local(BERLIN, 2026, 10, 25, 5), BERLIN)
    assert [fire.astimezone(BERLIN).hour for fire in autumn] == [0, 1, 2, 3, 4]
    assert autumn[3] - autumn[2] == timedelta(hours=2)  # 02:00 CEST, then 03:00 CET


def test_a_whole_day_skipped_by_samoa_runs_its_jobs_once_when_the_clock_resumes() -> None:
    apia = ZoneInfo("Pacific/Apia")  # 2011-12-29 23:59:59 was followed by 2011-12-31 00:00:00
    times = fires("cron(0 12 * * ? *)", local(apia, 2011, 12, 29), local(apia, 2012, 1, 1), apia)
    walls = [fire.astimezone(apia).replace(tzinfo=None) for fire in times]
    assert walls == [datetime(2011, 12, 29, 12), datetime(2011, 12, 31, 0), datetime(2011, 12, 31, 12)]


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    return wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def _first_existing_at_or_after(wall: datetime, tz: ZoneInfo) -> datetime:
    while not _exists(wall, tz):
        wall += timedelta(minutes=1)
    return wall


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expression, hours, minutes", [
    ("cron(30 2 * * ? *)", [2], [30]),
    ("cron(0 0 * * ? *)", [0], [0]),
    ("30 1 * * *", [1], [30]),
    ("cron(0/15 * * * ? *)", range(24), [0, 15, 30, 45]),
])
def test_a_year_of_fires_has_every_wall_clock_time_once(zone: str, expression: str, hours: range,
                                                        minutes: list[int]) -> None:
    tz = ZoneInfo(zone)
    year = [date(2026, 1, 1) + timedelta(days=index) for index in range(365)]
    expected = {_first_existing_at_or_after(datetime(day.year, day.month, day.day, hour, minute), tz)
                for day in year for hour in hours for minute in minutes}
    times = fires(expression, local(tz, 2026, 1, 1), local(tz, 2027, 1, 1), tz)
    assert all(earlier < later for earlier, later in pairwise(times))
    walls = [fire.astimezone(tz).replace(tzinfo=None) for fire in times]
    assert len(set(walls)) == len(walls)  # no wall-clock time twice (fall-back)
    assert set(walls) == expected
    first_occurrences = [fire for fire in times if fire.astimezone(tz).fold == 0]
    assert first_occurrences == times


# ------------------------------------------------------------------ properties against a brute-force clock


DAY_SETS = st.sets(st.integers(1, 7), min_size=1, max_size=7)
TRANSITIONS = [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2026, 3, 29, 1), utc(2026, 10, 25, 1),
               utc(2026, 4, 4, 15), utc(2026, 10, 3, 16), utc(2026, 4, 5, 2), utc(2026, 9, 6, 4)]


@st.composite
def crons(draw: st.DrawFn) -> tuple[set[int], set[int], set[int] | None]:
    """Minutes, hours and AWS week days (None: every day) of a cron that fires within a week."""
    minutes = draw(st.sets(st.integers(0, 59), min_size=1, max_size=4))
    hours = draw(st.sets(st.sampled_from([0, 1, 2, 3, 4, 12, 23]), min_size=1, max_size=4))
    week_days = draw(st.none() | DAY_SETS)
    return minutes, hours, week_days


def _listed(values: set[int]) -> str:
    return ",".join(str(value) for value in sorted(values))


def _matches(wall: datetime, minutes: set[int], hours: set[int], week_days: set[int] | None) -> bool:
    aws_week_day = (wall.weekday() + 1) % 7 + 1
    return (wall.minute in minutes and wall.hour in hours
            and (week_days is None or aws_week_day in week_days))


def _offset(moment: datetime, tz: ZoneInfo) -> timedelta:
    offset = moment.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def _brute_force_next(after: datetime, tz: ZoneInfo, minutes: set[int], hours: set[int],
                      week_days: set[int] | None) -> datetime:
    """Walk real minutes: fire at a first occurrence of a matching wall-clock time, or at the end of
    a gap that skipped one."""
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while True:
        now = moment.astimezone(tz)
        wall = now.replace(tzinfo=None)
        if now.fold == 0 and _matches(wall, minutes, hours, week_days):
            return moment
        jump = _offset(moment, tz) - _offset(moment - timedelta(seconds=1), tz)
        skipped = wall - jump
        while jump > timedelta(0) and skipped < wall:
            if _matches(skipped, minutes, hours, week_days):
                return moment
            skipped += timedelta(minutes=1)
        moment += timedelta(minutes=1)


@settings(max_examples=60, deadline=None)
@given(cron=crons(), zone=st.sampled_from(["America/New_York", "Europe/Berlin", "Australia/Lord_Howe",
                                           "America/Santiago"]),
       transition=st.sampled_from(TRANSITIONS), offset=st.integers(-3 * 24 * 3600, 3 * 24 * 3600))
def test_next_fire_matches_a_brute_force_clock(cron: tuple[set[int], set[int], set[int] | None],
                                               zone: str, transition: datetime, offset: int) -> None:
    minutes, hours, week_days = cron
    tz = ZoneInfo(zone)
    after = transition + timedelta(seconds=offset)
    days = "? * " + _listed(week_days) if week_days else "* * ?"
    aws = parse_schedule(f"cron({_listed(minutes)} {_listed(hours)} {days} *)")
    expected = _brute_force_next(after, tz, minutes, hours, week_days)
    assert aws.next_fire(after, tz=tz, anchor=ANCHOR) == expected
    unix_days = _listed({day - 1 for day in week_days}) if week_days else "*"
    unix = parse_schedule(f"{_listed(minutes)} {_listed(hours)} * * {unix_days}")
    assert unix.next_fire(after, tz=tz, anchor=ANCHOR) == expected


@settings(max_examples=40, deadline=None)
@given(cron=crons(), zone=st.sampled_from(ZONES), transition=st.sampled_from(TRANSITIONS),
       offset=st.integers(-5 * 24 * 3600, 5 * 24 * 3600))
def test_fire_times_are_repeated_next_fires(cron: tuple[set[int], set[int], set[int] | None], zone: str,
                                            transition: datetime, offset: int) -> None:
    minutes, hours, week_days = cron
    tz = ZoneInfo(zone)
    days = "? * " + _listed(week_days) if week_days else "* * ?"
    schedule = parse_schedule(f"cron({_listed(minutes)} {_listed(hours)} {days} *)")
    start = transition + timedelta(seconds=offset)
    times = list(schedule.fire_times(start, start + timedelta(days=4), tz=tz, anchor=ANCHOR))
    chained: list[datetime] = []
    moment = start - timedelta(microseconds=1)
    for _ in range(len(times) + 1):
        fire = schedule.next_fire(moment, tz=tz, anchor=ANCHOR)
        assert fire is not None and fire > moment
        chained.append(fire)
        moment = fire
    assert chained[:-1] == times
    assert chained[-1] >= start + timedelta(days=4)
    for fire in times:
        wall = fire.astimezone(tz).replace(tzinfo=None)
        at_gap_end = _offset(fire, tz) > _offset(fire - timedelta(seconds=1), tz)
        assert _matches(wall, minutes, hours, week_days) or at_gap_end


@given(expression=st.sampled_from(["rate(7 minutes)", "cron(0/5 * * * ? *)", "*/7 1-3 * * *",
                                   "cron(0 0 L * ? *)", "cron(0 12 ? * 6#3 *)"]),
       after=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1),
                          timezones=st.just(UTC)))
def test_next_fire_strictly_increases(expression: str, after: datetime) -> None:
    schedule = parse_schedule(expression)
    times = list(islice(schedule.fire_times(after, after + timedelta(days=400), tz=BERLIN, anchor=ANCHOR), 5))
    assert len(times) == 5
    assert times[0] >= after
    assert all(earlier < later for earlier, later in pairwise(times))


# ------------------------------------------------------------------ validate_timezone


@pytest.mark.parametrize("name", ["Europe/Paris", "UTC", "America/New_York", "Asia/Kolkata"])
def test_known_time_zones(name: str) -> None:
    assert validate_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize("name, message", [
    ("Europe/Paris2", 'unknown time zone "Europe/Paris2"; did you mean "Europe/Paris"?'),
    ("europe/paris", 'unknown time zone "europe/paris"; did you mean "Europe/Paris"?'),
    ("America/NewYork", 'did you mean "America/New_York"?'),
    ("Nowhere", 'unknown time zone "Nowhere"; use an IANA name such as "Europe/Paris" or "UTC"'),
    ("", 'unknown time zone ""'),
    ("../../etc/passwd", "unknown time zone"),
    ("/usr/share/zoneinfo/UTC", "unknown time zone"),
])
def test_unknown_time_zones(name: str, message: str) -> None:
    with pytest.raises(ScheduleExpressionError) as caught:
        validate_timezone(name)
    assert message in str(caught.value)
