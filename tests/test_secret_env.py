"""squall/node/secret_env.py over a real SQLite store, and the pool's refusal to start a
spec that carries an init error (no process is launched)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from squall.runtime.instance import Instance, InstanceSpec
from squall.runtime.launcher import InstanceLauncher
from squall.runtime.pool import InstancePool
from squall.secrets import MASK, SecretBox, new_key_text, parse_key
from squall.node.secret_env import NOT_SET, UNREADABLE, SecretCache, spec_masker
from squall.store.sqlite import SqliteStore

NOW = 6_000_000.0
SPEC = InstanceSpec("f", 1, "app.handler", "/code", 128, 3.0, {"PATH": "/bin", "TOKEN": "from env"})


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    opened = SqliteStore(tmp_path / "squall.db")
    opened.migrate()
    return opened


@pytest.fixture
def sealer() -> SecretBox:
    return SecretBox(parse_key(new_key_text(), "SQUALL_SECRET_KEY"))


def test_refresh_reports_what_was_set_replaced_or_removed(store: SqliteStore, sealer: SecretBox) -> None:
    cache = SecretCache(store, sealer.key)
    store.put_secret("A", sealer.seal("A", "alpha-1"), now=NOW)
    store.put_secret("B", sealer.seal("B", "bravo-1"), now=NOW)

    assert cache.refresh() == {"A", "B"}
    assert cache.refresh() == set()
    store.put_secret("A", sealer.seal("A", "alpha-2"), now=NOW + 1)
    assert cache.refresh() == {"A"}
    assert cache.apply(SPEC, ["A"]).environ["A"] == "alpha-2"
    store.delete_secret("B")
    assert cache.refresh() == {"B"}
    assert cache.apply(SPEC, ["B"]).init_error == (NOT_SET, "secret B is not set: squall secret set B")


def test_listed_secrets_join_the_environment_over_the_function_env(store: SqliteStore, sealer: SecretBox) -> None:
    store.put_secret("TOKEN", sealer.seal("TOKEN", "tok-secret"), now=NOW)
    store.put_secret("UNLISTED", sealer.seal("UNLISTED", "not-for-f"), now=NOW)
    cache = SecretCache(store, sealer.key)
    cache.refresh()

    spec = cache.apply(SPEC, ["TOKEN"])

    assert spec.environ == {"PATH": "/bin", "TOKEN": "tok-secret"}
    assert spec.secrets == ("TOKEN",) and spec.init_error is None
    assert cache.apply(SPEC, []) is SPEC
    masker = spec_masker(spec)
    assert masker is not None and masker.mask("got tok-secret") == f"got {MASK}"
    assert spec_masker(SPEC) is None


def test_a_secret_sealed_with_another_key_makes_an_init_error(store: SqliteStore, sealer: SecretBox) -> None:
    store.put_secret("TOKEN", sealer.seal("TOKEN", "tok-secret"), now=NOW)
    cache = SecretCache(store, parse_key(new_key_text(), "SQUALL_SECRET_KEY"))
    cache.refresh()

    spec = cache.apply(SPEC, ["TOKEN"])

    assert spec.init_error is not None and spec.init_error[0] == UNREADABLE
    assert "another secret key" in spec.init_error[1] and "tok-secret" not in spec.init_error[1]
    assert list(cache.unreadable()) == ["TOKEN"]
    assert "TOKEN" not in spec.environ or spec.environ["TOKEN"] == "from env"


class NoLauncher(InstanceLauncher):
    """Fails the test if the pool tries to start a process."""

    launched = 0

    async def launch(self, spec: InstanceSpec) -> Instance:
        self.launched += 1
        raise AssertionError("no process may be started for a spec with an init error")


def test_the_pool_fails_a_spec_with_an_init_error_without_starting_a_process() -> None:
    launcher = NoLauncher()
    pool = InstancePool(launcher)
    spec = InstanceSpec("f", 1, "app.handler", "/code", 128, 3.0,
                        init_error=(NOT_SET, "secret TOKEN is not set: squall secret set TOKEN"))

    async def both() -> tuple[bool, bytes, bool]:
        invoked = await pool.invoke(spec, "req-1", b"{}", "arn")
        prewarmed = await pool.prewarm(spec)
        return invoked.ok, invoked.payload, prewarmed.ok

    ok, payload, prewarm_ok = asyncio.run(both())

    assert not ok and not prewarm_ok and launcher.launched == 0
    error = orjson.loads(payload)
    assert error["errorType"] == NOT_SET and error["errorMessage"] == "secret TOKEN is not set: squall secret set TOKEN"
    assert pool.stats.init_failures == 1
