"""The Store contract, run against every backend (the `store` fixture is
parametrized over SQLite and PostgreSQL), then what is specific to one backend."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest

from squall.exceptions import Conflict, StoreError
from squall.store.base import BaseStore, FunctionVersion, LogBatch, NewVersion
from squall.store.sql_store import SqlStore
from squall.store.sqlite import SqliteStore
from squall.types import LogLevel, LogLine

StoreFactory = Callable[..., BaseStore]


def new(function: str, code_hash: str = "h", config: dict[str, Any] | None = None) -> NewVersion:
    return NewVersion(function, code_hash, config if config is not None else {"memory": 128},
                      f"/code/{function}/{code_hash}")


def log(function: str = "fn", request_id: str = "r1", ts: float = 100.0, message: str = "hi",
        level: LogLevel = LogLevel.INFO, version: int = 1) -> LogBatch:
    """A batch of one line."""
    return LogBatch(function, version, request_id, [LogLine(ts, level, message)])


def batch(*messages: str, function: str = "fn", request_id: str = "r1", ts: float = 100.0) -> LogBatch:
    """A batch of one invocation's lines, one second apart from `ts`."""
    return LogBatch(function, 1, request_id,
                    [LogLine(ts + i, LogLevel.INFO, message) for i, message in enumerate(messages)])


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run `target(i)` in `count` threads at once; re-raise the first error."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# -- functions and versions ---------------------------------------------------
def test_first_deploy_creates_version_1(store: BaseStore) -> None:
    [version] = store.commit_deploy("shop", [new("checkout", "abc")])

    assert (version.function, version.number, version.project) == ("checkout", 1, "shop")
    assert (version.code_hash, version.code_path) == ("abc", "/code/checkout/abc")
    assert store.get_version("checkout", 1) == version
    function = store.get_function("checkout")
    assert function is not None
    assert (function.name, function.project, function.latest) == ("checkout", "shop", 1)
    assert function.created_at == function.updated_at == version.created_at


def test_each_deploy_gives_the_next_number(store: BaseStore) -> None:
    numbers = [store.commit_deploy("shop", [new("checkout", f"h{i}")])[0].number for i in range(3)]

    assert numbers == [1, 2, 3]
    function = store.get_function("checkout")
    assert function is not None and function.latest == 3
    assert function.updated_at >= function.created_at


def test_returns_created_versions_in_input_order(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("b")])

    created = store.commit_deploy("shop", [new("c"), new("a"), new("b")])

    assert [(v.function, v.number) for v in created] == [("c", 1), ("a", 1), ("b", 2)]


def test_same_function_twice_in_one_deploy_gets_two_numbers(store: BaseStore) -> None:
    created = store.commit_deploy("shop", [new("a", "one"), new("a", "two")])

    assert [(v.number, v.code_hash) for v in created] == [(1, "one"), (2, "two")]


def test_unknown_function_and_version_are_none(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("a")])

    assert store.get_function("nope") is None
    assert store.get_version("nope", 1) is None
    assert store.get_version("a", 2) is None
    assert store.latest_version("nope") is None
    assert store.list_versions("nope") == []


def test_latest_version_and_latest_versions(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("b", "b1"), new("a", "a1")])
    store.commit_deploy("shop", [new("b", "b2")])
    store.commit_deploy("blog", [new("c", "c1")])

    latest = store.latest_version("b")
    assert latest is not None and (latest.number, latest.code_hash) == (2, "b2")
    assert [(v.function, v.number, v.code_hash) for v in store.latest_versions()] == [
        ("a", 1, "a1"), ("b", 2, "b2"), ("c", 1, "c1")]


def test_list_versions_oldest_first(store: BaseStore) -> None:
    for i in range(1, 12):  # past 9, so text ordering would show
        store.commit_deploy("shop", [new("a", f"h{i}")])

    versions = store.list_versions("a")

    assert [v.number for v in versions] == list(range(1, 12))
    assert [v.code_hash for v in versions] == [f"h{i}" for i in range(1, 12)]


def test_list_functions_ordered_by_name_and_filtered_by_project(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("checkout"), new("cart")])
    store.commit_deploy("blog", [new("posts")])

    assert [f.name for f in store.list_functions()] == ["cart", "checkout", "posts"]
    assert [f.name for f in store.list_functions("shop")] == ["cart", "checkout"]
    assert store.list_functions("nobody") == []


