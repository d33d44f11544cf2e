"""Bucket objects (squall/store/objects.py) in SQL, shared by both backends."""

from __future__ import annotations

from typing import Any, Sequence

from squall.store.events import NewEvent
from squall.store.notices import EVENTS
from squall.store.objects import ObjectInfo
from squall.store.sql import Dialect, SqlBackend
from squall.store.sql_events import INSERT_EVENT, event_row

OBJECT_COLUMNS = "bucket, key, size, etag, content_type, modified_at, path"


def object_schema(dialect: Dialect) -> tuple[str, ...]:
    """Keys are ordered by their bytes, as S3 lists them."""
    return (f"""CREATE TABLE objects (
        bucket TEXT NOT NULL, key TEXT{dialect.byte_order} NOT NULL, size BIGINT NOT NULL, etag TEXT NOT NULL,
        content_type TEXT NOT NULL, modified_at {dialect.real} NOT NULL, path TEXT NOT NULL,
        PRIMARY KEY (bucket, key))""",)


def object_of(row: Sequence[Any]) -> ObjectInfo:
    bucket, key, size, etag, content_type, modified_at, path = row
    return ObjectInfo(bucket, key, int(size), etag, content_type, modified_at, path)


class SqlObjects(SqlBackend):
    """The ObjectStore methods (squall/store/objects.py) over a SQL backend: an object's row is
    written in one transaction with the notification events it triggers."""

    def _store_events(self, conn: Any, events: Sequence[NewEvent], now: float) -> None:
        self._run_many(conn, INSERT_EVENT, [event_row(event, now) for event in events])
        if events:
            self._notice(conn, EVENTS)

    def put_object(self, info: ObjectInfo, events: Sequence[NewEvent], *, now: float) -> str | None:
        with self._write() as conn:
            old = conn.execute(self._sql("SELECT path FROM objects WHERE bucket = ? AND key = ?"),
                               (info.bucket, info.key)).fetchone()
            conn.execute(self._sql(
                f"INSERT INTO objects ({OBJECT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (bucket, key) "
                "DO UPDATE SET size = excluded.size, etag = excluded.etag, content_type = excluded.content_type, "
                "modified_at = excluded.modified_at, path = excluded.path"),
                (info.bucket, info.key, info.size, info.etag, info.content_type, info.modified_at, info.path))
            self._store_events(conn, events, now)
        return str(old[0]) if old and old[0] != info.path else None

    def delete_object(self, bucket: str, key: str, events: Sequence[NewEvent], *, now: float) -> ObjectInfo | None:
        with self._write() as conn:
            row = conn.execute(self._sql(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?"),
                               (bucket, key)).fetchone()
            if row is None:
                return None
            conn.execute(self._sql("DELETE FROM objects WHERE bucket = ? AND key = ?"), (bucket, key))
            self._store_events(conn, events, now)
        return object_of(row)

    def get_object(self, bucket: str, key: str) -> ObjectInfo | None:
        rows = self._query(self._sql(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ? AND key = ?"),
                           (bucket, key))
        return object_of(rows[0]) if rows else None

    def list_objects(self, bucket: str, *, prefix: str = "", start_after: str = "",
                     limit: int = 1000) -> list[ObjectInfo]:
        where, params = "bucket = ? AND key > ?", [bucket, start_after]  # type: tuple[str, list[Any]]
        if prefix:
            where += " AND key >= ? AND substr(key, 1, ?) = ?"
            params += [prefix, len(prefix), prefix]
        rows = self._query(self._sql(f"SELECT {OBJECT_COLUMNS} FROM objects WHERE {where} ORDER BY key LIMIT ?"),
                           (*params, limit))
        return [object_of(row) for row in rows]

    def bucket_usage(self, bucket: str) -> tuple[int, int]:
        rows = self._query(self._sql("SELECT count(*), coalesce(sum(size), 0) FROM objects WHERE bucket = ?"),
                           (bucket,))
        return int(rows[0][0]), int(rows[0][1])
