"""The scheduler (squall/events/scheduler.py), run by the event engine against a real SQLite
store, a ManualClock and a FakeHost: fire times (across DST changes), overlap policies, and
fires missed while no node ran."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from squall.events.clock import ManualClock
from squall.events.dispatcher import PREVIOUS_RUN_POLL
from squall.events.engine import EventEngine
from squall.events.scheduler import MISSED_AFTER
from squall.store.events import EventStatus, NewEvent
from squall.store.schedules import ScheduleState
from tests.event_host import HOLD, FakeHost, complete, jump, make_host, run, run_for, settle

SOURCE = "schedule:tick/beat"
START = 1_767_225_600.0
"""2026-01-01T00:00:00Z: the clock's time when a test starts, unless it says otherwise."""


def at(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def scheduled(tmp_path: Path, expression: str, *, start: float = START, **trigger: Any) -> FakeHost:
    """A host whose function `tick` has the schedule `beat`."""
    host = make_host(tmp_path, ManualClock(start=start))
    host.deploy("tick", triggers=[{"schedule": expression, "name": "beat", **trigger}])
    return host


def state(host: FakeHost) -> ScheduleState:
    [schedule] = host.store.list_schedules()
    return schedule


def fired(host: FakeHost) -> list[str]:
    """The scheduled time each run of `tick` carried, in the order they ran."""
    return [call.event["time"] for call in host.calls_of("tick")]


def test_a_rate_fires_from_its_deployment_every_period_and_each_run_starts_at_its_fire_time(tmp_path: Path) -> None:
    host = scheduled(tmp_path, "rate(10 seconds)")
    clock = host.clock

    async def scenario() -> None:
        engine = EventEngine(host, clock)
        await engine.start()
        await run_for(clock, 35)
        await complete(clock, engine.stop())

    run(scenario)
    fires = [START, START + 10, START + 20, START + 30]
    assert [call.at for call in host.calls_of("tick")] == fires
    assert fired(host) == [iso(fire) for fire in fires]
    first = host.calls[0].event
    assert first["detail-type"] == "Scheduled Event" and first["id"] == host.calls[0].request_id
    assert first["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/beat"]
    assert (state(host).last_fire, state(host).next_fire) == (START + 30, START + 40)


@pytest.mark.parametrize(("zone", "expression", "start", "fires"), [
    # 2026-03-08: New York springs forward at 02:00 EST; 02:30 does not exist and runs once at 03:00 EDT
    ("America/New_York", "30 2 * * *", "2026-03-07T12:00:00Z", ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"]),
    # 2026-11-01: 01:30 happens twice; it runs at the first (EDT), not again an hour later (EST)
    ("America/New_York", "30 1 * * *", "2026-10-31T12:00:00Z", ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]),
    # every 15 minutes through the gap: 01:45 EST, then 02:00-02:45 and 03:00 as one run at 03:00 EDT
    ("America/New_York", "*/15 * * * *", "2026-03-08T06:40:00Z",
     ["2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z"]),
    # every 15 minutes through the fall back: 01:00-01:45 EDT, then nothing until 02:00 EST
    ("America/New_York", "*/15 * * * *", "2026-11-01T05:40:00Z", ["2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z"]),
    # Berlin, AWS's cron: 02:30 on the day it springs forward (at 03:00 CEST) and the day it falls back (CEST)
    ("Europe/Berlin", "cron(30 2 * * ? *)", "2026-03-28T12:00:00Z", ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]),
    ("Europe/Berlin", "cron(30 2 * * ? *)", "2026-10-24T12:00:00Z", ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]),
])
def test_a_cron_fires_each_wall_clock_time_once_across_dst_changes(tmp_path: Path, zone: str, expression: str,
                                                                   start: str, fires: list[str]) -> None:
    host = scheduled(tmp_path, expression, start=at(start), timezone=zone)
    clock = host.clock
    next_fires: list[float | None] = []

    async def scenario() -> None:
        engine = EventEngine(host, clock)
        await engine.start()
        for fire in fires:  # each time: what the schedule says comes next, then live through it
            await settle()
            next_fires.append(state(host).next_fire)
            await jump(clock, at(fire) - 2 - clock.time())
            await run_for(clock, 3)
        await complete(clock, engine.stop())

    run(scenario)
    assert [iso(fire) for fire in next_fires if fire is not None] == fires
    assert fired(host) == fires
    assert [iso(call.at) for call in host.calls] == fires


def test_overlap_skip_stores_no_run_while_the_previous_one_is_still_going(tmp_path: Path) -> None:
    host = scheduled(tmp_path, "rate(10 seconds)")  # overlap: skip is the default
    clock = host.clock
    host.script("tick", HOLD)
    statuses: list[str | None] = []

    async def scenario() -> None:
        engine = EventEngine(host, clock)
        await engine.start()
        await run_for(clock, 11)
        statuses.append(state(host).last_status)
        assert host.store.count_events("tick")[EventStatus.QUEUED] == 0  # nothing stored for the skipped fire
        host.finish(host.calls[0].request_id or "")
        await run_for(clock, 4)
        statuses.append(state(host).last_status)
        await run_for(clock, 6)
        await complete(clock, engine.stop())

    run(scenario)
    assert statuses == ["skipped (overlap)", "succeeded"]
    assert fired(host) == [iso(START), iso(START + 20)]


