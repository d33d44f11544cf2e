"""The event queue part of the Store contract: asynchronous invocations waiting to run,
running under a lease, retried, and parked as dead letters.

An event is one asynchronous invocation of one function (an async invoke, a schedule's
run, a topic message for a subscriber, a bucket notification). Its life:

    queued --claim--> running --finish--> (deleted) | queued (retry) | dead
       ^                 |
       +--lease expired--+      dead --redrive--> queued

An event may also be stored running (`enqueue_events(..., lease=...)`): the node that
accepts it runs it at once, under the same lease as a claim.

While `running`, `run_at` holds the end of the claimer's lease: a node that dies with
events in flight loses them to whoever claims after the lease (at least once, never
dropped). Backends implement the mixin's primitives with one SQL statement or
transaction each; the SQL lives in squall/store/sql_events.py.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class EventStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


class DeadReason(str, enum.Enum):
    """Why an event became a dead letter (the `condition` of Lambda's destination record)."""

    RETRIES_EXHAUSTED = "RetriesExhausted"
    EVENT_AGE_EXCEEDED = "EventAgeExceeded"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to store. `id` is its request id; `source` says what made it
    (`invoke`, `schedule:NAME`, `topic:NAME`, `bucket:NAME`, `destination:FUNCTION`).
    `function` is the function's name, or `NAME:QUALIFIER` for a call of one of its aliases
    or versions; what the store lists, counts, redrives or purges for a function includes
    those."""

    id: str
    function: str
    payload: bytes
    source: str
    max_attempts: int
    expires_at: float
    run_at: float
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """Events stored already claimed: those of `ids` are stored running under `owner`'s
    lease until `until`, their first attempt counted (the node that accepts them runs them,
    with no claim in between)."""

    owner: str
    until: float
    ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event. `attempts` counts claims, the current one included."""

    id: str
    function: str
    payload: bytes
    source: str
    status: EventStatus
    attempts: int
    max_attempts: int
    created_at: float
    run_at: float
    expires_at: float
    last_error: str | None = None
    dead_reason: DeadReason | None = None
    finished_at: float | None = None


class Outcome(str, enum.Enum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    DEAD = "dead"
    RELEASE = "release"
    """Back to the queue without counting the attempt (the function was throttled)."""


@dataclass(frozen=True, slots=True)
class EventResult:
    """What became of a claimed event. `run_at` is when a retried or released event is
    due again; `error` is kept as the event's last error."""

    id: str
    outcome: Outcome
    run_at: float = 0.0
    error: str | None = None
    dead_reason: DeadReason | None = None


class EventQueue:
    """The event queue methods of a store (see the module docstring)."""

    def enqueue_events(self, events: Sequence[NewEvent], *, now: float, idempotency_window: float,
                       lease: Lease | None = None) -> list[str]:
        """Store `events` in one transaction and return their ids in order. An event whose
        `idempotency_key` was used for the same function by an event created within
        `idempotency_window` seconds is not stored: the earlier event's id is returned.
        Those of `lease.ids` are stored claimed (see Lease); the others queued."""
        raise NotImplementedError

    def claim_events(self, owner: str, *, limit: int, now: float, lease_until: float) -> list[Event]:
        """Atomically move up to `limit` queued events due at `now` (oldest due first) to
        running under `owner`'s lease until `lease_until`, counting an attempt, and return
        them with `run_at` the time each was due (the dispatcher claims a little ahead and
        waits for it). Concurrent claimers never get the same event."""
        raise NotImplementedError

    def finish_events(self, results: Sequence[EventResult], *, now: float, owner: str | None = None) -> None:
        """Apply `results` in one transaction: succeeded events are deleted (kept as
        succeeded while their idempotency key must still answer), retried and released
        ones queued again for their `run_at` (a release gives the attempt back), dead ones
        kept as dead letters. Only events still running are touched, and with `owner` only
        those running under its lease: a result written late never ends another node's run
        of an event taken back from it. Applying the same results twice changes nothing more
        (a write retried after its answer was lost is harmless)."""
        raise NotImplementedError

    def renew_leases(self, ids: Sequence[str], *, owner: str, until: float) -> int:
        """Extend to `until` the lease of those of `ids` still running under `owner`'s lease;
        how many. Events taken back from `owner` are left alone."""
        raise NotImplementedError

    def requeue_expired(self, *, now: float, owner: str | None = None) -> int:
        """Queue again the running events whose lease ended before `now`, and all those of
        `owner` when given (a node restarting under the same name); returns how many."""
        raise NotImplementedError

    def next_due(self) -> float | None:
        """The earliest `run_at` of a queued or running event (a running one is due when
        its lease ends), or None when there is none."""
        raise NotImplementedError

    def get_event(self, event_id: str) -> Event | None:
        raise NotImplementedError

    def list_events(self, function: str, status: EventStatus, *, limit: int = 100) -> list[Event]:
        """Events of `function` in `status`, oldest first (dead letters: by when they died)."""
        raise NotImplementedError

    def count_events(self, function: str | None = None) -> dict[EventStatus, int]:
        """How many events (of `function`) are in each status."""
        raise NotImplementedError

    def redrive_events(self, function: str, ids: Sequence[str] | None, *, now: float,
                       expires_at: float) -> int:
        """Queue the dead letters of `function` (those in `ids`, or all) again as fresh
        events: attempts reset, due now, expiring at `expires_at`. Returns how many."""
        raise NotImplementedError

    def purge_events(self, function: str, ids: Sequence[str] | None) -> int:
        """Delete the dead letters of `function` (those in `ids`, or all); how many."""
        raise NotImplementedError

    def cancel_queued_events(self, source: str) -> int:
        """Delete the queued (not yet running) events from `source`; how many."""
        raise NotImplementedError

    def runs_before(self, event: Event) -> bool:
        """Whether an event from `event.source` created before it is still to finish (queued,
        waiting for a retry, or running): the oldest pending event of a source goes first."""
        raise NotImplementedError

    def forget_succeeded(self, *, before: float) -> int:
        """Delete the events kept as succeeded (for their idempotency key) that finished
        before `before`; how many."""
        raise NotImplementedError

    def pending_sources(self, sources: Sequence[str]) -> set[str]:
        """Those of `sources` that have an event queued or running."""
        raise NotImplementedError
