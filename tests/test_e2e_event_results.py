"""End to end: what the dispatcher records of an event. An event's logs are stored no later
than its result (a node killed with SIGKILL while it records results keeps none without its
logs: checked in the store at each kill), and a results write the store refuses is retried
until it is taken: with PostgreSQL's connections to the node terminated again and again
during a burst, or SQLite's file locked by another process for longer than the store's busy
timeout, every event runs once and none is left running. A cancelled event's task leaves no
bookkeeping behind."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from squall.events.clock import SystemClock
from squall.events.dispatcher import EventDispatcher
from squall.events.retry import RetryPolicy
from squall.store.events import Event, EventStatus
from squall.store.sqlite import SqliteStore
from tests.support import RECORDER_CLIENT, Recorder, SquallServer, wait_until, write_project

pytestmark = pytest.mark.e2e


def project(body: str, env: str = "") -> dict[str, str]:
    return {
        "squall.yaml": f"name: jobs\nfunctions:\n  work:\n    handler: app.handler\n{env}",
        "app.py": RECORDER_CLIENT + "\n\ndef handler(event, context):\n" + body,
    }


def submit(node: SquallServer, n: int, key: str | None = None) -> str:
    """POST one event `{"n": n}` (again and again while the node answers 5xx); its request id."""
    headers = {"idempotency-key": key} if key else {}
    with node.api() as api:
        for _ in range(100):
            try:
                response = api.post("/_squall/api/functions/work/events", json={"n": n}, headers=headers)
            except httpx.TransportError:
                continue
            if response.status_code == 202:
                return str(response.json()["requestId"])
            assert response.status_code >= 500, response.text  # only a store error may refuse it
            time.sleep(0.05)
    raise AssertionError(f"event {n} was never accepted")


def counts(node: SquallServer) -> dict[str, int]:
    with node.api() as api:
        response = api.get("/_squall/api/functions/work/events")
    assert response.status_code == 200, response.text
    return dict(response.json()["events"])


def settled_counts(node: SquallServer) -> dict[str, int]:
    """The function's event counts once none is queued or running any more."""
    def settled() -> dict[str, int] | None:
        found = counts(node)
        return found if found["queued"] == found["running"] == 0 else None
    return dict(wait_until(settled, timeout=90))


def assert_each_ran_once(ran: Counter[int], total: int) -> None:
    assert sorted(ran) == list(range(total)) and set(ran.values()) == {1}, \
        f"ran more than once: {[n for n, times in ran.items() if times > 1][:10]}"


def reports(node: SquallServer) -> set[str]:
    """The request ids whose REPORT line is stored."""
    return {line["request_id"] for line in node.logs("work", limit=10000)
            if line["message"].startswith("REPORT RequestId:")}


def recorded_and_logged(data_dir: Path) -> tuple[set[str], set[str]]:
    """Read from the SQLite file of a node that is not running: the events recorded as
    succeeded (kept for their idempotency key), and the request ids whose logs are stored
    (one batch per invocation, its REPORT line included, shortened or not)."""
    with sqlite3.connect(data_dir / "squall.db") as db:
        recorded = {row[0] for row in db.execute("SELECT id FROM events WHERE status = 'succeeded'")}
        logged = {row[0] for row in db.execute("SELECT DISTINCT request_id FROM log_batches WHERE request_id <> ''")}
    return recorded, logged


def try_submit(node: SquallServer, n: int) -> str | None:
    """POST event `{"n": n}` once, under the idempotency key `n-<n>`; its request id, or None
    when the node did not accept it (it was killed)."""
    try:
        with node.api() as api:
            response = api.post("/_squall/api/functions/work/events", json={"n": n}, headers={"idempotency-key": f"n-{n}"})
    except httpx.TransportError:
        return None
    return str(response.json()["requestId"]) if response.status_code == 202 else None


