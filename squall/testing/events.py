"""Events and a context for calling a handler directly, in the test's own process.

Each factory builds its event with the converter the platform itself uses, so a handler
called with one sees what it would see on squall:

    http_event("GET", "/hello", query={"name": "you"})        # squall.http_event.build_event_v2
    scheduled_event("nightly", time=datetime(2026, 3, 9, 3, tzinfo=UTC))  # EventBridge "Scheduled Event"
    sns_event("v2 is out", topic="deploys", attributes={"env": "prod"})   # SNS Records
    sqs_event("job 1", "job 2", queue="jobs")                  # one SQS batch of two records
    s3_event("uploads", "logs/app.log", content=b"...")        # S3 ObjectCreated:Put
    invoke_event({"name": "you"})                              # a direct invoke: the JSON sent
    lambda_context("hello")                                    # squall.runtime.context.LambdaContext

(squall.events.shapes for every "Records" and EventBridge shape). Ids, times and ARNs are
made as the node makes them, in the node's default region and account; each factory takes
the value to use instead where a test cares (`time=`, `message_id=`, `region=`, ...).
"""

from __future__ import annotations

import hashlib
import secrets as token_source
import time as _time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Callable
from urllib.parse import quote, urlencode

import orjson

from squall.events import shapes
from squall.events.queues import send_attributes
from squall.events.topics import normalize_attributes, subscription_arn
from squall.http_event import HttpRequest, build_event_v2
from squall.node.specs import NodeSettings
from squall.request_ids import new_request_id
from squall.routing import MethodNotAllowed, Route, RouteTable
from squall.runtime.context import LambdaContext, function_arn

__all__ = ["ACCOUNT", "REGION", "http_event", "invoke_event", "lambda_context", "s3_event", "scheduled_event",
           "sns_event", "sqs_event"]


def _node_default(name: str) -> str:
    return str(next(f.default for f in fields(NodeSettings) if f.name == name))


REGION = _node_default("region")
"""The region a node reports unless configured otherwise (SQUALL_REGION)."""
ACCOUNT = _node_default("account_id")
UNSUBSCRIBE_BASE = "http://localhost/_squall"
"""Where a function's SNS record says to unsubscribe (as squall/events/topics.py writes it)."""
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


