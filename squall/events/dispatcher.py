"""Running stored events: claim due events in batches, invoke each through the node's
instance pool, and record what became of them in batches.

One dispatcher runs per node. Events this node accepts while it has room, and nothing
older is queued, are stored already claimed by it and handed over (`lease_for`, `adopt`;
squall/events/intake.py): they cost no claim. For the others it sleeps until one is due:
woken at once when this node stores one (`wake()`), by another node's store notice
(squall/events/wakeups.py), or when the earliest stored event (or lease) falls due, and
looks anyway after `idle_poll` seconds. A claim takes as many events as the dispatcher has
room for; results are written back together, so a busy queue costs a few transactions
per hundred events rather than two per event.

Recording results:
* a batch of results is written only once the log writer has stored the logs written before
  it (`LogWriter.wait_stored`), so a node killed in between never keeps a result without its
  invocation's logs (the event then runs again, and logs again);
* a write the store refuses is retried with backoff until the store takes it, its events
  still running under this node's lease (renewed when one would end within RENEW_WITHIN):
  a result is never dropped while the node lives. Results are only written for events still
  leased to this node (a late write never ends another node's run). While more than
  MAX_UNRECORDED results wait, no more events are claimed, so memory stays bounded;
* a stopping node gives up after STOP_FLUSH seconds: those events stay leased to it and are
  taken back when it restarts (or by another node when their lease ends).

What happens to an event, in order:
* its function no longer exists: dead letter (`RetriesExhausted`, "Function not found");
  deployed but not active on this node yet: back to the queue for a second;
* it is older than its `max_event_age`: dead letter (`EventAgeExceeded`), not run;
* it has used its attempts (a node died while running it): dead letter;
* the function is at its concurrency limit: back to the queue without using an attempt;
* it ran and failed: retried after a backoff while attempts and age allow, else dead;
* it ran: deleted, and its destination (`on_success` / `on_failure`) gets Lambda's
  invocation record.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast


from squall import lambda_json
from squall.events.clock import Clock
from squall.events.host import EventHost, HostedFunction
from squall.events.intake import IDEMPOTENCY_WINDOW
from squall.events.retry import RetryPolicy
from squall.events.shapes import DestinationCondition, destination_record
from squall.events.topics import HTTP_DELIVERY
from squall.events.wakeups import EVENT_POLL
from squall.exceptions import NotFound, Throttled
from squall.releases import split_target
from squall.store.events import DeadReason, Event, EventResult, EventStatus, Lease, NewEvent, Outcome
from squall.tasks import cancel_and_wait


MAX_IN_FLIGHT = 128
"""Events one node runs at once (each holds an instance while it runs)."""
LEASE_MARGIN = 60.0
"""Seconds a claimed event stays leased beyond the longest function timeout."""
THROTTLE_BACKOFF = 0.2
RESULT_FLUSH = 0.005
REQUEUE_EVERY = 1.0
"""Seconds between looks for events whose lease ended (their node died)."""
FORGET_EVERY = 60.0
"""Seconds between clean-ups of succeeded events kept for their idempotency key."""
CLAIM_AHEAD = 0.05
"""Seconds ahead of their time that events are claimed; each then waits for its time, so the
claim's transaction is not between a schedule's fire time and its run."""
PREVIOUS_RUN_POLL = 0.25
NOT_HERE_BACKOFF = 1.0
"""Seconds before an event of a function this node has not activated yet is tried again."""
RESULT_RETRY_FIRST, RESULT_RETRY_MAX = 0.05, 5.0
"""Seconds before a refused results write is tried again, doubling up to the maximum."""
RENEW_WITHIN = 30.0
"""While results wait for the store, leases ending within this many seconds are renewed."""
MAX_UNRECORDED = 16 * MAX_IN_FLIGHT
"""Results waiting for the store beyond which no more events are claimed (a batch waits up to
the log writer's 50 ms for its logs: at 10k events/s, 500 results)."""
LOG_WAIT = 40.0
"""Seconds a results write waits for the logs written before it (the log writer gives a
document up after 30 s of refusals; then the results are written regardless)."""
STOP_FLUSH = 10.0
"""Seconds a stopping node keeps trying to record its last results."""
SAY_AGAIN = 60.0
"""Seconds between two lines in the server's output about results the store still refuses."""
_QUEUED_AGAIN = (Outcome.RETRY, Outcome.RELEASE)
"""Results that make an event due again (recording them wakes the dispatcher)."""

Deliver = Callable[[dict[str, Any], dict[str, Any], Event], Awaitable[None]]
"""`deliver(destination, record, event)`: hand a destination record to its target."""
Finished = Callable[[Event, bool], Awaitable[None]]
"""`finished(event, ok)`: an event succeeded, or became a dead letter."""
DeliverHttp = Callable[[Event], Awaitable["str | None"]]
"""`deliver_http(event)`: POST a topic message to its HTTP subscriber; the error, or None."""
OverlapOf = Callable[[str], str]
"""`overlap_of(source)`: the overlap policy of the schedule `source` (`schedule:NAME`)."""


class EventDispatcher:
    def __init__(self, node: EventHost, owner: str, retry: RetryPolicy, deliver: Deliver, finished: Finished,
                 *, deliver_http: DeliverHttp, overlap_of: OverlapOf, max_in_flight: int = MAX_IN_FLIGHT, lease_seconds: float = 900 + LEASE_MARGIN,
                 idle_poll: float = EVENT_POLL, clock: Clock) -> None:
        self.node = node
        self.clock = clock
        self.store = node.store
        self.owner = owner
        self.retry = retry
        self.deliver = deliver
        self.finished = finished
        self.deliver_http = deliver_http
        self.overlap_of = overlap_of
        self.max_in_flight = max_in_flight
        self.lease_seconds = lease_seconds
        self.idle_poll = idle_poll
        """Longest sleep with nothing due: a safety net for notices that went missing."""
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._running: dict[str, Event] = {}
        self._reserved = 0
        """Places held for events being claimed, or being stored already claimed (`lease_for`)."""
        self._drained = False
        """Whether the last claim left no due event queued: only then does this node take the
        events it accepts at once (else the ones queued before them go first)."""
        self._replaced: set[str] = set()
        self._results: list[EventResult] = []
        self._unrecorded = 0
        """Results recorded in memory and not stored yet (queued, or being written)."""
        self._leases: dict[str, float] = {}
        """When the lease of each event this node runs, or holds a result of, ends."""
        self._open: set[str] = set()
        """Events being handled that have no result yet."""
        self._give_up_at: float | None = None
        """Once stopping: when results writes stop being retried (clock.monotonic())."""
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.Task[None] | None = None
        self._next_requeue = 0.0
        self._next_forget = 0.0
        self.completed = 0

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        """Take back what this node was running when it stopped, then start claiming."""
        await asyncio.to_thread(self.store.requeue_expired, now=self.clock.time(), owner=self.owner)
        self._loop = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._loop)
        if self._in_flight:
            await self.clock.wait(asyncio.wait(set(self._in_flight)), 5)
        self._give_up_at = self.clock.monotonic() + STOP_FLUSH
        if self._flusher is not None:
            await self._flusher
        await self._flush()

    def wake(self) -> None:
        self._wake.set()

    # -- events accepted on this node -------------------------------------------
    def lease_for(self, events: Sequence[NewEvent], now: float) -> Lease | None:
        """A lease on those of `events` that this node can run at once (due, with room for
        them, and no older event queued), holding their places until `adopt`; None for none."""
        if self._loop is None or self._loop.done() or not self._drained:
            return None
        room = max(self._room_left(), 0)
        due = [event.id for event in events if event.run_at <= now + CLAIM_AHEAD]
        if len(due) > room:  # the rest are queued: claims take them before any new event
            self._drained = False
        if not room or not due:
            return None
        ids = frozenset(due[:room])
        self._reserved += len(ids)
        return Lease(self.owner, now + self.lease_seconds, ids)

    def adopt(self, lease: Lease, stored: Sequence[NewEvent], now: float) -> None:
        """Run the events of `lease` that were stored at `now` under it (`stored`: none when
        the write failed) and give back the places of the others. Once the node is stopping
        they stay leased: taken back when it restarts, or by another node after the lease."""
        self._reserved -= len(lease.ids)
        self._room.set()
        if self._loop is None or self._loop.done():
            return
        for new in stored:
            self._start(Event(new.id, new.function, new.payload, new.source, EventStatus.RUNNING, 1,
                              new.max_attempts, now, new.run_at, new.expires_at), lease.until)

    # -- the loop --------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                claimed, lease_until = await self._claim()
                if not claimed:
                    await self._sleep()
            except Exception as exc:  # noqa: BLE001 - a store outage must not end the loop
                print(f"squall: could not claim events: {exc}", flush=True)
                await self.clock.sleep(1.0)
                continue
            for event in claimed:
                self._start(event, lease_until)

    def _room_left(self) -> int:
        """How many more events this node may take: places free, unless too many results wait."""
        return min(self.max_in_flight - len(self._in_flight) - self._reserved, MAX_UNRECORDED - self._unrecorded)

    async def _claim(self) -> tuple[list[Event], float]:
        """Events claimed for this node (none when it has no room), and when their lease ends."""
        room = self._room_left()
        if room <= 0:
            self._room.clear()
            await self._room.wait()
            return [], 0.0
        self._wake.clear()
        now = self.clock.time()
        if now >= self._next_requeue:
            self._next_requeue = now + REQUEUE_EVERY
            await asyncio.to_thread(self.store.requeue_expired, now=now)
        if now >= self._next_forget:
            self._next_forget = now + FORGET_EVERY
            await asyncio.to_thread(self.store.forget_succeeded, before=now - IDEMPOTENCY_WINDOW)
        self._reserved += room
        lease_until = now + self.lease_seconds
        try:
            claimed = await asyncio.to_thread(self.store.claim_events, self.owner, limit=room,
                                              now=now + CLAIM_AHEAD, lease_until=lease_until)
        finally:
            self._reserved -= room
        self._drained = len(claimed) < room
        return claimed, lease_until

    async def _sleep(self) -> None:
        due = await asyncio.to_thread(self.store.next_due)
        wait = self.idle_poll if due is None else min(self.idle_poll, max(0.0, due - CLAIM_AHEAD - self.clock.time()))
        if wait > 0:
            await self.clock.wait(self._wake.wait(), wait)

    def _start(self, event: Event, lease_until: float) -> None:
        self._leases[event.id] = lease_until
        self._open.add(event.id)
        task = asyncio.ensure_future(self._handle(event))
        self._in_flight.add(task)
        task.add_done_callback(lambda done: self._done(done, event.id))

    def _done(self, task: asyncio.Task[None], event_id: str) -> None:
        self._in_flight.discard(task)
        self._room.set()
        if task.cancelled():  # the node is stopping: the event stays leased and runs again after
            if event_id in self._open:  # no result will come: forget it here
                self._open.discard(event_id)
                self._leases.pop(event_id, None)
            return
        if task.exception() is not None:
            print(f"squall: event handling failed: {task.exception()!r}", flush=True)
        if event_id in self._open:  # it failed before any result: hand it back rather than hold it a lease long
            self._record(EventResult(event_id, Outcome.RELEASE, run_at=self.clock.time() + NOT_HERE_BACKOFF))

    # -- one event -------------------------------------------------------------
    async def _handle(self, event: Event) -> None:
        early = event.run_at - self.clock.time()
        if early > 0:  # claimed ahead of its time (CLAIM_AHEAD)
            await self.clock.sleep(early)
        if event.function == HTTP_DELIVERY:
            await self._handle_http(event)
            return
        now = self.clock.time()
        function = await self._target(event)
        if function is None:
            name = split_target(event.function)[0]
            if await asyncio.to_thread(self.store.get_function, name) is not None:
                # deployed, not active here yet (another node's deploy), or its alias is not
                # set: leave it for later (max_event_age ends it)
                self._record(EventResult(event.id, Outcome.RELEASE, run_at=self.clock.time() + NOT_HERE_BACKOFF))
            else:
                self._record(EventResult(event.id, Outcome.DEAD, error=f"Function not found: {name}"))
            return
        if now > event.expires_at:
            await self._die(event, function, DeadReason.EVENT_AGE_EXCEEDED, "the event was older than max_event_age")
            return
        if event.attempts > event.max_attempts:
            await self._die(event, function, DeadReason.RETRIES_EXHAUSTED, "the node running it stopped on every attempt")
            return
        if await self._waits_for_previous_run(event):
            self._record(EventResult(event.id, Outcome.RELEASE, run_at=self.clock.time() + PREVIOUS_RUN_POLL))
            return
        self._running[event.id] = event
        try:
            invocation = await self.node.invoke(function, event.payload, request_id=event.id)
        except Throttled:
            self._record(EventResult(event.id, Outcome.RELEASE, run_at=self.clock.time() + THROTTLE_BACKOFF))
            return
        finally:
            self._running.pop(event.id, None)
        if event.id in self._replaced:
            self._replaced.discard(event.id)
            self._record(EventResult(event.id, Outcome.SUCCEEDED))  # stopped on purpose: done, no retry
            return
        if invocation.ok:
            self._record(EventResult(event.id, Outcome.SUCCEEDED))
            await self.finished(event, True)
            await self._send_destination(event, function, "on_success", "Success", invocation.payload, None)
            return
        reason = self._failed(event, invocation.payload.decode("utf-8", "replace"))
        if reason is not None:
            await self.finished(event, False)
            await self._send_destination(event, function, "on_failure", reason.value, invocation.payload, "Unhandled")

    async def _target(self, event: Event) -> HostedFunction | None:
        """The version `event` goes to now: its alias's (live's for a plain function name, one
        by weight when it splits traffic), or the version it names."""
        try:
            return await self.node.resolve(event.function)
        except (NotFound, ValueError):
            return None

    def stop_runs(self, source: str) -> None:
        """Stop the runs of `source` going on this node (a schedule's `overlap: replace`);
        they end without a retry or a destination record."""
        for event_id, event in list(self._running.items()):
            if event.source == source and self.node.stop_request(event_id):
                self._replaced.add(event_id)

    async def _waits_for_previous_run(self, event: Event) -> bool:
        """A run of a schedule with `overlap: queue` waits while an earlier run is going."""
        if not event.source.startswith("schedule:"):
            return False
        if self.overlap_of(event.source) != "queue":
            return False
        return await asyncio.to_thread(self.store.runs_before, event)

    def _failed(self, event: Event, error: str) -> DeadReason | None:
        """Retry a failed attempt while attempts and age allow; else park it (the reason)."""
        retry_at = self.clock.time() + self.retry.delay(event.attempts)
        if event.attempts < event.max_attempts and retry_at < event.expires_at:
            self._record(EventResult(event.id, Outcome.RETRY, run_at=retry_at, error=error))
            return None
        reason = (DeadReason.RETRIES_EXHAUSTED if event.attempts >= event.max_attempts
                  else DeadReason.EVENT_AGE_EXCEEDED)
        self._record(EventResult(event.id, Outcome.DEAD, error=error, dead_reason=reason))
        return reason

    async def _handle_http(self, event: Event) -> None:
        if self.clock.time() > event.expires_at:
            self._record(EventResult(event.id, Outcome.DEAD, error="the delivery was older than an hour",
                                     dead_reason=DeadReason.EVENT_AGE_EXCEEDED))
            return
        error = await self.deliver_http(event)
        if error is None:
            self._record(EventResult(event.id, Outcome.SUCCEEDED))
        else:
            self._failed(event, error)

    async def _die(self, event: Event, function: HostedFunction, reason: DeadReason, error: str) -> None:
        self._record(EventResult(event.id, Outcome.DEAD, error=error, dead_reason=reason))
        await self.finished(event, False)
        await self._send_destination(event, function, "on_failure", reason.value, None, None)

    async def _send_destination(self, event: Event, function: HostedFunction, key: str, condition: str,
                                response: bytes | None, function_error: str | None) -> None:
        """Send the destination record to what the version the event ran on names under `key`."""
        target = function.version.config.get(key)
        if not target:
            return
        record = destination_record(
            event.id, event.function, None, cast(DestinationCondition, condition), event.attempts, _json_or_text(event.payload),
            _json_or_text(response) if response is not None else None,
            200 if response is not None else None, function_error,
            datetime.fromtimestamp(self.clock.time(), UTC),
            region=self.node.settings.region, account=self.node.settings.account_id)
        try:
            await self.deliver(target, record, event)
        except Exception as exc:  # noqa: BLE001 - the event itself is done; say why the record was lost
            print(f"squall: destination {target} of {event.function} failed: {exc}", flush=True)

    # -- results ---------------------------------------------------------------
    def _record(self, result: EventResult) -> None:
        self._open.discard(result.id)
        self._results.append(result)
        self._unrecorded += 1
        self.completed += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        await self.clock.sleep(RESULT_FLUSH)
        await self._flush()

    async def _flush(self) -> None:
        queued_again = False
        while self._results:
            batch, self._results = self._results, []
            if not await self._write_results(batch):
                return
            queued_again = queued_again or any(r.outcome in _QUEUED_AGAIN for r in batch)
        if queued_again:  # due again, maybe before the dispatcher meant to look
            self.wake()

    async def _write_results(self, batch: list[EventResult]) -> bool:
        """Store `batch` after the logs written so far, retrying (and renewing the leases that
        end soon) until the store takes it; False only when a stopping node gave up."""
        logs_written = self.node.logs.written()
        delay, said_at = RESULT_RETRY_FIRST, -math.inf
        while True:
            try:
                await asyncio.to_thread(self._store_results, batch, logs_written)
                break
            except Exception as exc:  # noqa: BLE001 - kept, and tried again: never dropped
                if self.clock.monotonic() - said_at >= SAY_AGAIN:
                    said_at = self.clock.monotonic()
                    print(f"squall: could not record {len(batch)} event results yet, retrying: {exc}", flush=True)
            if self._give_up_at is not None and self.clock.monotonic() >= self._give_up_at:
                print(f"squall: {len(batch)} event results not recorded at stop: their events stay leased to "
                      "this node and run again when it restarts", flush=True)
                return False
            await self.clock.sleep(delay)
            delay = min(delay * 2, RESULT_RETRY_MAX)
            await self._renew_ending_leases([r.id for r in batch])
        self._unrecorded -= len(batch)
        for result in batch:
            self._leases.pop(result.id, None)
        self._room.set()
        return True

    def _store_results(self, batch: list[EventResult], logs_written: int) -> None:
        """In a worker thread: wait for the logs of the batch's invocations, then store it. The
        log writer keeps its pace (hurrying it made a log transaction per results batch: -15%
        events/s on SQLite); the results that arrive meanwhile go in the next batch."""
        self.node.logs.wait_stored(logs_written, LOG_WAIT, hurry=False)
        self.store.finish_events(batch, now=self.clock.time(), owner=self.owner)

    async def _renew_ending_leases(self, ids: list[str]) -> None:
        """Renew the leases of those of `ids` that end within RENEW_WITHIN (a store still away
        is tried again at the next attempt)."""
        now = self.clock.time()
        ending = [event_id for event_id in ids if self._leases.get(event_id, math.inf) - now < RENEW_WITHIN]
        if not ending:
            return
        until = now + self.lease_seconds
        try:
            await asyncio.to_thread(self.store.renew_leases, ending, owner=self.owner, until=until)
        except Exception:  # noqa: BLE001 - the next attempt tries again
            return
        self._leases.update(dict.fromkeys(ending, until))


def _json_or_text(payload: bytes) -> Any:
    try:
        return lambda_json.loads(payload) if payload else None
    except ValueError:
        return payload.decode("utf-8", "replace")