def test_config_round_trips(store: BaseStore) -> None:
    config = {"memory": 256, "timeout": 2.5, "env": {"A": "1", "ÜNICODE": "✓ \"quoted\""},
              "routes": [{"method": "GET", "path": "/x/{id}"}], "public": True, "layer": None,
              "nested": {"deeper": {"list": [1, [2, 3], {"k": []}]}}}

    [created] = store.commit_deploy("shop", [new("a", config=config)])

    assert created.config == config
    stored = store.get_version("a", 1)
    assert stored is not None and stored.config == config
    assert store.list_versions("a")[0].config == config
    assert store.latest_versions()[0].config == config


# -- ownership, removal, atomicity --------------------------------------------
def test_function_of_another_project_is_a_conflict_and_nothing_is_written(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("checkout", "v1")])

    with pytest.raises(Conflict, match='function "checkout" belongs to project "shop"'):
        store.commit_deploy("blog", [new("posts"), new("checkout", "evil"), new("zeta")])

    assert [f.name for f in store.list_functions()] == ["checkout"]
    assert [v.code_hash for v in store.list_versions("checkout")] == ["v1"]
    function = store.get_function("checkout")
    assert function is not None and (function.project, function.latest) == ("shop", 1)


def test_removing_a_function_of_another_project_is_a_conflict(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("checkout")])

    with pytest.raises(Conflict, match='function "checkout" belongs to project "shop"'):
        store.commit_deploy("blog", [new("posts")], removed=["checkout"])

    assert [f.name for f in store.list_functions()] == ["checkout"]
    assert len(store.list_versions("checkout")) == 1


def test_a_failed_deploy_applies_no_removal(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("old"), new("keep")])
    store.commit_deploy("blog", [new("taken")])

    with pytest.raises(Conflict):
        store.commit_deploy("shop", [new("keep"), new("taken")], removed=["old"])

    assert [f.name for f in store.list_functions("shop")] == ["keep", "old"]
    assert [v.number for v in store.list_versions("old")] == [1]
    assert [v.number for v in store.list_versions("keep")] == [1]


def test_removal_deletes_functions_and_versions_but_keeps_logs(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("old"), new("keep")])
    store.commit_deploy("shop", [new("old")])
    store.append_logs([log("old", message="still here")])

    store.commit_deploy("shop", [new("keep")], removed=["old"])

    assert store.get_function("old") is None
    assert store.list_versions("old") == []
    assert store.get_version("old", 1) is None
    assert [v.function for v in store.latest_versions()] == ["keep"]
    assert [r.message for r in store.read_logs("old")] == ["still here"]


def test_removing_an_unknown_function_does_nothing(store: BaseStore) -> None:
    assert store.commit_deploy("shop", [], removed=["ghost"]) == []
    assert store.list_functions() == []


def test_removed_then_redeployed_function_starts_again_at_1(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("a"), new("a")])
    store.commit_deploy("shop", [], removed=["a"])

    [version] = store.commit_deploy("blog", [new("a")])

    assert (version.number, version.project) == (1, "blog")


# -- logs ----------------------------------------------------------------------
def test_a_batch_is_read_back_whole_in_order_under_one_id(store: BaseStore) -> None:
    lines = [LogLine(100.0 + i, level, f"line {i}")
             for i, level in enumerate([LogLevel.SYSTEM, LogLevel.INFO, LogLevel.ERROR])]
    store.append_logs([LogBatch("fn", 3, "r1", lines)])

    read = store.read_logs("fn")

    assert [(r.ts, r.level, r.message) for r in read] == [(x.ts, x.level, x.message) for x in lines]
    assert all(isinstance(r.level, LogLevel) for r in read)
    assert {(r.function, r.version, r.request_id) for r in read} == {("fn", 3, "r1")}
    assert len({r.id for r in read}) == 1 and read[0].id > 0


def test_batch_ids_increase_across_appends(store: BaseStore) -> None:
    store.append_logs([batch("a", "b"), log(message="c")])
    store.append_logs([log(message="d")])
    store.append_logs([])
    store.append_logs([LogBatch("fn", 1, "empty", [])])

    read = store.read_logs("fn")

    assert [r.message for r in read] == ["a", "b", "c", "d"]
    assert read[0].id == read[1].id < read[2].id < read[3].id


