"""The shape of the SQL backends (squall/store/sql_store.py): siblings composed of the same
concern classes, each standing alone over SqlBackend, over one shared base, SqlStore, whose
methods neither backend redefines. No I/O."""

from __future__ import annotations

import inspect
from collections import defaultdict
from typing import Any

import pytest

from squall.store.base import BaseStore
from squall.store.pg_events import PostgresEventQueue
from squall.store.postgres import PostgresStore
from squall.store.sql import SqlBackend
from squall.store.sql_store import SqlStore
from squall.store.sqlite import SqliteStore

BACKENDS = [SqliteStore, PostgresStore]
OWN_PARTS: dict[type, tuple[type, ...]] = {SqliteStore: (), PostgresStore: (PostgresEventQueue,)}
"""The classes of a backend's own that come before the shared ones among its bases."""
REPLACED: dict[type, set[str]] = {SqliteStore: set(),
                                  PostgresStore: {"_insert_events", "claim_events", "finish_events"}}
"""What a backend's own classes do instead of a concern class: PostgreSQL's one-statement
writes of the event queue (squall/store/pg_events.py)."""


def concerns(backend: type) -> tuple[type, ...]:
    """The concern classes `backend` is composed of: its bases but its own and SqlStore."""
    own, bases = OWN_PARTS[backend], backend.__bases__
    assert bases[:len(own)] == own and bases[-1] is SqlStore, bases
    return bases[len(own):-1]


def methods(cls: type) -> dict[str, Any]:
    """The functions `cls` itself defines (not the ones typing.Protocol adds to each class)."""
    return {name: value for name, value in vars(cls).items()
            if inspect.isfunction(value) and not name.startswith("__")}


def test_both_backends_are_composed_of_the_same_concerns_over_one_shared_base() -> None:
    assert concerns(SqliteStore) == concerns(PostgresStore)
    assert concerns(SqliteStore)
    assert SqlStore.__bases__ == (SqlBackend, BaseStore)


@pytest.mark.parametrize("part", [*concerns(SqliteStore), PostgresEventQueue], ids=lambda part: part.__name__)
def test_each_concern_stands_alone_over_sql_backend(part: type) -> None:
    assert part.__bases__ == (SqlBackend,)
    others = [c for c in (*concerns(SqliteStore), SqlStore) if c is not part]
    assert [c.__name__ for c in others if issubclass(part, c) or issubclass(c, part)] == []


def test_no_two_shared_classes_define_the_same_method() -> None:
    """Else which one a backend gets would hang on the order of its bases."""
    owners: dict[str, list[str]] = defaultdict(list)
    for part in (*concerns(SqliteStore), SqlStore):
        for name in methods(part):
            owners[name].append(part.__name__)
    assert {name: parts for name, parts in owners.items() if len(parts) > 1} == {}


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda backend: backend.__name__)
def test_a_backend_does_not_redefine_what_the_shared_base_provides(backend: type) -> None:
    shared = methods(SqlStore)
    assert {"read_logs", "get_meta", "set_meta", "get_function", "migrate"} <= shared.keys()
    assert [name for name, function in shared.items() if getattr(backend, name) is not function] == []
    assert backend._sql is SqlBackend._sql  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda backend: backend.__name__)
def test_a_backend_uses_the_concern_classes_as_they_are_but_what_it_replaces_on_purpose(backend: type) -> None:
    redefined = {name for concern in concerns(backend) for name, function in methods(concern).items()
                 if getattr(backend, name) is not function}
    assert redefined == REPLACED[backend]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda backend: backend.__name__)
def test_a_backend_supplies_every_hook_sql_backend_declares(backend: type) -> None:
    hooks = set(methods(SqlBackend)) - {"_sql"}
    assert {"_write", "_query", "_notice", "_serialize", "_claim_rows"} <= hooks
    assert [name for name in sorted(hooks) if getattr(backend, name) is getattr(SqlBackend, name)] == []
    assert isinstance(getattr(backend, "dialect", None), type(SqliteStore.dialect))
