"""SQL shared by the SQL backends; each backend passes its own parameter placeholder."""

from __future__ import annotations

from typing import Any

LOG_COLUMNS = "function, version, request_id, ts, level, message, id"
VERSION_COLUMNS = "function, number, project, code_hash, config, code_path, created_at"
FUNCTION_COLUMNS = "name, project, latest, created_at, updated_at"


def log_query(function: str, *, since: float | None, request_id: str | None, after_id: int,
              limit: int, placeholder: str) -> tuple[str, list[Any]]:
    """The SELECT of `read_logs` and its parameters."""
    where, params = [f"function = {placeholder}", f"id > {placeholder}"], [function, after_id]
    if since is not None:
        where.append(f"ts >= {placeholder}")
        params.append(since)
    if request_id is not None:
        where.append(f"request_id = {placeholder}")
        params.append(request_id)
    sql = (f"SELECT {LOG_COLUMNS} FROM logs WHERE {' AND '.join(where)} "
           f"ORDER BY id LIMIT {placeholder}")
    return sql, [*params, limit]
