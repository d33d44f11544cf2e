"""The event side of squall.yaml: the triggers `schedule`, `topic`, `queue` and `bucket`, the
project resources they name (`topics:`, `queues:`, `buckets:`), a function's async
destinations (`on_success`, `on_failure`), durations, and the checks that names refer to
declared things.

Importing squall.manifest.triggers imports this module, which registers its trigger models in
`TRIGGER_KINDS` and builds `Trigger` and `TriggerField` from every kind. Values are stored
normalized: durations as seconds (an int when whole), filter policies and schedule inputs as
plain JSON, bucket events without their `s3:` prefix. The user reference is docs/manifest.md.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterable, Union
from urllib.parse import urlsplit

from pydantic import (BeforeValidator, Discriminator, Field, SerializerFunctionWrapHandler, Tag,
                      ValidationInfo, model_serializer, model_validator)

from squall.manifest.errors import (TRIGGER_KIND_ERROR, Loc, did_you_mean, dotted, fail, show,
                                    undeclared_message)
from squall.manifest.filter_policy import SCOPES, FilterPolicyError, parse_filter_policy
from squall.manifest.schedule_expressions import ScheduleExpressionError, parse_schedule, validate_timezone
from squall.manifest.sections import Section
from squall.manifest.triggers import TRIGGER_KINDS, HttpTrigger, TriggerAlias, trigger_kind
from squall.manifest.values import (check_bool, check_function_name, check_text, duration, one_of, optional,
                                    plain_json, whole_number)

if TYPE_CHECKING:
    from squall.manifest import FunctionSpec, Manifest

DEFAULT_RETRIES = 2
DEFAULT_MAX_EVENT_AGE = 21600
MAX_RETRIES = 10
"""Lambda allows 0 to 2 retries of an async invocation; squall allows up to 10."""
FIFO_SUFFIX = ".fifo"
MAX_FIFO_BATCH = 10
OVERLAP_MODES = ("skip", "queue", "replace")
BUCKET_EVENTS = ("ObjectCreated:*", "ObjectCreated:Put", "ObjectCreated:Copy", "ObjectRemoved:*",
                 "ObjectRemoved:Delete")
DEFAULT_BUCKET_EVENTS = ("ObjectCreated:*",)

_RESOURCE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")


# ------------------------------------------------------------------ names


def check_topic_name(value: Any) -> str:
    if isinstance(value, str) and _RESOURCE_NAME.fullmatch(value):
        return value
    raise ValueError("a topic name must hold only letters, digits, - and _ (1 to 80 characters, "
                     f"as in SNS), got {show(value)}")


def check_queue_name(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 80 \
            and _RESOURCE_NAME.fullmatch(value.removesuffix(FIFO_SUFFIX)):
        return value
    raise ValueError("a queue name must hold only letters, digits, - and _, plus .fifo at the end "
                     f"for a FIFO queue (1 to 80 characters, as in SQS), got {show(value)}")


def check_bucket_name(value: Any) -> str:
    if isinstance(value, str) and _BUCKET_NAME.fullmatch(value) and ".." not in value \
            and not _IP_ADDRESS.fullmatch(value):
        return value
    raise ValueError("a bucket name must be 3 to 63 lowercase letters, digits, . and -, starting "
                     "and ending with a letter or digit, without .. and not an IP address (as in "
                     f"S3), got {show(value)}")


def _check_schedule_name(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and _RESOURCE_NAME.fullmatch(value)):
        return value
    raise ValueError("a schedule name must hold only letters, digits, - and _ (1 to 80 "
                     f"characters), got {show(value)}")


def is_fifo(queue: str) -> bool:
    return queue.endswith(FIFO_SUFFIX)


# ------------------------------------------------------------------ filter policies


def _check_scope(value: Any) -> str:
    return one_of(SCOPES)(value)


def _check_policy(value: Any) -> dict[str, Any] | None:
    """The type check of `filter_policy`; `_with_parsed_policy` has already parsed it if it can."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return data
    raise ValueError("must be a filter policy: a mapping, or a JSON object as a string, got "
                     f"{show(value)}")


def _with_parsed_policy(data: dict[Any, Any]) -> dict[Any, Any]:
    """`data` with its `filter_policy` checked as SNS would, in its scope, and made plain JSON."""
    policy, scope = data.get("filter_policy"), data.get("filter_policy_scope", SCOPES[0])
    if policy is None or scope not in SCOPES or not isinstance(policy, (str, dict)):
        return data
    try:
        parsed = parse_filter_policy(plain_json(policy) if isinstance(policy, dict) else policy, scope)
    except (FilterPolicyError, ValueError) as exc:
        raise fail(str(exc), "filter_policy") from None
    return {**data, "filter_policy": parsed.policy}


# ------------------------------------------------------------------ resources


