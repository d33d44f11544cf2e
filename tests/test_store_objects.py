"""The bucket objects contract (squall/store/objects.py), run against every store backend."""

from __future__ import annotations

from squall.store.base import BaseStore
from squall.store.events import NewEvent
from squall.store.objects import ObjectInfo

NOW = 4_000_000.0


def info(key: str, path: str | None = None, bucket: str = "logs", size: int = 3) -> ObjectInfo:
    return ObjectInfo(bucket, key, size, "e" * 32, "text/plain", NOW, path or f"buckets/{key}")


def note(event_id: str) -> NewEvent:
    return NewEvent(event_id, "scan", b"{}", "bucket:logs", 3, NOW + 600, NOW)


def test_put_replaces_an_object_with_its_events_in_one_go(store: BaseStore) -> None:
    assert store.put_object(info("a.txt", "p1"), [note("e1")], now=NOW) is None
    assert store.put_object(info("a.txt", "p2", size=9), [note("e2")], now=NOW) == "p1"

    found = store.get_object("logs", "a.txt")
    assert found is not None and (found.size, found.path) == (9, "p2")
    assert store.get_event("e1") is not None and store.get_event("e2") is not None
    assert store.bucket_usage("logs") == (1, 9)


def test_delete_returns_the_object_and_stores_events_only_when_there_was_one(store: BaseStore) -> None:
    store.put_object(info("a.txt"), [], now=NOW)

    removed = store.delete_object("logs", "a.txt", [note("gone")], now=NOW)
    assert removed is not None and removed.key == "a.txt"
    assert store.delete_object("logs", "a.txt", [note("again")], now=NOW) is None
    assert store.get_event("gone") is not None and store.get_event("again") is None
    assert store.get_object("logs", "a.txt") is None


def test_listing_is_in_byte_order_with_prefix_and_pages(store: BaseStore) -> None:
    for key in ("b/2", "a", "b/1", "B", "b/10", "c", "b0", "é"):
        store.put_object(info(key), [], now=NOW)
    store.put_object(info("b/1", bucket="other"), [], now=NOW)

    assert [o.key for o in store.list_objects("logs")] == ["B", "a", "b/1", "b/10", "b/2", "b0", "c", "é"]
    assert [o.key for o in store.list_objects("logs", prefix="b/")] == ["b/1", "b/10", "b/2"]
    assert [o.key for o in store.list_objects("logs", prefix="b/", start_after="b/1", limit=1)] == ["b/10"]
    assert [o.key for o in store.list_objects("logs", prefix="%")] == []
