"""The bucket objects part of the Store contract: each object's metadata (its content
lives in a file under the node's data dir, named in `path`), written in the same
transaction as the events its change triggers.

Listing is in key order with S3's `prefix` and `start_after`, a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from squall.store.events import NewEvent


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str
    """The MD5 of the content in hex, as S3 gives it for a single-part upload."""
    content_type: str
    modified_at: float
    path: str
    """Where the content is, relative to the data dir."""


class ObjectStore:
    def put_object(self, info: ObjectInfo, events: Sequence[NewEvent], *, now: float) -> str | None:
        """In one transaction: make `info` the object at (bucket, key) and store `events`.
        Returns the `path` of the object it replaced, if any (its file can go)."""
        raise NotImplementedError

    def delete_object(self, bucket: str, key: str, events: Sequence[NewEvent], *, now: float) -> ObjectInfo | None:
        """In one transaction: remove the object and store `events`; the removed object,
        or None (and no events stored) when there was none."""
        raise NotImplementedError

    def get_object(self, bucket: str, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def list_objects(self, bucket: str, *, prefix: str = "", start_after: str = "",
                     limit: int = 1000) -> list[ObjectInfo]:
        """Objects of `bucket` whose key starts with `prefix` and sorts after `start_after`,
        in key order, at most `limit`."""
        raise NotImplementedError

    def bucket_usage(self, bucket: str) -> tuple[int, int]:
        """(number of objects, total bytes) of `bucket`."""
        raise NotImplementedError
