"""The project resources part of the Store contract: the topics, queues, buckets and tables a
project declares (squall.yaml's `topics:`, `queues:`, `buckets:`, `tables:`), stored with the deploy
that declares them. A resource name belongs to one project, like a function name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESOURCE_KINDS = ("topic", "queue", "bucket", "table")


@dataclass(frozen=True, slots=True)
class Resource:
    kind: str
    name: str
    project: str
    config: dict[str, Any]


class ResourceStore:
    def list_resources(self, kind: str | None = None) -> list[Resource]:
        """Every stored resource (of `kind`), ordered by kind and name."""
        raise NotImplementedError

    def put_resource(self, resource: Resource, *, create: bool) -> None:
        """Store one resource outside a deploy (a table made or changed through the API).
        With `create`, Conflict when the name is taken; else it must exist and keep its project."""
        raise NotImplementedError

    def delete_resource(self, kind: str, name: str) -> bool:
        """Remove one resource; False when there was none."""
        raise NotImplementedError
