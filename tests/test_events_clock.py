"""The events' clock (squall/events/clock.py): ManualClock moves only when told, and wakes
its sleepers and waits in order; SystemClock is the real time."""

from __future__ import annotations

import asyncio
import time

import pytest

from squall.events.clock import ManualClock, SystemClock
from tests.event_host import run, settle


def test_a_manual_clock_stands_still_until_advanced_and_moves_both_of_its_times() -> None:
    clock = ManualClock(start=1_800_000_000.0, monotonic_start=50.0)

    assert (clock.time(), clock.monotonic()) == (1_800_000_000.0, 50.0)
    clock.advance(2.5)
    assert (clock.time(), clock.monotonic()) == (1_800_000_002.5, 52.5)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_sleepers_wake_when_their_time_has_come_and_not_before() -> None:
    clock = ManualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.monotonic()))

    async def scenario() -> None:
        tasks = [asyncio.ensure_future(sleeper("late", 3.0)), asyncio.ensure_future(sleeper("soon", 1.0))]
        await settle()
        assert clock.next_wake() == clock.monotonic() + 1.0
        clock.advance(0.999)
        await settle()
        assert woke == []
        clock.advance(0.001)
        await settle()
        assert [name for name, _ in woke] == ["soon"]
        clock.advance(5)
        await asyncio.gather(*tasks)
        assert clock.next_wake() is None

    run(scenario)
    assert [name for name, _ in woke] == ["soon", "late"]


def test_a_wait_ends_with_what_it_waits_for_or_when_its_time_runs_out() -> None:
    clock = ManualClock()

    async def scenario() -> tuple[bool, bool, bool]:
        event = asyncio.Event()
        set_in_time = asyncio.ensure_future(clock.wait(event.wait(), 10))
        await settle()
        event.set()
        first = await set_in_time

        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timed_out = asyncio.ensure_future(clock.wait(never, 10))
        await settle()
        clock.advance(9.5)
        await settle()
        assert not timed_out.done()
        clock.advance(0.5)
        second = await timed_out
        await settle()
        assert never.cancelled()  # what timed out is cancelled, as asyncio.wait_for does
        assert clock.next_wake() is None  # a wait that ended leaves no sleeper behind

        already = asyncio.Event()
        already.set()
        third = await clock.wait(already.wait(), 0)
        return first, second, third

    assert run(scenario) == (True, False, True)


def test_the_system_clock_is_the_time_module_and_asyncio() -> None:
    clock = SystemClock()

    async def scenario() -> tuple[bool, bool]:
        await clock.sleep(0)
        event = asyncio.Event()
        event.set()
        return await clock.wait(event.wait(), 1), await clock.wait(asyncio.Event().wait(), 0)

    before = time.time()
    assert before <= clock.time() <= time.time()
    assert clock.monotonic() <= time.monotonic()
    assert run(scenario) == (True, False)
