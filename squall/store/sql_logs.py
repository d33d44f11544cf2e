"""Log retention in SQL, shared by the SQLite and PostgreSQL backends: what the sweep
(squall/logs.py) reads and deletes. Each log batch row carries its `size` (the bytes of its
lines), indexed with its id, so that the total and the oldest rows are read from that index
without touching the lines, and a delete is one short transaction by id.
"""

from __future__ import annotations

from collections.abc import Sequence

from squall.store.base import StoredLogBatch
from squall.store.sql import Dialect, SqlBackend

LOG_SIZE_INDEX = "CREATE INDEX log_batches_size ON log_batches (id, size)"


def log_size_schema(dialect: Dialect) -> tuple[str, ...]:
    """The migration step that gives each log batch its size (the byte length of its `lines`)
    and the index the sweep reads."""
    return (f"ALTER TABLE log_batches ADD COLUMN size {dialect.bigint} NOT NULL DEFAULT 0",
            f"UPDATE log_batches SET size = {dialect.byte_length.format('lines')}",
            LOG_SIZE_INDEX)


class SqlLogs(SqlBackend):
    """The retention queries of BaseStore over a SQL backend."""

    def oldest_logs(self, limit: int) -> list[StoredLogBatch]:
        rows = self._query(f"SELECT id, ts_end, size FROM log_batches ORDER BY id LIMIT {self.dialect.mark}", (limit,))
        return [StoredLogBatch(int(i), float(ended), int(size)) for i, ended, size in rows]

    def delete_logs(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        marks = ", ".join(self.dialect.mark for _ in ids)
        with self._write() as conn:
            return int(conn.execute(f"DELETE FROM log_batches WHERE id IN ({marks})", list(ids)).rowcount)

    def log_bytes(self) -> int:
        rows = self._query("SELECT coalesce(sum(size), 0) FROM log_batches")
        return int(rows[0][0]) if rows else 0
