"""Store notices (squall/store/notices.py): a committed write tells the listeners of other
store objects on the same data, at once; a rolled-back one tells nobody; another schema's
listeners hear nothing. PostgreSQL sends them (LISTEN/NOTIFY); SQLite keeps them in the
process, so its listeners hear nothing.

Absence is checked without sleeping: after the write under test, the writer sends a
"marker" notice; notices arrive in commit order, so once the marker is heard anything the
write sent has been heard too."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from squall.exceptions import Conflict, StoreError
from squall.store.base import BaseStore, NewVersion
from squall.store.events import EventResult, Lease, NewEvent, Outcome
from squall.store.notices import RESYNC, queue_topic
from squall.store.objects import ObjectInfo
from squall.store.postgres import PostgresStore
from squall.store.queues import NewMessage
from squall.store.resources import Resource
from squall.store.schedules import ScheduleFire, ScheduleState
from tests.conftest import StoreFactory

NOW = 3_000_000.0
MARKER = "marker"


class Heard:
    """A listener callback that keeps the topics it got, in order, for the test's thread."""

    def __init__(self) -> None:
        self.topics: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, topic: str) -> None:
        with self._changed:
            self.topics.append(topic)
            self._changed.notify_all()

    def wait_for(self, topic: str, timeout: float = 10.0) -> list[str]:
        """Every topic heard once `topic` is; fails after `timeout` seconds."""
        with self._changed:
            assert self._changed.wait_for(lambda: topic in self.topics, timeout), \
                f"{topic!r} was not heard within {timeout}s (heard {self.topics})"
            return list(self.topics)


PgFactory = Callable[..., PostgresStore]


@pytest.fixture
def pg(postgres_url: str) -> Iterator[PgFactory]:
    """Opens migrated PostgreSQL stores on one schema (or on `schema=`), closed after the test."""
    opened: list[PostgresStore] = []
    default = f"t_{uuid.uuid4().hex}"

    def open_store(schema: str | None = None) -> PostgresStore:
        store = PostgresStore(postgres_url, schema=schema or default)
        opened.append(store)
        store.migrate()
        return store

    yield open_store
    for store in opened:
        store.close()


def event(event_id: str, function: str = "fn") -> NewEvent:
    return NewEvent(event_id, function, b"{}", "invoke", 3, NOW + 3600, NOW)


def version(function: str = "fn") -> NewVersion:
    return NewVersion(function, "hash", {"memory": 128}, "code/x")


def dead_event(store: BaseStore) -> None:
    store.enqueue_events([event("dead")], now=NOW, idempotency_window=60)
    [claimed] = store.claim_events("node", limit=1, now=NOW, lease_until=NOW + 60)
    store.finish_events([EventResult(claimed.id, Outcome.DEAD, error="no")], now=NOW)


def received(store: BaseStore, queue: str = "jobs") -> list[str]:
    """Send a message to `queue` and receive it: its receipt."""
    store.send_messages(queue, [NewMessage(f"{queue}-m", "body")], now=NOW)
    return [m.receipt for m in store.receive_messages(queue, limit=1, now=NOW, visibility_timeout=30, fifo=False)]


def claimed(store: BaseStore) -> list[str]:
    """Store an event and claim it: its id."""
    store.enqueue_events([event("t1")], now=NOW, idempotency_window=60)
    return [e.id for e in store.claim_events("node", limit=1, now=NOW, lease_until=NOW + 60)]


def nothing(store: BaseStore) -> Any:
    return None