def test_every_event_a_killed_node_recorded_has_its_logs(tmp_path: Path) -> None:
    rounds, per_round = 3, 300
    node = SquallServer(tmp_path / "data").start()
    ids: list[str] = []
    try:
        node.cli("deploy", str(write_project(tmp_path / "project", project("    print('ran', event['n'])\n"))),
                 check=True)
        for round_ in range(rounds):  # each kill catches a few results in the window, or none: three kills
            numbers = range(round_ * per_round, (round_ + 1) * per_round)
            with ThreadPoolExecutor(16) as pool:
                accepted = pool.map(lambda n: try_submit(node, n), numbers)
                # SIGKILL while events are accepted, run and recorded: results and logs of those in flight
                wait_until(lambda: counts(node)["succeeded"] >= numbers[0] + per_round // 4, timeout=60)
                assert node.process is not None
                node.process.kill()
                node.process.wait()
                got = list(accepted)
            recorded, logged = recorded_and_logged(node.data_dir)
            print(f"kill {round_ + 1}: {len(recorded)} events recorded, {len(recorded - logged)} without their logs")
            assert numbers[0] < len(recorded) < numbers[-1]  # the kill came while results were being recorded
            assert not recorded - logged, f"recorded without their logs: {sorted(recorded - logged)[:10]}"

            node.start()  # runs again what it had not recorded; what it had not accepted is sent again
            ids += [found or submit(node, n, key=f"n-{n}") for n, found in zip(numbers, got)]
        wait_until(lambda: (found := counts(node))["queued"] == 0 and found["running"] == 0, timeout=60)
        wait_until(lambda: reports(node) >= set(ids), timeout=20)
    finally:
        node.stop()
    assert len(set(ids)) == rounds * per_round


class Terminator:
    """Terminates every connection to one database (but its own) every `every` seconds, on a
    thread, while the block runs; `rounds` counts the rounds that ended at least one."""

    def __init__(self, url: str, every: float = 1.0) -> None:
        self.url = url
        self.every = every
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        dbname = conninfo_to_dict(self.url)["dbname"]
        with psycopg.connect(self.url, autocommit=True) as admin:
            while not self._stop.wait(self.every):
                ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                      "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchone()
                self.rounds += bool(ended and ended[0])

    def __enter__(self) -> Terminator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_results_the_store_refuses_are_retried_until_every_event_succeeded_once(
        tmp_path: Path, fresh_postgres_url: str) -> None:
    body = "    post({'n': event['n'], 'id': context.aws_request_id})\n"
    total = 600
    with Recorder() as recorder:
        node = SquallServer(tmp_path / "data", store=fresh_postgres_url).start()
        try:
            env = f"    env: {{RECORDER: \"{recorder.url}\"}}\n"
            node.cli("deploy", str(write_project(tmp_path / "project", project(body, env))), check=True)
            with Terminator(fresh_postgres_url) as terminator:
                with ThreadPoolExecutor(16) as pool:  # the key makes a submission repeated after a 5xx harmless
                    ids = list(pool.map(lambda n: submit(node, n, key=f"n-{n}"), range(total)))
                wait_until(lambda: terminator.rounds >= 8, timeout=30)  # and while the last of them run

            final = settled_counts(node)
        finally:
            node.stop()
        ran = Counter(seen["n"] for seen in recorder.json())

    assert len(set(ids)) == total
    assert final["succeeded"] == total and final["dead"] == 0  # kept as succeeded for their idempotency key
    assert_each_ran_once(ran, total)


def test_results_a_locked_sqlite_file_refuses_are_retried_until_every_event_succeeded_once(tmp_path: Path) -> None:
    body = "    import time\n    time.sleep(0.5)\n    post({'n': event['n'], 'id': context.aws_request_id})\n"
    total = 200
    with Recorder() as recorder:
        node = SquallServer(tmp_path / "data").start()
        try:
            env = f"    env: {{RECORDER: \"{recorder.url}\"}}\n"
            node.cli("deploy", str(write_project(tmp_path / "project", project(body, env))), check=True)
            with ThreadPoolExecutor(16) as pool:
                ids = list(pool.map(lambda n: submit(node, n, key=f"n-{n}"), range(total)))
            # Another process holds the file's write lock while those events run, past the busy
            # timeout of every write: the log writer gives its document up after 30 s, then the
            # results waiting for it are written, and refused, until the lock goes.
            locker = sqlite3.connect(node.data_dir / "squall.db", isolation_level=None, timeout=30)
            try:
                locker.execute("BEGIN EXCLUSIVE")
                wait_until(lambda: "could not record" in node.output(), timeout=90, interval=0.5)
                locker.execute("COMMIT")
            finally:
                locker.close()

            final = settled_counts(node)
        finally:
            node.stop()
        ran = Counter(seen["n"] for seen in recorder.json())

    assert len(set(ids)) == total
    assert final["succeeded"] == total and final["dead"] == 0
    assert_each_ran_once(ran, total)


class DispatcherHost:
    """What a dispatcher reads of its node before it runs an event: the store."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store


def test_a_cancelled_event_leaves_no_lease_or_open_entry_behind(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "squall.db")
    store.migrate()

    async def nothing(*args: Any) -> None:
        return None

    async def scenario() -> EventDispatcher:
        dispatcher = EventDispatcher(DispatcherHost(store), "node-a", RetryPolicy(), nothing, nothing,  # type: ignore[arg-type]
                                     deliver_http=nothing, overlap_of=lambda source: "skip", clock=SystemClock())
        now = time.time()
        for n in range(3):  # due in a minute: each task waits for its time
            dispatcher._start(Event(uuid.uuid4().hex, "work", b"{}", "test", EventStatus.RUNNING, 1, 3, now,
                                    now + 60, now + 3600), now + 960)
        assert len(dispatcher._leases) == len(dispatcher._open) == 3
        tasks = list(dispatcher._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # the done callbacks
        return dispatcher

    try:
        dispatcher = asyncio.run(scenario())
    finally:
        store.close()
    assert not dispatcher._in_flight and dispatcher._leases == {} and dispatcher._open == set()
    assert dispatcher._results == []  # nothing recorded for them: they stay leased and run again later
