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

__all__ = ["BaseStore", "FunctionRecord", "FunctionVersion", "LogRecord", "NewVersion", "open_stage_store",
           "open_store"]


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


def open_stage_store(root: BaseStore, stage: str, data_dir: Path) -> BaseStore:
    """Open (and migrate) the store of stage `stage` beside `root`: the SQLite file
    `data_dir/squall.db`, or the PostgreSQL schema `<root schema>_stage_<stage>` (root's
    schema `public` when it has none) in root's database."""
    from squall.store.postgres import PostgresStore
    from squall.store.sqlite import SqliteStore

    store: BaseStore
    if isinstance(root, PostgresStore):
        store = PostgresStore(root.url, schema=f"{root.schema or 'public'}_stage_{stage}")
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(data_dir / "squall.db")
    store.migrate()
    return store
