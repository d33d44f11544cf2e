"""The resources a project declares in squall.yaml: `topics:`, `queues:` and `buckets:`.

Each section maps names to settings, a name with nothing after it taking every default. The
names are checked as SNS, SQS and S3 check theirs; triggers and destinations that name a
resource use the same checks, and `topic` triggers take the same `filter_policy` checks as
topic subscriptions (the policy itself is parsed by squall.manifest.filter_policy). A queue's
`fifo` is read from its name (`.fifo`).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Callable, Mapping
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from squall.manifest.errors import fail, show, undeclared_message
from squall.manifest.filter_policy import SCOPES, FilterPolicyError, parse_filter_policy
from squall.manifest.sections import Section
from squall.manifest.values import check_bool, duration, one_of, optional, plain_json, whole_number

FIFO_SUFFIX = ".fifo"
MAX_FIFO_BATCH = 10
"""The largest batch a FIFO queue hands a function (as in SQS)."""
RESOURCE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
"""Topic names, and queue names before `.fifo` (as SNS and SQS allow)."""

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")


# ------------------------------------------------------------------ names


def check_topic_name(value: Any) -> str:
    if isinstance(value, str) and RESOURCE_NAME.fullmatch(value):
        return value
    raise ValueError("a topic name must hold only letters, digits, - and _ (1 to 80 characters, "
                     f"as in SNS), got {show(value)}")


def check_queue_name(value: Any) -> str:
    if isinstance(value, str) and len(value) <= 80 \
            and RESOURCE_NAME.fullmatch(value.removesuffix(FIFO_SUFFIX)):
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


def is_fifo(queue: str) -> bool:
    return queue.endswith(FIFO_SUFFIX)


# ------------------------------------------------------------------ filter policies


def check_filter_policy_scope(value: Any) -> str:
    return one_of(SCOPES)(value)


def check_filter_policy(value: Any) -> dict[str, Any] | None:
    """The type check of `filter_policy`; `with_parsed_filter_policy` has already parsed it if it can."""
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


def with_parsed_filter_policy(data: dict[Any, Any]) -> dict[Any, Any]:
    """`data` with its `filter_policy` checked as SNS would, in its scope, and made plain JSON."""
    policy, scope = data.get("filter_policy"), data.get("filter_policy_scope", SCOPES[0])
    if policy is None or scope not in SCOPES or not isinstance(policy, (str, dict)):
        return data
    try:
        parsed = parse_filter_policy(plain_json(policy) if isinstance(policy, dict) else policy, scope)
    except (FilterPolicyError, ValueError) as exc:
        raise fail(str(exc), "filter_policy") from None
    return {**data, "filter_policy": parsed.policy}


# ------------------------------------------------------------------ sections


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
    filter_policy: Annotated[dict[str, Any] | None, BeforeValidator(check_filter_policy)] = None
    filter_policy_scope: Annotated[str, BeforeValidator(check_filter_policy_scope)] = SCOPES[0]
    raw_message_delivery: Annotated[bool, BeforeValidator(check_bool)] = False

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        return with_parsed_filter_policy(data)


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


# ------------------------------------------------------------------ references


def check_dead_letter_queues(queues: Mapping[str, QueueSpec]) -> None:
    """Raise `fail()` at the first `dead_letter_queue` that is not another declared queue of the
    same type (FIFO or standard)."""
    for name, queue in queues.items():
        _check_dead_letter_queue(queues, name, queue)


def _check_dead_letter_queue(queues: Mapping[str, QueueSpec], name: str, queue: QueueSpec) -> None:
    target = queue.dead_letter_queue
    if target is None:
        return
    here = ("queues", name, "dead_letter_queue")
    if target == name:
        raise fail("must name another queue: a queue cannot be its own dead-letter queue", *here)
    if target not in queues:
        raise fail(undeclared_message("queue", "queues", target, queues), *here)
    if is_fifo(target) != queue.fifo:
        kinds = ("FIFO", "standard") if queue.fifo else ("standard", "FIFO")
        raise fail(f"{show(target)} is a {kinds[1]} queue: the dead-letter queue of a {kinds[0]} queue "
                   f"must be {kinds[0]} too (as in SQS)", *here)
