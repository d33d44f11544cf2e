"""Store notices (squall/store/notices.py) over PostgreSQL's LISTEN/NOTIFY.

A write sends `pg_notify(channel, "ORIGIN TOPIC")` inside its own transaction, so the
notice leaves only when, and after, the transaction commits (PostgreSQL also drops a
repeat of the same notice within one transaction). The channel is private to the
store's schema; ORIGIN names the store object that sent it, so its own listeners skip
it.

A listener holds one autocommit connection of its own that has run LISTEN, and a thread
that waits (`poll`) on that connection's socket and on a pipe that `close()` writes
to. It reads what arrived, drops its own store object's notices, and calls back once per
distinct topic. It checks a quiet connection every CHECK_EVERY seconds (`SELECT 1`;
TCP keepalives find a peer that vanished without a word), and after losing it
reconnects, retrying with backoff, then calls back with RESYNC: notices sent meanwhile
are gone, so its node looks at everything once.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable

import psycopg
from psycopg.rows import TupleRow
from psycopg.sql import SQL, Identifier

from squall.exceptions import StoreError
from squall.store.notices import RESYNC, Listener, NoticeCallback

Connection = psycopg.Connection[TupleRow]

CHECK_EVERY = 10.0
"""Seconds of quiet after which the listener checks that its connection still answers."""
RECONNECT_FIRST = 0.5
RECONNECT_MAX = 10.0
"""Seconds between attempts to reconnect: doubling from the first to the max."""
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
              "tcp_user_timeout": 30_000}
"""libpq settings of the listener's connection (TCP only): a dead peer is found within ~30 s."""


def encode(origin: str, topic: str) -> str:
    """The payload of a notice: who sent it, then its topic."""
    return f"{origin} {topic}"


class PostgresListener(Listener):
    """Delivers the notices of `channel` that other store objects sent (see the module docstring)."""

    def __init__(self, connect: Callable[[], Connection], channel: str, origin: str,
                 callback: NoticeCallback) -> None:
        self._connect = connect
        self._channel = channel
        self._origin = origin
        self._callback = callback
        self._stop_read, self._stop_write = os.pipe()
        self._stopping = threading.Event()
        try:
            conn = self._open()
        except psycopg.Error as exc:
            self._close_pipe()
            raise StoreError(f"cannot listen for PostgreSQL store notices: {exc}") from exc
        self._thread = threading.Thread(target=self._run, args=(conn,), name="squall-store-notices", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        os.write(self._stop_write, b"x")
        self._thread.join()
        self._close_pipe()

    def _close_pipe(self) -> None:
        os.close(self._stop_read)
        os.close(self._stop_write)

    # -- the listener's thread ----------------------------------------------------
    def _open(self) -> Connection:
        conn = self._connect()
        try:
            conn.execute(SQL("LISTEN {}").format(Identifier(self._channel)))
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, conn: Connection | None) -> None:
        while conn is not None:
            try:
                self._receive(conn)
            except Exception as exc:  # noqa: BLE001 - whatever broke, listen again on a new connection
                print(f"squall: lost the connection that hears other nodes' store notices ({exc}); "
                      "reconnecting, polling meanwhile", flush=True)
            finally:
                conn.close()
            conn = self._reconnect()
            if conn is not None:
                print("squall: hearing other nodes' store notices again", flush=True)
                self._deliver({RESYNC})

    def _receive(self, conn: Connection) -> None:
        """Deliver what arrives on `conn` until `close()` (returns) or the connection fails (raises)."""
        waiting = select.poll()  # not select(): a busy node's descriptors can be numbered past 1024
        waiting.register(conn.fileno(), select.POLLIN)
        waiting.register(self._stop_read, select.POLLIN)
        while not self._stopping.is_set():
            ready = {fd for fd, _ in waiting.poll(CHECK_EVERY * 1000)}
            if self._stop_read in ready:
                return
            if not ready:
                conn.execute("SELECT 1")  # raises when the server or the network is gone
            topics = set()
            for notice in conn.notifies(timeout=0):  # what is buffered, and what was read meanwhile
                origin, _, topic = notice.payload.partition(" ")
                if origin != self._origin:
                    topics.add(topic)
            self._deliver(topics)

    def _reconnect(self) -> Connection | None:
        """A listening connection, trying until it works; None when closed meanwhile."""
        delay = RECONNECT_FIRST
        while not self._stopping.wait(delay):
            try:
                return self._open()
            except psycopg.Error:
                delay = min(delay * 2, RECONNECT_MAX)
        return None

    def _deliver(self, topics: set[str]) -> None:
        for topic in sorted(topics):
            if self._stopping.is_set():
                return
            try:
                self._callback(topic)
            except Exception as exc:  # noqa: BLE001 - one failing callback must not end listening
                print(f"squall: store notice {topic!r} was not handled: {exc!r}", flush=True)
