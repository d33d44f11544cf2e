"""What the SQL shared by the SQL backends builds on: the Dialect value that says how each
backend spells what the others spell differently, and SqlBackend, what the SQL of every
concern needs of the backend it is part of."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import orjson

from squall.store.tables import ItemKey



@dataclass(frozen=True, slots=True)
class Dialect:
    """How one SQL backend spells what the shared SQL leaves open. The shared SQL is written
    once, with `?` for each parameter; what differs between the backends is this data, never
    a copied method. (Both spell an upsert `ON CONFLICT (...) DO UPDATE SET c = excluded.c`
    and both have `RETURNING`, so neither is here.)"""

    name: str
    mark: str
    """The parameter placeholder of the backend's driver, written for each `?`."""
    skip_locked: str
    """Appended to the SELECT that picks the rows a claim takes: `FOR UPDATE SKIP LOCKED`
    where concurrent claimers must pass over each other's rows; nothing where one writer
    at a time holds the whole store."""
    byte_order: str
    """Appended to a text column or comparison to order it by its bytes (SQLite's default)."""
    blob: str
    """The column type of bytes."""
    real: str
    """The column type of a float (times are seconds since the epoch)."""
    bigint: str
    """The column type of a 64-bit integer."""
    sequence: str
    """The column definition of an increasing integer primary key."""
    byte_length: str
    """The SQL of the byte length of a text column, `{}` standing for the column."""

    def sql(self, text: str) -> str:
        """`text` with each `?` written as this backend's parameter mark."""
        return text if self.mark == "?" else text.replace("?", self.mark)


class SqlBackend(Protocol):
    """What the SQL of each concern (squall/store/sql_*.py) needs of the backend it is part of.

    Each concern's class inherits this and nothing else, and a backend is composed of all of
    them. What is declared here is where the backends differ in more than spelling, so each
    backend supplies it, and its correctness stays there (squall/store/sqlite.py: one writer,
    `BEGIN IMMEDIATE`; squall/store/postgres.py: `FOR UPDATE SKIP LOCKED`, advisory locks,
    `NOTIFY`). The shared SQL writes `?` for each parameter; `_sql` spells it for the backend.
    """

    dialect: Dialect

    def _sql(self, text: str) -> str:
        """`text`, written with `?` marks, in this backend's dialect."""
        return self.dialect.sql(text)

    def _write(self) -> AbstractContextManager[Any]:
        """One write transaction: the block gets a connection whose `execute` takes the
        dialect's marks; committed when the block ends, else rolled back. Raises StoreError
        when the store cannot be reached."""
        raise NotImplementedError

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows of one read (`sql` in the dialect's marks)."""
        raise NotImplementedError

    def _run_many(self, conn: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run `sql` (written with `?` marks) once per row of `rows` in the transaction on
        `conn`; nothing when `rows` is empty."""
        raise NotImplementedError

    def _notice(self, conn: Any, topic: str) -> None:
        """Send a notice of `topic` when, and only if, the transaction on `conn` commits
        (squall/store/notices.py)."""
        raise NotImplementedError

    def _serialize(self, conn: Any, name: str) -> None:
        """Make the writers of `name` take turns: hold a lock named `name` (private to this
        store's data) until the transaction on `conn` ends."""
        raise NotImplementedError

    def _lock_items(self, conn: Any, keys: Sequence[ItemKey]) -> None:
        """Hold every table item key of `keys` (sorted) until the transaction on `conn` ends,
        the key of an item that does not exist yet too, so that a read-modify-write of items
        is never interleaved with another's."""
        raise NotImplementedError

    def _claim_rows(self, conn: Any, owner: str, limit: int, now: float, lease_until: float) -> list[Any]:
        """In the transaction on `conn` (or as one statement): mark up to `limit` queued events
        due by `now` running under `owner`'s lease until `lease_until`, counting the attempt,
        never an event another claim holds. The claimed rows as `EVENT_COLUMNS` selects them,
        each followed by the time it was due."""
        raise NotImplementedError


def json_value(value: Any) -> Any:
    """A stored JSON value, decoded where the driver gives its text (SQLite; a PostgreSQL TEXT
    column) and as it is where the driver decoded it (PostgreSQL JSONB)."""
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value
