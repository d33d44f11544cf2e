"""What a node serves for each function: its aliases, each resolved to the active versions it
points at with their traffic weights (`Release`), read from the store as one `ReleaseState`.

A call names a function and, optionally, a qualifier: nothing (or `$LATEST`) reaches the
`live` alias, a name reaches that alias, a number reaches that version. A weighted alias picks
one of its versions per call, at random with the given percentages.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Generic, TypeVar

from squall.store.base import BaseStore, FunctionVersion
from squall.store.releases import LIVE_ALIAS

LATEST_QUALIFIER = "$LATEST"
"""Lambda's name for the unqualified function; here it is the `live` alias."""

Target = TypeVar("Target")


@dataclass(frozen=True)
class Release(Generic[Target]):
    """An alias as served: `choices[i]` takes `weights[i]` percent of the calls."""

    choices: tuple[Target, ...]
    weights: tuple[int, ...]
    bounds: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "bounds", tuple(accumulate(self.weights)))

    @property
    def main(self) -> Target:
        """The choice with the most traffic (the later, newer one on a tie)."""
        return self.choices[max(range(len(self.choices)), key=lambda i: (self.weights[i], i))]

    def pick(self) -> Target:
        if len(self.choices) == 1:
            return self.choices[0]
        return self.choices[bisect_right(self.bounds, random.random() * self.bounds[-1])]


def split_target(target: str) -> tuple[str, str | None]:
    """`NAME`, `NAME:ALIAS` or `NAME:7` as (name, qualifier or None)."""
    name, _, qualifier = target.partition(":")
    return name, qualifier or None


def alias_of(qualifier: str | None) -> str | None:
    """The alias a qualifier names (None for a version number)."""
    if qualifier is None or qualifier == LATEST_QUALIFIER:
        return LIVE_ALIAS
    return None if qualifier.isdigit() else qualifier


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
