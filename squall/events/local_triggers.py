"""Firing a function's triggers by hand (`squall trigger`): the event each kind of trigger
would deliver, built exactly as the real source builds it, then one synchronous invoke.
Users test schedule, topic, queue and bucket functions locally without waiting for a
cron time or publishing for real (nothing is stored but the invocation's logs)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

import orjson

from squall.events.host import HostedFunction, HostSettings
from squall.events.queues import send_attributes
from squall.events.shapes import (
    s3_event,
    s3_record,
    scheduled_event,
    sns_records,
    sns_unsubscribe_url,
    sqs_event,
    sqs_record,
)
from squall.events.topics import normalize_attributes, subscription_arn
from squall.exceptions import BadInput

KINDS = ("schedule", "topic", "queue", "bucket")


def trigger_event(settings: HostSettings, function: HostedFunction, request: dict[str, Any]) -> bytes:
    """The event for `request` (`{"kind", ...}`); BadInput names what is missing or wrong."""
    kind = request.get("kind")
    if kind not in KINDS:
        raise BadInput(f"kind must be one of {', '.join(KINDS)}")
    triggers = [t for t in function.version.config.get("triggers", []) if kind in t]
    builder = {"schedule": _schedule, "topic": _topic, "queue": _queue, "bucket": _bucket}[kind]
    return orjson.dumps(builder(settings, function, triggers, request))


def _pick(triggers: list[dict[str, Any]], kind: str, name: Any) -> dict[str, Any] | None:
    """The trigger named `name` (by its target or its schedule name), else the first."""
    if name:
        for trigger in triggers:
            if name in (trigger.get(kind), trigger.get("name")):
                return trigger
        return None
    return triggers[0] if triggers else None


def _schedule(settings: HostSettings, function: HostedFunction, triggers: list[dict[str, Any]],
              request: dict[str, Any]) -> Any:
    trigger = _pick(triggers, "schedule", request.get("name"))
    if trigger is None and (request.get("name") or not triggers):
        raise BadInput(f"{function.name} has no schedule trigger" + (f" named {request['name']}"
                                                                      if request.get("name") else ""))
    assert trigger is not None
    if trigger.get("input") is not None:
        return trigger["input"]
    return scheduled_event(str(uuid.uuid4()), trigger.get("name") or f"{function.name}-0",
                           datetime.now(timezone.utc), region=settings.region, account=settings.account_id)


def _topic(settings: HostSettings, function: HostedFunction, triggers: list[dict[str, Any]], request: dict[str, Any]) -> Any:
    trigger = _pick(triggers, "topic", request.get("name"))
    topic = request.get("name") or (trigger or {}).get("topic")
    if not topic:
        raise BadInput(f"{function.name} has no topic trigger; give the topic's name")
    message = _text(request, "message")
    arn = subscription_arn(str(topic), f"function:{function.name}", settings.region, settings.account_id)
    return sns_records(str(uuid.uuid4()), str(topic), request.get("subject"), message,
                       normalize_attributes(request.get("attributes")), datetime.now(timezone.utc), arn,
                       unsubscribe_url=sns_unsubscribe_url("http://localhost/_squall", arn),
                       region=settings.region, account=settings.account_id)


def _queue(settings: HostSettings, function: HostedFunction, triggers: list[dict[str, Any]], request: dict[str, Any]) -> Any:
    trigger = _pick(triggers, "queue", request.get("name"))
    queue = request.get("name") or (trigger or {}).get("queue")
    if not queue:
        raise BadInput(f"{function.name} has no queue trigger; give the queue's name")
    bodies = request.get("messages") or [_text(request, "message")]
    if not isinstance(bodies, list) or not all(isinstance(b, str) for b in bodies):
        raise BadInput("messages must be a list of strings")
    fifo = str(queue).endswith(".fifo")
    now_ms = int(time.time() * 1000)
    attributes = send_attributes(request.get("attributes"))
    return sqs_event(sqs_record(
        str(uuid.uuid4()), f"local-{uuid.uuid4().hex}", body, queue=str(queue), receive_count=1,
        sent_timestamp=now_ms, first_receive_timestamp=now_ms, sender_id=settings.account_id,
        message_attributes=attributes or None, sequence_number=str(index + 1) if fifo else None,
        message_group_id=(request.get("group_id") or "local") if fifo else None,
        message_deduplication_id=str(uuid.uuid4()) if fifo else None, region=settings.region,
        account=settings.account_id) for index, body in enumerate(bodies))


def _bucket(settings: HostSettings, function: HostedFunction, triggers: list[dict[str, Any]], request: dict[str, Any]) -> Any:
    trigger = _pick(triggers, "bucket", request.get("name"))
    bucket = request.get("name") or (trigger or {}).get("bucket")
    if not bucket:
        raise BadInput(f"{function.name} has no bucket trigger; give the bucket's name")
    key = _text(request, "key")
    event_name = str(request.get("event") or "ObjectCreated:Put").removeprefix("s3:")
    if not event_name.startswith(("ObjectCreated:", "ObjectRemoved:")):
        raise BadInput("event must be ObjectCreated:Put, ObjectCreated:Copy or ObjectRemoved:Delete")
    created = event_name.startswith("ObjectCreated:")
    size = int(request.get("size", 0))
    record = s3_record(event_name, str(bucket), key, size if created else None,
                       "d41d8cd98f00b204e9800998ecf8427e" if created else None, f"{time.time_ns():016X}",
                       datetime.now(timezone.utc), str(uuid.uuid4()), region=settings.region)
    return s3_event([record])


def _text(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str):
        raise BadInput(f"{key} is required (a string)")
    return value
