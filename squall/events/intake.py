"""Accepting events: every event is committed to the store before its submitter hears
back, and submissions that arrive together share one transaction (group commit).

A commit per event is bound by the disk's flush rate (about 1.5-2k per second for
PostgreSQL here); while one transaction is being written, the submissions that arrive
queue up and go in the next one, so the rate grows with the number of concurrent
submitters while each one still waits only for its own commit.

When this node's dispatcher has room (`Runner.lease_for`), the events it can run at once
are stored already claimed by this node and handed straight to it (`Runner.adopt`): no
claim transaction, no wake-up. The others are stored queued, for any node to claim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from squall.events.clock import Clock
from squall.store.base import BaseStore
from squall.store.events import Lease, NewEvent

IDEMPOTENCY_WINDOW = 24 * 3600.0
"""Seconds during which an idempotency key answers with its first event's id."""
MAX_GROUP = 500


class Runner(Protocol):
    """What runs accepted events on this node (the dispatcher)."""

    def lease_for(self, events: Sequence[NewEvent], now: float) -> Lease | None:
        """The events it takes at once, their places held; None for none."""

    def adopt(self, lease: Lease, stored: Sequence[NewEvent], now: float) -> None:
        """Run those of the lease that were stored at `now`; free the other places."""


class EventIntake:
    """Group-commits submitted events; `on_stored` runs after a commit that queued events
    (to wake workers), `runner` takes those it can run at once."""

    def __init__(self, store: BaseStore, on_stored: Callable[[], None] = lambda: None,
                 runner: Runner | None = None, *, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.on_stored = on_stored
        self.runner = runner
        self._pending: list[tuple[Sequence[NewEvent], asyncio.Future[list[str]]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, events: Sequence[NewEvent]) -> list[str]:
        """Store `events`; return their ids (an earlier event's id for a repeated
        idempotency key) once they are committed. Raises the store's error otherwise."""
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_all())
        return await future

    async def _write_all(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
            try:
                ids = await self._store([event for batch, _ in group for event in batch])
            except Exception as exc:  # noqa: BLE001 - each submitter gets the store's error
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for batch, future in group:
                if not future.done():
                    future.set_result(ids[start:start + len(batch)])
                start += len(batch)

    async def _store(self, events: list[NewEvent]) -> list[str]:
        """Commit `events` in one transaction; their ids. Those the runner leased are handed
        to it once stored (their places are given back whatever happens), and `on_stored`
        runs when some were stored queued."""
        now = self.clock.time()
        lease = self.runner.lease_for(events, now) if self.runner is not None else None
        stored: list[NewEvent] = []
        try:
            ids = await asyncio.to_thread(self.store.enqueue_events, events, now=now,
                                          idempotency_window=IDEMPOTENCY_WINDOW, lease=lease)
            stored = [event for event, stored_id in zip(events, ids) if stored_id == event.id]
        finally:
            if lease is not None and self.runner is not None:
                self.runner.adopt(lease, [event for event in stored if event.id in lease.ids], now)
        if lease is None or any(event.id not in lease.ids for event in stored):
            self.on_stored()
        return ids
