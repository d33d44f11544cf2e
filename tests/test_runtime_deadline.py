"""Unit: an instance call's `Deadline` cancels the waiting task when it passes, tells that
cancellation from one that came from elsewhere, and costs nothing once cancelled in time."""

from __future__ import annotations

import asyncio

import pytest

from squall.runtime.instance import Deadline


async def wait_forever_within(seconds: float) -> str:
    deadline = Deadline(seconds)
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        if not deadline.expired():
            raise
        await asyncio.sleep(0)  # the task goes on after its deadline: the cancellation was taken back
        return "timed out"
    finally:
        deadline.cancel()
    return "answered"


async def answered_within(seconds: float) -> str:
    deadline = Deadline(seconds)
    try:
        await asyncio.sleep(0)
    finally:
        deadline.cancel()
    await asyncio.sleep(seconds * 2)  # past the deadline: nothing fires
    return "answered"


def test_a_passed_deadline_cancels_the_wait_and_the_task_goes_on() -> None:
    assert asyncio.run(wait_forever_within(0.001)) == "timed out"


def test_a_deadline_cancelled_in_time_never_fires() -> None:
    assert asyncio.run(answered_within(0.005)) == "answered"


def test_a_cancellation_from_elsewhere_is_not_taken_for_the_deadline() -> None:
    async def cancelled_from_outside() -> None:
        task = asyncio.create_task(wait_forever_within(60))
        await asyncio.sleep(0)
        task.cancel()
        await task

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled_from_outside())
