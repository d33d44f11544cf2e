"""SQL shared by the SQL backends (each passes its own parameter placeholder), and reading
log batch rows back as lines."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import orjson

from squall.store.base import FunctionVersion, LogRecord
from squall.types import LogLevel

LOG_BATCH_COLUMNS = "function, version, request_id, lines, id"
VERSION_COLUMNS = "function, number, project, code_hash, config, code_path, created_at, provenance"
FUNCTION_COLUMNS = "name, project, latest, created_at, updated_at"


def log_batch_query(function: str, *, since: float | None, request_id: str | None, after_id: int,
                    limit: int, placeholder: str) -> tuple[str, list[Any]]:
    """The SELECT of `read_logs` and its parameters: batches that end at or after `since`."""
    where, params = [f"function = {placeholder}", f"id > {placeholder}"], [function, after_id]
    if since is not None:
        where.append(f"ts_end >= {placeholder}")
        params.append(since)
    if request_id is not None:
        where.append(f"request_id = {placeholder}")
        params.append(request_id)
    sql = (f"SELECT {LOG_BATCH_COLUMNS} FROM log_batches WHERE {' AND '.join(where)} "
           f"ORDER BY id LIMIT {placeholder}")
    return sql, [*params, limit]


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


def version_of(row: Sequence[Any]) -> FunctionVersion:
    """A `VERSION_COLUMNS` row as a FunctionVersion (JSON columns come as text from SQLite)."""
    function, number, project, code_hash, config, code_path, created_at, provenance = row
    return FunctionVersion(function, number, project, code_hash, json_value(config), code_path, created_at,
                           json_value(provenance))


def json_value(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value
