"""The event queue (squall/store/events.py) in SQL, shared by the SQLite and PostgreSQL
backends: each supplies its write transaction, the claim (`_claim_rows`; PostgreSQL's
passes over rows other claimers hold with `FOR UPDATE SKIP LOCKED`) and the lock that
makes writers of one idempotency key take turns (`_serialize`).

`run_at` is indexed with `status`: for a queued event it is when the event is due, for a
running one when its lease ends, so claiming, finding expired leases and the next wake-up
are all range scans of one index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from squall.store.events import (
    DeadReason,
    Event,
    EventResult,
    EventStatus,
    Lease,
    NewEvent,
    Outcome,
)
from squall.store.notices import EVENTS
from squall.store.sql import Dialect, SqlBackend

EVENT_TABLE = """CREATE TABLE events (
    id TEXT PRIMARY KEY, function TEXT NOT NULL, payload {blob} NOT NULL, source TEXT NOT NULL,
    status TEXT NOT NULL, attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL,
    created_at {real} NOT NULL, run_at {real} NOT NULL, expires_at {real} NOT NULL,
    last_error TEXT, dead_reason TEXT, finished_at {real}, lease_owner TEXT, idempotency_key TEXT)"""
EVENT_INDEXES = (
    "CREATE INDEX events_due ON events (status, run_at)",
    "CREATE INDEX events_function ON events (function, status, finished_at)",
    "CREATE INDEX events_source ON events (source, status)",
    ("CREATE UNIQUE INDEX events_idempotency ON events (function, idempotency_key) "
     "WHERE idempotency_key IS NOT NULL"),
)
EVENT_COLUMNS = ("id, function, payload, source, status, attempts, max_attempts, created_at, run_at, "
                 "expires_at, last_error, dead_reason, finished_at")


def event_schema(dialect: Dialect) -> tuple[str, ...]:
    """The migration step that creates the event queue, in a backend's column types."""
    return (EVENT_TABLE.format(blob=dialect.blob, real=dialect.real), *EVENT_INDEXES)


_RUNNING_UNDER = "status = 'running' AND (? IS NULL OR lease_owner = ?)"
"""An event still running (under the lease of the owner given, when one is)."""


def event_of(row: Sequence[Any]) -> Event:
    (event_id, function, payload, source, status, attempts, max_attempts, created_at, run_at,
     expires_at, last_error, dead_reason, finished_at) = row
    return Event(event_id, function, bytes(payload), source, EventStatus(status), attempts, max_attempts,
                 created_at, run_at, expires_at, last_error,
                 DeadReason(dead_reason) if dead_reason else None, finished_at)


def _leased(event: NewEvent, lease: Lease | None) -> bool:
    """Whether `event` is to be stored claimed, under `lease`."""
    return lease is not None and event.id in lease.ids


def claimed_events(rows: Sequence[Sequence[Any]]) -> list[Event]:
    """The events of claimed rows (each followed by when it was due), oldest due first,
    each with `run_at` the time it was due."""
    claimed = (replace(event_of(row[:-1]), run_at=row[-1]) for row in rows)
    return sorted(claimed, key=lambda e: (e.run_at, e.created_at, e.id))


def of_function(function: str, byte_order: str) -> tuple[str, list[Any]]:
    """The condition (and its parameters) matching the events of one function: those of its
    `live` alias (stored under its name) and those of its other aliases and versions
    (`NAME:QUALIFIER`, the range from `NAME:` to `NAME;` in byte order, so an index serves it)."""
    return (f"(function = ? OR (function{byte_order} >= ? AND function{byte_order} < ?))",
            [function, function + ":", function + ";"])


