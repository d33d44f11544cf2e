"""The secrets of a node's functions: their decrypted values, kept in memory, and what they
make of an instance spec (the listed secrets in its environment, or an init error naming the
one that is not set) and of its logs (a masker of the values).

The cache holds every stored secret: its `updated_at`, and its value or why it cannot be
read. `refresh()` lists the secrets (names and times: a small read) and fetches and decrypts
only those whose time changed, so a cold start never reads the store or decrypts anything:
the values are in the spec already. The node refreshes at start, before each deploy's
checks, after `secret set` / `rm` through its API, and on another node's store notice of a
change or its store poll (squall/node/core.py, `follow_store`), then rebuilds the specs of the functions that list a
changed name and recycles their instances (squall/node/core.py, `sync_secrets`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from squall.runtime.instance import InstanceSpec
from squall.secrets import KEY_ENV, KEY_FILE, LogMasker, SecretBox, SecretKey, SecretUnreadable, masker_for
from squall.store.secrets import SecretStore

NOT_SET = "Runtime.SecretNotSet"
UNREADABLE = "Runtime.SecretUnreadable"


@dataclass(frozen=True, slots=True)
class CachedSecret:
    updated_at: float
    value: str | None
    error: str = ""
    """Why `value` is None: the secret does not decrypt with this node's key."""


class SecretCache:
    """Decrypted secrets of one node. `refresh()` blocks on the store (run it in a thread);
    the other methods only read memory."""

    def __init__(self, store: SecretStore, key: SecretKey | None) -> None:
        self.store = store
        self.box = SecretBox(key) if key is not None else None
        self._secrets: dict[str, CachedSecret] = {}
        self._lock = threading.Lock()

    def refresh(self) -> set[str]:
        """Catch up with the store; returns the names that were set, replaced or removed since."""
        with self._lock:
            listed = {info.name: info.updated_at for info in self.store.list_secrets()}
            current = self._secrets
            changed = {name for name, at in listed.items() if name not in current or current[name].updated_at != at}
            gone = set(current) - set(listed)
            if not changed and not gone:
                return set()
            sealed = self.store.get_secrets(sorted(changed)) if changed else {}
            fresh = {name: entry for name, entry in current.items() if name in listed}
            for name, ciphertext in sealed.items():
                fresh[name] = self._open(name, listed[name], ciphertext)
            self._secrets = fresh
            return changed | gone

    def _open(self, name: str, updated_at: float, ciphertext: bytes) -> CachedSecret:
        if self.box is None:
            return CachedSecret(updated_at, None, f"secret {name} cannot be decrypted: this node has no "
                                                  f"secret key ({KEY_ENV} or DATA/{KEY_FILE})")
        try:
            return CachedSecret(updated_at, self.box.open(name, ciphertext))
        except SecretUnreadable as exc:
            return CachedSecret(updated_at, None, str(exc))

    def unreadable(self) -> dict[str, str]:
        """Secrets this node cannot decrypt, and why."""
        return {name: entry.error for name, entry in sorted(self._secrets.items()) if entry.value is None}

    def apply(self, spec: InstanceSpec, names: Sequence[str]) -> InstanceSpec:
        """`spec` with the secrets `names` added to its environment (over the function's own
        `env`), or with an init error naming the first that is not set or cannot be read."""
        if not names:
            return spec
        values = {}
        for name in names:
            entry = self._secrets.get(name)
            if entry is None:
                return replace(spec, init_error=(NOT_SET, f"secret {name} is not set: squall secret set {name}"))
            if entry.value is None:
                return replace(spec, init_error=(UNREADABLE, entry.error))
            values[name] = entry.value
        return replace(spec, environ={**spec.environ, **values}, secrets=tuple(names))


def spec_masker(spec: InstanceSpec) -> LogMasker | None:
    """The masker of the secrets in `spec`'s environment; None (nothing to do) without any."""
    if not spec.secrets:
        return None
    return masker_for({name: spec.environ[name] for name in spec.secrets if name in spec.environ})


def lists_any(names: Iterable[str], changed: set[str]) -> bool:
    return any(name in changed for name in names)
