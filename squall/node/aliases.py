"""Releases: moving a function's aliases (set, weighted split, rollback) on top of the store,
with the checks that keep a bad request from changing anything. The API calls these; the
node then serves what the store says, read here as one `ReleaseState`.

A rollback without `--to` goes to the alias's newest earlier state whose highest version is
below the current highest one (so a canary `7=90,8=10` rolls back to 7, and a second rollback
goes further back instead of toggling), or else to the newest stored version below it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from squall.exceptions import BadInput, NotFound
from squall.releases import LIVE_ALIAS, check_weights
from squall.store.base import BaseStore, FunctionRecord, FunctionVersion
from squall.store.releases import Alias

HISTORY_SEARCHED = 100
"""How many earlier moves of an alias a rollback looks through."""


def current_aliases(store: BaseStore, function: str) -> list[Alias]:
    """The aliases of `function`, `live` included (its latest version when never moved).
    Raises NotFound for an unknown function."""
    record = store.get_function(function)
    if record is None:
        raise NotFound(f"Function not found: {function}")
    return aliases_of(record, store.list_aliases(function))


def aliases_of(record: FunctionRecord, stored: list[Alias]) -> list[Alias]:
    """`stored` (the aliases of the function `record`), with `live` at its latest version when no
    `live` row is stored (a function deployed before aliases existed); `live` first."""
    aliases = list(stored)
    if not any(a.name == LIVE_ALIAS for a in aliases):
        aliases.append(Alias(record.name, LIVE_ALIAS, {record.latest: 100}, record.updated_at))
    return sorted(aliases, key=lambda a: (a.name != LIVE_ALIAS, a.name))


def set_alias(store: BaseStore, function: str, name: str, weights: Mapping[int, int], *,
              reason: str = "set") -> Alias:
    """Point alias `name` at `weights`. BadInput (nothing changed) for weights that do not sum
    to 100 or a version that does not exist; NotFound for an unknown function."""
    try:
        check_weights(weights)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return store.set_alias(function, name, weights, reason=reason, now=time.time())


def remove_alias(store: BaseStore, function: str, name: str) -> None:
    if name == LIVE_ALIAS:
        raise BadInput(f"the {LIVE_ALIAS} alias cannot be removed: unqualified calls reach it "
                       f"(move it with `squall rollback` or `squall alias set`)")
    if not store.delete_alias(function, name):
        raise NotFound(f"function {function} has no alias {name}")


def rollback(store: BaseStore, function: str, alias: str = LIVE_ALIAS, to: int | None = None) -> dict[str, Any]:
    """Move `alias` back: to version `to`, or as the module docstring says. Returns
    `{"function", "alias", "from": weights, "to": weights}`."""
    current = next((a for a in current_aliases(store, function) if a.name == alias), None)
    if current is None:
        raise NotFound(f"function {function} has no alias {alias}")
    target = {to: 100} if to is not None else _earlier_state(store, current)
    moved = set_alias(store, function, alias, target, reason="rollback")
    return {"function": function, "alias": alias, "from": _shown(current.weights), "to": _shown(moved.weights)}


def _earlier_state(store: BaseStore, current: Alias) -> dict[int, int]:
    top = max(current.weights)
    stored = {v.number for v in store.list_versions(current.function)}
    for move in store.alias_moves(current.function, current.name, limit=HISTORY_SEARCHED):
        if max(move.weights) < top and set(move.weights) <= stored:
            return dict(move.weights)
    older = [number for number in stored if number < top]
    if not older:
        raise BadInput(f"nothing to roll back to: {current.function} has no version before {top} "
                       f"(see `squall versions {current.function}`)")
    return {max(older): 100}


def _shown(weights: Mapping[int, int]) -> dict[str, int]:
    return {str(number): weight for number, weight in sorted(weights.items())}


def alias_info(alias: Alias) -> dict[str, Any]:
    return {"function": alias.function, "name": alias.name, "version": alias.version,
            "weights": _shown(alias.weights), "updated_at": alias.updated_at}


@dataclass(frozen=True)
class ReleaseState:
    """The store's releases: `aliases[function][alias]` is `{version: percent}` (every function
    has `live`), and `versions` holds every version an alias points at."""

    aliases: dict[str, dict[str, dict[int, int]]]
    versions: dict[tuple[str, int], FunctionVersion]


def read_release_state(store: BaseStore, known: Mapping[tuple[str, int], object]) -> ReleaseState:
    """Read the releases; versions in `known` (immutable, already active here) are not read again."""
    latest = store.latest_versions()
    aliases: dict[str, dict[str, dict[int, int]]] = {v.function: {LIVE_ALIAS: {v.number: 100}} for v in latest}
    for alias in store.list_aliases():
        if alias.function in aliases:
            aliases[alias.function][alias.name] = dict(alias.weights)
    versions = {(v.function, v.number): v for v in latest}
    for function, named in aliases.items():
        for weights in named.values():
            for number in weights:
                key = (function, number)
                if key not in versions and key not in known:
                    found = store.get_version(function, number)
                    if found is not None:
                        versions[key] = found
    return ReleaseState(aliases, versions)
