"""The project resources part of the Store contract: the topics, queues and buckets a
project declares (squall.yaml's `topics:`, `queues:`, `buckets:`), stored with the deploy
that declares them. A resource name belongs to one project, like a function name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RESOURCE_KINDS = ("topic", "queue", "bucket")


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
