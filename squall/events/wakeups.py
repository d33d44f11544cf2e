"""How a node hears of work that other nodes stored: it listens to the store's notices
(squall/store/notices.py) and hands each to the part that waits for it, and each part
also looks at the store on its own at least every so often (the polls, a safety net).

    events      the dispatcher looks for due events
    queue:NAME  the consumers of the queue NAME look for messages
    deploy, secrets, resources
                the node catches up with the store (Node.store_changed)
    *           all of the above (the listener reconnected and may have missed notices)

Topics a node does not know (sent by a newer version during a rolling upgrade) are ignored.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from squall.settings import Settings
from squall.store.base import BaseStore
from squall.store.notices import DEPLOY, EVENTS, QUEUE_PREFIX, RESOURCES, RESYNC, SECRETS, Listener


EVENT_POLL = 5.0
QUEUE_POLL = 1.0
STORE_POLL = 2.0
"""The polls where notices stay in the process (SQLite): seconds between looks at the store
by an idle dispatcher, by a consumer of an empty queue, and for other nodes' deploys, secrets
and resources."""
POLL_WITH_NOTICES = 30.0
"""Each of the polls where notices reach every node (PostgreSQL): only a safety net."""
MIN_POLL, MAX_POLL = 0.05, 3600.0


@dataclass(frozen=True, slots=True)
class Polls:
    """The longest time, in seconds, each waiter goes without looking at the store."""

    events: float
    queues: float
    store: float

    @classmethod
    def from_settings(cls, settings: Settings, *, notices_reach_other_nodes: bool) -> Polls:
        """The defaults for a store whose notices do (or do not) reach other nodes, each
        overridden by the server's setting: SQUALL_EVENT_POLL_SECONDS,
        SQUALL_QUEUE_POLL_SECONDS, SQUALL_STORE_POLL_SECONDS (kept within 0.05 s - 1 h)."""

        def seconds(value: float | None, default: float) -> float:
            if value is None:
                value = POLL_WITH_NOTICES if notices_reach_other_nodes else default
            return min(max(value, MIN_POLL), MAX_POLL)

        return cls(events=seconds(settings.event_poll_seconds, EVENT_POLL),
                   queues=seconds(settings.queue_poll_seconds, QUEUE_POLL),
                   store=seconds(settings.store_poll_seconds, STORE_POLL))


class NoticeTargets(Protocol):
    """What the store's notices wake (the engine)."""

    def wake_events(self) -> None: ...

    def wake_queue(self, name: str) -> None: ...

    def wake_queues(self) -> None: ...

    def store_changed(self) -> None: ...


class NoticeRouter:
    """Listens to the store's notices while the node runs and routes each on the event loop."""

    def __init__(self, store: BaseStore, targets: NoticeTargets) -> None:
        self.store = store
        self.targets = targets
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: Listener | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener = await asyncio.to_thread(self.store.listen, self._from_listener)

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await asyncio.to_thread(listener.close)

    def _from_listener(self, topic: str) -> None:
        """On the listener's thread: hand over to the event loop."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.route, topic)

    def route(self, topic: str) -> None:
        """Wake what waits for `topic` (on the event loop)."""
        targets, everything = self.targets, topic == RESYNC
        if everything or topic == EVENTS:
            targets.wake_events()
        if everything:
            targets.wake_queues()
        elif topic.startswith(QUEUE_PREFIX):
            targets.wake_queue(topic[len(QUEUE_PREFIX):])
        if everything or topic in (DEPLOY, SECRETS, RESOURCES):
            targets.store_changed()
