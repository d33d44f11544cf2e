"""Schedule triggers: keeping the store's schedules in step with the deployed functions,
and firing them on the one node that leads (SQLite: the node; PostgreSQL: the holder of
an advisory lock, taken over by another node when its holder dies).

A fire stores the run as an event (EventBridge's "Scheduled Event", or the trigger's
`input`) in the same transaction that moves the schedule to its next fire time, so each
fire time runs at most once and is never lost; the run itself is an asynchronous
invocation with its retries. Per schedule:
* `overlap`: `skip` (default) does not start a run while the previous one is queued or
  running; `queue` stores the run, which waits until the runs before it have ended;
  `replace` drops the runs still waiting (queued or waiting for a retry), stops a run
  going on the leading node (its instance is killed; no retry, no destination record)
  and stores the new one (a run going on another node finishes);
* a fire more than `MISSED_AFTER` seconds late (the node was down) is skipped, unless
  `catch_up: true`, which runs it once however many fire times were missed;
* `alarm_after` with `alarm_topic`: when the schedule has not succeeded for that long, a
  message goes to the topic once (again after the next success).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from squall.events.clock import Clock
from squall.events.host import EventHost, EventSink
from squall.manifest.schedule_expressions import Schedule, parse_schedule
from squall.events.shapes import scheduled_event
from squall.exceptions import NotFound
from squall.store.events import NewEvent
from squall.store.schedules import ScheduleFire, ScheduleState
from squall.tasks import cancel_and_wait

MISSED_AFTER = 60.0
"""Seconds late after which a fire time counts as missed (the node was down)."""
FOLLOWER_POLL = 5.0
"""How often a node that does not lead tries to, and the leader re-reads the schedules."""
ROLE = "scheduler"
FIRE_AHEAD = 0.04
"""Seconds before its time that a fire is stored (its run's event waits in the store for the
fire time): the fire's store work is done by the fire time. Overlap rules are applied then."""


@lru_cache(maxsize=1024)
def expression(text: str) -> Schedule:
    return parse_schedule(text)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def source_of(key: str) -> str:
    return f"schedule:{key}"


def next_fire(state: ScheduleState, after: float) -> float | None:
    fire = expression(state.expression).next_fire(utc(after), tz=ZoneInfo(state.timezone), anchor=utc(state.anchor))
    return None if fire is None else fire.timestamp()


