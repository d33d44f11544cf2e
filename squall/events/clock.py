"""Time as the events see it: a `Clock` they are handed rather than the `time` module.

The dispatcher, the scheduler, the queue consumers, topic fan-out and the intake read the
time and wait through the clock the engine gives them. A node runs on `SystemClock` (the
`time` module and asyncio's own waits, unchanged); unit tests hand them a `ManualClock`,
whose time stands still until the test moves it, so that a retry's backoff, a lease's end
or a schedule's fire time a day away take no real time to reach.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable
from typing import Protocol


class Clock(Protocol):
    """Reading the time and waiting for it."""

    def time(self) -> float:
        """Seconds since the epoch (the wall clock): the times stored with events, schedules
        and messages."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for intervals measured in this process."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed (at once, after letting other tasks run, for 0 or less)."""
        ...

    async def wait(self, awaitable: Awaitable[object], timeout: float) -> bool:
        """Await `awaitable` for at most `timeout` seconds: True when it finished in time,
        False when the time ran out first (it is then cancelled). Its exception, if any, is raised."""
        ...


class SystemClock:
    """The real time: what a node runs on."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, awaitable: Awaitable[object], timeout: float) -> bool:
        try:
            await asyncio.wait_for(awaitable, timeout)
        except asyncio.TimeoutError:
            return False
        return True


class ManualClock:
    """A clock that moves only when `advance` is called; for tests.

    Its wall clock starts at `start` (seconds since the epoch) and its monotonic clock at
    `monotonic_start`; `advance(seconds)` moves both and wakes the sleepers and waits due by
    then. The tasks woken run when the caller next yields to the event loop.
    """

    def __init__(self, start: float = 1_767_225_600.0, monotonic_start: float = 1_000.0) -> None:
        self._offset = start - monotonic_start
        self._now = monotonic_start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._now + self._offset

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the time `seconds` forward and wake whatever was waiting for it."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds} s)")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, sleeper = heapq.heappop(self._sleepers)
            if not sleeper.done():
                sleeper.set_result(None)

    def next_wake(self) -> float | None:
        """The monotonic time at which the earliest sleeper or wait is due, or None for none."""
        while self._sleepers and self._sleepers[0][2].done():  # cancelled since
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def _sleeper(self, seconds: float) -> asyncio.Future[None]:
        """A future set once `seconds` have passed (at once for 0 or less)."""
        sleeper: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seconds <= 0:
            sleeper.set_result(None)
        else:
            heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), sleeper))
        return sleeper

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        sleeper = self._sleeper(seconds)
        try:
            await sleeper
        finally:
            sleeper.cancel()

    async def wait(self, awaitable: Awaitable[object], timeout: float) -> bool:
        task = asyncio.ensure_future(awaitable)
        sleeper = self._sleeper(timeout)
        try:
            await asyncio.wait((task, sleeper), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            sleeper.cancel()
        if task.done():
            task.result()
            return True
        task.cancel()
        return False
