"""SqlStore: the base both SQL backends share, holding BaseStore's own methods (functions
and versions, logs, settings, migrating) written once over SqlBackend (squall/store/sql.py).

A backend is a sibling of the other, composed of the same classes in the same order:

    class SqliteStore(SqlEventQueue, SqlSchedules, SqlResources, SqlQueues, SqlObjects,
                      SqlSecrets, SqlTables, SqlReleases, SqlStore)
    class PostgresStore(PostgresEventQueue, <the same eight>, SqlStore)

each concern's class (squall/store/sql_*.py) standing alone over SqlBackend. What a backend
writes itself is what it alone guarantees: its connections and transactions, its
migration steps (`migrations`), `commit_deploy` (SQLite checks owners under its one writer;
PostgreSQL numbers versions by an upsert that locks the function row), how it stores a
log document in one statement, its locks, its claim and its notices. It does not redefine
what SqlStore provides (tests/test_store_structure.py checks).

Log retention: each log batch row carries its `size` (the bytes of its lines), indexed with
its id, so that the total and the oldest rows are read from that index without touching the
lines, and a delete is one short transaction by id (what the sweep, squall/logs.py, needs).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import orjson

from squall.store.base import BaseStore, FunctionRecord, FunctionVersion, LogRecord, StoredLogBatch
from squall.store.sql import Dialect, SqlBackend, json_value
from squall.types import LogLevel

FUNCTION_COLUMNS = "name, project, latest, created_at, updated_at"
VERSION_COLUMNS = "function, number, project, code_hash, config, code_path, created_at, provenance"
LOG_BATCH_COLUMNS = "function, version, request_id, lines, id"
LOG_SIZE_INDEX = "CREATE INDEX log_batches_size ON log_batches (id, size)"

_LATEST_VERSIONS = (f"SELECT {', '.join(f'v.{c.strip()}' for c in VERSION_COLUMNS.split(','))} "
                    "FROM functions f JOIN versions v ON v.function = f.name AND v.number = f.latest")


def log_size_schema(dialect: Dialect) -> tuple[str, ...]:
    """The migration step that gives each log batch its size (the byte length of its `lines`)
    and the index the sweep reads."""
    return (f"ALTER TABLE log_batches ADD COLUMN size {dialect.bigint} NOT NULL DEFAULT 0",
            f"UPDATE log_batches SET size = {dialect.byte_length.format('lines')}",
            LOG_SIZE_INDEX)


def version_of(row: Sequence[Any]) -> FunctionVersion:
    """A `VERSION_COLUMNS` row as a FunctionVersion (JSON columns come as text from SQLite)."""
    function, number, project, code_hash, config, code_path, created_at, provenance = row
    return FunctionVersion(function, number, project, code_hash, json_value(config), code_path, created_at,
                           json_value(provenance))


def log_records(rows: Iterable[Sequence[Any]], since: float | None) -> list[LogRecord]:
    """The lines of the batch rows `rows` (as `LOG_BATCH_COLUMNS` selects them), each line
    carrying its batch's id; lines before `since` are left out."""
    records = []
    for function, version, request_id, lines, batch_id in rows:
        for line in orjson.loads(lines):
            if since is None or line["ts"] >= since:
                records.append(LogRecord(function, version, request_id, line["ts"],
                                         LogLevel(line["level"]), line["message"], batch_id))
    return records


class SqlStore(SqlBackend, BaseStore):
    """BaseStore's own methods in SQL, for every SQL backend (see the module docstring)."""

    migrations: ClassVar[tuple[tuple[str, ...], ...]]
    """The backend's migration steps in order; step i (1-based) brings the schema to version i.
    Append new steps, never edit applied ones."""

    # -- lifecycle ---------------------------------------------------------
    def migrate(self, target: int | None = None) -> None:
        """One write transaction holding the `migrate` lock, so that nodes starting at once
        apply each step exactly once."""
        with self._write() as conn:
            self._serialize(conn, "migrate")
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                         f"version INTEGER PRIMARY KEY, applied_at {self.dialect.real} NOT NULL)")
            row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            for number, step in enumerate(self.migrations[current:target], start=current + 1):
                for statement in step:
                    conn.execute(statement)
                conn.execute(self._sql("INSERT INTO schema_version VALUES (?, ?)"), (number, time.time()))

    # -- functions and versions -------------------------------------------
    def get_function(self, name: str) -> FunctionRecord | None:
        rows = self._query(self._sql(f"SELECT {FUNCTION_COLUMNS} FROM functions WHERE name = ?"), (name,))
        return FunctionRecord(*rows[0]) if rows else None

    def list_functions(self, project: str | None = None) -> list[FunctionRecord]:
        where, params = ("WHERE project = ?", (project,)) if project is not None else ("", ())
        rows = self._query(self._sql(f"SELECT {FUNCTION_COLUMNS} FROM functions {where} ORDER BY name"), params)
        return [FunctionRecord(*row) for row in rows]

    def get_version(self, function: str, number: int) -> FunctionVersion | None:
        rows = self._query(self._sql(f"SELECT {VERSION_COLUMNS} FROM versions WHERE function = ? AND number = ?"),
                           (function, number))
        return version_of(rows[0]) if rows else None

    def list_versions(self, function: str) -> list[FunctionVersion]:
        rows = self._query(self._sql(f"SELECT {VERSION_COLUMNS} FROM versions WHERE function = ? ORDER BY number"),
                           (function,))
        return [version_of(row) for row in rows]

    def latest_version(self, function: str) -> FunctionVersion | None:
        rows = self._query(self._sql(f"{_LATEST_VERSIONS} WHERE f.name = ?"), (function,))
        return version_of(rows[0]) if rows else None

    def latest_versions(self) -> list[FunctionVersion]:
        return [version_of(row) for row in self._query(f"{_LATEST_VERSIONS} ORDER BY f.name")]

    # -- logs --------------------------------------------------------------
    def read_logs(self, function: str, *, since: float | None = None,
                  request_id: str | None = None, after_id: int = 0,
                  limit: int = 1000) -> list[LogRecord]:
        """The batches that end at or after `since` are read, then their lines before it left out."""
        where, params = ["function = ?", "id > ?"], [function, after_id]
        if since is not None:
            where.append("ts_end >= ?")
            params.append(since)
        if request_id is not None:
            where.append("request_id = ?")
            params.append(request_id)
        sql = f"SELECT {LOG_BATCH_COLUMNS} FROM log_batches WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"
        return log_records(self._query(self._sql(sql), [*params, limit]), since)

    def oldest_logs(self, limit: int) -> list[StoredLogBatch]:
        rows = self._query(self._sql("SELECT id, ts_end, size FROM log_batches ORDER BY id LIMIT ?"), (limit,))
        return [StoredLogBatch(int(i), float(ended), int(size)) for i, ended, size in rows]

    def delete_logs(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        marks = ", ".join("?" for _ in ids)
        with self._write() as conn:
            return int(conn.execute(self._sql(f"DELETE FROM log_batches WHERE id IN ({marks})"), list(ids)).rowcount)

    def log_bytes(self) -> int:
        rows = self._query("SELECT coalesce(sum(size), 0) FROM log_batches")
        return int(rows[0][0]) if rows else 0

    # -- small settings ----------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        rows = self._query(self._sql("SELECT value FROM meta WHERE key = ?"), (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute(self._sql("INSERT INTO meta (key, value) VALUES (?, ?) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value"), (key, value))