def test_read_logs_filters(store: BaseStore) -> None:
    store.append_logs([batch("one", "one+", ts=100.0), log("other", "r1", 100.0, "elsewhere"),
                       log("fn", "r2", 200.0, "two"), log("fn", "r1", 300.0, "three")])
    messages = lambda **kw: [r.message for r in store.read_logs("fn", **kw)]  # noqa: E731
    first = store.read_logs("fn")[0].id

    assert messages() == ["one", "one+", "two", "three"]
    assert messages(after_id=first) == ["two", "three"]
    assert messages(since=101.0) == ["one+", "two", "three"]  # the lines of a batch that ends later
    assert messages(since=200.0) == ["two", "three"]
    assert messages(since=200.1) == ["three"]
    assert messages(request_id="r1") == ["one", "one+", "three"]
    assert messages(request_id="r1", since=150.0) == ["three"]
    assert messages(limit=2) == ["one", "one+", "two"]  # two batches, each whole
    assert messages(after_id=first, limit=1) == ["two"]
    assert messages(request_id="nope") == []
    assert store.read_logs("nobody") == []


def test_tailing_with_after_id_sees_each_batch_once(store: BaseStore) -> None:
    seen: list[str] = []
    last = 0
    for messages in (["a", "b"], ["c"], [], ["d", "e", "f"]):
        store.append_logs([log(message=m) for m in messages])
        while page := store.read_logs("fn", after_id=last, limit=2):
            seen += [r.message for r in page]
            last = page[-1].id

    assert seen == ["a", "b", "c", "d", "e", "f"]


def test_log_message_with_odd_characters_is_stored(store: BaseStore) -> None:
    text = "tab\tnewline\n\u00e9\u2603 \U0001f600 nul\x00end \"quoted\" \\ back"
    store.append_logs([log(message=text)])

    [record] = store.read_logs("fn")

    assert record.message == text  # NUL too: the lines are stored as JSON text, escapes and all


def test_the_oldest_batches_are_listed_with_their_end_and_size_then_deleted_by_id(store: BaseStore) -> None:
    assert store.oldest_logs(10) == [] and store.log_bytes() == 0
    store.append_logs([batch("a", "bb", ts=100.0), log(message="é", ts=50.0), log(message="later", ts=300.0)])
    first, second, third = store.oldest_logs(10)
    sizes = [len(orjson.dumps([{"ts": 100.0, "level": "INFO", "message": "a"},
                               {"ts": 101.0, "level": "INFO", "message": "bb"}]))]

    assert first.id < second.id < third.id
    assert (first.ended, second.ended, third.ended) == (101.0, 50.0, 300.0)
    assert abs(first.size - sizes[0]) <= 8 and second.size < first.size  # bytes of the lines as stored
    assert second.size >= len("é".encode()) + len('[{"ts":50.0,"level":"INFO","message":""}]') - 4
    assert store.log_bytes() == first.size + second.size + third.size
    assert [b.id for b in store.oldest_logs(2)] == [first.id, second.id]

    assert store.delete_logs([first.id, third.id]) == 2
    assert store.delete_logs([first.id]) == 0  # deleted already
    assert store.delete_logs([]) == 0
    assert [r.message for r in store.read_logs("fn")] == ["é"]
    assert store.oldest_logs(10) == [second] and store.log_bytes() == second.size


def test_log_batches_stored_before_sizes_existed_get_their_size(store_factory: StoreFactory) -> None:
    old, mark = store_at_step(store_factory, 10)
    lines = '[{"ts":1.0,"level":"INFO","message":"hi"}]'
    with raw_write(old) as conn:
        conn.execute("INSERT INTO log_batches (function, version, request_id, ts, ts_end, lines) "
                     f"VALUES ('fn', 1, 'r1', 1.0, 2.0, {mark})", (lines,))

    old.migrate()
    old.append_logs([log(message="new", ts=3.0)])

    stored, new_one = old.oldest_logs(10)
    assert (stored.size, stored.ended) == (len(lines), 2.0)
    assert old.log_bytes() == stored.size + new_one.size
    assert [r.message for r in old.read_logs("fn")] == ["hi", "new"]


