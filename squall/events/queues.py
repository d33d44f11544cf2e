"""Queues: sending messages, and the consumers that invoke a function with batches of them
(Lambda's SQS event source mapping).

A consumer runs on every node for each `- queue: NAME` trigger. It receives up to
`batch_size` messages (waiting up to `batch_window` seconds to fill a batch), invokes the
function synchronously with SQS's "Records" event and then:
* the function succeeded: the batch is deleted, except the messages it names in
  `{"batchItemFailures": [{"itemIdentifier": MESSAGE_ID}]}` when
  `report_batch_item_failures` is on (the default);
* the function failed (or timed out): nothing is deleted; the messages become visible
  again after the queue's `visibility_timeout` and are received again;
* the function was throttled: the messages are made visible again at once.
A message received more than `max_receive_count` times moves to the queue's
`dead_letter_queue` instead of being handed to the function (without one it is kept
until its `retention` ends, as in SQS). FIFO queues hand a group's messages over in
order, one batch of a group at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Mapping

import orjson

from squall import lambda_json
from squall.events.clock import Clock
from squall.events.host import EventHost
from squall.events.shapes import sqs_event, sqs_record
from squall.exceptions import BadInput, NotFound, PayloadTooLarge, Throttled
from squall.store.queues import NewMessage, QueueMessage
from squall.releases import LIVE_ALIAS
from squall.tasks import cancel_and_wait

MAX_MESSAGE_BYTES = 256 * 1024
"""SQS's limit for a message with its attributes: 256 KB."""
RETENTION_EVERY = 60.0


ATTRIBUTE_TYPES = ("String", "Number", "Binary")


