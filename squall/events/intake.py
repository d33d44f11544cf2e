"""Accepting events: every event is committed to the store before its submitter hears
back, and submissions that arrive together share one transaction (group commit).

A commit per event is bound by the disk's flush rate (about 1.5-2k per second for
PostgreSQL here); while one transaction is being written, the submissions that arrive
queue up and go in the next one, so the rate grows with the number of concurrent
submitters while each one still waits only for its own commit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Sequence

from squall.store.base import BaseStore
from squall.store.events import NewEvent

IDEMPOTENCY_WINDOW = 24 * 3600.0
"""Seconds during which an idempotency key answers with its first event's id."""
MAX_GROUP = 500


class EventIntake:
    """Group-commits submitted events; `on_stored` runs after each commit (to wake workers)."""

    def __init__(self, store: BaseStore, on_stored: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_stored = on_stored
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
            events = [event for batch, _ in group for event in batch]
            try:
                ids = await asyncio.to_thread(self.store.enqueue_events, events, now=time.time(),
                                              idempotency_window=IDEMPOTENCY_WINDOW)
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
            self.on_stored()
