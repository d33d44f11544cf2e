"""The queue consumers (squall/events/queues.py) against a real SQLite store, a ManualClock
and a FakeHost: batches and their window, visibility timeouts and redelivery, partial batch
failures, throttling, dead-letter queues and retention."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from squall.events.queues import RETENTION_EVERY, Queues
from tests.event_host import THROTTLED, FakeHost, complete, error, make_host, ok, run, run_for

POLL = 1.0
"""A consumer's idle poll (SQLite's default)."""


def consumed(tmp_path: Path, queue: dict[str, Any] | None = None, **trigger: Any) -> FakeHost:
    """A host with the queue `jobs` (settings `queue`) and its consumer `worker` (`trigger`)."""
    host = make_host(tmp_path)
    host.declare("queue", "jobs", **(queue or {}))
    host.declare("queue", "jobs-dead")
    host.deploy("worker", triggers=[{"queue": "jobs", **trigger}])
    return host


def records(host: FakeHost) -> list[list[dict[str, Any]]]:
    """The records of each batch `worker` was invoked with, in order."""
    return [call.event["Records"] for call in host.calls_of("worker")]


def bodies(host: FakeHost) -> list[list[str]]:
    return [[record["body"] for record in batch] for batch in records(host)]


def counts(host: FakeHost, queue: str = "jobs") -> dict[str, int]:
    return host.store.queue_counts(queue, now=host.clock.time())


def test_a_consumer_hands_over_batches_of_batch_size_oldest_first_and_deletes_what_succeeded(
        tmp_path: Path) -> None:
    host = consumed(tmp_path, batch_size=10)

    async def scenario() -> None:
        queues = Queues(host, idle_poll=POLL, clock=host.clock)
        for n in range(25):
            await queues.send("jobs", f"m{n}")
        queues.start()
        await run_for(host.clock, 0.1)
        await complete(host.clock, queues.stop())

    run(scenario)
    assert bodies(host) == [[f"m{n}" for n in range(0, 10)], [f"m{n}" for n in range(10, 20)],
                            [f"m{n}" for n in range(20, 25)]]
    assert counts(host) == {"visible": 0, "in_flight": 0, "delayed": 0}


@pytest.mark.parametrize(("batch_size", "sizes", "times"), [
    (10, [5], [5.5]),  # the window ends first: the batch holds what came in the 5 s after the first message
    (4, [4, 1], [2.5, 7.5]),  # the batch fills before the window ends: handed over at once
])
def test_a_batch_window_waits_for_more_messages_until_it_ends_or_the_batch_is_full(
        tmp_path: Path, batch_size: int, sizes: list[int], times: list[float]) -> None:
    host = consumed(tmp_path, batch_size=batch_size, batch_window=5)
    clock = host.clock
    start = clock.time()

    async def scenario() -> None:
        queues = Queues(host, idle_poll=POLL, clock=clock)
        queues.start()
        await run_for(clock, 0.5)
        for n in range(3):
            await queues.send("jobs", f"m{n}")
        await run_for(clock, 2)
        for n in range(3, 5):
            await queues.send("jobs", f"m{n}")  # wakes the consumer in its window
        await run_for(clock, 10)
        await complete(clock, queues.stop())

    run(scenario)
    assert [len(batch) for batch in records(host)] == sizes
    assert [call.at - start for call in host.calls] == pytest.approx(times)
    assert sum(bodies(host), []) == [f"m{n}" for n in range(5)]


def test_a_failed_batch_is_received_again_once_its_visibility_timeout_ends(tmp_path: Path) -> None:
    host = consumed(tmp_path, {"visibility_timeout": 30})
    clock = host.clock
    host.script("worker", error())
    start = clock.time()
    seen: list[dict[str, int]] = []

    async def scenario() -> None:
        queues = Queues(host, idle_poll=POLL, clock=clock)
        await queues.send("jobs", "resize 7")
        queues.start()
        await run_for(clock, 29.9)
        seen.append(counts(host))
        await run_for(clock, 1)
        await complete(clock, queues.stop())

    run(scenario)
    assert seen == [{"visible": 0, "in_flight": 1, "delayed": 0}]  # hidden, not deleted
    first, second = (batch[0] for batch in records(host))
    assert [call.at - start for call in host.calls] == [0.0, 30.0]
    assert first["messageId"] == second["messageId"] and first["receiptHandle"] != second["receiptHandle"]
    assert [first["attributes"]["ApproximateReceiveCount"], second["attributes"]["ApproximateReceiveCount"]] == [
        "1", "2"]
    assert counts(host) == {"visible": 0, "in_flight": 0, "delayed": 0}  # the second time it succeeded


def test_only_the_messages_a_result_names_as_failed_come_back(tmp_path: Path) -> None:
    host = consumed(tmp_path, {"visibility_timeout": 30})
    clock = host.clock
    start = clock.time()
    seen: list[dict[str, int]] = []

    async def scenario() -> None:
        queues = Queues(host, idle_poll=POLL, clock=clock)
        ids = [await queues.send("jobs", body) for body in ("a", "b", "c")]
        host.script("worker", ok({"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": "other"}]}))
        queues.start()
        await run_for(clock, 29.9)
        seen.append(counts(host))
        await run_for(clock, 1)
        await complete(clock, queues.stop())

    run(scenario)
    assert seen == [{"visible": 0, "in_flight": 1, "delayed": 0}]  # a and c were deleted
    assert bodies(host) == [["a", "b", "c"], ["b"]]
    assert [call.at - start for call in host.calls] == [0.0, 30.0]
    assert counts(host) == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_a_throttled_batch_is_visible_again_shortly_and_its_receive_counts(tmp_path: Path) -> None:
    host = consumed(tmp_path, {"visibility_timeout": 30})
    clock = host.clock
    host.script("worker", THROTTLED)
    start = clock.time()

    async def scenario() -> None:
        queues = Queues(host, idle_poll=POLL, clock=clock)
        await queues.send("jobs", "resize 7")
        queues.start()
        await run_for(clock, 5)
        await complete(clock, queues.stop())

    run(scenario)
    [call] = host.calls  # the throttled invocation did not run
    assert call.at - start == pytest.approx(0.2)
    assert call.event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"


@pytest.mark.parametrize("dead_letter_queue", [True, False])
def test_a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue(
        tmp_path: Path, dead_letter_queue: bool) -> None:
    settings: dict[str, Any] = {"visibility_timeout": 30, "max_receive_count": 3}
    if dead_letter_queue:
        settings["dead_letter_queue"] = "jobs-dead"
    host = consumed(tmp_path, settings)
    clock = host.clock
    host.script("worker", *[error()] * 10)
    start = clock.time()
    sent: list[str] = []
    after_the_third: list[dict[str, int]] = []

    async def scenario() -> None:
        queues = Queues(host, idle_poll=POLL, clock=clock)
        sent.append(await queues.send("jobs", "poison"))
        queues.start()
        await run_for(clock, 61)
        after_the_third.append(counts(host, "jobs-dead"))
        await run_for(clock, 39)
        await complete(clock, queues.stop())

    run(scenario)
    times = [call.at - start for call in host.calls]
    assert after_the_third == [{"visible": 0, "in_flight": 0, "delayed": 0}]
    if dead_letter_queue:  # the function got it 3 times; the 4th receive, at 90 s, moved it
        assert times == [0.0, 30.0, 60.0]
        assert counts(host) == {"visible": 0, "in_flight": 0, "delayed": 0}
        assert counts(host, "jobs-dead") == {"visible": 1, "in_flight": 0, "delayed": 0}
        [moved] = host.store.receive_messages("jobs-dead", limit=10, now=clock.time(), visibility_timeout=30,
                                              fifo=False)
        assert (moved.id, moved.body, moved.receive_count) == (sent[0], "poison", 1)  # its count started again
    else:  # without one, it keeps coming back
        assert times == [0.0, 30.0, 60.0, 90.0]
        assert counts(host, "jobs-dead") == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_messages_past_their_retention_are_deleted_by_the_consumers_housekeeping(tmp_path: Path) -> None:
    host = consumed(tmp_path, {"retention": 120})
    clock = host.clock
    seen: list[dict[str, int]] = []

    async def scenario() -> None:
        queues = Queues(host, idle_poll=POLL, clock=clock)
        await queues.send("jobs", "later", delay=900)  # not received before its retention ends
        queues.start()
        await run_for(clock, 2 * RETENTION_EVERY + 1)  # looked at 0, 60 and 120 s after: not past 120 s yet
        seen.append(counts(host))
        await run_for(clock, RETENTION_EVERY)
        seen.append(counts(host))
        await complete(clock, queues.stop())

    run(scenario)
    assert seen == [{"visible": 0, "in_flight": 0, "delayed": 1}, {"visible": 0, "in_flight": 0, "delayed": 0}]
    assert host.calls == []
