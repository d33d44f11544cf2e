"""The queues contract (squall/store/queues.py), run against every store backend."""

from __future__ import annotations

import threading

from squall.store.base import BaseStore
from squall.store.queues import NewMessage

NOW = 3_000_000.0


def send(store: BaseStore, *bodies: str, queue: str = "jobs", group: str | None = None, now: float = NOW,
         dedup: str | None = None) -> list[str]:
    messages = [NewMessage(f"{queue}-{body}", body, {"k": {"DataType": "String", "StringValue": body}},
                           group, dedup) for body in bodies]
    return store.send_messages(queue, messages, now=now)


def receive(store: BaseStore, *, limit: int = 10, now: float = NOW, fifo: bool = False, queue: str = "jobs",
            timeout: float = 30) -> list[str]:
    return [m.body for m in store.receive_messages(queue, limit=limit, now=now, visibility_timeout=timeout,
                                                   fifo=fifo)]


def test_received_messages_are_invisible_until_their_timeout(store: BaseStore) -> None:
    send(store, "a", "b", "c")

    [first] = store.receive_messages("jobs", limit=1, now=NOW, visibility_timeout=30, fifo=False)
    assert (first.body, first.receive_count, first.attributes) == ("a", 1, {"k": {"DataType": "String",
                                                                                   "StringValue": "a"}})
    assert first.receipt and first.first_received_at == NOW
    assert receive(store) == ["b", "c"]
    assert receive(store, now=NOW + 29) == []
    again = store.receive_messages("jobs", limit=10, now=NOW + 31, visibility_timeout=30, fifo=False)
    assert [m.body for m in again] == ["a", "b", "c"] and {m.receive_count for m in again} == {2}
    assert again[0].receipt != first.receipt and again[0].first_received_at == NOW
    assert store.queue_counts("jobs", now=NOW + 32) == {"visible": 0, "in_flight": 3, "delayed": 0}


def test_only_the_current_receipt_deletes_or_changes_visibility(store: BaseStore) -> None:
    send(store, "a")
    [old] = store.receive_messages("jobs", limit=1, now=NOW, visibility_timeout=1, fifo=False)
    [new] = store.receive_messages("jobs", limit=1, now=NOW + 2, visibility_timeout=30, fifo=False)

    assert store.delete_messages("jobs", [old.receipt]) == 0
    assert store.change_visibility("jobs", [new.receipt], visible_at=NOW + 3) == 1
    assert receive(store, now=NOW + 3) == ["a"]
    assert store.delete_messages("jobs", [new.receipt]) == 0  # received again since
    assert store.next_visible("jobs") == NOW + 33


def test_fifo_groups_wait_for_their_message_in_flight(store: BaseStore) -> None:
    for body, group in (("a1", "a"), ("b1", "b"), ("a2", "a"), ("a3", "a"), ("b2", "b")):
        send(store, body, group=group)

    assert receive(store, limit=2, fifo=True) == ["a1", "b1"]
    assert receive(store, fifo=True) == []  # both groups have a message in flight
    [a1] = [m for m in store.receive_messages("jobs", limit=10, now=NOW + 31, visibility_timeout=30, fifo=True)
            if m.body == "a1"]
    store.delete_messages("jobs", [a1.receipt])
    assert receive(store, now=NOW + 62, fifo=True) == ["b1", "a2", "a3", "b2"]


def test_fifo_deduplication_ids_answer_with_the_first_message_for_five_minutes(store: BaseStore) -> None:
    first = send(store, "x", dedup="d1")
    [received] = store.receive_messages("jobs", limit=1, now=NOW, visibility_timeout=1, fifo=False)
    assert store.delete_messages("jobs", [received.receipt]) == 1
    assert send(store, "y", dedup="d1", now=NOW + 100) == first  # deleted, still remembered
    assert send(store, "z", dedup="d1", now=NOW + 400) == ["jobs-z"]
    assert receive(store, now=NOW + 400) == ["z"]


def test_delayed_messages_and_moves_to_a_dead_letter_queue(store: BaseStore) -> None:
    store.send_messages("jobs", [NewMessage("late", "late", delay=10)], now=NOW)
    send(store, "bad")
    assert store.queue_counts("jobs", now=NOW) == {"visible": 1, "in_flight": 0, "delayed": 1}
    [bad] = store.receive_messages("jobs", limit=10, now=NOW, visibility_timeout=30, fifo=False)

    assert store.move_messages("jobs", [bad.receipt], "jobs-dlq", now=NOW) == 1
    [moved] = store.receive_messages("jobs-dlq", limit=10, now=NOW, visibility_timeout=30, fifo=False)
    assert (moved.body, moved.receive_count) == ("bad", 1)
    assert receive(store, now=NOW + 10) == ["late"]


def test_retention_expires_old_messages(store: BaseStore) -> None:
    send(store, "old")
    send(store, "new", now=NOW + 100)

    assert store.expire_messages("jobs", sent_before=NOW + 50) == 1
    assert receive(store, now=NOW + 100) == ["new"]


def test_concurrent_receivers_never_share_a_message(store_factory) -> None:  # type: ignore[no-untyped-def]
    stores = [store_factory() for _ in range(4)]
    send(stores[0], *(f"m{i:03}" for i in range(120)))
    got: list[list[str]] = [[] for _ in stores]

    def work(index: int) -> None:
        while batch := receive(stores[index], limit=7):
            got[index] += batch

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(body for batch in got for body in batch) == [f"m{i:03}" for i in range(120)]


def test_deduplication_ids_are_forgotten_after_their_window_not_with_retention(store: BaseStore) -> None:
    import time

    now = time.time()
    first = send(store, "x", dedup="d1", now=now)
    store.expire_messages("jobs", sent_before=now + 1)  # a retention shorter than the window

    assert store.queue_counts("jobs", now=now) == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert send(store, "y", dedup="d1", now=now + 10) == first
