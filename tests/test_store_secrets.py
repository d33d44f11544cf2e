"""The secrets contract (squall/store/secrets.py), run against every store backend."""

from __future__ import annotations

from collections.abc import Callable

from squall.store.base import BaseStore
from squall.store.secrets import SecretInfo

NOW = 5_000_000.0


def test_put_then_get_returns_the_ciphertext_bytes(store: BaseStore) -> None:
    store.put_secret("API_KEY", b"\x00sealed\xff", now=NOW)

    assert store.get_secrets(["API_KEY"]) == {"API_KEY": b"\x00sealed\xff"}
    assert store.list_secrets() == [SecretInfo("API_KEY", NOW, NOW)]


def test_put_replaces_the_value_and_keeps_the_creation_time(store: BaseStore) -> None:
    store.put_secret("API_KEY", b"one", now=NOW)
    store.put_secret("API_KEY", b"two", now=NOW + 60)

    assert store.get_secrets(["API_KEY"]) == {"API_KEY": b"two"}
    assert store.list_secrets() == [SecretInfo("API_KEY", NOW, NOW + 60)]


def test_get_returns_only_the_names_that_exist(store: BaseStore) -> None:
    store.put_secret("A", b"a", now=NOW)
    store.put_secret("B", b"b", now=NOW)
    store.put_secret("C", b"c", now=NOW)

    assert store.get_secrets(["C", "A", "MISSING"]) == {"A": b"a", "C": b"c"}
    assert store.get_secrets([]) == {}


def test_list_is_ordered_by_name(store: BaseStore) -> None:
    for name in ("ZETA", "ALPHA", "MID_1"):
        store.put_secret(name, b"x", now=NOW)

    assert [info.name for info in store.list_secrets()] == ["ALPHA", "MID_1", "ZETA"]


def test_delete_says_whether_there_was_a_secret(store: BaseStore) -> None:
    store.put_secret("GONE", b"x", now=NOW)
    store.put_secret("KEPT", b"y", now=NOW)

    assert store.delete_secret("GONE") is True
    assert store.delete_secret("GONE") is False
    assert store.get_secrets(["GONE", "KEPT"]) == {"KEPT": b"y"}
    assert [info.name for info in store.list_secrets()] == ["KEPT"]


def test_secrets_outlive_the_store_object(store_factory: Callable[..., BaseStore]) -> None:
    first = store_factory()
    first.put_secret("KEEP", b"sealed", now=NOW)
    first.close()

    assert store_factory(migrate=False).get_secrets(["KEEP"]) == {"KEEP": b"sealed"}
