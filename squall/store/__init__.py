"""Storage backends behind one interface; `open_store(url)` picks one by URL."""

from __future__ import annotations

from pathlib import Path

from squall.store.base import (
    BaseStore,
    FunctionRecord,
    FunctionVersion,
    LogRecord,
    NewVersion,
)

__all__ = ["BaseStore", "FunctionRecord", "FunctionVersion", "LogRecord", "NewVersion", "open_store"]


def open_store(url: str | None, data_dir: Path) -> BaseStore:
    """Open (and migrate) the store at `url`: `postgresql://...` or, by default,
    the SQLite file `data_dir/squall.db` (`sqlite:///path` names another file)."""
    if url and url.startswith(("postgresql://", "postgres://")):
        from squall.store.postgres import PostgresStore

        store: BaseStore = PostgresStore(url)
    else:
        from squall.store.sqlite import SqliteStore

        path = Path(url[len("sqlite:///"):]) if url and url.startswith("sqlite:///") else data_dir / "squall.db"
        store = SqliteStore(path)
    store.migrate()
    return store