def _check_url(value: Any) -> str:
    if isinstance(value, str) and not any(char.isspace() for char in value):
        try:
            parts = urlsplit(value)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            valid = False
        if valid:
            return value
    raise ValueError(f'must be an http:// or https:// URL such as "https://example.com/hook", '
                     f"got {show(value)}")


class Subscription(Section):
    """An HTTP(S) endpoint subscribed to a topic; functions subscribe with `- topic:` triggers."""

    url: Annotated[str, BeforeValidator(_check_url),
                   Field(description='the endpoint, "http(s)://..."')]
    filter_policy: Annotated[dict[str, Any] | None, BeforeValidator(_check_policy)] = None
    filter_policy_scope: Annotated[str, BeforeValidator(_check_scope)] = SCOPES[0]
    raw_message_delivery: Annotated[bool, BeforeValidator(check_bool)] = False

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        return _with_parsed_policy(data)


def _check_list(what: str) -> Callable[[Any], list[Any]]:
    def check(value: Any) -> list[Any]:
        if value is None:
            return []
        if isinstance(value, list):
            return value
        raise ValueError(f"must be a list of {what}, got {show(value)}")
    return check


class TopicSpec(Section):
    """A topic of `topics:`: messages published to it go to every subscriber."""

    subscriptions: Annotated[list[Subscription],
                             BeforeValidator(_check_list("subscriptions, each like - url: https://..."))
                             ] = Field(default_factory=list)


class QueueSpec(Section):
    """A queue of `queues:`; `fifo` is read from the name (see `check_queues`)."""

    visibility_timeout: Annotated[int | float, BeforeValidator(duration(0, 43200))] = 30
    max_receive_count: Annotated[int, BeforeValidator(whole_number(1, 1000, "receives"))] = 5
    dead_letter_queue: Annotated[str | None, BeforeValidator(optional(check_queue_name))] = None
    retention: Annotated[int | float, BeforeValidator(duration(60, 1209600))] = 345600
    delay: Annotated[int | float, BeforeValidator(duration(0, 900))] = 0
    fifo: Annotated[bool, BeforeValidator(check_bool)] = False
    content_based_deduplication: Annotated[bool, BeforeValidator(check_bool)] = False

    @model_validator(mode="after")
    def _check_fifo_keys(self) -> QueueSpec:
        if self.content_based_deduplication and not self.fifo:
            raise fail("is only for FIFO queues, whose names end in .fifo", "content_based_deduplication")
        return self


class BucketSpec(Section):
    """A bucket of `buckets:`; it has no settings yet."""


def _resources(what: str, example: str) -> Callable[[Any], dict[Any, Any]]:
    """A check of `topics:`, `queues:` or `buckets:`: null is empty, and so is each null value."""
    def check(value: Any) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"must be a mapping of {what} names to their settings, e.g. {example}, "
                             f"got {show(value)}")
        return {name: {} if spec is None else spec for name, spec in value.items()}
    return check


check_topics = _resources("topic", "{deploys: {}}")
check_buckets = _resources("bucket", "{uploads: {}}")


def check_queues(value: Any) -> dict[Any, Any]:
    """`queues:` with each queue's `fifo` filled in from its name (written, it must agree)."""
    queues = _resources("queue", "{jobs: {visibility_timeout: 60}}")(value)
    return {name: _queue_fifo(name, spec) for name, spec in queues.items()}


def _queue_fifo(name: Any, spec: Any) -> Any:
    if isinstance(spec, QueueSpec):
        spec = spec.model_dump(exclude_unset=True)
    if not isinstance(name, str) or not isinstance(spec, dict):
        return spec
    fifo = is_fifo(name)
    written = spec.get("fifo", fifo)
    if written is True and not fifo:
        raise fail(f"a FIFO queue's name must end in .fifo: rename the queue {show(name + FIFO_SUFFIX)} "
                   "(fifo is read from the name)", name, "fifo")
    if written is False and fifo:
        raise fail(f"a queue whose name ends in .fifo is FIFO: remove fifo: false, or rename the queue "
                   f"{show(name.removesuffix(FIFO_SUFFIX))} for a standard queue", name, "fifo")
    return {**spec, "fifo": fifo} if isinstance(written, bool) else spec


# ------------------------------------------------------------------ destinations