def http_event(method: str = "GET", path: str = "/", *, route: str | None = None,
               query: Mapping[str, str | Sequence[str]] | str | None = None,
               headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
               body: str | bytes | None = None, json: Any = None, cookies: Mapping[str, str] | None = None,
               source_ip: str = "127.0.0.1", host: str = "", request_id: str | None = None,
               now: float | None = None, account: str = ACCOUNT) -> dict[str, Any]:
    """The HTTP API (payload format 2.0) event of `method path` reaching `route`.

    `route` is the route key as squall.yaml writes it (`"GET /items/{id}"`, `"ANY /{proxy+}"`,
    `"$default"`); by default the request's own method and path, so path parameters need it.
    `path` may carry the query (`"/hello?name=you"`) or take it from `query`. `json` is sent
    as the body with `content-type: application/json`; `body` as it is. Raises ValueError when
    `route` does not take `method path`.
    """
    raw_path, _, raw_query = path.partition("?")
    raw_path = quote(raw_path or "/", safe=_PATH_SAFE)
    if query is not None:
        extra = query if isinstance(query, str) else urlencode(query, doseq=True)
        raw_query = "&".join(part for part in (raw_query, extra) if part)
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    content = body.encode() if isinstance(body, str) else body or b""
    if json is not None:
        content = orjson.dumps(json)
        if not any(name.lower() == "content-type" for name, _ in pairs):
            pairs.append(("content-type", "application/json"))
    if cookies:
        pairs.append(("cookie", "; ".join(f"{name}={value}" for name, value in cookies.items())))
    key = route or f"{method.upper()} {raw_path}"
    match = RouteTable([Route.from_key(key, None)]).match(method, raw_path)
    if match is None or isinstance(match, MethodNotAllowed):
        raise ValueError(f"route {key!r} does not take {method.upper()} {raw_path}")
    request = HttpRequest(method=method.upper(), raw_path=raw_path, query_string=raw_query,
                          headers=[(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs],
                          body=content, source_ip=source_ip, host=host)
    return build_event_v2(request, match, request_id=request_id or new_request_id(), account_id=account, now=now)


def scheduled_event(schedule: str = "schedule", *, time: datetime | None = None, event_id: str | None = None,
                    region: str = REGION, account: str = ACCOUNT) -> dict[str, Any]:
    """EventBridge's "Scheduled Event" for a fire at `time` (now by default) of the schedule
    named `schedule` (its `name:` in squall.yaml; `FUNCTION-0` for an unnamed first one)."""
    return shapes.scheduled_event(event_id or new_request_id(), schedule, time or datetime.now(UTC),
                                  region=region, account=account)


def sns_event(message: str, *, topic: str = "topic", subject: str | None = None,
              attributes: Mapping[str, Any] | None = None, function: str = "function",
              message_id: str | None = None, timestamp: datetime | None = None, region: str = REGION,
              account: str = ACCOUNT) -> dict[str, Any]:
    """SNS's `{"Records": [...]}` event for `message` published to `topic`, as delivered to the
    subscribed `function`. `attributes` are `{name: value}` (a string or a number) or SNS's
    `{name: {"Type", "Value"}}`."""
    arn = subscription_arn(topic, f"function:{function}", region, account)
    return shapes.sns_records(message_id or str(uuid.uuid4()), topic, subject, message,
                              normalize_attributes(dict(attributes) if attributes is not None else None),
                              timestamp or datetime.now(UTC), arn,
                              unsubscribe_url=shapes.sns_unsubscribe_url(UNSUBSCRIBE_BASE, arn),
                              region=region, account=account)


def sqs_event(*bodies: str, queue: str = "queue", attributes: Mapping[str, Any] | None = None,
              group_id: str | None = None, receive_count: int = 1, sent: datetime | None = None,
              region: str = REGION, account: str = ACCOUNT) -> dict[str, Any]:
    """SQS's `{"Records": [...]}` event: one batch with a record per body, sent to `queue` (a
    FIFO queue when its name ends in `.fifo`: group `group_id`, default `local`, and sequence
    numbers). `attributes` (on every record) are `{name: value}` or SendMessage's shape."""
    if not bodies:
        raise ValueError("give at least one message body")
    fifo = queue.endswith(".fifo")
    sent_ms = shapes.epoch_millis(sent or datetime.now(UTC))
    shaped = send_attributes(dict(attributes) if attributes is not None else None)
    return shapes.sqs_event(shapes.sqs_record(
        str(uuid.uuid4()), f"local-{uuid.uuid4().hex}", body, queue=queue, receive_count=receive_count,
        sent_timestamp=sent_ms, first_receive_timestamp=sent_ms, sender_id=account,
        message_attributes=shaped or None, sequence_number=str(index + 1) if fifo else None,
        message_group_id=(group_id or "local") if fifo else None,
        message_deduplication_id=str(uuid.uuid4()) if fifo else None, region=region, account=account)
        for index, body in enumerate(bodies))


def s3_event(bucket: str, key: str, *, event: str = "ObjectCreated:Put", content: bytes = b"",
             time: datetime | None = None, region: str = REGION) -> dict[str, Any]:
    """S3's `{"Records": [...]}` notification of `event` (`ObjectCreated:Put`, `ObjectCreated:Copy`,
    `ObjectRemoved:Delete`) for `key` in `bucket`; a created object's size and eTag are those
    of `content`."""
    event = event.removeprefix("s3:")
    created = event.startswith("ObjectCreated:")
    etag = hashlib.md5(content, usedforsecurity=False).hexdigest()
    record = shapes.s3_record(event, bucket, key, len(content) if created else None, etag if created else None,
                              f"{_time.time_ns():016X}", time or datetime.now(UTC), new_request_id(),
                              region=region)
    return shapes.s3_event([record])


def invoke_event(payload: Any = None) -> Any:
    """What a direct invoke (`squall invoke`, the API, boto3's Lambda client) hands the handler:
    the JSON sent, decoded; `{}` when nothing was sent. Raises TypeError for what is not JSON."""
    return orjson.loads(orjson.dumps({} if payload is None else payload))


def lambda_context(function: str = "function", *, version: int | str = "$LATEST", memory: int = 256,
                   timeout: float = 30.0, request_id: str | None = None, region: str = REGION,
                   account: str = ACCOUNT, clock: Callable[[], float] = _time.time) -> LambdaContext:
    """The context squall's runtime hands `function`'s handler for an unqualified call (the
    defaults are squall.yaml's: 256 MB, 30 s; `version=3` for a call qualified with version 3 or
    an alias on it): `get_remaining_time_in_millis()` counts down from `timeout` on `clock`."""
    stream = f"{_time.strftime('%Y/%m/%d')}/[{version}]{token_source.token_hex(16)}"
    return LambdaContext(request_id=request_id or new_request_id(), function_name=function,
                         function_version=str(version), invoked_function_arn=function_arn(function, region, account),
                         memory_limit_in_mb=memory, log_group_name=f"/aws/lambda/{function}", log_stream_name=stream,
                         deadline_ms=int((clock() + timeout) * 1000), clock=clock)
