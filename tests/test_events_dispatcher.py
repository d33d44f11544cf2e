"""The dispatcher (squall/events/dispatcher.py) against a real SQLite store, a ManualClock and
a FakeHost: retries and their backoff, dead letters and their reasons, event age, throttling,
leases of nodes that died, and results written only under this node's lease."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from squall.events.clock import ManualClock
from squall.events.dispatcher import CLAIM_AHEAD, REQUEUE_EVERY, RESULT_FLUSH, THROTTLE_BACKOFF, EventDispatcher
from squall.events.intake import IDEMPOTENCY_WINDOW
from squall.events.retry import RetryPolicy
from squall.events.topics import HTTP_ATTEMPTS, HTTP_DELIVERY
from squall.store.events import DeadReason, Event, EventStatus, NewEvent
from tests.event_host import HOLD, THROTTLED, FakeHost, complete, error, jump, make_host, ok, run, run_for, settle

NODE = "node-a"


class Steady(random.Random):
    """No jitter: every retry waits its nominal delay."""

    def random(self) -> float:
        return 0.5


class Outcomes:
    """The dispatcher's callbacks: destination records sent, events finished, HTTP deliveries tried."""

    def __init__(self, http_answers: list[str | None] | None = None) -> None:
        self.records: list[tuple[dict[str, Any], dict[str, Any], str]] = []
        self.finished: list[tuple[str, bool]] = []
        self.http_tries: list[tuple[str, float]] = []
        self.http_answers = list(http_answers or [])
        self.clock: ManualClock | None = None

    async def deliver(self, destination: dict[str, Any], record: dict[str, Any], event: Event) -> None:
        self.records.append((destination, record, event.id))

    async def finish(self, event: Event, ok: bool) -> None:
        self.finished.append((event.id, ok))

    async def deliver_http(self, event: Event) -> str | None:
        assert self.clock is not None
        self.http_tries.append((event.id, self.clock.time()))
        return self.http_answers.pop(0) if self.http_answers else None


def dispatcher(host: FakeHost, outcomes: Outcomes, *, retry: RetryPolicy | None = None, owner: str = NODE,
               overlap: str = "skip", **options: Any) -> EventDispatcher:
    outcomes.clock = host.clock
    return EventDispatcher(host, owner, retry or RetryPolicy(rng=Steady()), outcomes.deliver, outcomes.finish,
                           deliver_http=outcomes.deliver_http, overlap_of=lambda source: overlap,
                           clock=host.clock, **options)


def put_event(host: FakeHost, function: str, *, attempts: int = 3, max_age: float = 3600.0, delay: float = 0.0,
              payload: bytes = b'{"n": 1}') -> str:
    """Store one queued event of `function`, as the intake would; its id."""
    now = host.clock.time()
    event = NewEvent(uuid.uuid4().hex, function, payload, "invoke", attempts, now + max_age, now + delay)
    [event_id] = host.store.enqueue_events([event], now=now, idempotency_window=IDEMPOTENCY_WINDOW)
    return event_id


def stored(host: FakeHost, event_id: str) -> Event:
    event = host.store.get_event(event_id)
    assert event is not None
    return event


