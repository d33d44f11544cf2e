"""The PostgreSQL store: the state shared by a cluster of squall nodes.

The SQL it shares with SQLite is SqlStore's (squall/store/sql_store.py) and that of one
class per concern (squall/store/sql_*.py), spelled by the POSTGRES dialect. This module
owns the PostgreSQL schema and its migrations, and what keeps several nodes correct
against one database:

* `migrate()` holds a transaction-level advisory lock, so nodes starting at
  once apply each migration step exactly once;
* a version number comes from an upsert of the function row, which locks that
  row until commit: concurrent deploys of one function get consecutive,
  distinct numbers. A deploy touches its functions in name order, so two
  deploys cannot deadlock each other. Ownership is checked on the locked row;
* `append_logs` holds an advisory lock while it inserts, so log batch ids
  become visible in increasing order and a reader tailing with `after_id`
  never skips a batch that committed late. NUL characters, which
  PostgreSQL text cannot hold, are replaced by U+FFFD.
* a claim locks the due events `FOR UPDATE SKIP LOCKED`, passing over those
  another node is claiming; the writers of one idempotency key, and of one
  table item's key, take turns on a transaction advisory lock.

Writes that other nodes wait for send NOTIFY in their transactions, and
`listen()` hears the other nodes' on a connection of its own
(squall/store/pg_notices.py), on a channel private to the schema.

Connections come from a `psycopg_pool.ConnectionPool` and are checked before
use (unless handed out within the last second), so a restarted server is
reconnected to. With `schema=...` every connection uses that schema (created
if missing) as its search_path. The pool's threads do not survive `fork()`:
open the store in the process that uses it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import weakref
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import orjson
import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow
from psycopg.sql import SQL, Identifier
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from squall.exceptions import Conflict, StoreError
from squall.store.base import FunctionVersion, NewVersion
from squall.store.notices import DEPLOY, Listener, NoticeCallback
from squall.store.pg_events import PostgresEventQueue
from squall.store.pg_notices import KEEPALIVES, PostgresListener, encode
from squall.store.sql import Dialect
from squall.store.sql_events import EVENT_COLUMNS, SqlEventQueue, event_schema
from squall.store.sql_objects import SqlObjects, object_schema
from squall.store.sql_queues import SqlQueues, queue_schema
from squall.store.sql_releases import SqlReleases, release_schema
from squall.store.sql_resources import SqlResources, resource_schema
from squall.store.sql_schedules import SqlSchedules, schedule_schema
from squall.store.sql_secrets import SqlSecrets, secret_schema
from squall.store.sql_store import VERSION_COLUMNS, SqlStore, log_size_schema, version_of
from squall.store.sql_tables import SqlTables, table_schema
from squall.store.tables import ItemKey

Connection = psycopg.Connection[TupleRow]

CONNECT_TIMEOUT = 10
FRESH_CONNECTION = 1.0
"""Seconds after a pooled connection was handed out during which it is handed out again
unchecked (a check is a round trip; a busy node would pay one per statement)."""
POSTGRES = Dialect(
    name="postgresql", mark="%s", skip_locked=" FOR UPDATE SKIP LOCKED", byte_order=' COLLATE "C"',
    blob="BYTEA", real="DOUBLE PRECISION", bigint="BIGINT",
    sequence="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", byte_length="octet_length({})")
"""PostgreSQL's spelling: claims skip the rows other nodes' claims hold; text compared by
its bytes asks for the "C" collation (the database's may order otherwise)."""

POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the initial schema
        """CREATE TABLE functions (
            name TEXT PRIMARY KEY, project TEXT NOT NULL, latest INTEGER NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX functions_project ON functions (project, name)",
        """CREATE TABLE versions (
            function TEXT NOT NULL, number INTEGER NOT NULL, project TEXT NOT NULL,
            code_hash TEXT NOT NULL, config JSONB NOT NULL, code_path TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (function, number))""",
        """CREATE TABLE logs (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, function TEXT NOT NULL,
            version INTEGER NOT NULL, request_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
            level TEXT NOT NULL, message TEXT NOT NULL)""",
        "CREATE INDEX logs_function_id ON logs (function, id)",
        "CREATE INDEX logs_function_request ON logs (function, request_id, id)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (  # 2: one row per invocation's log lines instead of one per line
        """CREATE TABLE log_batches (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, function TEXT NOT NULL,
            version INTEGER NOT NULL, request_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
            ts_end DOUBLE PRECISION NOT NULL, lines TEXT NOT NULL)""",
        "CREATE INDEX log_batches_function_id ON log_batches (function, id)",
        "CREATE INDEX log_batches_function_request ON log_batches (function, request_id, id)",
        """INSERT INTO log_batches (function, version, request_id, ts, ts_end, lines)
            SELECT function, version, request_id, ts, ts,
                   json_build_array(json_build_object('ts', ts, 'level', level, 'message', message))::text
            FROM logs ORDER BY id""",
        "DROP TABLE logs",
    ),
    event_schema(POSTGRES),  # 3: the event queue
    schedule_schema(POSTGRES),  # 4: schedules
    resource_schema(),  # 5: topics, queues and buckets of projects
    queue_schema(POSTGRES),  # 6: queue messages
    object_schema(POSTGRES),  # 7: bucket objects
    secret_schema(POSTGRES),  # 8: secrets
    table_schema(POSTGRES),  # 9: table items
    release_schema(POSTGRES),  # 10: aliases, provenance
    log_size_schema(POSTGRES),  # 11: log batch sizes, for retention
)
"""Migration steps in order; step i (1-based) brings the schema to version i.
Append new steps, never edit applied ones."""

_INSERT_LOG_BATCHES = """
    INSERT INTO log_batches (function, version, request_id, ts, ts_end, lines, size)
    SELECT r ->> 0, (r ->> 1)::integer, r ->> 2, (r ->> 3)::double precision, (r ->> 4)::double precision,
           r ->> 6, (r ->> 5)::integer
    FROM json_array_elements(%s::json) WITH ORDINALITY AS t(r, n) WHERE (r ->> 5)::integer > 2 ORDER BY n"""
"""The rows of one log document (squall/store/base.py, `encode_log_row`). A row's lines are
JSON text inside a string, so an escaped NUL in a line reaches the TEXT column as the six
characters of its escape, and comes back as a NUL when the lines are read (as on SQLite).
The document is json, not jsonb: jsonb refuses a \\u0000 escape anywhere."""

_UPSERT_FUNCTION = """
    INSERT INTO functions (name, project, latest, created_at, updated_at) VALUES (%s, %s, 1, %s, %s)
    ON CONFLICT (name) DO UPDATE SET latest = functions.latest + 1, updated_at = excluded.updated_at
    WHERE functions.project = excluded.project
    RETURNING latest"""


class PostgresStore(PostgresEventQueue, SqlEventQueue, SqlSchedules, SqlResources, SqlQueues, SqlObjects, SqlSecrets,
                    SqlTables, SqlReleases, SqlStore):
    """The store in the PostgreSQL database at `url` (in `schema` when given)."""

    dialect = POSTGRES
    migrations = MIGRATIONS
    notices_reach_other_nodes = True

    def __init__(self, url: str, *, schema: str | None = None) -> None:
        self.schema = schema
        self.url = url
        self._leader_connections: dict[str, Connection] = {}
        self._listeners: list[Listener] = []
        self._origin = secrets.token_hex(8)
        """Names this store object in the notices it sends, so that its own listeners skip them."""
        digest = hashlib.blake2b(self._lock_key("notices").encode(), digest_size=12).hexdigest()
        self.notice_channel = f"squall_{digest}"
        """The NOTIFY channel private to this store's schema (a digest: a channel name is an
        identifier of at most 63 bytes, and a schema name may be that long already)."""
        _prepare_database(url, schema)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url, min_size=POOL_MIN_SIZE, max_size=POOL_MAX_SIZE, open=True, name="squall-store",
            configure=self._configure if schema is not None else None,
            check=_check_unless_fresh, kwargs={"connect_timeout": CONNECT_TIMEOUT})
        try:
            self._pool.wait(timeout=CONNECT_TIMEOUT)
        except PoolTimeout as exc:  # the pool closed itself
            raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc

    def _configure(self, conn: Connection) -> None:
        conn.execute(SQL("SET search_path TO {}").format(Identifier(str(self.schema))))
        conn.commit()

    def _lock_key(self, purpose: str) -> str:
        """The name of an advisory lock private to this store's schema."""
        return f"squall.{purpose}:{self.schema or ''}"


    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, else rolled back."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc

    _write = _transaction

    def _run_many(self, conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            with conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)

    def _notice(self, conn: Connection, topic: str) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (self.notice_channel, encode(self._origin, topic)))

    def _serialize(self, conn: Connection, name: str) -> None:
        """A transaction advisory lock on `name` in this store's schema."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._lock_key(name),))

    def _claim_rows(self, conn: Connection, owner: str, limit: int, now: float, lease_until: float) -> list[Any]:
        """One statement: the due events are locked (skipping those another node holds) and
        updated, and each row comes back with the time it was due."""
        returned = ", ".join(f"events.{column.strip()}" for column in EVENT_COLUMNS.split(","))
        return conn.execute(
            f"UPDATE events SET status = 'running', attempts = events.attempts + 1, run_at = %s, lease_owner = %s "
            f"FROM (SELECT id AS claimed_id, run_at AS due FROM events WHERE status = 'queued' AND run_at <= %s "
            f"ORDER BY run_at LIMIT %s FOR UPDATE SKIP LOCKED) AS claimed WHERE events.id = claimed.claimed_id "
            f"RETURNING {returned}, claimed.due", (lease_until, owner, now, limit)).fetchall()

    def _lock_items(self, conn: Connection, keys: Sequence[ItemKey]) -> None:
        """Transaction advisory locks on the keys (in sorted order, so two writers never deadlock):
        a row lock cannot hold a key whose item does not exist yet."""
        for table, pk, sk in keys:
            digest = hashlib.blake2b(b"%s\0%s\0%s\0%s" % (self._lock_key("item").encode(), table.encode(), pk, sk),
                                     digest_size=8).digest()
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (int.from_bytes(digest, "big", signed=True),))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[TupleRow]:
        with self._transaction() as conn:
            return conn.execute(sql, params).fetchall()

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
        for conn in self._leader_connections.values():
            conn.close()
        self._leader_connections.clear()
        self._pool.close()

    # -- notices -------------------------------------------------------------
    def notify(self, topic: str) -> None:
        with self._transaction() as conn:
            self._notice(conn, topic)

    def listen(self, callback: NoticeCallback) -> Listener:
        listener = PostgresListener(self._listening_connection, self.notice_channel, self._origin, callback)
        self._listeners.append(listener)
        return listener

    def _listening_connection(self) -> Connection:
        return psycopg.connect(make_conninfo(self.url, **KEEPALIVES), autocommit=True,
                               connect_timeout=CONNECT_TIMEOUT)

    def try_lead(self, role: str) -> bool:
        """A session advisory lock on a connection of its own, held until `close()` (or until
        this process dies, when the server releases it and another node can lead)."""
        if role in self._leader_connections:
            return True
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self._lock_key(f"lead:{role}"),)).fetchone()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc
        if row and row[0]:
            self._leader_connections[role] = conn
            return True
        conn.close()
        return False

    # -- functions and versions -------------------------------------------
    def commit_deploy(self, project: str, versions: Sequence[NewVersion],
                      removed: Sequence[str] = (),
                      resources: Mapping[str, Mapping[str, Any]] | None = None) -> list[FunctionVersion]:
        now = time.time()
        # Name order (a removal before the new versions of the same name) locks rows
        # in the same order in every deploy, so concurrent deploys cannot deadlock.
        work = sorted([(name, -1) for name in set(removed)]
                      + [(new.function, i) for i, new in enumerate(versions)])
        created: dict[int, FunctionVersion] = {}
        with self._transaction() as conn:
            for name, index in work:
                if index < 0:
                    _remove_function(conn, project, name)
                    self._forget_aliases(conn, name)
                else:
                    created[index] = version = _add_version(conn, project, versions[index], now)
                    self._point_live(conn, version.function, version.number, now)
            if resources is not None:
                self._serialize(conn, "resources")
                self._replace_resources(conn, project, resources)
            self._notice(conn, DEPLOY)
        return [created[i] for i in range(len(versions))]

    # -- logs --------------------------------------------------------------
    def append_log_document(self, document: bytes) -> None:
        with self._transaction() as conn:
            self._serialize(conn, "logs")
            conn.execute(_INSERT_LOG_BATCHES, (_without_nul_escapes(document).decode(),))


_handed_out: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()


def _check_unless_fresh(conn: Connection) -> None:
    """The pool's check of a connection it hands out: skipped when the connection was handed
    out within FRESH_CONNECTION seconds (if the server went away since, that one call fails
    with a StoreError and the broken connection leaves the pool)."""
    now = time.monotonic()
    if now - _handed_out.get(conn, -FRESH_CONNECTION) >= FRESH_CONNECTION:
        ConnectionPool.check_connection(conn)
    _handed_out[conn] = now


def _prepare_database(url: str, schema: str | None) -> None:
    """Connect once (failing fast with the server's own message); create `schema`."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as conn:
            if schema is None or conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                              (schema,)).fetchone():
                return
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('squall.create-schema'))")
            conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(schema)))
    except psycopg.Error as exc:
        raise StoreError(f"cannot open the PostgreSQL store: {exc}") from exc