# -- meta ----------------------------------------------------------------------
def test_meta_get_set_and_replace(store: BaseStore) -> None:
    assert store.get_meta("secret") is None

    store.set_meta("secret", "one")
    store.set_meta("other", "x")
    assert store.get_meta("secret") == "one"

    store.set_meta("secret", "two")
    assert store.get_meta("secret") == "two"
    assert store.get_meta("other") == "x"


# -- lifecycle -----------------------------------------------------------------
def test_migrate_twice_is_harmless(store: BaseStore) -> None:
    store.commit_deploy("shop", [new("a")])
    store.set_meta("k", "v")

    store.migrate()
    store.migrate()

    assert [v.number for v in store.list_versions("a")] == [1]
    assert store.get_meta("k") == "v"
    assert store.commit_deploy("shop", [new("a")])[0].number == 2


def store_at_step(store_factory: StoreFactory, step: int) -> tuple[SqlStore, str]:
    """A store migrated up to schema `step` only, and its parameter mark."""
    old = store_factory(migrate=False)
    assert isinstance(old, SqlStore)
    old.migrate(target=step)
    return old, old.dialect.mark


def raw_write(store: SqlStore) -> Any:
    """A write transaction of the backend's own, for rows an older schema would have held."""
    return store._write()


def test_log_lines_stored_before_log_batches_are_kept(store_factory: StoreFactory) -> None:
    old, mark = store_at_step(store_factory, 1)
    with raw_write(old) as conn:
        for ts, level, message in ((1.0, "SYSTEM", "START"), (2.0, "INFO", 'said "hi"\n')):
            conn.execute("INSERT INTO logs (function, version, request_id, ts, level, message) "
                         f"VALUES ({mark}, 1, 'r1', {mark}, {mark}, {mark})", ("fn", ts, level, message))

    old.migrate()
    old.append_logs([log(message="new", ts=3.0)])

    read = old.read_logs("fn")
    assert [(r.ts, r.level, r.message, r.request_id) for r in read] == [
        (1.0, LogLevel.SYSTEM, "START", "r1"), (2.0, LogLevel.INFO, 'said "hi"\n', "r1"),
        (3.0, LogLevel.INFO, "new", "r1")]
    assert read[0].id < read[1].id < read[2].id


def test_versions_stored_before_aliases_keep_serving_their_latest(store_factory: StoreFactory) -> None:
    old, mark = store_at_step(store_factory, 9)
    with raw_write(old) as conn:
        conn.execute(f"INSERT INTO functions (name, project, latest, created_at, updated_at) "
                     f"VALUES ({mark}, 'shop', 2, 1.0, 2.0)", ("a",))
        for number in (1, 2):
            conn.execute("INSERT INTO versions (function, number, project, code_hash, config, code_path, "
                         f"created_at) VALUES ({mark}, {mark}, 'shop', 'h', '{{}}', 'code/x', 1.0)", ("a", number))

    old.migrate()

    assert [(v.number, v.provenance) for v in old.list_versions("a")] == [(1, {}), (2, {})]
    assert old.list_aliases("a") == []  # no row: live is the latest version (squall/store/releases.py)
    assert old.commit_deploy("shop", [new("a")])[0].number == 3
    [live] = old.list_aliases("a")
    assert (live.name, dict(live.weights)) == ("live", {3: 100})


def test_two_nodes_migrating_at_once(store_factory: StoreFactory) -> None:
    stores = [store_factory(migrate=False) for _ in range(4)]

    run_threads(4, lambda i: stores[i].migrate())

    stores[0].commit_deploy("shop", [new("a")])
    assert stores[3].get_function("a") is not None


def test_data_survives_closing_and_reopening(store_factory: StoreFactory) -> None:
    first = store_factory()
    first.commit_deploy("shop", [new("a", config={"x": {"y": 1}})])
    first.append_logs([log("a", message="kept")])
    first.set_meta("k", "v")
    first.close()

    again = store_factory()

    version = again.latest_version("a")
    assert version is not None and (version.number, version.config) == (1, {"x": {"y": 1}})
    assert [r.message for r in again.read_logs("a")] == ["kept"]
    assert again.get_meta("k") == "v"
    assert again.commit_deploy("shop", [new("a")])[0].number == 2


def test_a_closed_store_raises_store_error(store_factory: StoreFactory) -> None:
    closed = store_factory()
    closed.close()

    with pytest.raises(StoreError):
        closed.get_function("a")