def send_attributes(raw: Any) -> dict[str, dict[str, str]]:
    """Message attributes in SendMessage's shape (`{name: {"DataType", "StringValue" |
    "BinaryValue"}}`, a Binary value in base64); a plain string or number is shorthand,
    and SNS's `{"Type", "Value"}` is accepted too."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInput("message attributes must be an object of name: value")
    shaped = {}
    for name, value in raw.items():
        if isinstance(value, dict) and ("DataType" in value or "Type" in value):
            kind = str(value.get("DataType", value.get("Type")))
            text = value.get("BinaryValue", value.get("StringValue", value.get("Value")))
            if kind.split(".", 1)[0] not in ATTRIBUTE_TYPES or not isinstance(text, str):
                raise BadInput(f"message attribute {name!r} needs a DataType (String, Number or Binary, "
                               "with an optional .suffix) and a string value")
            shaped[name] = {"DataType": kind, ("BinaryValue" if kind.startswith("Binary") else "StringValue"): text}
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            shaped[name] = {"DataType": "String" if isinstance(value, str) else "Number", "StringValue": str(value)}
        else:
            raise BadInput(f"message attribute {name!r} must be a string, a number or "
                           "{DataType, StringValue}")
    return shaped


class Queues:
    def __init__(self, node: EventHost, *, idle_poll: float, clock: Clock) -> None:
        self.node = node
        self.clock = clock
        self.idle_poll = idle_poll
        """Longest sleep of a consumer with nothing visible (other nodes' sends whose notice went missing)."""
        self.store = node.store
        self.consumers: dict[tuple[str, str], QueueConsumer] = {}
        self._wakers: dict[str, list[asyncio.Event]] = {}
        self._housekeeper: asyncio.Task[None] | None = None

    def settings(self, name: str) -> dict[str, Any]:
        queue = self.node.resources.get("queue", {}).get(name)
        if queue is None:
            raise NotFound(f"The specified queue does not exist: {name}")
        return dict(queue.config)

    async def send(self, name: str, body: str, *, attributes: Any = None, group_id: str | None = None,
                   deduplication_id: str | None = None, delay: float | None = None) -> str:
        """Store one message; its id once committed."""
        settings = self.settings(name)
        attrs = send_attributes(attributes)
        size = len(body.encode()) + sum(len(k.encode()) + len(orjson.dumps(v)) for k, v in attrs.items())
        if size > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(f"the message and its attributes are {size} bytes, over SQS's "
                                  f"{MAX_MESSAGE_BYTES} byte limit")
        if settings.get("fifo"):
            if not group_id:
                raise BadInput(f"{name} is a FIFO queue: a message needs a group id")
            if not deduplication_id and settings.get("content_based_deduplication"):
                import hashlib

                deduplication_id = hashlib.sha256(body.encode()).hexdigest()
            if not deduplication_id:
                raise BadInput(f"{name} is a FIFO queue without content_based_deduplication: a message "
                               "needs a deduplication id")
            if delay:
                raise BadInput(f"{name} is a FIFO queue: a message cannot have its own delay (set the queue's)")
        elif group_id or deduplication_id:
            raise BadInput(f"{name} is not a FIFO queue: group and deduplication ids are for FIFO queues")
        message = NewMessage(str(uuid.uuid4()), body, attrs, group_id, deduplication_id,
                             float(settings.get("delay", 0) if delay is None else delay))
        [message_id] = await asyncio.to_thread(self.store.send_messages, name, [message], now=self.clock.time())
        self.wake(name)
        return message_id

    def wake(self, name: str) -> None:
        """Messages of `name` became visible (sent here, or a store notice from another node)."""
        for event in self._wakers.get(name, []):
            event.set()

    def wake_all(self) -> None:
        for name in list(self._wakers):
            self.wake(name)

    def sync(self) -> None:
        """Run one consumer per queue trigger of the active functions (and only those)."""
        wanted: dict[tuple[str, str], dict[str, Any]] = {}
        for function in self.node.functions.values():
            for trigger in function.version.config.get("triggers", []):
                if "queue" in trigger and trigger.get("enabled", True):
                    wanted[(function.name, trigger["queue"])] = trigger
        for key in list(self.consumers):
            if key not in wanted or self.consumers[key].trigger != wanted[key]:
                self.consumers.pop(key).stop()
        for key, trigger in wanted.items():
            if key not in self.consumers:
                consumer = QueueConsumer(self, key[0], key[1], trigger)
                self._wakers.setdefault(key[1], []).append(consumer.wake_event)
                self.consumers[key] = consumer
                consumer.start()

    def forget(self, consumer: QueueConsumer) -> None:
        wakers = self._wakers.get(consumer.queue, [])
        if consumer.wake_event in wakers:
            wakers.remove(consumer.wake_event)

    def start(self) -> None:
        self.sync()
        self._housekeeper = asyncio.ensure_future(self._expire_forever())

    async def _expire_forever(self) -> None:
        """Apply every queue's retention (consumed or not) and forget old deduplication ids."""
        while True:
            now = self.clock.time()
            try:
                for name, queue in list(self.node.resources.get("queue", {}).items()):
                    retention = float(queue.config.get("retention", 345600))
                    await asyncio.to_thread(self.store.expire_messages, name, sent_before=now - retention)
            except Exception as exc:  # noqa: BLE001 - housekeeping must not end
                print(f"squall: queue retention: {exc!r}", flush=True)
            await self.clock.sleep(RETENTION_EVERY)

    async def stop(self) -> None:
        await cancel_and_wait(self._housekeeper)
        for consumer in self.consumers.values():
            consumer.stop()
        self.consumers.clear()


class QueueConsumer:
    """Receives batches from one queue and invokes one function with them."""

    def __init__(self, queues: Queues, function: str, queue: str, trigger: Mapping[str, Any]) -> None:
        self.queues = queues
        self.node = queues.node
        self.store = queues.store
        self.clock = queues.clock
        self.function = function
        self.queue = queue
        self.trigger = dict(trigger)
        self.alias = str(trigger.get("alias") or LIVE_ALIAS)
        self.wake_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        self.queues.forget(self)
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            self.wake_event.clear()  # before looking: a wake from now on is for what this look may miss
            try:
                handled = await self._once()
            except asyncio.CancelledError:
                raise
            except NotFound:
                return  # the queue or the function is gone; sync() stops us
            except Exception as exc:  # noqa: BLE001 - a consumer must outlive a store outage
                print(f"squall: queue {self.queue} -> {self.function}: {exc!r}", flush=True)
                await self.clock.sleep(1.0)
                continue
            if not handled:
                await self._sleep()

    async def _sleep(self) -> None:
        """Until the next message is visible, a wake, or the idle poll (other nodes' sends whose
        notice went missing)."""
        poll = self.queues.idle_poll
        due = await asyncio.to_thread(self.store.next_visible, self.queue)
        wait = poll if due is None else min(poll, max(0.01, due - self.clock.time()))
        await self.clock.wait(self.wake_event.wait(), wait)

    async def _receive(self, settings: Mapping[str, Any], limit: int) -> list[QueueMessage]:
        return await asyncio.to_thread(
            self.store.receive_messages, self.queue, limit=limit, now=self.clock.time(),
            visibility_timeout=float(settings.get("visibility_timeout", 30)), fifo=bool(settings.get("fifo")))

    async def _once(self) -> bool:
        if self.node.pick(self.function, self.alias) is None:  # its alias is not set: leave the messages be
            return False
        settings = self.queues.settings(self.queue)
        batch_size = int(self.trigger.get("batch_size", 10))
        messages = await self._receive(settings, batch_size)
        if not messages:
            return False
        window_end = self.clock.monotonic() + float(self.trigger.get("batch_window", 0))
        while len(messages) < batch_size and self.clock.monotonic() < window_end:
            self.wake_event.clear()
            await self.clock.wait(self.wake_event.wait(), window_end - self.clock.monotonic())
            messages += await self._receive(settings, batch_size - len(messages))
        messages = await self._dead_letter(settings, messages)
        if messages:
            await self._invoke(settings, messages)
        return True

    async def _dead_letter(self, settings: Mapping[str, Any], messages: list[QueueMessage]) -> list[QueueMessage]:
        """Move the messages received too often to the dead-letter queue; the others."""
        target = settings.get("dead_letter_queue")
        limit = int(settings.get("max_receive_count", 5))
        if not target:
            return messages
        over = [m for m in messages if m.receive_count > limit]
        if over:
            await asyncio.to_thread(self.store.move_messages, self.queue, [m.receipt for m in over], str(target),
                                    now=self.clock.time())
            self.queues.wake(str(target))
        return [m for m in messages if m.receive_count <= limit]

    async def _invoke(self, settings: Mapping[str, Any], messages: list[QueueMessage]) -> None:
        function = self.node.pick(self.function, self.alias)
        if function is None:  # the alias was removed since the batch was received: it comes back when visible
            return
        event = orjson.dumps(self.event(messages, bool(settings.get("fifo"))))
        try:
            invocation = await self.node.invoke(function, event)
        except Throttled:
            await asyncio.to_thread(self.store.change_visibility, self.queue, [m.receipt for m in messages],
                                    visible_at=self.clock.time() + 0.2)
            return
        if not invocation.ok:
            return  # visible again after the visibility timeout
        failed = self.failed_ids(invocation.payload) if self.trigger.get(
            "report_batch_item_failures", True) else set()
        done = [m.receipt for m in messages if m.id not in failed]
        if done:
            await asyncio.to_thread(self.store.delete_messages, self.queue, done)

    def event(self, messages: list[QueueMessage], fifo: bool) -> dict[str, Any]:
        settings = self.node.settings
        return sqs_event(sqs_record(
            m.id, m.receipt, m.body, queue=self.queue, receive_count=m.receive_count,
            sent_timestamp=int(m.sent_at * 1000), first_receive_timestamp=int((m.first_received_at or m.sent_at) * 1000),
            sender_id=settings.account_id, message_attributes=m.attributes or None,
            sequence_number=str(m.sequence) if fifo else None, message_group_id=m.group_id if fifo else None,
            message_deduplication_id=m.deduplication_id if fifo else None,
            region=settings.region, account=settings.account_id) for m in messages)

    @staticmethod
    def failed_ids(payload: bytes) -> set[str]:
        """The ids of `{"batchItemFailures": [{"itemIdentifier": ID}, ...]}`, if returned."""
        try:
            result = lambda_json.loads(payload)
        except ValueError:
            return set()
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if not isinstance(failures, list):
            return set()
        return {str(item.get("itemIdentifier")) for item in failures if isinstance(item, dict)}
