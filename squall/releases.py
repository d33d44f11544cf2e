"""Releases, the one home of the concept: the `live` alias, qualifiers (`NAME`, `NAME:ALIAS`,
`NAME:7`, `$LATEST`), an alias's traffic weights and how a served alias picks a version per call
(`Release`). A leaf module: the store, the events and the node all read qualifiers through it.

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


LIVE_ALIAS = "live"
"""The alias every function has: what unqualified calls reach."""

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


def check_weights(weights: Mapping[int, int]) -> None:
    """Raise ValueError unless `weights` gives 1-100 percent to each version and sums to 100."""
    if not weights:
        raise ValueError("an alias needs at least one version")
    for number, weight in weights.items():
        if number < 1:
            raise ValueError(f"version {number} is not a version number (they start at 1)")
        if not 0 < weight <= 100:
            raise ValueError(f"weight {weight} of version {number} is not between 1 and 100")
    if sum(weights.values()) != 100:
        shown = ",".join(f"{n}={w}" for n, w in sorted(weights.items()))
        raise ValueError(f"weights {shown} sum to {sum(weights.values())}, not 100")