class SqlEventQueue(SqlBackend):
    """The EventQueue methods (squall/store/events.py) over a SQL backend."""

    # -- writing ---------------------------------------------------------------
    def enqueue_events(self, events: Sequence[NewEvent], *, now: float, idempotency_window: float,
                       lease: Lease | None = None) -> list[str]:
        rows = [event_row(event, now, lease) for event in events]
        if all(event.idempotency_key is None for event in events):
            self._insert_events(rows, notify=not all(_leased(event, lease) for event in events))
            return [event.id for event in events]
        ids = [event.id for event in events]
        with self._write() as conn:
            plain, queued = [], False
            for index, (event, row) in enumerate(zip(events, rows)):
                if event.idempotency_key is None:
                    plain.append(row)
                elif (earlier := self._earlier_event(conn, event, now - idempotency_window)) is not None:
                    ids[index] = earlier
                    continue
                else:
                    conn.execute(self._sql(INSERT_EVENT), row)
                queued = queued or not _leased(event, lease)
            self._run_many(conn, INSERT_EVENT, plain)
            if queued:
                self._notice(conn, EVENTS)
        return ids

    def _insert_events(self, rows: list[tuple[Any, ...]], *, notify: bool) -> None:
        """Insert `rows` (as `event_row` makes them) in one transaction; with a notice of EVENTS
        when `notify` (some are queued, for any node to claim)."""
        with self._write() as conn:
            self._run_many(conn, INSERT_EVENT, rows)
            if notify:
                self._notice(conn, EVENTS)

    def _earlier_event(self, conn: Any, event: NewEvent, since: float) -> str | None:
        """The id of the event that holds `event`'s idempotency key since `since`; a key held
        longer ago is taken from its event (its window is over)."""
        self._serialize(conn, f"event-key:{event.function}:{event.idempotency_key}")
        row = conn.execute(self._sql("SELECT id, created_at FROM events WHERE function = ? "
                                     "AND idempotency_key = ?"), (event.function, event.idempotency_key)).fetchone()
        if row is None:
            return None
        if row[1] >= since:
            return str(row[0])
        conn.execute(self._sql("UPDATE events SET idempotency_key = NULL WHERE id = ?"), (row[0],))
        return None

    def claim_events(self, owner: str, *, limit: int, now: float, lease_until: float) -> list[Event]:
        with self._write() as conn:
            return claimed_events(self._claim_rows(conn, owner, limit, now, lease_until))

    def finish_events(self, results: Sequence[EventResult], *, now: float, owner: str | None = None) -> None:
        mine = (owner, owner)  # each row's own `(? IS NULL OR lease_owner = ?)`
        done = [(r.id, *mine) for r in results if r.outcome is Outcome.SUCCEEDED]
        kept = [(now, b"", r.id, *mine) for r in results if r.outcome is Outcome.SUCCEEDED]
        retry = [(r.run_at, r.error, r.id, *mine) for r in results if r.outcome is Outcome.RETRY]
        release = [(r.run_at, r.id, *mine) for r in results if r.outcome is Outcome.RELEASE]
        dead = [(r.error, (r.dead_reason or DeadReason.RETRIES_EXHAUSTED).value, now, r.id, *mine)
                for r in results if r.outcome is Outcome.DEAD]
        with self._write() as conn:
            self._run_many(conn, f"DELETE FROM events WHERE id = ? AND {_RUNNING_UNDER} "
                                 "AND idempotency_key IS NULL", done)
            self._run_many(conn, "UPDATE events SET status = 'succeeded', finished_at = ?, payload = ?, "
                                 f"lease_owner = NULL WHERE id = ? AND {_RUNNING_UNDER}", kept)
            self._run_many(conn, "UPDATE events SET status = 'queued', run_at = ?, last_error = ?, "
                                 f"lease_owner = NULL WHERE id = ? AND {_RUNNING_UNDER}", retry)
            self._run_many(conn, "UPDATE events SET status = 'queued', run_at = ?, attempts = attempts - 1, "
                                 f"lease_owner = NULL WHERE id = ? AND {_RUNNING_UNDER}", release)
            self._run_many(conn, "UPDATE events SET status = 'dead', last_error = ?, dead_reason = ?, "
                                 f"finished_at = ?, lease_owner = NULL WHERE id = ? AND {_RUNNING_UNDER}", dead)
            if release:  # this node could not run them (throttled, not deployed here yet): another may
                self._notice(conn, EVENTS)

    def renew_leases(self, ids: Sequence[str], *, owner: str, until: float) -> int:
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        with self._write() as conn:
            return int(conn.execute(self._sql(f"UPDATE events SET run_at = ? WHERE id IN ({marks}) "
                                              "AND status = 'running' AND lease_owner = ?"),
                                    (until, *ids, owner)).rowcount)

    def requeue_expired(self, *, now: float, owner: str | None = None) -> int:
        sql = ("UPDATE events SET status = 'queued', lease_owner = NULL, "
               "run_at = CASE WHEN run_at > ? THEN ? ELSE run_at END "
               "WHERE status = 'running' AND (run_at < ? OR lease_owner = ?)")
        with self._write() as conn:
            return int(conn.execute(self._sql(sql), (now, now, now, owner or "")).rowcount)

    def redrive_events(self, function: str, ids: Sequence[str] | None, *, now: float,
                       expires_at: float) -> int:
        where, params = self._dead_of(function, ids)
        sql = ("UPDATE events SET status = 'queued', attempts = 0, run_at = ?, created_at = ?, "
               f"expires_at = ?, dead_reason = NULL, finished_at = NULL WHERE {where}")
        with self._write() as conn:
            moved = int(conn.execute(self._sql(sql), (now, now, expires_at, *params)).rowcount)
            if moved:
                self._notice(conn, EVENTS)
            return moved

    def purge_events(self, function: str, ids: Sequence[str] | None) -> int:
        where, params = self._dead_of(function, ids)
        with self._write() as conn:
            return int(conn.execute(self._sql(f"DELETE FROM events WHERE {where}"), params).rowcount)

    def runs_before(self, event: Event) -> bool:
        rows = self._query(self._sql("SELECT 1 FROM events WHERE source = ? AND status IN ('queued', 'running') "
                                     "AND id <> ? "
                                     "AND (created_at < ? OR (created_at = ? AND id < ?)) LIMIT 1"),
                           (event.source, event.id, event.created_at, event.created_at, event.id))
        return bool(rows)

    def forget_succeeded(self, *, before: float) -> int:
        with self._write() as conn:
            return int(conn.execute(self._sql("DELETE FROM events WHERE status = 'succeeded' AND finished_at < ?"),
                                    (before,)).rowcount)

    def cancel_queued_events(self, source: str) -> int:
        with self._write() as conn:
            return int(conn.execute(self._sql("DELETE FROM events WHERE source = ? AND status = 'queued'"),
                                    (source,)).rowcount)

    def _dead_of(self, function: str, ids: Sequence[str] | None) -> tuple[str, list[Any]]:
        where, params = of_function(function, self.dialect.byte_order)
        where += " AND status = 'dead'"
        if ids is not None:
            where += f" AND id IN ({', '.join('?' for _ in ids) or 'NULL'})"
            params += list(ids)
        return where, params

    # -- reading ---------------------------------------------------------------
    def next_due(self) -> float | None:
        rows = self._query(self._sql(
            "SELECT min(due) FROM (SELECT min(run_at) AS due FROM events WHERE status = 'queued' "
            "UNION ALL SELECT min(run_at) AS due FROM events WHERE status = 'running') AS both_kinds"))
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def get_event(self, event_id: str) -> Event | None:
        rows = self._query(self._sql(f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?"), (event_id,))
        return event_of(rows[0]) if rows else None

    def list_events(self, function: str, status: EventStatus, *, limit: int = 100) -> list[Event]:
        where, params = of_function(function, self.dialect.byte_order)
        rows = self._query(self._sql(f"SELECT {EVENT_COLUMNS} FROM events WHERE {where} AND status = ? "
                                     "ORDER BY finished_at, created_at, id LIMIT ?"),
                           (*params, status.value, limit))
        return [event_of(row) for row in rows]

    def count_events(self, function: str | None = None) -> dict[EventStatus, int]:
        where, params = "", list[Any]()
        if function is not None:
            condition, params = of_function(function, self.dialect.byte_order)
            where = f"WHERE {condition}"
        rows = self._query(self._sql(f"SELECT status, count(*) FROM events {where} GROUP BY status"), params)
        counts = {status: 0 for status in EventStatus}
        counts.update({EventStatus(status): int(n) for status, n in rows})
        return counts

    def pending_sources(self, sources: Sequence[str]) -> set[str]:
        if not sources:
            return set()
        marks = ", ".join("?" for _ in sources)
        rows = self._query(self._sql(f"SELECT DISTINCT source FROM events WHERE source IN ({marks}) "
                                     "AND status IN ('queued', 'running')"), list(sources))
        return {str(row[0]) for row in rows}


INSERTED_COLUMNS = ("id, function, payload, source, status, attempts, max_attempts, created_at, run_at, "
                    "expires_at, idempotency_key, lease_owner")
"""The columns of a new event's row, in the order of `event_row`."""
INSERT_EVENT = f"INSERT INTO events ({INSERTED_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def event_row(event: NewEvent, now: float, lease: Lease | None = None) -> tuple[Any, ...]:
    """The values `INSERT_EVENT` stores for `event`: queued, or running under `lease`."""
    if lease is not None and event.id in lease.ids:
        return (event.id, event.function, event.payload, event.source, EventStatus.RUNNING.value, 1,
                event.max_attempts, now, lease.until, event.expires_at, event.idempotency_key, lease.owner)
    return (event.id, event.function, event.payload, event.source, EventStatus.QUEUED.value, 0,
            event.max_attempts, now, event.run_at, event.expires_at, event.idempotency_key, None)