# -- concurrency ---------------------------------------------------------------
def test_concurrent_deploys_get_distinct_numbers(store: BaseStore) -> None:
    created: list[FunctionVersion] = []

    def deploy_ten_times(thread: int) -> None:
        for i in range(10):
            created.extend(store.commit_deploy("shop", [new("hot", f"t{thread}-{i}")]))

    run_threads(8, deploy_ten_times)

    assert sorted(v.number for v in created) == list(range(1, 81))
    assert [v.number for v in store.list_versions("hot")] == list(range(1, 81))
    latest = store.latest_version("hot")
    assert latest is not None and latest.number == 80


def test_concurrent_deploys_of_several_functions_do_not_deadlock(store: BaseStore) -> None:
    names = ["a", "b", "c", "d"]

    def deploy(thread: int) -> None:
        for i in range(5):
            order = names[thread % 4:] + names[:thread % 4]  # every thread in its own order
            store.commit_deploy("shop", [new(name, f"{thread}-{i}") for name in order])

    run_threads(6, deploy)

    assert [f.latest for f in store.list_functions()] == [30, 30, 30, 30]


def test_concurrent_log_appends_keep_each_batch_in_order(store: BaseStore) -> None:
    def append(thread: int) -> None:
        for number in range(5):
            store.append_logs([batch(*(f"{number}.{line}" for line in range(4)), request_id=f"t{thread}")])

    run_threads(8, append)

    records = store.read_logs("fn", limit=10_000)
    assert len(records) == 8 * 5 * 4 and len({r.id for r in records}) == 8 * 5
    for thread in range(8):
        mine = [r.message for r in records if r.request_id == f"t{thread}"]
        assert mine == [f"{batch}.{line}" for batch in range(5) for line in range(4)]


# -- SQLite only ---------------------------------------------------------------
def test_sqlite_uses_wal_and_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "squall.db"
    store = SqliteStore(path)
    try:
        store.migrate()
        raw = sqlite3.connect(path)
        try:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            raw.close()
    finally:
        store.close()


def test_sqlite_store_used_from_many_threads_closes_every_connection(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "squall.db")
    store.migrate()

    def use(thread: int) -> None:
        store.commit_deploy("shop", [new(f"f{thread}")])
        store.list_functions()

    run_threads(8, use)
    store.close()  # with warnings as errors, a connection left open would fail the test

    assert store.close() is None  # closing twice is harmless


# -- PostgreSQL only -----------------------------------------------------------
@pytest.mark.parametrize("text", ["a\x00\x00b", "\\u0000", "\\\x00", "\x00", "x\\\\\x00",
                                  "\x00\\u0000\x00", "plain"])
def test_postgres_replaces_escaped_nul_only(text: str) -> None:
    from squall.store.postgres import _without_nul_escapes

    cleaned = _without_nul_escapes(orjson.dumps([text]))

    assert orjson.loads(cleaned) == [text.replace("\x00", "\ufffd")]


# -- project resources -----------------------------------------------------------
def test_a_deploy_replaces_its_projects_resources(store: BaseStore) -> None:
    store.commit_deploy("ops", [new("a")], resources={"topics": {"alerts": {"subscriptions": []}},
                                                      "queues": {"jobs": {"fifo": False}}})
    store.commit_deploy("ops", [], resources={"topics": {"alerts": {"subscriptions": [{"url": "http://x"}]}},
                                              "buckets": {"logs": {}}})

    found = [(r.kind, r.name, r.project, r.config) for r in store.list_resources()]
    assert found == [("bucket", "logs", "ops", {}),
                     ("topic", "alerts", "ops", {"subscriptions": [{"url": "http://x"}]})]
    assert [r.name for r in store.list_resources("topic")] == ["alerts"]


def test_a_resource_of_another_project_is_a_conflict_and_nothing_is_stored(store: BaseStore) -> None:
    store.commit_deploy("ops", [new("a")], resources={"topics": {"alerts": {}}})

    with pytest.raises(Conflict, match='topic "alerts" belongs to project "ops"'):
        store.commit_deploy("web", [new("b")], resources={"queues": {"q": {}}, "topics": {"alerts": {}}})

    assert store.get_function("b") is None
    assert [(r.kind, r.name) for r in store.list_resources()] == [("topic", "alerts")]