def _remove_function(conn: Connection, project: str, name: str) -> None:
    row = conn.execute("DELETE FROM functions WHERE name = %s RETURNING project", (name,)).fetchone()
    if row is not None and row[0] != project:
        raise Conflict(f'function "{name}" belongs to project "{row[0]}"')  # rolls the delete back
    conn.execute("DELETE FROM versions WHERE function = %s", (name,))


def _add_version(conn: Connection, project: str, new: NewVersion, now: float) -> FunctionVersion:
    """Number and store `new`; the upsert keeps the function row locked until commit."""
    row = conn.execute(_UPSERT_FUNCTION, (new.function, project, now, now)).fetchone()
    if row is None:  # the row exists and another project owns it
        owner = conn.execute("SELECT project FROM functions WHERE name = %s", (new.function,)).fetchone()
        raise Conflict(f'function "{new.function}" belongs to project "{owner[0] if owner else "?"}"')
    stored = conn.execute(
        f"INSERT INTO versions ({VERSION_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        f"RETURNING {VERSION_COLUMNS}",
        (new.function, row[0], project, new.code_hash, Jsonb(new.config), new.code_path, now,
         orjson.dumps(new.provenance).decode())).fetchone()
    assert stored is not None
    return version_of(stored)


_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")
"""A JSON `\u0000` escape: one preceded by an even number of backslashes."""


def _without_nul_escapes(document: bytes) -> bytes:
    """`document` with each escaped NUL, which PostgreSQL's JSON functions refuse, as U+FFFD. A
    log line's NUL is escaped twice in its row (its lines are a string), so it is kept; this
    guards the row's other strings."""
    return _NUL_ESCAPE.sub(rb"\1\\ufffd", document) if b"\\u0000" in document else document
