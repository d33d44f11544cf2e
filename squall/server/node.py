"""The Node: what one squall server holds in memory (active function versions, the route
table, the instance pool) and the invoke path every trigger goes through."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from squall.events.engine import EventEngine
from squall.exceptions import NotFound
from squall.logs import LogWriter, invocation_batch, report_line
from squall.request_ids import new_request_id
from squall.routing import Route, RouteTable
from squall.runtime.context import function_arn
from squall.runtime.instance import InstanceSpec, InvokeOutcome
from squall.runtime.pool import InstancePool
from squall.secrets import LogMasker
from squall.server.secret_env import SecretCache, lists_any, spec_masker
from squall.server.specs import NodeSettings, instance_spec
from squall.store.base import BaseStore, FunctionVersion, LogBatch
from squall.store.resources import Resource
from squall.tasks import cancel_and_wait
from squall.types import LogLine

CODE_WAIT_POLL = 2.0
"""Seconds between looks at the store while a stored version's code is not on this node's
disk yet (a shared data dir that has not shown it yet)."""
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Lambda's synchronous invocation payload limit (request and response): 6 MB."""


@dataclass(frozen=True)
class ActiveFunction:
    """The version of a function that new requests go to, ready to hand to the pool."""

    version: FunctionVersion
    spec: InstanceSpec
    arn: str
    masker: LogMasker | None = None
    """Masks the values of the function's secrets in its logs; None when it lists none."""

    @property
    def name(self) -> str:
        return self.version.function


@dataclass
class Invocation:
    """The result of one invocation as the API and the gateway see it."""

    request_id: str
    function: str
    version: int
    outcome: InvokeOutcome
    started: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def payload(self) -> bytes:
        return self.outcome.payload