def test_a_failing_event_is_retried_after_the_policy_s_delays_then_becomes_a_dead_letter(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work", retries=2, on_failure={"function": "failures"})
    host.script("work", error("first"), error("second"), error("third"))
    outcomes = Outcomes()
    start = clock.time()
    twin = RetryPolicy(rng=random.Random(7))  # draws the same jitter as the dispatcher's
    delays = [twin.delay(1), twin.delay(2)]
    seen: list[Event] = []

    async def scenario() -> None:
        events = dispatcher(host, outcomes, retry=RetryPolicy(rng=random.Random(7)))
        event_id = put_event(host, "work", attempts=3)
        await events.start()
        await run_for(clock, 0.1)
        seen.append(stored(host, event_id))  # after the first failure: waiting for its retry
        await run_for(clock, 60)
        await complete(clock, events.stop())

    run(scenario)
    times = [call.at - start for call in host.calls_of("work")]
    assert times == pytest.approx([0.0, delays[0], delays[0] + delays[1]])
    assert all(0.5 <= delay < 1.5 for delay in delays[:1]) and 1.0 <= delays[1] < 3.0

    waiting = seen[0]
    assert (waiting.status, waiting.attempts) == (EventStatus.QUEUED, 1)
    assert waiting.run_at == pytest.approx(start + delays[0])
    assert waiting.last_error is not None and "first" in waiting.last_error

    dead = stored(host, waiting.id)
    assert (dead.status, dead.attempts, dead.dead_reason) == (EventStatus.DEAD, 3, DeadReason.RETRIES_EXHAUSTED)
    assert dead.last_error is not None and "third" in dead.last_error
    assert outcomes.finished == [(dead.id, False)]
    [(destination, record, _)] = outcomes.records
    assert destination == {"function": "failures"}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorMessage"] == "third"


def test_a_retry_that_would_come_after_the_event_s_max_age_is_not_waited_for(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work", on_failure={"function": "failures"})
    host.script("work", error(), error(), error())
    outcomes = Outcomes()
    start = clock.time()

    async def scenario() -> str:
        events = dispatcher(host, outcomes)  # retries wait 1 s, then 2 s
        event_id = put_event(host, "work", attempts=3, max_age=2.5)  # the second retry would be at 3 s
        await events.start()
        await run_for(clock, 10)
        await complete(clock, events.stop())
        return event_id

    event_id = run(scenario)
    assert [call.at - start for call in host.calls_of("work")] == [0.0, 1.0]
    dead = stored(host, event_id)
    assert (dead.status, dead.attempts, dead.dead_reason) == (EventStatus.DEAD, 2, DeadReason.EVENT_AGE_EXCEEDED)
    assert dead.finished_at == pytest.approx(start + 1.0 + RESULT_FLUSH)  # at once, not at the time of the retry
    [(_, record, _)] = outcomes.records
    assert record["requestContext"]["condition"] == "EventAgeExceeded"


def test_an_event_older_than_its_max_age_when_its_turn_comes_dies_without_running(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work", on_failure={"topic": "alerts"})
    outcomes = Outcomes()

    async def scenario() -> tuple[str, str]:
        events = dispatcher(host, outcomes)
        young = put_event(host, "work", max_age=60, delay=59.9)
        old = put_event(host, "work", max_age=60, delay=60.1)  # due after its age ran out
        await events.start()
        await run_for(clock, 120)
        await complete(clock, events.stop())
        return young, old

    young, old = run(scenario)
    assert [call.request_id for call in host.calls] == [young]
    assert host.store.get_event(young) is None  # succeeded: deleted
    dead = stored(host, old)
    assert (dead.status, dead.dead_reason) == (EventStatus.DEAD, DeadReason.EVENT_AGE_EXCEEDED)
    assert outcomes.finished == [(young, True), (old, False)]
    [(destination, record, event_id)] = outcomes.records
    assert (destination, event_id) == ({"topic": "alerts"}, old)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert "responsePayload" not in record and "responseContext" not in record


def test_a_succeeded_event_is_deleted_and_its_on_success_destination_gets_the_record(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work", on_success={"queue": "done"})
    host.script("work", ok({"resized": 7}))
    outcomes = Outcomes()

    async def scenario() -> str:
        events = dispatcher(host, outcomes)
        event_id = put_event(host, "work", payload=b'{"card": 7}')
        await events.start()
        await run_for(clock, 1)
        await complete(clock, events.stop())
        return event_id

    event_id = run(scenario)
    [call] = host.calls
    assert (call.event, call.request_id) == ({"card": 7}, event_id)
    assert host.store.get_event(event_id) is None
    [(destination, record, _)] = outcomes.records
    assert destination == {"queue": "done"}
    assert record["requestContext"] == {"requestId": event_id, "functionArn": record["requestContext"]["functionArn"],
                                        "condition": "Success", "approximateInvokeCount": 1}
    assert record["requestPayload"] == {"card": 7} and record["responsePayload"] == {"resized": 7}
    assert record["timestamp"].startswith("2026-01-01T00:00:00")  # the clock's time, not the machine's


def test_a_throttled_event_goes_back_without_using_an_attempt_and_runs_again_shortly(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work")
    host.script("work", THROTTLED, THROTTLED)
    outcomes = Outcomes()
    start = clock.time()
    seen: list[Event] = []

    async def scenario() -> str:
        events = dispatcher(host, outcomes)
        event_id = put_event(host, "work", attempts=1)  # retries: 0, so a used attempt would kill it
        await events.start()
        await run_for(clock, 0.1)
        seen.append(stored(host, event_id))
        await run_for(clock, 5)
        await complete(clock, events.stop())
        return event_id

    event_id = run(scenario)
    assert (seen[0].status, seen[0].attempts) == (EventStatus.QUEUED, 0)
    assert seen[0].run_at == pytest.approx(start + THROTTLE_BACKOFF)
    [call] = host.calls
    assert call.at - start == pytest.approx(2 * THROTTLE_BACKOFF)
    assert host.store.get_event(event_id) is None and outcomes.finished == [(event_id, True)]


def test_an_event_leased_to_a_node_that_died_is_taken_back_once_its_lease_has_ended(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work")
    outcomes = Outcomes()
    lease_end = clock.time() + 960
    seen: list[tuple[Event, int]] = []

    async def scenario() -> str:
        event_id = put_event(host, "work")
        [claimed] = host.store.claim_events("node-b", limit=10, now=clock.time(), lease_until=lease_end)
        assert claimed.id == event_id  # node-b took it, then died
        events = dispatcher(host, outcomes)
        await events.start()
        await jump(clock, 958)
        await run_for(clock, 1.9)  # up to 0.1 s before the lease ends
        seen.append((stored(host, event_id), len(host.calls)))
        await run_for(clock, REQUEUE_EVERY + CLAIM_AHEAD + 0.2)
        await complete(clock, events.stop())
        return event_id

    event_id = run(scenario)
    before_the_end, calls_by_then = seen[0]
    assert (before_the_end.status, before_the_end.attempts, calls_by_then) == (EventStatus.RUNNING, 1, 0)
    [call] = host.calls
    assert lease_end < call.at <= lease_end + REQUEUE_EVERY + CLAIM_AHEAD + 0.2
    assert host.store.get_event(event_id) is None  # node-a ran it (its second attempt) and recorded it
    assert outcomes.finished == [(event_id, True)]


def test_a_restarted_node_takes_back_what_it_was_running_at_once(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work")
    outcomes = Outcomes()
    start = clock.time()

    async def scenario() -> str:
        event_id = put_event(host, "work")
        host.store.claim_events(NODE, limit=10, now=start, lease_until=start + 960)  # then the node was killed
        events = dispatcher(host, outcomes)  # the same node, restarted
        await events.start()
        await settle()
        assert [call.at for call in host.calls] == [start]
        await run_for(clock, 1)
        await complete(clock, events.stop())
        return event_id

    assert host.store.get_event(run(scenario)) is None


def test_an_event_whose_node_died_on_its_last_attempt_becomes_a_dead_letter_without_running(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work", retries=0, on_failure={"function": "failures"})
    outcomes = Outcomes()

    async def scenario() -> str:
        event_id = put_event(host, "work", attempts=1)
        host.store.claim_events("node-b", limit=10, now=clock.time(), lease_until=clock.time() + 30)
        events = dispatcher(host, outcomes)
        await events.start()
        await run_for(clock, 40)
        await complete(clock, events.stop())
        return event_id

    event_id = run(scenario)
    assert host.calls == []
    dead = stored(host, event_id)
    assert (dead.status, dead.attempts, dead.dead_reason) == (EventStatus.DEAD, 2, DeadReason.RETRIES_EXHAUSTED)
    assert dead.last_error == "the node running it stopped on every attempt"
    assert outcomes.finished == [(event_id, False)]
    assert outcomes.records[0][1]["requestContext"]["condition"] == "RetriesExhausted"


def test_a_result_is_not_written_for_an_event_no_longer_leased_to_this_node(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work")
    host.script("work", HOLD)
    outcomes = Outcomes()

    async def scenario() -> str:
        events = dispatcher(host, outcomes, lease_seconds=10.0)
        event_id = put_event(host, "work")
        await events.start()
        await settle()
        assert [call.request_id for call in host.calls] == [event_id]  # running here, under a 10 s lease
        clock.advance(10.5)  # the run outlasts its lease: node-b takes the event back before node-a looks
        assert host.store.requeue_expired(now=clock.time()) == 1
        [taken] = host.store.claim_events("node-b", limit=10, now=clock.time(), lease_until=clock.time() + 960)
        assert taken.attempts == 2
        host.finish(event_id, ok())  # node-a's run ends after all
        await run_for(clock, 1)
        await complete(clock, events.stop())
        return event_id

    event_id = run(scenario)
    event = stored(host, event_id)  # node-a's "succeeded" did not end node-b's run
    assert (event.status, event.attempts) == (EventStatus.RUNNING, 2)


def test_an_event_of_a_removed_function_becomes_a_dead_letter(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    outcomes = Outcomes()

    async def scenario() -> str:
        events = dispatcher(host, outcomes)
        event_id = put_event(host, "gone")
        await events.start()
        await run_for(clock, 1)
        await complete(clock, events.stop())
        return event_id

    dead = stored(host, run(scenario))
    assert (dead.status, dead.dead_reason, dead.last_error) == (EventStatus.DEAD, DeadReason.RETRIES_EXHAUSTED,
                                                                 "Function not found: gone")
    assert host.calls == [] and outcomes.records == []


def test_an_http_delivery_is_tried_four_times_with_backoff_then_kept_as_a_dead_letter(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    outcomes = Outcomes(http_answers=["POST https://hook answered 500: no"] * 5)
    start = clock.time()

    async def scenario() -> str:
        events = dispatcher(host, outcomes)
        event_id = put_event(host, HTTP_DELIVERY, attempts=HTTP_ATTEMPTS)
        await events.start()
        await run_for(clock, 60)
        await complete(clock, events.stop())
        return event_id

    dead = stored(host, run(scenario))
    assert [at - start for _, at in outcomes.http_tries] == [0.0, 1.0, 3.0, 7.0]  # 4 attempts, 1 s, 2 s and 4 s apart
    assert (dead.status, dead.attempts, dead.dead_reason) == (EventStatus.DEAD, 4, DeadReason.RETRIES_EXHAUSTED)
    assert dead.last_error == "POST https://hook answered 500: no"


def test_a_stopping_dispatcher_waits_five_seconds_for_its_runs_then_leaves_them_leased(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    clock = host.clock
    host.deploy("work")
    host.script("work", HOLD)
    outcomes = Outcomes()

    async def scenario() -> tuple[str, bool]:
        events = dispatcher(host, outcomes)
        event_id = put_event(host, "work")
        await events.start()
        await settle()
        stopping = asyncio.ensure_future(events.stop())
        await run_for(clock, 4.9)
        waited = not stopping.done()
        await run_for(clock, 0.2)
        await stopping
        return event_id, waited

    event_id, waited = run(scenario)
    assert waited
    event = stored(host, event_id)  # taken back when this node restarts, or by another after the lease
    assert (event.status, event.attempts) == (EventStatus.RUNNING, 1)
