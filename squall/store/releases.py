"""The releases part of the Store contract: aliases (named, movable pointers at a function's
versions, optionally splitting traffic by weight), the history of their moves (what a
rollback goes back to), and pruning old versions.

Every function has the alias `live` (LIVE_ALIAS): what unqualified calls reach. A deploy
that creates a version points `live` at it in the same transaction; a function stored
before aliases existed has no row, and its `live` is its latest version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class Alias:
    """Alias `name` of `function`: `weights` maps version numbers to percentages (summing to
    100); a plain alias has one version at 100."""

    function: str
    name: str
    weights: Mapping[int, int]
    updated_at: float

    @property
    def version(self) -> int:
        """The version that gets the most traffic (the newer one on a tie)."""
        return max(self.weights, key=lambda number: (self.weights[number], number))


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One move of an alias, as kept in its history (newest first when listed)."""

    function: str
    name: str
    weights: Mapping[int, int]
    moved_at: float
    reason: str
    """What moved it: `deploy`, `set`, `rollback`."""


class ReleaseStore:
    def list_aliases(self, function: str | None = None) -> list[Alias]:
        """Stored aliases (of `function`), ordered by function and name. A function with no
        stored `live` row is not given one here (see the module docstring)."""
        raise NotImplementedError

    def set_alias(self, function: str, name: str, weights: Mapping[int, int], *, reason: str,
                  now: float) -> Alias:
        """Point alias `name` of `function` at `weights` and record the move, in one transaction.
        Raises NotFound when the function does not exist and BadInput when one of the versions
        does not, changing nothing."""
        raise NotImplementedError

    def delete_alias(self, function: str, name: str) -> bool:
        """Remove an alias and its history; False when there was none."""
        raise NotImplementedError

    def alias_moves(self, function: str, name: str, *, limit: int = 20) -> list[AliasMove]:
        """The last `limit` moves of an alias, newest first."""
        raise NotImplementedError

    def prune_versions(self, function: str, *, keep: int) -> list[int]:
        """Delete the versions of `function` older than its newest `keep`, except those an alias
        points at; returns the deleted numbers."""
        raise NotImplementedError

    def code_in_use(self) -> set[str]:
        """Every `code_path`, and every `deps/<hash>` folder, that a stored version refers to."""
        raise NotImplementedError


def encode_weights(weights: Mapping[int, int]) -> str:
    """Weights as stored: a JSON object of version number (as text) to percentage."""
    return "{" + ",".join(f'"{n}":{w}' for n, w in sorted(weights.items())) + "}"


def decode_weights(text: str | bytes | Mapping[str, int]) -> dict[int, int]:
    found = orjson.loads(text) if isinstance(text, (str, bytes)) else text
    return {int(n): int(w) for n, w in found.items()}