class Scheduler:
    def __init__(self, node: EventHost, sink: EventSink, *, clock: Clock) -> None:
        self.node = node
        self.clock = clock
        self.store = node.store
        self.sink = sink
        self.states: dict[str, ScheduleState] = {}
        self.leader = False
        self._wake = asyncio.Event()
        self._sync_lock = asyncio.Lock()
        self._loop: asyncio.Task[None] | None = None
        self._next_refresh = 0.0

    async def start(self) -> None:
        await self.sync()
        self._loop = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._loop)

    # -- definitions -----------------------------------------------------------
    def definitions(self) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """`key -> (function, name, trigger)` of every schedule trigger of the active functions."""
        found = {}
        for function in self.node.functions.values():
            schedules = [t for t in function.version.config.get("triggers", []) if "schedule" in t]
            for index, trigger in enumerate(schedules):
                name = trigger.get("name") or f"{function.name}-{index}"
                found[f"{function.name}/{name}"] = (function.name, name, trigger)
        return found

    async def sync(self) -> None:
        """Store the schedules of the active functions: new ones start now, changed
        expressions start again, others keep their next fire time; gone ones are removed."""
        async with self._sync_lock:
            now = self.clock.time()
            stored = {s.key: s for s in await asyncio.to_thread(self.store.list_schedules)}
            wanted = self.definitions()
            changed = []
            for key, (function, name, trigger) in wanted.items():
                old = stored.get(key)
                fresh = self._definition(key, function, name, trigger, old, now)
                if old is None or (fresh.expression, fresh.timezone, fresh.config, fresh.anchor) != (
                        old.expression, old.timezone, old.config, old.anchor):
                    changed.append(fresh)
            removed = [key for key in stored if key not in wanted]
            if changed or removed:
                await asyncio.to_thread(self.store.save_schedules, changed, removed)
            await self.refresh()
        self._wake.set()

    @staticmethod
    def _definition(key: str, function: str, name: str, trigger: dict[str, Any], old: ScheduleState | None,
                    now: float) -> ScheduleState:
        same_timing = (old is not None and old.expression == trigger["schedule"]
                       and old.timezone == trigger.get("timezone", "UTC"))
        anchor = old.anchor if same_timing and old is not None else float(math.ceil(now))
        state = ScheduleState(key, function, name, trigger["schedule"], trigger.get("timezone", "UTC"), anchor,
                              None, trigger)
        if same_timing and old is not None:
            return replace(state, next_fire=old.next_fire)
        return replace(state, next_fire=next_fire(state, anchor - 0.001))

    async def refresh(self) -> None:
        self.states = {s.key: s for s in await asyncio.to_thread(self.store.list_schedules)}
        self._next_refresh = self.clock.monotonic() + FOLLOWER_POLL

    # -- the loop --------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the scheduler must outlive a store outage
                print(f"squall: scheduler: {exc!r}", flush=True)
                await self.clock.sleep(1.0)

    async def _tick(self) -> None:
        if not self.leader:
            self.leader = await asyncio.to_thread(self.store.try_lead, ROLE)
            if not self.leader:
                await self.refresh()  # followers read schedules too (overlap rules, listings)
                await self._sleep(FOLLOWER_POLL)
                return
        if self.clock.monotonic() >= self._next_refresh:
            await self.refresh()
        now = self.clock.time()
        due = [s for s in self.states.values()
               if s.next_fire is not None and s.next_fire <= now + FIRE_AHEAD and self._enabled(s)]
        if due:
            await self._fire(due, now)
            return
        await self._check_alarms(now)
        upcoming = [s.next_fire for s in self.states.values() if s.next_fire is not None and self._enabled(s)]
        wait = min(upcoming, default=now + FOLLOWER_POLL) - FIRE_AHEAD - self.clock.time()
        await self._sleep(min(max(wait, 0.0), FOLLOWER_POLL))

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        await self.clock.wait(self._wake.wait(), seconds)

    def _enabled(self, state: ScheduleState) -> bool:
        return bool(state.config.get("enabled", True)) and state.function in self.node.functions

    # -- firing ----------------------------------------------------------------
    async def _fire(self, due: list[ScheduleState], now: float) -> None:
        skipping = [source_of(s.key) for s in due if s.config.get("overlap", "skip") == "skip"]
        pending = await asyncio.to_thread(self.store.pending_sources, skipping)
        fires = [await self._fire_one(state, now, source_of(state.key) in pending) for state in due]
        await asyncio.to_thread(self.store.fire_schedules, fires, now=self.clock.time())
        self.sink.wake_events()
        await self.refresh()

    async def _fire_one(self, state: ScheduleState, now: float, pending: bool) -> ScheduleFire:
        assert state.next_fire is not None
        fired = state.next_fire
        following = next_fire(state, max(now, fired))
        overlap = state.config.get("overlap", "skip")
        if now - fired > MISSED_AFTER and not state.config.get("catch_up", False):
            return ScheduleFire(state.key, fired, following, "skipped (missed)")
        source = source_of(state.key)
        if overlap == "skip" and pending:
            return ScheduleFire(state.key, fired, following, "skipped (overlap)")
        if overlap == "replace":
            await asyncio.to_thread(self.store.cancel_queued_events, source)
            self.sink.stop_runs(source)
        return ScheduleFire(state.key, fired, following, "queued", self.run_event(state, fired))

    def run_event(self, state: ScheduleState, fire_time: float) -> NewEvent:
        function = self.node.get(state.function)
        event = self.sink.new_event(function, b"{}", source=source_of(state.key),
                                      delay=max(0.0, fire_time - self.clock.time()), qualifier=state.config.get("alias"))
        payload = state.config.get("input")
        if payload is None:
            body = orjson.dumps(scheduled_event(event.id, state.name, utc(fire_time),
                                                region=self.node.settings.region,
                                                account=self.node.settings.account_id))
        else:
            body = orjson.dumps(payload)
        return replace(event, payload=body)

    async def run_now(self, name: str) -> str:
        """Fire the schedule called `name` (or keyed `FUNCTION/NAME`) once, now, outside its
        timing; the run's request id."""
        matches = [s for s in self.states.values() if name in (s.name, s.key)]
        if not matches:
            raise NotFound(f"Schedule not found: {name}")
        if len(matches) > 1:
            raise NotFound(f"{name} names several schedules ({', '.join(s.key for s in matches)}); "
                           "give FUNCTION/NAME")
        [request_id] = await self.sink.submit([self.run_event(matches[0], self.clock.time())])
        return request_id

    def overlap_of(self, source: str) -> str:
        state = self.states.get(source.removeprefix("schedule:"))
        return str(state.config.get("overlap", "skip")) if state is not None else "skip"

    # -- results and alarms ------------------------------------------------------
    async def record_result(self, source: str, ok: bool) -> None:
        key = source.removeprefix("schedule:")
        await asyncio.to_thread(self.store.record_schedule_result, key, ok=ok, at=self.clock.time())
        self._next_refresh = 0.0

    async def _check_alarms(self, now: float) -> None:
        for state in list(self.states.values()):
            after, topic = state.config.get("alarm_after"), state.config.get("alarm_topic")
            if not after or not topic or state.alarm_raised is not None or not self._enabled(state):
                continue
            since = state.last_success or state.anchor
            if now - since < float(after):
                continue
            message = {"schedule": state.name, "function": state.function, "key": state.key,
                       "last_success": state.last_success, "last_status": state.last_status,
                       "alarm_after": after, "raised_at": now}
            await self.sink.publish(str(topic), orjson.dumps(message).decode(),
                                      subject=f"squall alarm: schedule {state.name} has not succeeded")
            await asyncio.to_thread(self.store.mark_schedule_alarm, state.key, now)
            self._next_refresh = 0.0
