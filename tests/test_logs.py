"""The log writer and the retention sweep against real stores: the writer's memory stays
within its bound however far the store falls behind (and says what it dropped), a refused
write is retried, `wait_stored` waits for what was written; the sweep deletes by age and by
size, oldest first, in small steps (time is passed in, never waited for)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Iterator

import orjson
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from squall.exceptions import BadInput
from squall.logs import (DAY, MB, SMALL_RESERVE, SWEEP_ROWS, LogBudget, LogRetention, LogWriter, encode_invocation,
                         invocation_batch, sweep_logs)
from squall.settings import Settings
from squall.store import open_stage_store
from squall.store.base import BaseStore, LogBatch, decode_log_row, encode_log_batch
from squall.store.postgres import PostgresStore
from squall.store.sqlite import SqliteStore
from squall.types import LogLevel, LogLine

NOW = 2_000_000_000.0


def invocation(function: str, request_id: str, printed: str, ts: float = NOW) -> LogBatch:
    """An invocation's batch as the node makes it: START, what it printed, END, REPORT."""
    return LogBatch(function, 1, request_id, [
        LogLine(ts, LogLevel.SYSTEM, f"START RequestId: {request_id} Version: 1"),
        LogLine(ts, LogLevel.INFO, printed),
        LogLine(ts, LogLevel.SYSTEM, f"END RequestId: {request_id}"),
        LogLine(ts, LogLevel.SYSTEM, f"REPORT RequestId: {request_id}\tDuration: 1.00 ms")])


@pytest.fixture
def sqlite_store(tmp_path) -> Iterator[SqliteStore]:  # type: ignore[no-untyped-def]
    store = SqliteStore(tmp_path / "squall.db")
    store.migrate()
    yield store
    store.close()


def messages(store: BaseStore, function: str) -> list[str]:
    return [r.message for r in store.read_logs(function, limit=100_000)]


