"""The event queue's busy path on PostgreSQL: storing a batch of events, claiming, and
recording a batch of results each take one statement that commits on its own, so one
round trip to the server, where a transaction would take a BEGIN, a statement per kind of
row, a notice and a COMMIT. Rows travel as arrays (`unnest`), and a notice, when one is
due, is sent by the same statement. Idempotency keys and the rarer writes keep the
transactions of squall/store/sql_events.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from squall.exceptions import StoreError
from squall.store.events import DeadReason, Event, EventResult, Outcome
from squall.store.notices import EVENTS
from squall.store.pg_notices import encode
from squall.store.sql import SqlBackend
from squall.store.sql_events import INSERTED_COLUMNS, claimed_events

Connection = psycopg.Connection[TupleRow]

_INSERT_ROWS = f"""
    WITH stored AS (
        INSERT INTO events ({INSERTED_COLUMNS})
        SELECT * FROM unnest(%b::text[], %b::text[], %b::bytea[], %b::text[], %b::text[], %b::integer[],
                             %b::integer[], %b::float8[], %b::float8[], %b::float8[], %b::text[], %b::text[]))
    SELECT pg_notify(%s, %s) WHERE %s"""
"""Insert the rows given column by column (`INSERTED_COLUMNS`); notify when the last is true.
The arrays go in binary (`%b`): dumping them as text costs several times more."""

_FINISH = """
    WITH done AS (
        DELETE FROM events WHERE id = ANY(%(succeeded)b::text[]) AND status = 'running' AND {mine}
        AND idempotency_key IS NULL),
    kept AS (
        UPDATE events SET status = 'succeeded', finished_at = %(now)s, payload = '', lease_owner = NULL
        WHERE id = ANY(%(succeeded)b::text[]) AND status = 'running' AND {mine} AND idempotency_key IS NOT NULL),
    retried AS (
        UPDATE events SET status = 'queued', run_at = r.run_at, last_error = r.error, lease_owner = NULL
        FROM unnest(%(retry_ids)b::text[], %(retry_at)b::float8[], %(retry_errors)b::text[]) AS r(id, run_at, error)
        WHERE events.id = r.id AND events.status = 'running' AND {mine}),
    released AS (
        UPDATE events SET status = 'queued', run_at = r.run_at, attempts = events.attempts - 1, lease_owner = NULL
        FROM unnest(%(release_ids)b::text[], %(release_at)b::float8[]) AS r(id, run_at)
        WHERE events.id = r.id AND events.status = 'running' AND {mine}),
    died AS (
        UPDATE events SET status = 'dead', last_error = r.error, dead_reason = r.reason, finished_at = %(now)s,
        lease_owner = NULL
        FROM unnest(%(dead_ids)b::text[], %(dead_errors)b::text[], %(dead_reasons)b::text[]) AS r(id, error, reason)
        WHERE events.id = r.id AND events.status = 'running' AND {mine})
    SELECT pg_notify(%(channel)s, %(notice)s) WHERE %(notify)s""".format(
    mine="(%(owner)s::text IS NULL OR events.lease_owner = %(owner)s::text)")
"""`finish_events` in one statement (its parts touch distinct rows: one result per event).
Succeeded events are deleted, or kept as succeeded while their idempotency key answers."""


class PostgresEventQueue(SqlBackend):
    """The one-statement writes of the event queue, over PostgresStore's pool: placed before
    SqlEventQueue among PostgresStore's bases, they replace its transactions."""

    _pool: ConnectionPool[Connection]
    _origin: str
    notice_channel: str

    @contextmanager
    def _statement(self) -> Iterator[Connection]:
        """A pooled connection in autocommit: each statement is its own transaction."""
        try:
            with self._pool.connection() as conn:
                conn.autocommit = True
                try:
                    yield conn
                finally:
                    with contextlib.suppress(psycopg.Error):  # a broken connection is dropped by the pool
                        conn.autocommit = False
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc

    def _insert_events(self, rows: list[tuple[Any, ...]], *, notify: bool) -> None:
        if not rows:
            return
        columns = [list(column) for column in zip(*rows)]
        with self._statement() as conn:
            conn.execute(_INSERT_ROWS, (*columns, self.notice_channel, encode(self._origin, EVENTS), notify))

    def claim_events(self, owner: str, *, limit: int, now: float, lease_until: float) -> list[Event]:
        with self._statement() as conn:
            return claimed_events(self._claim_rows(conn, owner, limit, now, lease_until))

    def finish_events(self, results: Sequence[EventResult], *, now: float, owner: str | None = None) -> None:
        if not results:
            return
        by_outcome: dict[Outcome, list[EventResult]] = {outcome: [] for outcome in Outcome}
        for result in results:
            by_outcome[result.outcome].append(result)
        retry, release, dead = by_outcome[Outcome.RETRY], by_outcome[Outcome.RELEASE], by_outcome[Outcome.DEAD]
        with self._statement() as conn:
            conn.execute(_FINISH, {
                "now": now, "owner": owner, "succeeded": [r.id for r in by_outcome[Outcome.SUCCEEDED]],
                "retry_ids": [r.id for r in retry], "retry_at": [r.run_at for r in retry],
                "retry_errors": [r.error for r in retry],
                "release_ids": [r.id for r in release], "release_at": [r.run_at for r in release],
                "dead_ids": [r.id for r in dead], "dead_errors": [r.error for r in dead],
                "dead_reasons": [(r.dead_reason or DeadReason.RETRIES_EXHAUSTED).value for r in dead],
                # released events: this node could not run them (throttled, not here yet); another may
                "channel": self.notice_channel, "notice": encode(self._origin, EVENTS), "notify": bool(release)})