Setup = Callable[[BaseStore], Any]
Write = Callable[[BaseStore, Any], object]
WRITES: dict[str, tuple[Setup, Write, str]] = {
    # name: (set-up before listening, the write (given what the set-up returned), the topic it must send)
    "enqueue events": (nothing, lambda s, _: s.enqueue_events([event("e1")], now=NOW, idempotency_window=60),
                       "events"),
    "fire a schedule": (
        lambda s: s.save_schedules([ScheduleState("fn/s", "fn", "s", "rate(1 minute)", "UTC", NOW, NOW, {})], ()),
        lambda s, _: s.fire_schedules([ScheduleFire("fn/s", NOW, NOW + 60, "queued", event("run"))], now=NOW),
        "events"),
    "put an object with notifications": (
        nothing, lambda s, _: s.put_object(ObjectInfo("b", "k", 1, "e" * 32, "text/plain", NOW, "buckets/k"),
                                           [event("put")], now=NOW), "events"),
    "redrive dead letters": (dead_event, lambda s, _: s.redrive_events("fn", None, now=NOW, expires_at=NOW + 60),
                             "events"),
    "hand back a throttled event": (
        claimed, lambda s, ids: s.finish_events([EventResult(i, Outcome.RELEASE, run_at=NOW + 1) for i in ids],
                                                now=NOW), "events"),
    "send a message": (nothing, lambda s, _: s.send_messages("jobs", [NewMessage("m1", "body")], now=NOW),
                       "queue:jobs"),
    "make a message visible again": (
        received, lambda s, receipts: s.change_visibility("jobs", receipts, visible_at=NOW), "queue:jobs"),
    "move a message to its dead-letter queue": (
        received, lambda s, receipts: s.move_messages("jobs", receipts, "jobs-dlq", now=NOW), "queue:jobs-dlq"),
    "commit a deploy": (nothing, lambda s, _: s.commit_deploy("p", [version()]), "deploy"),
    "move an alias": (lambda s: s.commit_deploy("p", [version()]),
                      lambda s, _: s.set_alias("fn", "stable", {1: 100}, reason="set", now=NOW), "deploy"),
    "remove an alias": (lambda s: (s.commit_deploy("p", [version()]),
                                   s.set_alias("fn", "stable", {1: 100}, reason="set", now=NOW)),
                        lambda s, _: s.delete_alias("fn", "stable"), "deploy"),
    "set a secret": (nothing, lambda s, _: s.put_secret("TOKEN", b"sealed", now=NOW), "secrets"),
    "remove a secret": (lambda s: s.put_secret("TOKEN", b"sealed", now=NOW), lambda s, _: s.delete_secret("TOKEN"),
                        "secrets"),
    "make a table": (nothing, lambda s, _: s.put_resource(Resource("table", "t", "", {}), create=True),
                     "resources"),
    "remove a table": (lambda s: s.put_resource(Resource("table", "t", "", {}), create=True),
                       lambda s, _: s.delete_resource("table", "t"), "resources"),
}


def test_a_write_is_heard_by_another_store_object_where_notices_travel(store_factory: StoreFactory) -> None:
    writer, reader = store_factory(), store_factory()
    heard = Heard()
    listener = reader.listen(heard)
    try:
        writer.send_messages("jobs", [NewMessage("m1", "body")], now=NOW)
        if writer.notices_reach_other_nodes:
            assert heard.wait_for("queue:jobs") == ["queue:jobs"]
        else:  # SQLite: one node per file, which wakes itself
            time.sleep(0.3)
            assert heard.topics == []
    finally:
        listener.close()


@pytest.mark.parametrize("name", list(WRITES))
def test_each_write_others_wait_for_sends_its_notice_when_it_commits(pg: PgFactory, name: str) -> None:
    setup, write, topic = WRITES[name]
    writer, reader = pg(), pg()
    state = setup(writer)
    heard = Heard()
    reader.listen(heard)

    write(writer, state)
    writer.notify(MARKER)

    assert set(heard.wait_for(MARKER)) == {topic, MARKER}  # that notice, and no other


def test_a_notice_arrives_within_milliseconds_of_the_commit(pg: PgFactory) -> None:
    writer, reader = pg(), pg()
    heard = Heard()
    reader.listen(heard)

    started = time.perf_counter()
    writer.send_messages("jobs", [NewMessage("m1", "body")], now=NOW)
    heard.wait_for("queue:jobs")
    assert time.perf_counter() - started < 0.5


