"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
import getpass
import uuid
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

from squall.store.base import BaseStore

# ---------------------------------------------------------------------------
# Store fixtures: a throwaway PostgreSQL database for the session and a
# migrated `store` of every backend (one contract suite runs against each).
# PostgreSQL is never skipped: when it is unreachable the tests fail.
# ---------------------------------------------------------------------------

POSTGRES_SERVER = "postgresql://{user}@127.0.0.1:5432/{dbname}"

StoreFactory = Callable[..., BaseStore]


def _admin_connection() -> psycopg.Connection[TupleRow]:
    """An autocommit connection to the `test` database (as this OS user, else as postgres)."""
    errors = []
    for user in dict.fromkeys([getpass.getuser(), "postgres"]):
        try:
            return psycopg.connect(POSTGRES_SERVER.format(user=user, dbname="test"),
                                   autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            errors.append(f"as {user}: {exc}")
    raise RuntimeError("PostgreSQL at 127.0.0.1:5432 (database `test`) is required by the "
                       "store tests and could not be reached:\n" + "\n".join(errors))


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """The URL of a new database, dropped (connections and all) when the block ends."""
    dbname = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        user = admin.info.user
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        yield POSTGRES_SERVER.format(user=user, dbname=dbname)
    finally:
        with _admin_connection() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a fresh database shared by the session's store tests (each uses a schema)."""
    with throwaway_database("squall_test") as url:
        yield url


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A database of its own for one test (a server on it sees no other test's data)."""
    with throwaway_database("squall_e2e") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """`open_store(migrate=True)`: opens (and migrates) a store of one backend; every
    store it opens shares the same data and is closed after the test."""
    opened: list[BaseStore] = []
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""
    schema = f"t_{uuid.uuid4().hex}"

    def open_store(migrate: bool = True) -> BaseStore:
        if request.param == "sqlite":
            from squall.store.sqlite import SqliteStore

            store: BaseStore = SqliteStore(tmp_path / "squall.db")
        else:
            from squall.store.postgres import PostgresStore

            store = PostgresStore(url, schema=schema)
        opened.append(store)
        if migrate:
            store.migrate()
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> BaseStore:
    """A migrated store of each backend, closed after the test."""
    return store_factory()

# --------------------------- end of store fixtures ---------------------------
