"""The node's event engine: what the API, the CLI and the triggers call to run functions
asynchronously. It accepts events (`EventIntake`), runs them (`EventDispatcher`), routes
destination records, and manages dead letters.

Settings a function's version carries (squall.yaml): `retries` (default 2: three
attempts in all), `max_event_age` (seconds, default 21600), `on_success` / `on_failure`
(`{function: NAME}`, `{topic: NAME}` or `{queue: NAME}`).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from squall.events.buckets import Buckets
from squall.events.clock import Clock, SystemClock
from squall.events.dispatcher import EventDispatcher
from squall.events.host import EventHost, HostedFunction
from squall.events.intake import EventIntake
from squall.events.queues import Queues
from squall.events.retry import RetryPolicy
from squall.events.scheduler import Scheduler
from squall.events.topics import HTTP_DELIVERY, HTTP_MAX_AGE, Topics
from squall.events.wakeups import NoticeRouter, Polls
from squall.exceptions import NotFound, PayloadTooLarge
from squall.request_ids import new_request_id
from squall.store.events import Event, EventStatus, NewEvent
from squall.releases import LIVE_ALIAS, alias_of


MAX_ASYNC_PAYLOAD = 1024 * 1024
"""Lambda's limit for an asynchronous invocation's payload: 1 MB (1,048,576 bytes)."""
DEFAULT_RETRIES = 2
DEFAULT_MAX_EVENT_AGE = 21600.0


class EventEngine:
    def __init__(self, node: EventHost, clock: Clock | None = None) -> None:
        self.node = node
        self.clock = clock if clock is not None else SystemClock()
        """The time every part reads and waits on: the system's, or a test's ManualClock."""
        self.store = node.store
        self.owner = node_id(node.settings.data_dir, node.settings.server.node_id)
        self.retry = RetryPolicy(base=node.settings.server.retry_base_seconds)
        self.polls = Polls.from_settings(node.settings.server,
                                         notices_reach_other_nodes=self.store.notices_reach_other_nodes)
        self.dispatcher = EventDispatcher(node, self.owner, self.retry, self.deliver, self.finished,
                                          deliver_http=lambda event: self.topics.deliver_http(event),
                                          overlap_of=lambda source: self.scheduler.overlap_of(source),
                                          idle_poll=self.polls.events, clock=self.clock)
        self.intake = EventIntake(self.store, on_stored=self.dispatcher.wake, runner=self.dispatcher,
                                  clock=self.clock)
        self.topics = Topics(node, self, clock=self.clock)
        self.scheduler = Scheduler(node, self, clock=self.clock)
        self.queues = Queues(node, idle_poll=self.polls.queues, clock=self.clock)
        self.buckets = Buckets(node, self)
        self.notices = NoticeRouter(self.store, self)
        self.started = False

    async def start(self) -> None:
        await self.notices.start()  # first: what other nodes store from now on wakes what starts below
        await self.dispatcher.start()
        await self.scheduler.start()
        self.queues.start()
        self.started = True

    def sync(self) -> None:
        """The active functions changed (a deploy): follow their schedules and queues."""
        if self.started:
            asyncio.ensure_future(self.scheduler.sync())
            self.queues.sync()

    async def stop(self) -> None:
        await self.notices.stop()
        await self.queues.stop()
        await self.scheduler.stop()
        await self.dispatcher.stop()
        await self.topics.close()

    async def publish(self, topic: str, message: str, *, subject: str | None = None,
                      attributes: dict[str, Any] | None = None) -> str:
        """Publish to `topic` (see squall/events/topics.py); the message id once stored."""
        return await self.topics.publish(topic, message, subject=subject, attributes=attributes)

    # -- what the triggers and the store's notices call (EventSink, NoticeTargets) ---------
    async def submit(self, events: list[NewEvent]) -> list[str]:
        return await self.intake.submit(events)

    def stop_runs(self, source: str) -> None:
        self.dispatcher.stop_runs(source)

    def wake_events(self) -> None:
        self.dispatcher.wake()

    def wake_queue(self, name: str) -> None:
        self.queues.wake(name)

    def wake_queues(self) -> None:
        self.queues.wake_all()

    def store_changed(self) -> None:
        self.node.store_changed()

    async def finished(self, event: Event, ok: bool) -> None:
        """An event is done for good (succeeded, or dead): tell its schedule, if any."""
        if event.source.startswith("schedule:"):
            await self.scheduler.record_result(event.source, ok)

    # -- accepting -------------------------------------------------------------
    def new_event(self, function: HostedFunction, payload: bytes, *, source: str,
                  idempotency_key: str | None = None, delay: float = 0.0, qualifier: str | None = None) -> NewEvent:
        """An event for `function` (its `qualifier`: an alias or a version, None for live) with the
        function's retry and age settings. Raises PayloadTooLarge over 1 MB."""
        if len(payload) > MAX_ASYNC_PAYLOAD:
            raise PayloadTooLarge(f"{len(payload)} byte payload is too large for the Event invocation type "
                                  f"(limit {MAX_ASYNC_PAYLOAD} bytes)")
        config = function.version.config
        now = self.clock.time()
        retries = int(config.get("retries", DEFAULT_RETRIES))
        max_age = float(config.get("max_event_age", DEFAULT_MAX_EVENT_AGE))
        target = function.name if alias_of(qualifier) == LIVE_ALIAS else f"{function.name}:{qualifier}"
        return NewEvent(new_request_id(), target, payload, source, retries + 1, now + max_age,
                        now + delay, idempotency_key)

    async def invoke_async(self, function: HostedFunction, payload: bytes, *, qualifier: str | None,
                           idempotency_key: str | None = None, source: str = "invoke") -> str:
        """Store an asynchronous invocation of `function`, the version `qualifier` (an alias, a
        version number, or None for live) reached when the call came; it runs on the version
        the qualifier reaches when it runs. Its request id once committed (the first request's
        id when `idempotency_key` was used within the window)."""
        event = self.new_event(function, payload, source=source, idempotency_key=idempotency_key,
                               qualifier=qualifier)
        [request_id] = await self.intake.submit([event])
        return request_id

    async def deliver(self, destination: dict[str, Any], record: dict[str, Any], event: Event) -> None:
        """Send a destination record to its `{function: ...}` (as an async invocation),
        `{topic: ...}` (published as the message) or `{queue: ...}` (sent as the body)."""
        if destination.get("function"):
            target = self.node.get(str(destination["function"]))
            await self.intake.submit([self.new_event(target, orjson.dumps(record),
                                                     source=f"destination:{event.function}")])
        elif destination.get("topic"):
            await self.publish(str(destination["topic"]), orjson.dumps(record).decode())
        elif destination.get("queue"):
            queue = str(destination["queue"])
            fifo = bool(self.queues.settings(queue).get("fifo"))
            await self.queues.send(queue, orjson.dumps(record).decode(), group_id=event.function if fifo else None,
                                   deduplication_id=event.id if fifo else None)
        else:
            raise NotImplementedError(f"destination {destination} is not supported yet")

    # -- dead letters ----------------------------------------------------------
    def dead_letters(self, name: str, limit: int = 100) -> list[Event]:
        return self.store.list_events(name, EventStatus.DEAD, limit=limit)

    def redrive(self, name: str, ids: Sequence[str] | None) -> int:
        """Queue dead letters again; those of HTTP deliveries (`@http`) too. A removed
        function's dead letters cannot run: NotFound."""
        if name == HTTP_DELIVERY:
            max_age = HTTP_MAX_AGE
        else:
            max_age = float(self.node.get(name).version.config.get("max_event_age", DEFAULT_MAX_EVENT_AGE))
        now = self.clock.time()
        moved = self.store.redrive_events(name, ids, now=now, expires_at=now + max_age)
        self.dispatcher.wake()
        return moved

    def purge(self, name: str, ids: Sequence[str] | None) -> int:
        return self.store.purge_events(name, ids)

    def get(self, event_id: str) -> Event:
        event = self.store.get_event(event_id)
        if event is None:
            raise NotFound(f"Event not found: {event_id}")
        return event


def node_id(data_dir: Path, configured: str | None = None) -> str:
    """This node's name in event leases: `configured` (the server's `SQUALL_NODE_ID`), or the
    host name with a digest of the data dir, the same across restarts, so that a restarted node
    takes back at once what it was running when it stopped (and distinct for nodes sharing a
    data dir)."""
    if configured:
        return configured
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:10]
    return f"{socket.gethostname()}-{digest}"
