"""A clock for a test project's schedules: `advance("1d")` fires what would have fired.

A project's node does not fire its schedules on the real time (its scheduler's timer is
stopped when it starts): this clock does, when a test moves it. It starts at the time the
project started (or the `now` it was given), at which the schedules count as deployed, and
moves only forward. For each schedule trigger of the deployed functions it keeps the next
fire time as the scheduler does (`squall.events.scheduler.next_fire`, on the schedule
expressions of squall/manifest/schedule_expressions.py, with their time zone; a rate fires
first at its anchor, the deploy's whole second). Moving the clock fires every due time in
order, across schedules, each once, with the event the scheduler stores for it
(`Scheduler.run_event`: EventBridge's Scheduled Event with that `time`, or the trigger's
`input`; its id is the run's request id), invoked on the version the trigger's alias reaches.

Unlike a real run, a fire is invoked synchronously, one after another, and its result is
returned: it is not retried, and `overlap`, `catch_up` and `alarm_after` play no part. Only
schedules see this clock: function code reading the time sees the real one (a Scheduled
Event's `time` is the fire time), and so do retries, queues and log times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from squall.testing.results import Fire, Invocation

if TYPE_CHECKING:
    from squall.store.schedules import ScheduleState
    from squall.testing.threaded_node import ThreadedNode

Span = str | float | int | timedelta
"""A duration: "1d", "90m", "1h30m", "45s", a number of seconds, or a timedelta."""


@dataclass(frozen=True)
class _Due:
    state: ScheduleState
    fire_time: float


class ScheduleClock:
    """The schedules' time of one project's node (see the module docstring)."""

    def __init__(self, node: ThreadedNode, start: datetime) -> None:
        if start.utcoffset() is None:
            raise ValueError(f"the clock's start must be timezone-aware, got {start.isoformat()}")
        self._node = node
        self._now = start.timestamp()
        self._states: dict[str, ScheduleState] = {}
        self.fires: list[Fire] = []
        """Every fire so far, oldest first."""

    @property
    def now(self) -> datetime:
        """The schedules' current time (UTC)."""
        return datetime.fromtimestamp(self._now, UTC)

    def advance(self, span: Span) -> list[Fire]:
        """Move the clock forward by `span` and fire what came due on the way (at its end
        too); the fires, in order."""
        return self.advance_to(self.now + timedelta(seconds=seconds_of(span)))

    def advance_to(self, moment: datetime) -> list[Fire]:
        """Move the clock forward to `moment` (timezone-aware) and fire what came due; the fires."""
        if moment.utcoffset() is None:
            raise ValueError(f"give a timezone-aware time, got {moment.isoformat()}")
        end = moment.timestamp()
        if end < self._now:
            raise ValueError(f"the clock only moves forward: it is {self.now.isoformat()}, "
                             f"not back to {moment.astimezone(UTC).isoformat()}")
        self.sync()
        fired = []
        while (due := self._first_due(end)) is not None:
            self._now = max(self._now, due.fire_time)
            fired.append(self._fire(due))
        self._now = end
        self.fires.extend(fired)
        return fired

    def next_fires(self) -> dict[str, datetime]:
        """`FUNCTION/NAME -> ` the next fire time of each enabled schedule that fires again."""
        from squall.events.scheduler import utc

        self.sync()
        return {key: utc(state.next_fire) for key, state in sorted(self._states.items())
                if state.next_fire is not None and state.config.get("enabled", True)}

    def sync(self) -> None:
        """Follow the deployed functions' schedule triggers: a new one, or one whose expression
        or time zone changed, starts at the clock's time, as the scheduler starts it at a deploy."""
        from squall.events.scheduler import next_fire
        from squall.store.schedules import ScheduleState

        definitions = self._node.call(self._definitions())
        states = {}
        for key, (function, name, trigger) in definitions.items():
            expression, timezone = trigger["schedule"], trigger.get("timezone", "UTC")
            old = self._states.get(key)
            if old is not None and (old.expression, old.timezone) == (expression, timezone):
                states[key] = replace(old, function=function, name=name, config=trigger)
                continue
            anchor = float(math.ceil(self._now))
            state = ScheduleState(key, function, name, expression, timezone, anchor, None, trigger)
            states[key] = replace(state, next_fire=next_fire(state, anchor - 0.001))
        self._states = states

    async def _definitions(self) -> dict[str, tuple[str, str, dict[str, Any]]]:
        return self._node.node.events.scheduler.definitions()

    def _first_due(self, end: float) -> _Due | None:
        due = [(state.next_fire, key) for key, state in self._states.items()
               if state.next_fire is not None and state.next_fire <= end and state.config.get("enabled", True)]
        if not due:
            return None
        fire_time, key = min(due)
        return _Due(self._states[key], fire_time)

    def _fire(self, due: _Due) -> Fire:
        from squall.events.scheduler import next_fire, utc

        state = due.state
        self._states[state.key] = replace(state, next_fire=next_fire(state, due.fire_time))
        payload, invocation = self._node.call(self._run(state, due.fire_time))
        return Fire(state.name, state.key, state.function, utc(due.fire_time), orjson.loads(payload), invocation)

    async def _run(self, state: ScheduleState, fire_time: float) -> tuple[bytes, Invocation]:
        node = self._node.node
        event = node.events.scheduler.run_event(state, fire_time)
        function = await node.resolve(event.function)
        result = await node.invoke(function, event.payload, event.id)
        return event.payload, Invocation(result.request_id, result.function, result.version, result.ok,
                                         orjson.loads(result.payload) if result.payload else None)


def seconds_of(span: Span) -> float:
    """Seconds of a duration (see `Span`); ValueError when it is not one, or is negative."""
    from squall.manifest.values import parse_duration

    if isinstance(span, timedelta):
        seconds = span.total_seconds()
    elif isinstance(span, (str, int, float)) and not isinstance(span, bool):
        seconds = float(parse_duration(span))
    else:
        raise ValueError(f"a span is a duration such as 1d, 90m or 45s, a number of seconds or a timedelta; "
                         f"got {span!r}")
    if seconds < 0:
        raise ValueError(f"the clock only moves forward; got a span of {seconds:g} s")
    return seconds