class Node:
    """One squall server's state. Async methods run on the server's event loop."""

    def __init__(self, settings: NodeSettings, store: BaseStore, pool: InstancePool) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.logs = LogWriter(store)
        self.functions: dict[str, ActiveFunction] = {}
        self.resources: dict[str, dict[str, Resource]] = {}
        """`kind -> name -> Resource`: the topics, queues and buckets of every project."""
        self.routes = RouteTable(())
        self.deploy_lock = asyncio.Lock()
        self.launcher_ready: asyncio.Future[None] | None = None
        pool.on_idle_output = self.store_idle_output
        self.events = EventEngine(self)
        self.secrets = SecretCache(store, settings.secret_key)
        self._follower: asyncio.Task[None] | None = None
        self._store_changed = asyncio.Event()

    def store_idle_output(self, spec: InstanceSpec, lines: list[LogLine]) -> None:
        """Keep what an instance printed outside invocations (init ahead of calls, shutdown
        hook), under the function and without a request id."""
        masker = spec_masker(spec)
        self.logs.write(LogBatch(spec.function, spec.version, "", masker.mask_lines(lines) if masker else lines))

    # -- state --------------------------------------------------------------
    def load(self) -> None:
        """Activate the latest version of every stored function (at start-up)."""
        self.resources = self.load_resources()
        self.secrets.refresh()
        for error in self.secrets.unreadable().values():
            print(f"squall: {error}", flush=True)
        self.activate(self.store.latest_versions(), ())

    def load_resources(self) -> dict[str, dict[str, Resource]]:
        found: dict[str, dict[str, Resource]] = {}
        for resource in self.store.list_resources():
            found.setdefault(resource.kind, {})[resource.name] = resource
        return found

    def activate(self, versions: Iterable[FunctionVersion], removed: Iterable[str]) -> None:
        """Make `versions` the ones new requests reach and drop `removed`; in-flight
        requests finish on the instances they hold, which are then retired."""
        functions = dict(self.functions)
        retired = []
        for name in removed:
            if name in functions:
                retired.append(functions.pop(name).spec.key)
        for version in versions:
            if version.function in functions:
                retired.append(functions[version.function].spec.key)
            functions[version.function] = self.make_active(version)
            self.pool.reinstate((version.function, version.number))
        self.routes = build_route_table((f.name, f.version.config) for f in functions.values())
        self.functions = functions
        for key in retired:
            if key not in {f.spec.key for f in functions.values()}:
                self.pool.retire(key)
        for function in functions.values():
            if function.spec.min_instances:
                asyncio.ensure_future(self.pool.provision(function.spec))
        self.events.sync()

    def make_active(self, version: FunctionVersion) -> ActiveFunction:
        spec = self.secrets.apply(instance_spec(self.settings, version), version.config.get("secrets") or ())
        return ActiveFunction(version, spec, self.arn(version.function), spec_masker(spec))

    async def sync_secrets(self) -> None:
        """Catch up with the stored secrets: functions that list one that changed get a new
        spec, and their instances are recycled, so that the next call starts with the new value."""
        changed = await asyncio.to_thread(self.secrets.refresh)
        self.renew([f.name for f in self.functions.values()
                    if lists_any(f.version.config.get("secrets") or (), changed)])

    def renew(self, names: Iterable[str]) -> None:
        """Give the functions `names` new specs (current secrets, a fresh credential) and stop
        their idle instances, which hold the old ones; busy ones finish their call first."""
        functions = dict(self.functions)
        for name in names:
            functions[name] = function = self.make_active(functions[name].version)
            self.pool.recycle(name)
            if function.spec.min_instances:
                asyncio.ensure_future(self.pool.provision(function.spec))
        self.functions = functions

    def arn(self, function: str) -> str:
        return function_arn(function, self.settings.region, self.settings.account_id)

    def get(self, name: str) -> ActiveFunction:
        try:
            return self.functions[name]
        except KeyError:
            raise NotFound(f"Function not found: {name}") from None

    # -- invoking -----------------------------------------------------------
    async def invoke(self, function: ActiveFunction, event: bytes, request_id: str | None = None) -> Invocation:
        """Invoke `function` with the JSON `event`; logs are stored in the background.
        Raises Throttled when the function is at its concurrency cap."""
        request_id = request_id or new_request_id()
        started = time.time()
        outcome = await self.pool.invoke(function.spec, request_id, event, function.arn)
        invocation = Invocation(request_id, function.name, function.version.number, outcome, started)
        self.logs.write(self.log_batch(function, invocation))
        return invocation

    def log_batch(self, function: ActiveFunction, invocation: Invocation) -> LogBatch:
        outcome = invocation.outcome
        report = report_line(invocation.request_id, duration_ms=outcome.duration_ms,
                             memory_mb=function.spec.memory, max_memory_mb=outcome.max_memory_mb,
                             init_ms=outcome.init_ms)
        lines, error_line = outcome.logs, None if outcome.ok else error_log_line(outcome.payload)
        if function.masker is not None:
            lines = function.masker.mask_lines(lines)
            error_line = None if error_line is None else function.masker.mask(error_line)
        return invocation_batch(function.name, function.version.number, invocation.request_id,
                                lines, started=invocation.started, report=report, error_line=error_line)

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        self.launcher_ready = asyncio.ensure_future(self.pool.launcher.start())  # deploys need not wait
        self.logs.start()
        self.pool.start_reaper()
        self.load()
        await self.events.start()
        self._follower = asyncio.ensure_future(self.follow_store())
        freeze_heap()

    def store_changed(self) -> None:
        """Another node committed a deploy, a secret or a resource (its store notice): catch up now."""
        self._store_changed.set()

    async def follow_store(self) -> None:
        """Pick up deploys, secrets and resources changed through other nodes (or other
        processes on the same store): at once on their store notice, else at the latest every
        `polls.store` seconds (every CODE_WAIT_POLL while a version's code is not here yet)."""
        waiting_for_code = False
        while True:
            poll = self.events.polls.store
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._store_changed.wait(),
                                       min(poll, CODE_WAIT_POLL) if waiting_for_code else poll)
            self._store_changed.clear()
            try:
                async with self.deploy_lock:
                    await self.sync_secrets()
                    waiting_for_code = await self.sync_from_store()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a store outage must not end the loop
                print(f"squall: could not read the deployed functions: {exc}", flush=True)

    async def sync_from_store(self) -> bool:
        """Reload the project resources (topics, queues, buckets, tables: a node that cannot run
        a project's code still takes its messages), activate the store's latest versions whose
        code is on this node's disk and drop removed functions. True when a newer version waits
        for its code to appear here."""
        latest = await asyncio.to_thread(self.store.latest_versions)
        changed = [v for v in latest if (f := self.functions.get(v.function)) is None
                   or f.version.number != v.number]
        newer = [v for v in changed if (self.settings.data_dir / v.code_path).is_dir()]  # its code must be here too
        gone = [name for name in self.functions if name not in {v.function for v in latest}]
        self.resources = await asyncio.to_thread(self.load_resources)
        if newer or gone:
            self.activate(newer, gone)
        return len(newer) < len(changed)

    async def stop(self) -> None:
        await cancel_and_wait(self._follower)
        await self.events.stop()
        await self.pool.close()
        self.logs.stop()
        self.store.close()


def freeze_heap() -> None:
    """Move everything the node allocated to start (modules, the app, the store) out of the
    collector's sight: a full collection walks only what serving allocates afterwards, so
    its pauses, which the event loop waits out, stay short (a 15-20 ms pause per full
    collection at 10k requests/s without this)."""
    gc.collect()
    gc.freeze()


def error_log_line(payload: bytes) -> str:
    """The ERROR line Lambda writes for a failed invocation: type, message and stack trace."""
    try:
        error = orjson.loads(payload)
        trace = "".join(error.get("stackTrace") or [])
        text = f"[ERROR] {error.get('errorType')}: {error.get('errorMessage')}"
        return f"{text}\nTraceback (most recent call last):\n{trace}".rstrip() if trace else text
    except (orjson.JSONDecodeError, AttributeError):
        return f"[ERROR] {payload[:1000]!r}"


def build_route_table(functions: Iterable[tuple[str, dict[str, Any]]]) -> RouteTable:
    """Routes of `(function name, version config)` pairs; raises ValueError when two
    functions claim the same route."""
    routes = []
    for name, config in functions:
        for trigger in config.get("triggers", []):
            if "http" in trigger:
                routes.append(Route.from_key(trigger["http"], name, trigger.get("auth")))
    return RouteTable(routes)