# -- the writer's bounds ------------------------------------------------------------
def test_a_writer_behind_its_store_keeps_its_bound_and_shortens_big_batches(sqlite_store: SqliteStore,
                                                                            tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer = LogWriter(sqlite_store, max_queue_bytes=2 * MB)
    writer.start()
    blocker = SqliteStore(tmp_path / "squall.db")
    highest = 0
    try:
        with blocker._write():  # the store is busy: the writer's next write waits for it
            writer.write(invocation("loud", "first", "x"))
            time.sleep(0.2)
            for n in range(40):  # 40 MB printed, one MB per invocation
                writer.write(invocation("loud", f"r{n}", "y" * MB))
                writer.write(invocation("quiet", f"q{n}", f"said {n}"))
                highest = max(highest, writer.queued_bytes)
            assert not writer.wait_stored(writer.written(), timeout=0.2)  # nothing got through
    finally:
        blocker.close()
    assert writer.flush(timeout=30)
    writer.stop()

    assert highest <= 2 * MB + SMALL_RESERVE
    assert writer.stats.shortened >= 30 and writer.stats.dropped == 0 and writer.stats.failed == 0
    assert messages(sqlite_store, "quiet") == [m for n in range(40) for m in (
        f"START RequestId: q{n} Version: 1", f"said {n}", f"END RequestId: q{n}",
        f"REPORT RequestId: q{n}\tDuration: 1.00 ms")]  # the small batches all got through whole
    loud = sqlite_store.read_logs("loud", limit=100_000)
    short = [r for r in loud if "log of this invocation was dropped" in r.message]
    assert len(short) == writer.stats.shortened
    assert all(r.level is LogLevel.WARN and "-byte log of this invocation was dropped" in r.message for r in short)
    for record in short:  # START, the marker, END, REPORT: each shortened invocation still says it ran
        lines = [r.message for r in loud if r.request_id == record.request_id]
        assert lines[0].startswith("START") and lines[2].startswith("END") and lines[3].startswith("REPORT")
    assert sum(len(r.message) for r in loud) < 3 * MB  # what fit in the 2 MB queue, no more


def test_batches_dropped_whole_are_counted_and_named_once_there_is_room(sqlite_store: SqliteStore,
                                                                        tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer = LogWriter(sqlite_store, max_queue_bytes=0)  # only the reserve for small batches
    writer.start()
    blocker = SqliteStore(tmp_path / "squall.db")
    try:
        with blocker._write():
            writer.write(invocation("chatty", "first", "x"))
            time.sleep(0.2)
            for n in range(30_000):  # about 6 MB of small batches: more than the reserve
                writer.write(invocation("chatty", f"r{n}", "hello"))
                assert writer.queued_bytes <= SMALL_RESERVE
    finally:
        blocker.close()
    assert writer.flush(timeout=30)
    writer.stop()

    assert writer.stats.dropped > 0
    [marker] = [r for r in sqlite_store.read_logs("chatty", limit=100_000) if "were dropped" in r.message]
    assert marker.level is LogLevel.WARN and f"the logs of {writer.stats.dropped} invocations of chatty" in marker.message
    stored = {r.request_id for r in sqlite_store.read_logs("chatty", limit=100_000)} - {""}
    assert len(stored) == 30_001 - writer.stats.dropped


def test_the_writers_of_a_root_and_a_stage_share_one_budget(sqlite_store: SqliteStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stage_store = open_stage_store(sqlite_store, "staging", tmp_path / "stages" / "staging")
    budget = LogBudget(2 * MB)
    writers = [LogWriter(sqlite_store, budget=budget), LogWriter(stage_store, budget=budget)]
    for writer in writers:
        writer.start()
    blockers = [SqliteStore(tmp_path / "squall.db"), SqliteStore(tmp_path / "stages" / "staging" / "squall.db")]
    highest = 0
    try:
        with blockers[0]._write(), blockers[1]._write():  # both stores busy
            for writer in writers:
                writer.write(invocation("loud", "first", "x"))
            time.sleep(0.2)
            for n in range(20):  # 20 MB printed through each node
                for writer in writers:
                    writer.write(invocation("loud", f"r{n}", "y" * MB))
                highest = max(highest, sum(w.queued_bytes for w in writers))
            assert budget.used == sum(w.queued_bytes for w in writers)
    finally:
        for blocker in blockers:
            blocker.close()
    for writer in writers:
        assert writer.flush(timeout=30)
        writer.stop()
    try:
        assert highest <= 2 * MB + SMALL_RESERVE  # not 2 MB per writer
        assert budget.used == 0
        assert sum(w.stats.shortened for w in writers) >= 36  # of 40: what two writers with 2 MB each would keep
    finally:
        stage_store.close()


def test_the_writers_counters_say_what_was_shortened_dropped_and_failed(sqlite_store: SqliteStore,
                                                                         tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer = LogWriter(sqlite_store, max_queue_bytes=0, retry_for=0.5)  # only the reserve for small batches
    writer.start()
    blocker = SqliteStore(tmp_path / "squall.db")
    written = 0
    with blocker._write() as conn:
        writer.write(invocation("chatty", "first", "x"))
        time.sleep(0.2)  # the writer is in its first write, waiting for the store
        writer.write(invocation("chatty", "big", "y" * MB))  # does not fit: stored shortened
        written += 2
        while not writer.stats.dropped:
            writer.write(invocation("chatty", f"r{written}", "hello"))
            written += 1
        for n in range(5):
            writer.write(invocation("chatty", f"late{n}", "hello"))  # the queue is still full
        written += 5
        conn.execute("ALTER TABLE log_batches RENAME TO log_batches_away")  # every write now fails
    assert writer.flush(timeout=30)  # given up, after 0.5 s each (its dropped-marker too)
    blocker.close()
    with sqlite_store._write() as conn:
        conn.execute("ALTER TABLE log_batches_away RENAME TO log_batches")
    writer.write(invocation("chatty", "after", "fine"))
    assert writer.flush(timeout=30)
    writer.stop()

    assert writer.stats.shortened == 1
    assert writer.stats.dropped == 6
    assert writer.stats.failed == written - 6  # every invocation queued, not the writer's own marker
    assert messages(sqlite_store, "chatty")[1] == "fine"  # and nothing else was stored
    assert len(messages(sqlite_store, "chatty")) == 4


def test_wait_stored_returns_once_what_was_written_before_is_stored(sqlite_store: SqliteStore) -> None:
    writer = LogWriter(sqlite_store, batch_interval=5.0)  # waiting hurries it: no 5 s wait
    writer.start()
    writer.write(invocation("fn", "r1", "one"))
    mark = writer.written()
    writer.write(invocation("fn", "r2", "two"))

    started = time.monotonic()
    assert writer.wait_stored(mark, timeout=10)
    waited = time.monotonic() - started
    assert "one" in messages(sqlite_store, "fn")
    assert waited < 4.0
    writer.stop()
    assert messages(sqlite_store, "fn")[-3] == "two"  # stop stores what is queued


@pytest.mark.e2e
def test_a_refused_write_is_retried_until_the_store_takes_it(fresh_postgres_url: str) -> None:
    store = PostgresStore(fresh_postgres_url)
    store.migrate()
    writer = LogWriter(store, batch_interval=0.005)
    writer.start()
    dbname = conninfo_to_dict(fresh_postgres_url)["dbname"]
    try:
        with psycopg.connect(fresh_postgres_url, autocommit=True) as admin:
            for round_ in range(20):
                for n in range(50):
                    writer.write(invocation("fn", f"r{round_}-{n}", f"line {round_} {n}"))
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
                time.sleep(0.01)
        assert writer.flush(timeout=60)
        writer.stop()
        stored = [r.request_id for r in store.read_logs("fn", limit=100_000) if r.message.startswith("START")]
        assert sorted(stored) == sorted(f"r{round_}-{n}" for round_ in range(20) for n in range(50))
        assert writer.stats.failed == 0
    finally:
        store.close()


# -- retention -----------------------------------------------------------------------
def aged(store: BaseStore, *days: float) -> list[str]:
    """Store one invocation per age (days before NOW, in the order given); their request ids."""
    ids = [f"age-{i}-{uuid.uuid4().hex[:6]}" for i in range(len(days))]
    store.append_logs([invocation("fn", rid, "hi", ts=NOW - d * DAY) for rid, d in zip(ids, days)])
    return ids


def kept(store: BaseStore) -> list[str]:
    return [r.request_id for r in store.read_logs("fn", limit=100_000) if r.message.startswith("START")]


def test_the_sweep_deletes_what_is_older_than_the_retention(store: BaseStore) -> None:
    ids = aged(store, 40, 29, 31, 1)  # a younger batch stored among older ones does not stop the sweep

    swept = sweep_logs([store], LogRetention(max_age=30 * DAY), now=NOW, pause=0)

    assert kept(store) == [ids[1], ids[3]] and (swept.aged, swept.trimmed) == (2, 0)
    assert sweep_logs([store], LogRetention(max_age=30 * DAY), now=NOW, pause=0).aged == 0
    assert sweep_logs([store], LogRetention(max_age=0.5 * DAY), now=NOW, pause=0).aged == 2
    assert kept(store) == []


def test_the_sweep_deletes_the_oldest_until_all_fit_under_the_cap(store: BaseStore) -> None:
    ids = aged(store, 5, 4, 3, 2, 1)
    size = store.log_bytes() // 5  # the batches are of one size

    swept = sweep_logs([store], LogRetention(max_bytes=2 * size + size // 2), now=NOW, pause=0)

    assert kept(store) == ids[3:] and swept.trimmed == 3
    assert store.log_bytes() <= 2 * size + size // 2
    assert sweep_logs([store], LogRetention(max_bytes=10 * size), now=NOW, pause=0).trimmed == 0


def test_the_sweep_caps_a_root_and_its_stages_together(store: BaseStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    stage = open_stage_store(store, "staging", tmp_path / "stages" / "staging")
    try:
        root_ids = aged(store, 6, 5, 2)
        stage_ids = aged(stage, 4, 3, 1)
        size = store.log_bytes() // 3  # the batches are of one size
        cap = 3 * size + size // 2  # each store alone fits under it

        swept = sweep_logs([store, stage], LogRetention(max_bytes=cap), now=NOW, pause=0)

        assert swept.trimmed == 3 and store.log_bytes() + stage.log_bytes() <= cap
        assert kept(store) == root_ids[2:] and kept(stage) == stage_ids[1:]  # the oldest of both, whichever held them
        assert sweep_logs([store, stage], LogRetention(max_bytes=cap), now=NOW, pause=0).trimmed == 0
        assert sweep_logs([store, stage], LogRetention(max_age=1.5 * DAY), now=NOW, pause=0).aged == 2
        assert kept(store) == [] and kept(stage) == [stage_ids[2]]
    finally:
        stage.close()


def test_the_sweep_deletes_in_small_steps(store: BaseStore) -> None:
    total = 2 * SWEEP_ROWS + 7
    store.append_logs([invocation("fn", f"r{n}", "hi", ts=NOW - 40 * DAY) for n in range(total)])
    before = store.oldest_logs(1)

    swept = sweep_logs([store], LogRetention(), now=NOW, pause=0)

    assert swept.aged == total and store.oldest_logs(1) == [] and before


def test_retention_settings_come_from_the_environment() -> None:
    def retention(environ: dict[str, str]) -> LogRetention:
        return LogRetention.from_settings(Settings.from_environ(environ))

    assert retention({}) == LogRetention(max_age=30 * DAY, max_bytes=1024 * MB, every=60.0) == LogRetention()
    assert retention({"SQUALL_LOG_RETENTION_DAYS": "7", "SQUALL_LOG_MAX_MB": "0.5",
                      "SQUALL_LOG_SWEEP_SECONDS": "2"}) == LogRetention(max_age=7 * DAY, max_bytes=MB // 2, every=2.0)
    for bad in ({"SQUALL_LOG_RETENTION_DAYS": "0"}, {"SQUALL_LOG_MAX_MB": "lots"}, {"SQUALL_LOG_SWEEP_SECONDS": "inf"}):
        with pytest.raises(BadInput, match=next(iter(bad))):
            retention(bad)



def test_an_invocation_encoded_in_one_step_is_its_batch_encoded() -> None:
    printed = [LogLine(1.5, LogLevel.INFO, "hi"), LogLine(1.6, LogLevel.WARN, "careful ☂ \x00")]
    for error_line in (None, "Traceback: boom"):
        parts = {"started": 1.0, "report": "REPORT RequestId: r1", "error_line": error_line}
        one_step = decode_log_row(encode_invocation("f", 3, "r1", printed, **parts))  # type: ignore[arg-type]
        batch = decode_log_row(encode_log_batch(invocation_batch("f", 3, "r1", printed, **parts)))  # type: ignore[arg-type]
        kept = 1 + len(printed)  # START and what was printed; the error, END and REPORT are stamped as made
        for decoded in (one_step, batch):
            assert all(line.ts >= 1.0 for line in decoded.lines[kept:])
        assert one_step.lines[:kept] == batch.lines[:kept]
        assert [replace(line, ts=0) for line in one_step.lines[kept:]] == [replace(line, ts=0) for line in batch.lines[kept:]]
        assert (one_step.function, one_step.version, one_step.request_id) == ("f", 3, "r1")
        assert one_step.lines[2].message == "careful ☂ \x00"
        assert [line.level for line in one_step.lines][-2:] == [LogLevel.SYSTEM, LogLevel.SYSTEM]


def test_a_log_row_carries_its_lines_as_text_with_their_size_and_span() -> None:
    lines = [LogLine(2.0, LogLevel.SYSTEM, "START"), LogLine(2.5, LogLevel.INFO, "say \"hi\" ☂"),
             LogLine(3.0, LogLevel.SYSTEM, "END")]
    row = orjson.loads(encode_log_batch(LogBatch("f", 4, "r9", lines)))

    function, version, request_id, ts, ts_end, size, text = row
    assert (function, version, request_id, ts, ts_end) == ("f", 4, "r9", 2.0, 3.0)
    assert size == len(text.encode()) and orjson.loads(text)[1] == {"ts": 2.5, "level": "INFO", "message": 'say "hi" ☂'}
    assert orjson.loads(encode_log_batch(LogBatch("f", 4, "r9", [])))[5] == 2  # `[]`: skipped by the stores