"""The table items contract (squall/store/tables.py), run against every store backend."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import pytest

from squall.store.base import BaseStore
from squall.store.resources import Resource
from squall.store.tables import ItemKey, KeyRange, StoredItem
from squall.tables.values import sort_key_bytes

NOW = 5_000_000.0


def key(pk: str, sk: int | None = None, table: str = "t") -> ItemKey:
    return (table, pk.encode(), b"" if sk is None else sort_key_bytes({"N": str(sk)}))


def item(k: ItemKey, data: bytes = b"{}", expires_at: float | None = None) -> StoredItem:
    return StoredItem(k, data, expires_at)


def put(store: BaseStore, *items: StoredItem) -> None:
    store.change_items([i.key for i in items], lambda current: {i.key: i for i in items}, now=NOW)


def test_change_sees_current_items_and_writes_and_deletes(store: BaseStore) -> None:
    put(store, item(key("a"), b'{"v":1}'))
    seen: dict[ItemKey, StoredItem | None] = {}

    def change(current: Mapping[ItemKey, StoredItem | None]) -> dict[ItemKey, StoredItem | None]:
        seen.update(current)
        return {key("a"): None, key("b"): item(key("b"), b'{"v":2}')}

    store.change_items([key("a"), key("b")], change, now=NOW)

    assert seen[key("a")] is not None and seen[key("a")].item == b'{"v":1}' and seen[key("b")] is None
    assert store.get_items([key("a"), key("b")], now=NOW) == {key("b"): item(key("b"), b'{"v":2}')}


def test_a_change_that_raises_writes_nothing(store: BaseStore) -> None:
    put(store, item(key("a"), b"old"))

    def change(current: Mapping[ItemKey, StoredItem | None]) -> dict[ItemKey, StoredItem | None]:
        raise RuntimeError("condition failed")

    with pytest.raises(RuntimeError):
        store.change_items([key("a")], change, now=NOW)
    assert store.get_items([key("a")], now=NOW)[key("a")].item == b"old"


def test_concurrent_read_modify_write_changes_are_serialized(store_factory: object) -> None:
    stores = [store_factory() for _ in range(4)]  # type: ignore[operator]
    put(stores[0], item(key("counter"), b"0"))

    def increment(current: Mapping[ItemKey, StoredItem | None]) -> dict[ItemKey, StoredItem | None]:
        found = current[key("counter")]
        assert found is not None
        return {key("counter"): item(key("counter"), str(int(found.item) + 1).encode())}

    def worker(store: BaseStore) -> None:
        for _ in range(25):
            store.change_items([key("counter")], increment, now=NOW)

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].get_items([key("counter")], now=NOW)[key("counter")].item == b"100"


def test_query_reads_one_partition_in_sort_order_within_bounds(store: BaseStore) -> None:
    put(store, *[item(key("p", n), str(n).encode()) for n in (-5, 0, 3, 10, 25)], item(key("q", 1)))

    def seqs(sort: KeyRange, limit: int = 100) -> list[int]:
        return [int(i.item) for i in store.query_items("t", b"p", sort, limit=limit, now=NOW)]

    assert seqs(KeyRange()) == [-5, 0, 3, 10, 25]
    assert seqs(KeyRange(forward=False), limit=2) == [25, 10]
    low, high = sort_key_bytes({"N": "0"}), sort_key_bytes({"N": "10"})
    assert seqs(KeyRange(low, True, high, False)) == [0, 3]
    assert seqs(KeyRange(low, False, high, True)) == [3, 10]
    assert seqs(KeyRange(start=sort_key_bytes({"N": "3"}))) == [10, 25]
    assert seqs(KeyRange(forward=False, start=sort_key_bytes({"N": "3"}))) == [0, -5]


def test_scan_segments_partition_the_table_and_pages_resume(store: BaseStore) -> None:
    put(store, *[item(key(f"k{n}"), str(n).encode()) for n in range(50)])
    put(store, item(key("other", table="u")))

    segments = [store.scan_items("t", after=None, limit=100, segment=s, segments=4, now=NOW) for s in range(4)]
    assert sorted(int(i.item) for part in segments for i in part) == list(range(50))

    pages, after = [], None
    while True:
        page = store.scan_items("t", after=after, limit=7, now=NOW)
        if not page:
            break
        pages.append(page)
        after = (page[-1].key[1], page[-1].key[2])
    assert sorted(int(i.item) for page in pages for i in page) == list(range(50))
    assert store.count_items("t", now=NOW) == 50


def test_expired_items_are_invisible_then_deleted(store: BaseStore) -> None:
    put(store, item(key("old"), expires_at=NOW - 1), item(key("new"), expires_at=NOW + 60), item(key("forever")))

    assert set(store.get_items([key("old"), key("new"), key("forever")], now=NOW)) == {key("new"), key("forever")}
    assert store.count_items("t", now=NOW) == 2
    assert store.expire_items(now=NOW, limit=10) == 1
    assert store.count_items("t", now=NOW - 10) == 2


def test_reset_expiry_recomputes_every_item(store: BaseStore) -> None:
    put(store, *[item(key(f"k{n}"), str(n).encode()) for n in range(5)])

    store.reset_expiry("t", lambda data: NOW - 1 if int(data) % 2 else None)

    assert sorted(int(i.item) for i in store.scan_items("t", after=None, limit=10, now=NOW)) == [0, 2, 4]


def test_deleting_a_tables_items_leaves_other_tables_alone(store: BaseStore) -> None:
    put(store, item(key("a")), item(key("b")), item(key("a", table="u")))

    assert store.delete_table_items("t") == 2
    assert store.count_items("t", now=NOW) == 0 and store.count_items("u", now=NOW) == 1


def test_a_resource_made_outside_a_deploy_is_kept_and_its_name_is_taken(store: BaseStore) -> None:
    table = Resource("table", "made", "", {"key": {"name": "id", "type": "S"}, "sort_key": None, "ttl": None})
    store.put_resource(table, create=True)

    from squall.exceptions import Conflict
    with pytest.raises(Conflict):
        store.put_resource(table, create=True)
    store.put_resource(Resource("table", "made", "", {**table.config, "ttl": "exp"}), create=False)
    assert [r.config["ttl"] for r in store.list_resources("table")] == ["exp"]
    assert store.delete_resource("table", "made") and not store.delete_resource("table", "made")


def test_unconditional_writes_put_and_delete_in_one_go(store: BaseStore) -> None:
    put(store, item(key("gone")), item(key("kept"), b"old"))

    store.write_items({key("gone"): None, key("kept"): item(key("kept"), b"new"), key("added"): item(key("added"))})

    assert {k: v.item for k, v in store.get_items([key("gone"), key("kept"), key("added")], now=NOW).items()} == {
        key("kept"): b"new", key("added"): b"{}"}
