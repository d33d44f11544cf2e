"""The SQLite store: the default, single-node backend in one file.

The SQL it shares with PostgreSQL is SqlStore's (squall/store/sql_store.py) and that of one
class per concern (squall/store/sql_*.py), spelled by the SQLITE dialect. This module owns
the SQLite schema and its migrations, and SQLite's concurrency rules:

* WAL journal (readers never block the writer, nor the writer them) with
  `synchronous=NORMAL`, which is durable across application crashes;
* one writer at a time: a process-wide lock orders this process's writers and
  every write runs in `BEGIN IMMEDIATE`, so writers of other processes wait
  (up to `busy_timeout`) instead of failing halfway through a transaction;
* connections are shared by threads through a small pool of idle ones: a call
  borrows one and gives it back, so any thread may call any method and
  `close()` closes every connection (no ResourceWarning from dead threads).

With one writer the shared SQL's hooks are simple: a claim selects then updates, the locks
a writer would take are already held, no notice leaves the process (one node per file), and
that node leads every role.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from squall.exceptions import Conflict, StoreError
from squall.store.base import FunctionVersion, NewVersion
from squall.store.sql import Dialect
from squall.store.sql_events import EVENT_COLUMNS, SqlEventQueue, event_schema
from squall.store.sql_objects import SqlObjects, object_schema
from squall.store.sql_queues import SqlQueues, queue_schema
from squall.store.sql_releases import SqlReleases, release_schema
from squall.store.sql_resources import SqlResources, resource_schema
from squall.store.sql_schedules import SqlSchedules, schedule_schema
from squall.store.sql_secrets import SqlSecrets, secret_schema
from squall.store.sql_store import FUNCTION_COLUMNS, VERSION_COLUMNS, SqlStore, log_size_schema, version_of
from squall.store.sql_tables import SqlTables, table_schema
from squall.store.tables import ItemKey

SQLITE = Dialect(
    name="sqlite", mark="?", skip_locked="", byte_order="", blob="BLOB", real="REAL", bigint="INTEGER",
    sequence="INTEGER PRIMARY KEY AUTOINCREMENT", byte_length="length(CAST({} AS BLOB))")
"""SQLite's spelling: no SKIP LOCKED (one writer holds the whole file), text compares by its
bytes already."""

BUSY_TIMEOUT_MS = 10_000
MAX_IDLE_CONNECTIONS = 8

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the initial schema
        """CREATE TABLE functions (
            name TEXT PRIMARY KEY, project TEXT NOT NULL, latest INTEGER NOT NULL,
            created_at REAL NOT NULL, updated_at REAL NOT NULL)""",
        "CREATE INDEX functions_project ON functions (project, name)",
        """CREATE TABLE versions (
            function TEXT NOT NULL, number INTEGER NOT NULL, project TEXT NOT NULL,
            code_hash TEXT NOT NULL, config TEXT NOT NULL, code_path TEXT NOT NULL,
            created_at REAL NOT NULL, PRIMARY KEY (function, number))""",
        """CREATE TABLE logs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, function TEXT NOT NULL,
            version INTEGER NOT NULL, request_id TEXT NOT NULL, ts REAL NOT NULL,
            level TEXT NOT NULL, message TEXT NOT NULL)""",
        "CREATE INDEX logs_function_id ON logs (function, id)",
        "CREATE INDEX logs_function_request ON logs (function, request_id, id)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (  # 2: one row per invocation's log lines instead of one per line
        """CREATE TABLE log_batches (
            id INTEGER PRIMARY KEY AUTOINCREMENT, function TEXT NOT NULL,
            version INTEGER NOT NULL, request_id TEXT NOT NULL, ts REAL NOT NULL,
            ts_end REAL NOT NULL, lines BLOB NOT NULL)""",
        "CREATE INDEX log_batches_function_id ON log_batches (function, id)",
        "CREATE INDEX log_batches_function_request ON log_batches (function, request_id, id)",
        """INSERT INTO log_batches (function, version, request_id, ts, ts_end, lines)
            SELECT function, version, request_id, ts, ts,
                   json_array(json_object('ts', ts, 'level', level, 'message', message))
            FROM logs ORDER BY id""",
        "DROP TABLE logs",
    ),
    event_schema(SQLITE),  # 3: the event queue
    schedule_schema(SQLITE),  # 4: schedules
    resource_schema(),  # 5: topics, queues and buckets of projects
    queue_schema(SQLITE),  # 6: queue messages
    object_schema(SQLITE),  # 7: bucket objects
    secret_schema(SQLITE),  # 8: secrets
    table_schema(SQLITE),  # 9: table items
    release_schema(SQLITE),  # 10: aliases, provenance
    log_size_schema(SQLITE),  # 11: log batch sizes, for retention
)
"""Migration steps in order; step i (1-based) brings the schema to version i.
Append new steps, never edit applied ones."""

_INSERT_LOG_BATCHES = """
    INSERT INTO log_batches (function, version, request_id, ts, ts_end, lines, size)
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 6, value ->> 5
    FROM json_each(?) WHERE value ->> 5 > 2 ORDER BY key"""
"""The rows of one log document (squall/store/base.py, `encode_log_row`)."""


class SqliteStore(SqlEventQueue, SqlSchedules, SqlResources, SqlQueues, SqlObjects, SqlSecrets, SqlTables,
                  SqlReleases, SqlStore):
    """The store in the SQLite file `path` (its directory is created if missing)."""

    calls_are_local = True
    dialect = SQLITE
    migrations = MIGRATIONS

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._writer = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            first = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the SQLite store {self.path}: {exc}") from exc
        self._idle.append(first)

    # -- connections -------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection; sqlite3 errors become StoreError."""
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"the SQLite store {self.path} is closed")
            conn = self._idle.pop() if self._idle else None
        try:
            conn = conn or self._connect()
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc
        finally:
            if conn is not None:
                self._give_back(conn)

    def _give_back(self, conn: sqlite3.Connection) -> None:
        with self._pool_lock:
            keep = not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, else rolled back."""
        with self._writer, self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _run_many(self, conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            conn.executemany(sql, rows)

    # -- what one writer makes simple ----------------------------------------
    def _notice(self, conn: sqlite3.Connection, topic: str) -> None:
        """Nothing: one node per file, whose wake-ups stay in its process (squall/store/notices.py)."""

    def _serialize(self, conn: sqlite3.Connection, name: str) -> None:
        """Nothing: every write transaction holds the one writer lock, so writers take turns."""

    def _lock_items(self, conn: sqlite3.Connection, keys: Sequence[ItemKey]) -> None:
        """Nothing: the write transaction holds the one writer lock, every key with it."""

    def _claim_rows(self, conn: sqlite3.Connection, owner: str, limit: int, now: float,
                    lease_until: float) -> list[Any]:
        """A select, then an update, in the writer's transaction: no other claim runs
        meanwhile (and RETURNING cannot show the run_at the update replaced)."""
        due = dict(conn.execute("SELECT id, run_at FROM events WHERE status = 'queued' AND run_at <= ? "
                                "ORDER BY run_at LIMIT ?", (now, limit)).fetchall())
        if not due:
            return []
        marks = ", ".join("?" * len(due))
        rows = conn.execute(
            f"UPDATE events SET status = 'running', attempts = attempts + 1, run_at = ?, lease_owner = ? "
            f"WHERE id IN ({marks}) AND status = 'queued' RETURNING {EVENT_COLUMNS}",
            (lease_until, owner, *due)).fetchall()
        return [(*row, due[row[0]]) for row in rows]

    def try_lead(self, role: str) -> bool:
        """True: one node per file, which leads every role."""
        return True

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- functions and versions -------------------------------------------
    def commit_deploy(self, project: str, versions: Sequence[NewVersion],
                      removed: Sequence[str] = (),
                      resources: Mapping[str, Mapping[str, Any]] | None = None) -> list[FunctionVersion]:
        now = time.time()
        with self._write() as conn:
            for name in [v.function for v in versions] + list(removed):
                _check_owner(conn, name, project)
            for name in removed:
                conn.execute("DELETE FROM versions WHERE function = ?", (name,))
                conn.execute("DELETE FROM functions WHERE name = ?", (name,))
                self._forget_aliases(conn, name)
            if resources is not None:
                self._replace_resources(conn, project, resources)
            created = [_add_version(conn, project, new, now) for new in versions]
            for version in created:
                self._point_live(conn, version.function, version.number, now)
            return created

    # -- logs --------------------------------------------------------------
    def append_log_document(self, document: bytes) -> None:
        # One statement takes every row out of the one JSON parameter, so the GIL is released
        # once for all of SQLite's work: a writer thread that takes the GIL back once per row
        # stalls the event loop's I/O (each of its syscalls can then wait a switch interval).
        with self._write() as conn:
            conn.execute(_INSERT_LOG_BATCHES, (document.decode(),))


def _check_owner(conn: sqlite3.Connection, name: str, project: str) -> None:
    row = conn.execute("SELECT project FROM functions WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != project:
        raise Conflict(f'function "{name}" belongs to project "{row[0]}"')


def _add_version(conn: sqlite3.Connection, project: str, new: NewVersion, now: float) -> FunctionVersion:
    """Number and store `new` (the caller holds the write lock, so latest + 1 is free)."""
    row = conn.execute("SELECT latest FROM functions WHERE name = ?", (new.function,)).fetchone()
    number = 1 if row is None else int(row[0]) + 1
    if row is None:
        conn.execute(f"INSERT INTO functions ({FUNCTION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                     (new.function, project, number, now, now))
    else:
        conn.execute("UPDATE functions SET latest = ?, updated_at = ? WHERE name = ?",
                     (number, now, new.function))
    row = (new.function, number, project, new.code_hash, json.dumps(new.config), new.code_path, now,
           json.dumps(new.provenance))
    conn.execute(f"INSERT INTO versions ({VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
    return version_of(row)


