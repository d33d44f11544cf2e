"""Table items (squall/store/tables.py) in SQL, shared by both backends."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from squall.store.sql import Dialect, SqlBackend
from squall.store.tables import Change, ItemKey, KeyRange, StoredItem

SHARDS = 1 << 32
_COLUMNS = "table_name, pk, sk, item, expires_at"
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


def table_schema(dialect: Dialect) -> tuple[str, ...]:
    """`shard` is crc32 of the partition key bytes: Scan's segments are ranges of it."""
    blob, real = dialect.blob, dialect.real
    return (f"""CREATE TABLE table_items (
        table_name TEXT NOT NULL, pk {blob} NOT NULL, sk {blob} NOT NULL, shard BIGINT NOT NULL,
        item {blob} NOT NULL, expires_at {real}, PRIMARY KEY (table_name, pk, sk))""",
            "CREATE INDEX table_items_shard ON table_items (table_name, shard, pk, sk)",
            "CREATE INDEX table_items_expiry ON table_items (expires_at) WHERE expires_at IS NOT NULL")


def shard_of(partition: bytes) -> int:
    return zlib.crc32(partition)


def _item_of(row: Sequence[Any]) -> StoredItem:
    table, pk, sk, item, expires_at = row
    return StoredItem((table, bytes(pk), bytes(sk)), bytes(item), expires_at)


class SqlTables(SqlBackend):
    """The TableStore methods (squall/store/tables.py) over a SQL backend: a change of items
    holds their keys (`_lock_items`) while it reads and writes them."""

    def get_items(self, keys: Sequence[ItemKey], *, now: float) -> dict[ItemKey, StoredItem]:
        sql = self._sql(f"SELECT {_COLUMNS} FROM table_items WHERE table_name = ? AND pk = ? AND sk = ? AND {_LIVE}")
        found = {}
        for key in keys:
            for row in self._query(sql, (*key, now)):
                found[key] = _item_of(row)
        return found

    def change_items(self, keys: Sequence[ItemKey], change: Change, *, now: float) -> None:
        unique = sorted(set(keys))
        select = self._sql(f"SELECT {_COLUMNS} FROM table_items WHERE table_name = ? AND pk = ? AND sk = ? "
                           f"AND {_LIVE}")
        with self._write() as conn:
            self._lock_items(conn, unique)
            current: dict[ItemKey, StoredItem | None] = dict.fromkeys(unique)
            for key in unique:
                row = conn.execute(select, (*key, now)).fetchone()
                current[key] = _item_of(row) if row else None
            self._write_items(conn, change(current))

    def write_items(self, items: Mapping[ItemKey, StoredItem | None]) -> None:
        with self._write() as conn:
            self._write_items(conn, items)

    def _write_items(self, conn: Any, items: Mapping[ItemKey, StoredItem | None]) -> None:
        upserts = [(*key, shard_of(key[1]), item.item, item.expires_at)
                   for key, item in items.items() if item is not None]
        deletes = [key for key, item in items.items() if item is None]
        self._run_many(conn, "INSERT INTO table_items (table_name, pk, sk, shard, item, expires_at) "
                             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (table_name, pk, sk) DO UPDATE SET "
                             "item = excluded.item, expires_at = excluded.expires_at", upserts)
        self._run_many(conn, "DELETE FROM table_items WHERE table_name = ? AND pk = ? AND sk = ?", deletes)

    def query_items(self, table: str, partition: bytes, sort: KeyRange, *, limit: int,
                    now: float) -> list[StoredItem]:
        where, params = ["table_name = ?", "pk = ?", _LIVE], [table, partition, now]
        bounds = ((sort.low, ">=" if sort.low_inclusive else ">"), (sort.high, "<=" if sort.high_inclusive else "<"),
                  (sort.start, ">" if sort.forward else "<"))
        for value, op in bounds:
            if value is not None:
                where.append(f"sk {op} ?")
                params.append(value)
        order = "ASC" if sort.forward else "DESC"
        sql = (f"SELECT {_COLUMNS} FROM table_items WHERE {' AND '.join(where)} ORDER BY sk {order} LIMIT ?")
        return [_item_of(row) for row in self._query(self._sql(sql), (*params, limit))]

    def scan_items(self, table: str, *, after: tuple[bytes, bytes] | None, limit: int, segment: int = 0,
                   segments: int = 1, now: float) -> list[StoredItem]:
        low, high = segment * SHARDS // segments, (segment + 1) * SHARDS // segments
        where, params = ["table_name = ?", "shard >= ?", "shard < ?", _LIVE], [table, low, high, now]
        if after is not None:
            where.append("(shard, pk, sk) > (?, ?, ?)")
            params.extend((shard_of(after[0]), *after))
        sql = (f"SELECT {_COLUMNS} FROM table_items WHERE {' AND '.join(where)} "
               "ORDER BY shard, pk, sk LIMIT ?")
        return [_item_of(row) for row in self._query(self._sql(sql), (*params, limit))]

    def count_items(self, table: str, *, now: float) -> int:
        rows = self._query(self._sql(f"SELECT count(*) FROM table_items WHERE table_name = ? AND {_LIVE}"),
                           (table, now))
        return int(rows[0][0])

    def delete_table_items(self, table: str) -> int:
        with self._write() as conn:
            cursor = conn.execute(self._sql("DELETE FROM table_items WHERE table_name = ?"), (table,))
            return int(cursor.rowcount)

    def expire_items(self, *, now: float, limit: int) -> int:
        with self._write() as conn:
            cursor = conn.execute(self._sql(
                "DELETE FROM table_items WHERE (table_name, pk, sk) IN (SELECT table_name, pk, sk FROM table_items "
                "WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)"), (now, limit))
            return int(cursor.rowcount)

    def reset_expiry(self, table: str, expiry: Callable[[bytes], float | None], *, batch: int = 500) -> None:
        after: tuple[bytes, bytes] = (b"", b"")
        select = self._sql("SELECT pk, sk, item FROM table_items WHERE table_name = ? AND (pk, sk) > (?, ?) "
                           "ORDER BY pk, sk LIMIT ?")
        update = "UPDATE table_items SET expires_at = ? WHERE table_name = ? AND pk = ? AND sk = ?"
        while True:
            rows = self._query(select, (table, *after, batch))
            if not rows:
                return
            with self._write() as conn:
                self._run_many(conn, update, [(expiry(bytes(item)), table, pk, sk) for pk, sk, item in rows])
            after = (bytes(rows[-1][0]), bytes(rows[-1][1]))