def test_a_rolled_back_write_sends_no_notice(pg: PgFactory) -> None:
    writer, reader = pg(), pg()
    writer.enqueue_events([event("e1")], now=NOW, idempotency_window=60)
    writer.commit_deploy("owner", [version("taken")])
    heard = Heard()
    reader.listen(heard)

    with pytest.raises(StoreError):  # the second event's id is taken: the whole insert rolls back
        writer.enqueue_events([event("e2"), event("e1")], now=NOW, idempotency_window=60)
    with pytest.raises(Conflict):
        writer.commit_deploy("thief", [version("taken")])
    writer.notify(MARKER)

    assert heard.wait_for(MARKER) == [MARKER]
    assert writer.get_event("e2") is None  # rolled back indeed


def test_events_stored_for_their_own_node_send_no_notice(pg: PgFactory) -> None:
    writer, reader = pg(), pg()
    heard = Heard()
    reader.listen(heard)

    writer.enqueue_events([event("mine")], now=NOW, idempotency_window=60,
                          lease=Lease("node-a", NOW + 30, frozenset({"mine"})))  # nothing for others to claim
    writer.notify(MARKER)
    writer.enqueue_events([event("mine too"), event("anyone's")], now=NOW, idempotency_window=60,
                          lease=Lease("node-a", NOW + 30, frozenset({"mine too"})))

    assert heard.wait_for("events") == [MARKER, "events"]


def test_another_schemas_listeners_hear_nothing(pg: PgFactory) -> None:
    writer, other_writer = pg(), pg(schema=f"t_{uuid.uuid4().hex}")
    other_reader = pg(schema=other_writer.schema)
    heard = Heard()
    other_reader.listen(heard)

    writer.send_messages("jobs", [NewMessage("m1", "body")], now=NOW)
    writer.commit_deploy("p", [version()])
    other_writer.notify(MARKER)

    assert heard.wait_for(MARKER) == [MARKER]
    assert writer.notice_channel != other_writer.notice_channel


def test_a_store_objects_own_notices_are_not_given_to_its_listeners(pg: PgFactory) -> None:
    store, other = pg(), pg()
    heard = Heard()
    store.listen(heard)

    store.send_messages("jobs", [NewMessage("m1", "body")], now=NOW)
    other.notify(MARKER)

    assert heard.wait_for(MARKER) == [MARKER]


def test_a_schema_with_the_longest_name_has_a_channel(pg: PgFactory) -> None:
    schema = "s" * 63  # PostgreSQL's longest identifier; a channel name is one too
    writer, reader = pg(schema=schema), pg(schema=schema)
    heard = Heard()
    reader.listen(heard)

    writer.send_messages(queue := "q" * 80, [NewMessage("m1", "body")], now=NOW)
    assert heard.wait_for(queue_topic(queue)) == [queue_topic(queue)]
    assert len(writer.notice_channel) <= 63


def test_a_listener_whose_connection_drops_reconnects_and_resyncs(pg: PgFactory, postgres_url: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    writer, reader = pg(), pg()
    heard = Heard()
    reader.listen(heard)

    with psycopg.connect(postgres_url, autocommit=True) as admin:
        killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
                               (f'LISTEN "{reader.notice_channel}"',)).fetchall()
    assert killed == [(True,)]
    heard.wait_for(RESYNC)  # notices sent while it was away are lost: its node looks at everything
    writer.send_messages("jobs", [NewMessage("m1", "body")], now=NOW)

    assert heard.wait_for("queue:jobs") == [RESYNC, "queue:jobs"]
    assert "reconnecting" in capsys.readouterr().out


def test_a_closed_listener_hears_nothing_and_leaves_no_thread(pg: PgFactory) -> None:
    writer, reader = pg(), pg()
    closed, still = Heard(), Heard()
    threads = threading.active_count()
    listener = reader.listen(closed)
    reader.listen(still)
    assert threading.active_count() == threads + 2

    listener.close()
    listener.close()  # twice is harmless
    writer.send_messages("jobs", [NewMessage("m1", "body")], now=NOW)
    writer.notify(MARKER)

    assert set(still.wait_for(MARKER)) == {"queue:jobs", MARKER}
    assert closed.topics == []
    assert threading.active_count() == threads + 1