class Destination(Section):
    """`on_success` / `on_failure`: exactly one of `{topic: NAME}`, `{queue: NAME}`,
    `{function: NAME}`; dumped as that one key."""

    topic: Annotated[str | None, BeforeValidator(check_topic_name)] = None
    queue: Annotated[str | None, BeforeValidator(check_queue_name)] = None
    function: Annotated[str | None, BeforeValidator(check_function_name)] = None

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        if not data:
            raise fail("must name one destination: {topic: NAME}, {queue: NAME} or {function: NAME}")
        if len(data) > 1:
            raise fail(f"names several destinations ({', '.join(map(str, data))}); give exactly one",
                       str(list(data)[1]))
        return data

    @model_serializer(mode="wrap")
    def _only_the_target(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}

    @property
    def kind(self) -> str:
        """`topic`, `queue` or `function`."""
        return next(key for key in ("topic", "queue", "function") if getattr(self, key) is not None)

    @property
    def target(self) -> str:
        return str(getattr(self, self.kind))


# ------------------------------------------------------------------ triggers


def _check_expression(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('must be a schedule expression such as "rate(5 minutes)", '
                         f'"cron(0 3 * * ? *)" or "0 3 * * *", got {show(value)}')
    try:
        return parse_schedule(value).expression
    except ScheduleExpressionError as exc:
        raise ValueError(str(exc)) from None


def _check_timezone(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'must be an IANA time zone such as "Europe/Paris" or "UTC", got {show(value)}')
    try:
        validate_timezone(value)
    except ScheduleExpressionError as exc:
        raise ValueError(str(exc)) from None
    return value


class ScheduleTrigger(Section):
    """`- schedule: EXPRESSION`: runs the function on a schedule. `name` is filled in by
    FunctionSpec when left out (`<function>-<n>`, n counting the function's schedules from 0)."""

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


class TopicTrigger(Section):
    """`- topic: NAME`: the function is subscribed to a topic of `topics:`."""

    topic: Annotated[str, BeforeValidator(check_topic_name),
                     Field(description="the name of a topic declared under topics")]
    filter_policy: Annotated[dict[str, Any] | None, BeforeValidator(_check_policy)] = None
    filter_policy_scope: Annotated[str, BeforeValidator(_check_scope)] = SCOPES[0]
    alias: TriggerAlias = None

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        return _with_parsed_policy(data)


class QueueTrigger(Section):
    """`- queue: NAME`: the function consumes a queue of `queues:` in batches."""

    queue: Annotated[str, BeforeValidator(check_queue_name),
                     Field(description="the name of a queue declared under queues")]
    batch_size: Annotated[int, BeforeValidator(whole_number(1, 10000, "messages"))] = 10
    batch_window: Annotated[int | float, BeforeValidator(duration(0, 300))] = 0
    report_batch_item_failures: Annotated[bool, BeforeValidator(check_bool)] = True
    enabled: Annotated[bool, BeforeValidator(check_bool)] = True
    alias: TriggerAlias = None

    @model_validator(mode="after")
    def _check_fifo_batch(self) -> QueueTrigger:
        if is_fifo(self.queue) and self.batch_size > MAX_FIFO_BATCH:
            raise fail(f"must be at most {MAX_FIFO_BATCH} for a FIFO queue (as in SQS), got "
                       f"{self.batch_size}", "batch_size")
        return self


def _check_events(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"must be a list of S3 event types such as [ObjectCreated:*], got {show(value)}")
    events: list[str] = []
    for index, item in enumerate(items):
        event = item.removeprefix("s3:") if isinstance(item, str) else item
        if event not in BUCKET_EVENTS:
            raise fail(f"must be one of {', '.join(BUCKET_EVENTS)} (with or without s3:), got "
                       f"{show(item)}{did_you_mean(event, BUCKET_EVENTS)}",
                       *((index,) if isinstance(value, list) else ()))
        if event not in events:
            events.append(event)
    return events


class BucketTrigger(Section):
    """`- bucket: NAME`: object changes in a bucket of `buckets:` invoke the function."""

    bucket: Annotated[str, BeforeValidator(check_bucket_name),
                      Field(description="the name of a bucket declared under buckets")]
    events: Annotated[list[str], BeforeValidator(_check_events)] = Field(
        default_factory=lambda: list(DEFAULT_BUCKET_EVENTS))
    prefix: Annotated[str, BeforeValidator(check_text)] = ""
    suffix: Annotated[str, BeforeValidator(check_text)] = ""
    alias: TriggerAlias = None


# ------------------------------------------------------------------ trigger kinds


TRIGGER_KINDS.update({"schedule": ScheduleTrigger, "topic": TopicTrigger, "queue": QueueTrigger,
                      "bucket": BucketTrigger})

Trigger = Union[HttpTrigger, ScheduleTrigger, TopicTrigger, QueueTrigger, BucketTrigger]
"""Any trigger model: one per kind of TRIGGER_KINDS."""

if TYPE_CHECKING:
    TriggerField = Trigger
else:
    TriggerField = Annotated[
        Union[tuple(Annotated[model, Tag(kind)] for kind, model in TRIGGER_KINDS.items())],
        Discriminator(trigger_kind, custom_error_type=TRIGGER_KIND_ERROR,
                      custom_error_message="cannot tell the trigger kind")]
    """A list item of `triggers:`, validated by the model its kind names."""


def name_schedules(function: Any, triggers: Any) -> Any:
    """`triggers` (as given to FunctionSpec) with each unnamed schedule named `<function>-<n>`."""
    if not isinstance(triggers, list) or not isinstance(function, str):
        return triggers
    named, count = [], 0
    for item in triggers:
        if trigger_kind(item) == "schedule":
            default = f"{function}-{count}"
            count += 1
            if isinstance(item, ScheduleTrigger) and item.name is None:
                item = item.model_copy(update={"name": default})
            elif isinstance(item, dict) and item.get("name") is None:
                item = {**item, "name": default}
        named.append(item)
    return named


# ------------------------------------------------------------------ references


def check_references(manifest: Manifest) -> None:
    """Raise `fail()` at the first name that refers to nothing, or breaks a rule between
    resources: dead-letter queues, schedule names unique, one consumer per queue."""
    for name, queue in manifest.queues.items():
        _check_dead_letter_queue(manifest, name, queue)
    schedules: dict[str, Loc] = {}
    consumers: dict[str, Loc] = {}
    for name, spec in manifest.functions.items():
        for key in ("on_success", "on_failure"):
            _check_destination(manifest, getattr(spec, key), ("functions", name, key))
        for index, trigger in enumerate(spec.triggers):
            _check_trigger(manifest, trigger, ("functions", name, "triggers", index), schedules, consumers)


def _check_dead_letter_queue(manifest: Manifest, name: str, queue: QueueSpec) -> None:
    target = queue.dead_letter_queue
    if target is None:
        return
    here = ("queues", name, "dead_letter_queue")
    if target == name:
        raise fail("must name another queue: a queue cannot be its own dead-letter queue", *here)
    if target not in manifest.queues:
        raise fail(undeclared_message("queue", "queues", target, manifest.queues), *here)
    if is_fifo(target) != queue.fifo:
        kinds = ("FIFO", "standard") if queue.fifo else ("standard", "FIFO")
        raise fail(f"{show(target)} is a {kinds[1]} queue: the dead-letter queue of a {kinds[0]} queue "
                   f"must be {kinds[0]} too (as in SQS)", *here)


def _check_destination(manifest: Manifest, destination: Destination | None, here: Loc) -> None:
    if destination is None:
        return
    sections: dict[str, Iterable[str]] = {"topic": manifest.topics, "queue": manifest.queues,
                                          "function": manifest.functions}
    declared = sections[destination.kind]
    if destination.target not in declared:
        section = destination.kind + "s"
        raise fail(undeclared_message(destination.kind, section, destination.target, declared),
                   *here, destination.kind)


def _check_trigger(manifest: Manifest, trigger: Any, here: Loc, schedules: dict[str, Loc],
                   consumers: dict[str, Loc]) -> None:
    if isinstance(trigger, ScheduleTrigger):
        if trigger.alarm_topic is not None and trigger.alarm_topic not in manifest.topics:
            raise fail(undeclared_message("topic", "topics", trigger.alarm_topic, manifest.topics),
                       *here, "alarm_topic")
        name = trigger.name or ""
        first = schedules.setdefault(name, (*here, "name"))
        if first != (*here, "name"):
            raise fail(f"duplicate schedule name {show(name)}: it is already used at {dotted(first[:-1])}; "
                       "schedule names are unique in a project (an unnamed schedule is named "
                       "<function>-<n>)", *here, "name", see=first)
    elif isinstance(trigger, TopicTrigger) and trigger.topic not in manifest.topics:
        raise fail(undeclared_message("topic", "topics", trigger.topic, manifest.topics), *here, "topic")
    elif isinstance(trigger, QueueTrigger):
        if trigger.queue not in manifest.queues:
            raise fail(undeclared_message("queue", "queues", trigger.queue, manifest.queues), *here, "queue")
        first = consumers.setdefault(trigger.queue, (*here, "queue"))
        if first != (*here, "queue"):
            raise fail(f"queue {show(trigger.queue)} is already consumed by function {show(first[1])} at "
                       f"{dotted(first)}; a queue may feed one function trigger", *here, "queue", see=first)
    elif isinstance(trigger, BucketTrigger) and trigger.bucket not in manifest.buckets:
        raise fail(undeclared_message("bucket", "buckets", trigger.bucket, manifest.buckets), *here, "bucket")


def schedules_of(functions: dict[str, FunctionSpec]) -> list[tuple[str, str, ScheduleTrigger]]:
    """(function name, schedule name, trigger) of every schedule trigger, in manifest order."""
    return [(name, trigger.name or "", trigger) for name, spec in functions.items()
            for trigger in spec.triggers if isinstance(trigger, ScheduleTrigger)]
