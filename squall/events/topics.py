"""Topics: publishing a message stores one event per subscriber whose filter policy
accepts it, in one transaction, before the publisher hears back.

Subscribers are functions (a `- topic: NAME` trigger; they get SNS's "Records" event and
an asynchronous invocation's retries and dead letters) and HTTP endpoints (the topic's
`subscriptions:`; SNS's notification JSON, or the bare message with
`raw_message_delivery`, POSTed with SNS's headers; a 2xx answer is a delivery, anything
else is retried with backoff, four attempts within an hour at most, then parked as a
dead letter of the pseudo-function `@http`: `squall dlq ls @http`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

import httpx
import orjson

from squall.events.clock import Clock
from squall.events.host import EventHost, EventSink
from squall.manifest.filter_policy import parse_filter_policy
from squall.events.shapes import (
    sns_http_headers,
    sns_http_notification,
    sns_records,
    sns_unsubscribe_url,
    topic_arn,
)
from squall.exceptions import BadInput, NotFound, PayloadTooLarge
from squall.request_ids import new_request_id
from squall.store.events import Event, NewEvent

HTTP_DELIVERY = "@http"
"""The `function` of an event that is an HTTP delivery (no function has this name)."""
HTTP_ATTEMPTS = 4
HTTP_MAX_AGE = 3600.0
HTTP_TIMEOUT = 15.0
MAX_MESSAGE_BYTES = 256 * 1024
"""SNS's limit for a message with its attributes: 256 KB."""
ATTRIBUTE_TYPES = ("String", "Number", "String.Array", "Binary")

Attributes = dict[str, dict[str, str]]


def normalize_attributes(raw: Any) -> Attributes:
    """Message attributes as SNS has them (`{name: {"Type", "Value"}}`); a plain string or
    number value is shorthand for a String or Number attribute. Raises BadInput."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInput("message attributes must be an object of name: value")
    attributes: Attributes = {}
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float, dict)):
            raise BadInput(f"message attribute {name!r} must be a string, a number or {{Type, Value}}")
        if isinstance(value, dict):
            kind, text = value.get("Type") or value.get("DataType"), value.get("Value", value.get("StringValue"))
            if kind not in ATTRIBUTE_TYPES or not isinstance(text, str):
                raise BadInput(f"message attribute {name!r} needs a Type ({', '.join(ATTRIBUTE_TYPES)}) "
                               "and a string Value")
            attributes[name] = {"Type": kind, "Value": text}
        else:
            attributes[name] = {"Type": "String" if isinstance(value, str) else "Number", "Value": str(value)}
    return attributes


def subscription_arn(topic: str, subscriber: str, region: str, account: str) -> str:
    return f"{topic_arn(topic, region=region, account=account)}:{uuid.uuid5(uuid.NAMESPACE_URL, subscriber)}"


class Topics:
    def __init__(self, node: EventHost, sink: EventSink, *, clock: Clock) -> None:
        self.node = node
        self.clock = clock
        self.sink = sink
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)

    async def close(self) -> None:
        await self.http.aclose()

    def topic(self, name: str) -> dict[str, Any]:
        topic = self.node.resources.get("topic", {}).get(name)
        if topic is None:
            raise NotFound(f"Topic does not exist: {name}")
        return dict(topic.config)

    def function_subscribers(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        return [(function.name, trigger) for function in self.node.functions.values()
                for trigger in function.version.config.get("triggers", []) if trigger.get("topic") == name]

    async def publish(self, name: str, message: str, *, subject: str | None = None,
                      attributes: Mapping[str, Any] | None = None) -> str:
        """Store one event per accepting subscriber; the message id once they are committed."""
        topic = self.topic(name)
        attrs = normalize_attributes(dict(attributes) if attributes else None)
        size = len(message.encode()) + sum(len(k.encode()) + len(v["Value"].encode()) for k, v in attrs.items())
        if size > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(f"the message and its attributes are {size} bytes, over SNS's "
                                  f"{MAX_MESSAGE_BYTES} byte limit")
        message_id = str(uuid.uuid4())
        now = datetime.fromtimestamp(self.clock.time(), timezone.utc)
        events = [self._function_event(name, function, trigger.get("alias"), message_id, subject, message, attrs, now)
                  for function, trigger in self.function_subscribers(name) if _accepts(trigger, message, attrs)]
        events += [self._http_event(name, sub, message_id, subject, message, attrs, now)
                   for sub in topic.get("subscriptions") or [] if _accepts(sub, message, attrs)]
        if events:
            await self.sink.submit(events)
        return message_id

    def _arn(self, topic: str, subscriber: str) -> str:
        settings = self.node.settings
        return subscription_arn(topic, subscriber, settings.region, settings.account_id)

    def _function_event(self, topic: str, function: str, alias: str | None, message_id: str, subject: str | None,
                        message: str, attrs: Attributes, now: datetime) -> NewEvent:
        settings = self.node.settings
        arn = self._arn(topic, f"function:{function}")
        record = sns_records(message_id, topic, subject, message, attrs, now, arn,
                             unsubscribe_url=sns_unsubscribe_url("http://localhost/_squall", arn),
                             region=settings.region, account=settings.account_id)
        return self.sink.new_event(self.node.get(function), orjson.dumps(record), source=f"topic:{topic}",
                                     qualifier=alias)

    def _http_event(self, topic: str, subscription: dict[str, Any], message_id: str, subject: str | None,
                    message: str, attrs: Attributes, now: datetime) -> NewEvent:
        settings = self.node.settings
        arn = self._arn(topic, f"url:{subscription['url']}")
        if subscription.get("raw_message_delivery"):
            body = message
        else:
            body = orjson.dumps(sns_http_notification(
                message_id, topic, subject, message, attrs, now,
                unsubscribe_url=sns_unsubscribe_url("http://localhost/_squall", arn),
                region=settings.region, account=settings.account_id)).decode()
        headers = sns_http_headers(message_id, topic, arn, region=settings.region, account=settings.account_id)
        delivery = {"url": subscription["url"], "body": body, "headers": headers}
        created = self.clock.time()
        return NewEvent(new_request_id(), HTTP_DELIVERY, orjson.dumps(delivery), f"topic:{topic}", HTTP_ATTEMPTS,
                        created + HTTP_MAX_AGE, created)

    async def deliver_http(self, event: Event) -> str | None:
        """POST an HTTP delivery; None when the endpoint took it (2xx), else why not."""
        delivery = orjson.loads(event.payload)
        try:
            response = await self.http.post(delivery["url"], content=delivery["body"].encode(),
                                            headers=delivery["headers"])
        except httpx.HTTPError as exc:
            return f"POST {delivery['url']} failed: {type(exc).__name__}: {exc}"
        if 200 <= response.status_code < 300:
            return None
        return f"POST {delivery['url']} answered {response.status_code}: {response.text[:200]}"


def _accepts(subscriber: Mapping[str, Any], message: str, attributes: Attributes) -> bool:
    policy = subscriber.get("filter_policy")
    if not policy:
        return True
    scope = subscriber.get("filter_policy_scope") or "MessageAttributes"
    return parse_filter_policy(policy, scope).accepts(message, attributes)
