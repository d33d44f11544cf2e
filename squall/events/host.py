"""What the events need from the node that runs them, as Protocols they are handed.

The node owns the deployed functions and the invoke path; the events (async invokes,
schedules, topics, queues, buckets) only resolve a target, invoke a version, look up a
function, a resource or a setting, and say when the store changed. The node satisfies
`EventHost` structurally and hands itself to `EventEngine`; the events never import it, and
their unit tests hand them a small host of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from squall.logs import LogWriter
from squall.settings import Settings
from squall.store.base import BaseStore, FunctionVersion
from squall.store.events import NewEvent
from squall.store.resources import Resource


class HostedFunction(Protocol):
    """A version of a function that calls can reach (the node's ActiveFunction)."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> FunctionVersion: ...


class InvocationResult(Protocol):
    """What one invocation returned: whether it succeeded, and its payload (the error
    object when it did not)."""

    @property
    def ok(self) -> bool: ...

    @property
    def payload(self) -> bytes: ...


class HostSettings(Protocol):
    """The node settings the events read: where its data lives, the AWS identity it reports,
    and the server's settings (retry base, polls, node id)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def region(self) -> str: ...

    @property
    def account_id(self) -> str: ...

    @property
    def server(self) -> Settings: ...


class EventHost(Protocol):
    """The node, as the events see it."""

    @property
    def store(self) -> BaseStore: ...

    @property
    def settings(self) -> HostSettings: ...

    @property
    def logs(self) -> LogWriter:
        """Where invocations' log lines go: results wait for the logs written before them."""
        ...

    @property
    def functions(self) -> Mapping[str, HostedFunction]:
        """`name -> ` the version of each function whose configuration (triggers) holds here."""
        ...

    @property
    def resources(self) -> Mapping[str, Mapping[str, Resource]]:
        """`kind -> name -> Resource`: the topics, queues and buckets of every project."""
        ...

    def get(self, name: str) -> HostedFunction:
        """The function `name` (its live version). Raises NotFound."""
        ...

    def pick(self, name: str, alias: str = ...) -> HostedFunction | None:
        """The version a call of `name:alias` goes to now (one by weight), or None."""
        ...

    async def resolve(self, target: str, qualifier: str | None = None) -> HostedFunction:
        """The version a call of `target` (`NAME`, `NAME:ALIAS`, `NAME:7`) goes to. Raises NotFound."""
        ...

    async def invoke(self, function: HostedFunction, event: bytes,
                     request_id: str | None = None) -> InvocationResult:
        """Run one invocation of `function`. Raises Throttled when it has no room."""
        ...

    def stop_request(self, request_id: str) -> bool:
        """Kill the instance running `request_id` on this node; whether one was."""
        ...

    def store_changed(self) -> None:
        """Another node changed what the store holds: catch up soon."""
        ...


class EventSink(Protocol):
    """Where the triggers (topics, schedules, buckets) put the events they make: the engine."""

    def new_event(self, function: HostedFunction, payload: bytes, *, source: str,
                  idempotency_key: str | None = None, delay: float = 0.0,
                  qualifier: str | None = None) -> NewEvent:
        """An event for `function` with its retry and age settings. Raises PayloadTooLarge."""
        ...

    async def submit(self, events: list[NewEvent]) -> list[str]:
        """Store `events` (acknowledged once committed); their request ids."""
        ...

    def wake_events(self) -> None:
        """Events became due: the dispatcher looks now."""
        ...

    def stop_runs(self, source: str) -> None:
        """Stop the runs of `source` going on this node (a schedule's `overlap: replace`)."""
        ...

    async def publish(self, topic: str, message: str, *, subject: str | None = None,
                      attributes: dict[str, Any] | None = None) -> str:
        """Publish to `topic`; the message id once stored."""
        ...
