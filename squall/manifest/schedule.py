"""The `schedule` trigger of squall.yaml: `- schedule: "rate(5 minutes)"` runs the function on a
schedule, as an EventBridge Scheduler schedule does.

The expression is checked (and stored as written, trimmed) by
squall.manifest.schedule_expressions. A schedule is known from one deploy to the next by its
`name`, unique in the project; squall.manifest.triggers names the unnamed ones.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, model_validator

from squall.manifest.errors import Loc, dotted, fail, show, undeclared_message
from squall.manifest.resources import RESOURCE_NAME, check_topic_name
from squall.manifest.schedule_expressions import ScheduleExpressionError, parse_schedule, validate_timezone
from squall.manifest.sections import Declared, TriggerAlias, TriggerSection
from squall.manifest.values import check_bool, duration, one_of, optional, plain_json

OVERLAP_MODES = ("skip", "queue", "replace")


def _check_expression(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('must be a schedule expression such as "rate(5 minutes)", '
                         f'"cron(0 3 * * ? *)" or "0 3 * * *", got {show(value)}')
    try:
        return parse_schedule(value).expression
    except ScheduleExpressionError as exc:
        raise ValueError(str(exc)) from None


def _check_schedule_name(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and RESOURCE_NAME.fullmatch(value)):
        return value
    raise ValueError("a schedule name must hold only letters, digits, - and _ (1 to 80 "
                     f"characters), got {show(value)}")


def _check_timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'must be an IANA time zone such as "Europe/Paris" or "UTC", got {show(value)}')
    try:
        validate_timezone(value)
    except ScheduleExpressionError as exc:
        raise ValueError(str(exc)) from None
    return value


class ScheduleTrigger(TriggerSection):
    """`- schedule: EXPRESSION`: runs the function on a schedule. `name` is filled in by
    FunctionSpec when left out (`<function>-<n>`, n counting the function's schedules from 0)."""

    kind: ClassVar[str] = "schedule"

    schedule: Annotated[str, BeforeValidator(_check_expression),
                        Field(description='rate(...), cron(...) or a 5-field cron')]
    name: Annotated[str | None, BeforeValidator(_check_schedule_name)] = None
    timezone: Annotated[str, BeforeValidator(_check_timezone)] = "UTC"
    input: Annotated[Any, BeforeValidator(optional(plain_json))] = None
    overlap: Annotated[str, BeforeValidator(one_of(OVERLAP_MODES))] = "skip"
    catch_up: Annotated[bool, BeforeValidator(check_bool)] = False
    alarm_after: Annotated[int | float | None, BeforeValidator(optional(duration(1, 31 * 86400)))] = None
    alarm_topic: Annotated[str | None, BeforeValidator(optional(check_topic_name))] = None
    enabled: Annotated[bool, BeforeValidator(check_bool)] = True
    alias: TriggerAlias = None

    @model_validator(mode="after")
    def _check_alarm(self) -> ScheduleTrigger:
        if self.alarm_after is not None and self.alarm_topic is None:
            raise fail("needs alarm_topic: the topic (declared under topics) that gets the alarm",
                       "alarm_after")
        if self.alarm_topic is not None and self.alarm_after is None:
            raise fail("is only used with alarm_after: give alarm_after (e.g. 1h), or remove it",
                       "alarm_topic")
        return self

    def check_references(self, declared: Declared, here: Loc) -> None:
        """The alarm topic is declared; the schedule's name is the project's only one of it."""
        if self.alarm_topic is not None and self.alarm_topic not in declared.topics:
            raise fail(undeclared_message("topic", "topics", self.alarm_topic, declared.topics),
                       *here, "alarm_topic")
        name = self.name or ""
        first = declared.claim("schedule", name, (*here, "name"))
        if first != (*here, "name"):
            raise fail(f"duplicate schedule name {show(name)}: it is already used at {dotted(first[:-1])}; "
                       "schedule names are unique in a project (an unnamed schedule is named "
                       "<function>-<n>)", *here, "name", see=first)
