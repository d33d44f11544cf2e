"""The tables part of the Store contract: the items of DynamoDB-model tables.

A table's definition (key schema, TTL attribute) is a project resource of kind "table"
(squall/store/resources.py). Items are stored under their table's name, the order-preserving
encodings of their partition and sort keys (squall/tables/values.py sort_key_bytes; b"" for a
table without sort key) and their attribute map as JSON bytes. `expires_at` is the TTL
attribute's value, if any: expired items are never returned and are deleted in the background.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

ItemKey = tuple[str, bytes, bytes]
"""(table, partition key bytes, sort key bytes)."""


@dataclass(frozen=True, slots=True)
class StoredItem:
    key: ItemKey
    item: bytes
    """The attribute map, JSON in DynamoDB's typed form."""
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class KeyRange:
    """The sort keys a query reads: between `low` and `high` (None: unbounded), each
    inclusive or not, in ascending or descending order, after `start` (exclusive) if given."""

    low: bytes | None = None
    low_inclusive: bool = True
    high: bytes | None = None
    high_inclusive: bool = True
    forward: bool = True
    start: bytes | None = None


Change = Callable[[Mapping[ItemKey, StoredItem | None]], Mapping[ItemKey, StoredItem | None]]
"""Given the current items at some keys (None: absent), the new ones (None: delete); it may
raise to abandon the whole change."""


class TableStore:
    def get_items(self, keys: Sequence[ItemKey], *, now: float) -> dict[ItemKey, StoredItem]:
        """The live (not expired) items at `keys` that exist."""
        raise NotImplementedError

    def change_items(self, keys: Sequence[ItemKey], change: Change, *, now: float) -> None:
        """Atomically: read the live items at `keys`, call `change`, and write what it returns,
        with no other change to those keys in between."""
        raise NotImplementedError

    def write_items(self, items: Mapping[ItemKey, StoredItem | None]) -> None:
        """Write (or, for None, delete) items unconditionally, in one transaction."""
        raise NotImplementedError

    def query_items(self, table: str, partition: bytes, sort: KeyRange, *, limit: int,
                    now: float) -> list[StoredItem]:
        """Up to `limit` live items of one partition in sort-key order."""
        raise NotImplementedError

    def scan_items(self, table: str, *, after: tuple[bytes, bytes] | None, limit: int, segment: int = 0,
                   segments: int = 1, now: float) -> list[StoredItem]:
        """Up to `limit` live items of `table` in key order after `after`, of one segment of
        `segments` (items are spread over segments by a hash of their partition key)."""
        raise NotImplementedError

    def count_items(self, table: str, *, now: float) -> int:
        """How many live items `table` holds."""
        raise NotImplementedError

    def reset_expiry(self, table: str, expiry: Callable[[bytes], float | None]) -> None:
        """Recompute every item's `expires_at` as `expiry(item JSON)` (the TTL attribute changed)."""
        raise NotImplementedError

    def delete_table_items(self, table: str) -> int:
        """Remove every item of `table`; how many there were."""
        raise NotImplementedError

    def expire_items(self, *, now: float, limit: int) -> int:
        """Delete up to `limit` items whose `expires_at` has passed; how many."""
        raise NotImplementedError
