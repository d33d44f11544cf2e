"""The schedules part of the Store contract: each schedule trigger's next fire time and
the outcome of its last run, shared by every node so that exactly one fires it.

A schedule is keyed `FUNCTION/NAME`. Firing is `fire_schedules`: one transaction moves a
schedule's `next_fire` forward *only if it still holds the time being fired* and stores
the run's event with it, so a fire time is never run twice, even by two nodes that both
believe they lead, and never lost between the two writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from squall.store.events import NewEvent


@dataclass(frozen=True, slots=True)
class ScheduleState:
    key: str
    function: str
    name: str
    expression: str
    timezone: str
    anchor: float
    """When the schedule was first stored: rate schedules fire at anchor + k * period."""
    next_fire: float | None
    config: dict[str, Any] = field(default_factory=dict)
    """The trigger as the function's version has it (input, overlap, catch_up, alarms...)."""
    last_fire: float | None = None
    last_status: str | None = None
    """`queued`, `succeeded`, `failed`, `skipped (overlap)` or `skipped (missed)`."""
    last_request_id: str | None = None
    last_success: float | None = None
    alarm_raised: float | None = None


@dataclass(frozen=True, slots=True)
class ScheduleFire:
    """Move schedule `key` from `fired` (its current `next_fire`) to `next_fire`, recording
    `status` and, when the run was queued, its `event`."""

    key: str
    fired: float
    next_fire: float | None
    status: str
    event: NewEvent | None = None


class ScheduleStore:
    def list_schedules(self) -> list[ScheduleState]:
        """Every stored schedule, ordered by key."""
        raise NotImplementedError

    def save_schedules(self, schedules: Sequence[ScheduleState], removed: Sequence[str]) -> None:
        """In one transaction: insert or replace the definition of each schedule in
        `schedules` (expression, timezone, anchor, next_fire, config), keeping the outcome of
        its last run, and delete the schedules keyed in `removed`."""
        raise NotImplementedError

    def fire_schedules(self, fires: Sequence[ScheduleFire], *, now: float) -> list[str]:
        """In one transaction, apply each fire whose schedule still has `next_fire == fired`
        and store its event; returns the keys of the fires applied."""
        raise NotImplementedError

    def record_schedule_result(self, key: str, *, ok: bool, at: float) -> None:
        """The outcome of a run of schedule `key` that just ended, whichever
        run it was: `succeeded` (also clearing a raised alarm) or `failed`."""
        raise NotImplementedError

    def mark_schedule_alarm(self, key: str, at: float) -> None:
        """Record that the alarm of schedule `key` was raised at `at`."""
        raise NotImplementedError

    def try_lead(self, role: str) -> bool:
        """Whether this store handle is (now) the one leader for `role` among every node on
        the store; once true it stays true until the store is closed."""
        raise NotImplementedError