def test_overlap_queue_runs_one_at_a_time_oldest_first_once_the_previous_run_ends(tmp_path: Path) -> None:
    host = scheduled(tmp_path, "rate(10 seconds)", overlap="queue")
    clock = host.clock
    host.script("tick", HOLD, HOLD, HOLD)
    attempts: list[int] = []

    async def scenario() -> None:
        engine = EventEngine(host, clock)
        await engine.start()
        await run_for(clock, 25)  # runs of START + 10 and START + 20 stored: both wait
        assert len(host.calls) == 1
        assert host.store.pending_sources([SOURCE]) == {SOURCE}
        for _ in range(2):
            host.finish(host.calls[-1].request_id or "")
            await run_for(clock, PREVIOUS_RUN_POLL)
            running = host.store.get_event(host.calls[-1].request_id or "")
            assert running is not None
            attempts.append(running.attempts)
            await run_for(clock, 1 - PREVIOUS_RUN_POLL)
        host.finish(host.calls[-1].request_id or "")
        await run_for(clock, 5)
        await complete(clock, engine.stop())

    run(scenario)
    assert fired(host) == [iso(START + n) for n in (0, 10, 20, 30)]
    started = [call.at - START for call in host.calls]
    assert started[0] == 0 and started[3] == 30
    assert 25 < started[1] <= 25 + PREVIOUS_RUN_POLL and 26 < started[2] <= 26 + PREVIOUS_RUN_POLL
    assert host.most_running == 1
    assert attempts == [1, 1]  # waiting for its turn used no attempt


def test_overlap_replace_stops_the_going_run_and_drops_waiting_ones_before_storing_the_new_run(
        tmp_path: Path) -> None:
    host = scheduled(tmp_path, "rate(10 seconds)", overlap="replace")
    clock = host.clock
    host.script("tick", HOLD)

    async def scenario() -> str:
        engine = EventEngine(host, clock)
        await engine.start()
        await run_for(clock, 1)
        waiting = NewEvent(uuid.uuid4().hex, "tick", b"{}", SOURCE, 3, clock.time() + 3600, clock.time() + 100)
        host.store.enqueue_events([waiting], now=clock.time(), idempotency_window=0)  # as if waiting for a retry
        await run_for(clock, 14)
        await complete(clock, engine.stop())
        return waiting.id

    waiting = run(scenario)
    first, second = host.calls
    assert host.stopped == [first.request_id]
    assert (first.at, second.at) == (START, START + 10)
    for gone in (first.request_id, waiting):  # not retried, not a dead letter
        assert host.store.get_event(gone or "") is None
    assert host.store.count_events("tick") == {status: 0 for status in EventStatus}
    assert state(host).last_status == "succeeded"  # the new run's; the stopped run reports nothing


@pytest.mark.parametrize(("late", "catch_up", "runs"), [
    (30.0, False, True),
    (MISSED_AFTER, False, True),
    (MISSED_AFTER + 1, False, False),
    (540.0, False, False),
    (540.0, True, True),
])
def test_a_fire_missed_while_no_node_ran_is_skipped_unless_the_schedule_catches_up(
        tmp_path: Path, late: float, catch_up: bool, runs: bool) -> None:
    host = scheduled(tmp_path, "rate(1 minute)", catch_up=catch_up)
    clock = host.clock
    after_restart: list[ScheduleState] = []

    async def scenario() -> None:
        engine = EventEngine(host, clock)
        await engine.start()
        await run_for(clock, 1)
        await complete(clock, engine.stop())
        clock.advance(START + 60 + late - clock.time())  # down until the fire of START + 60 is `late` s late
        engine = EventEngine(host, clock)
        await engine.start()
        await settle()
        after_restart.append(state(host))
        await run_until_next_fire(clock, after_restart[0])
        await complete(clock, engine.stop())

    run(scenario)
    restarted = START + 60 + late
    following = START + 60 * (int(late // 60) + 2)  # the first fire time after the restart
    schedule = after_restart[0]
    assert (schedule.last_fire, schedule.next_fire) == (START + 60, following)
    assert schedule.last_status == ("succeeded" if runs else "skipped (missed)")  # the run ran at once
    expected = [(START, START)] + ([(START + 60, restarted)] if runs else []) + [(following, following)]
    assert [(at(call.event["time"]), call.at) for call in host.calls] == expected


async def run_until_next_fire(clock: ManualClock, schedule: ScheduleState) -> None:
    assert schedule.next_fire is not None
    await run_for(clock, schedule.next_fire + 1 - clock.time())
