"""The Node: what one squall server holds in memory (active function versions and the aliases
that reach them, the route table, the instance pool) and the invoke path every trigger goes
through."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

import orjson

from squall.events.engine import EventEngine
from squall.events.host import HostedFunction
from squall.exceptions import NotFound
from squall.logs import LogRetention, LogSweeper, LogWriter, encode_invocation, invocation_batch, report_line
from squall.request_ids import new_request_id, new_trace_id
from squall.routing import Route, RouteTable
from squall.runtime.context import function_arn
from squall.runtime.instance import InstanceSpec, InvokeOutcome
from squall.runtime.pool import InstancePool
from squall.secrets import LogMasker
from squall.node.aliases import ReleaseState, read_release_state
from squall.releases import LATEST_QUALIFIER as LATEST, LIVE_ALIAS, Release, alias_of, split_target
from squall.node.secret_env import SecretCache, lists_any, spec_masker
from squall.node.specs import NodeSettings, instance_spec
from squall.store.base import BaseStore, FunctionVersion, LogBatch
from squall.store.resources import Resource
from squall.tasks import cancel_and_wait
from squall.types import LogLine

CODE_WAIT_POLL = 2.0
"""Seconds between looks at the store while a stored version's code is not on this node's
disk yet (a shared data dir that has not shown it yet)."""


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

    def __init__(self, settings: NodeSettings, store: BaseStore, pool: InstancePool,
                 *, logs_of: Node | None = None) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.logs: LogWriter = LogWriter(store, budget=logs_of.logs.budget if logs_of is not None else None)
        self.log_sweeper: LogSweeper = (logs_of.log_sweeper if logs_of is not None
                                        else LogSweeper([store], LogRetention.from_settings(settings.server)))
        """The server's one log sweep (a stage's node, `logs_of` its root node, shares the root's
        sweep and its writer's queue budget: the log caps are server-wide)."""
        self._sweeps_logs = logs_of is None
        self.functions: dict[str, ActiveFunction] = {}
        """`name -> ` the version of the function's `live` alias with the most traffic: whose
        configuration (routes, grants, schedules) the function has on this node."""
        self.versions: dict[tuple[str, int], ActiveFunction] = {}
        """Every version this node serves: those aliases point at, and numbered calls' versions."""
        self.releases: dict[str, dict[str, Release[ActiveFunction]]] = {}
        self.resources: dict[str, dict[str, Resource]] = {}
        """`kind -> name -> Resource`: the topics, queues and buckets of every project."""
        self.routes = RouteTable(())
        self.deploy_lock = asyncio.Lock()
        self.launcher_ready: asyncio.Future[None] | None = None
        pool.on_idle_output = self.store_idle_output
        self.events = EventEngine(NodeEventHost(self))
        self.secrets = SecretCache(store, settings.secret_key)
        self._follower: asyncio.Task[None] | None = None
        self._store_changed = asyncio.Event()
        self.after_sync: list[Callable[[], Awaitable[None]]] = []
        """Run after each catch-up with the store (the stage set follows the root node's)."""

    def store_idle_output(self, spec: InstanceSpec, lines: list[LogLine]) -> None:
        """Keep what an instance printed outside invocations (init ahead of calls, shutdown
        hook), under the function and without a request id."""
        masker = spec_masker(spec)
        self.logs.write(LogBatch(spec.function, spec.version, "", masker.mask_lines(lines) if masker else lines))

    # -- state --------------------------------------------------------------
    def load(self) -> None:
        """Serve every stored function's aliases (at start-up)."""
        self.resources = self.load_resources()
        self.secrets.refresh()
        for error in self.secrets.unreadable().values():
            print(f"squall: {error}", flush=True)
        self.serve(read_release_state(self.store, {}))

    def load_resources(self) -> dict[str, dict[str, Resource]]:
        found: dict[str, dict[str, Resource]] = {}
        for resource in self.store.list_resources():
            found.setdefault(resource.kind, {})[resource.name] = resource
        return found

    def serve(self, state: ReleaseState) -> bool:
        """Serve exactly the aliases of `state`. An alias whose versions' code is not on this
        node's disk yet keeps what it served before (if anything): True when one does."""
        versions: dict[tuple[str, int], ActiveFunction] = {}
        releases: dict[str, dict[str, Release[ActiveFunction]]] = {}
        waiting = False
        for function, named in state.aliases.items():
            for alias, weights in named.items():
                chosen = [self._version_here(function, number, state.versions) for number in weights]
                if all(chosen):
                    release = Release(tuple(c for c in chosen if c), tuple(weights.values()))
                else:
                    waiting = True
                    previous = self.releases.get(function, {}).get(alias)
                    if previous is None:
                        continue
                    release = previous
                releases.setdefault(function, {})[alias] = release
                versions.update((c.spec.key, c) for c in release.choices)
        self.install(versions, releases)
        return waiting

    @property
    def aliases(self) -> dict[str, dict[str, dict[int, int]]]:
        """`name -> alias -> {version: percent}`: what `releases` serves."""
        return {name: {alias: {c.version.number: w for c, w in zip(r.choices, r.weights)}
                       for alias, r in named.items()}
                for name, named in self.releases.items()}

    def _version_here(self, function: str, number: int,
                      stored: Mapping[tuple[str, int], FunctionVersion]) -> ActiveFunction | None:
        """Version `number` of `function` ready to serve: the active one, or the stored one when
        its code is on this node's disk; None otherwise."""
        active = self.versions.get((function, number))
        if active is not None:
            return active
        version = stored.get((function, number))
        if version is None or not (self.settings.data_dir / version.code_path).is_dir():
            return None
        return self.make_active(version)

    def install(self, versions: dict[tuple[str, int], ActiveFunction],
                releases: dict[str, dict[str, Release[ActiveFunction]]]) -> None:
        """Switch to serving `releases` at once; the pool retires versions no longer served."""
        functions = {name: named[LIVE_ALIAS].main for name, named in releases.items() if LIVE_ALIAS in named}
        retired = [key for key in self.versions if key not in versions]
        added = [function for key, function in versions.items() if self.versions.get(key) is not function]
        self.routes = build_route_table((f.name, f.version.config) for f in functions.values())
        self.functions, self.versions, self.releases = functions, versions, releases
        for key in retired:
            self.pool.retire(key)
        for function in added:
            self.pool.reinstate(function.spec.key)
            if function.spec.min_instances:
                asyncio.ensure_future(self.pool.provision(function.spec))
        self.events.sync()

    def pick(self, name: str, alias: str = LIVE_ALIAS) -> ActiveFunction | None:
        """The version a call of `name:alias` goes to now (one by weight), or None."""
        release = self.releases.get(name, {}).get(alias)
        return None if release is None else release.pick()

    async def resolve(self, target: str, qualifier: str | None = None) -> ActiveFunction:
        """The version a call of `target` (`NAME`, `NAME:ALIAS`, `NAME:7`; or NAME with a separate
        `qualifier`) goes to. A stored version no alias points at is made ready on demand.
        Raises NotFound."""
        name, own = split_target(target)
        qualifier = qualifier or own
        alias = alias_of(qualifier)
        if alias is not None:
            found = self.pick(name, alias)
            if found is None:
                raise NotFound(f"Function not found: {name}" if name not in self.functions
                               else f"function {name} has no alias {alias}")
            return found
        assert qualifier is not None
        return await self._numbered(name, int(qualifier))

    async def _numbered(self, name: str, number: int) -> ActiveFunction:
        active = self.versions.get((name, number))
        if active is not None:
            return active
        version = await asyncio.to_thread(self.store.get_version, name, number)
        if version is None:
            raise NotFound(f"Function not found: {name}" if name not in self.functions
                           else f"function {name} has no version {number}")
        active = self._version_here(name, number, {(name, number): version})
        if active is None:
            raise NotFound(f"version {number} of {name} is not on this node yet")
        self.versions = {**self.versions, (name, number): active}
        self.pool.reinstate(active.spec.key)
        return active

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
        names = set(names)
        versions = {key: self.make_active(function.version) if key[0] in names else function
                    for key, function in self.versions.items()}
        releases = {name: {alias: Release(tuple(versions[c.spec.key] for c in release.choices), release.weights)
                           for alias, release in named.items()}
                    for name, named in self.releases.items()}
        for name in names:
            self.pool.recycle(name)
        self.install(versions, releases)

    def set_stage_env(self, env: Mapping[str, str]) -> None:
        """The stage's environment changed: every function gets it from its next instance on."""
        self.settings = replace(self.settings, stage_env=dict(env))
        self.renew(list(self.functions))

    def arn(self, function: str) -> str:
        return function_arn(function, self.settings.region, self.settings.account_id)

    def get(self, name: str) -> ActiveFunction:
        try:
            return self.functions[name]
        except KeyError:
            raise NotFound(f"Function not found: {name}") from None

    # -- invoking -----------------------------------------------------------
    async def invoke(self, function: ActiveFunction, event: bytes, request_id: str | None = None, *,
                     qualifier: str | None = None, trace_id: str | None = None,
                     client_context: str | None = None) -> Invocation:
        """Invoke `function` with the JSON `event`; logs are stored in the background.
        `qualifier` is the alias or version the caller named (None: unqualified, which the
        context shows as `$LATEST`), `trace_id` the call's trace header (a new one if None),
        `client_context` the caller's, JSON. Raises Throttled when the function is at its
        concurrency cap."""
        request_id = request_id or new_request_id()
        started = time.time()
        qualified = qualifier is not None and qualifier != LATEST
        outcome = await self.pool.invoke(
            function.spec, request_id, event, f"{function.arn}:{qualifier}" if qualifier else function.arn,
            version=str(function.version.number) if qualified else LATEST,
            trace_id=trace_id or new_trace_id(), client_context=client_context)
        invocation = Invocation(request_id, function.name, function.version.number, outcome, started)
        self._write_logs(function, invocation)
        return invocation

    def log_batch(self, function: ActiveFunction, invocation: Invocation) -> LogBatch:
        """The stored lines of `invocation`: START, what it printed (secrets masked), the error
        if any, END and REPORT."""
        lines, report, error_line = self._log_parts(function, invocation)
        return invocation_batch(function.name, function.version.number, invocation.request_id,
                                lines, started=invocation.started, report=report, error_line=error_line)

    def _write_logs(self, function: ActiveFunction, invocation: Invocation) -> None:
        lines, report, error_line = self._log_parts(function, invocation)
        data = encode_invocation(function.name, function.version.number, invocation.request_id, lines,
                                 started=invocation.started, report=report, error_line=error_line)
        self.logs.write_encoded(data, lambda: self.log_batch(function, invocation))

    def _log_parts(self, function: ActiveFunction, invocation: Invocation) -> tuple[list[LogLine], str, str | None]:
        outcome = invocation.outcome
        report = report_line(invocation.request_id, duration_ms=outcome.duration_ms,
                             memory_mb=function.spec.memory, max_memory_mb=outcome.max_memory_mb,
                             init_ms=outcome.init_ms)
        lines, error_line = outcome.logs, None if outcome.ok else error_log_line(outcome.payload)
        if function.masker is not None:
            lines = function.masker.mask_lines(lines)
            error_line = None if error_line is None else function.masker.mask(error_line)
        return lines, report, error_line

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        self.launcher_ready = asyncio.ensure_future(self.pool.launcher.start())  # deploys need not wait
        self.logs.start()
        if self._sweeps_logs:
            self.log_sweeper.start()
        else:
            self.log_sweeper.add(self.store)
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
                for hook in self.after_sync:
                    await hook()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a store outage must not end the loop
                print(f"squall: could not read the deployed functions: {exc}", flush=True)

    async def sync_from_store(self) -> bool:
        """Reload the project resources (topics, queues, buckets, tables: a node that cannot run
        a project's code still takes its messages) and serve the stored aliases (deploys,
        alias moves, rollbacks and removed functions), those whose code is on this node's disk.
        True when one waits for its code to appear here."""
        state = await asyncio.to_thread(read_release_state, self.store, self.versions)
        resources = await asyncio.to_thread(self.load_resources)
        if resources != self.resources:  # a new dict only on change: the table catalog caches per dict
            self.resources = resources
        if state.aliases == self.aliases:
            return False
        return self.serve(state)

    async def stop(self) -> None:
        await cancel_and_wait(self._follower)
        await self.events.stop()
        await self.pool.close()
        if self._sweeps_logs:
            await self.log_sweeper.stop()
        else:
            self.log_sweeper.remove(self.store)
        self.logs.stop()
        self.store.close()


class NodeEventHost:
    """The node as its events see it (squall.events.host.EventHost): what they may reach."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @property
    def store(self) -> BaseStore:
        return self._node.store

    @property
    def settings(self) -> NodeSettings:
        return self._node.settings

    @property
    def logs(self) -> LogWriter:
        return self._node.logs

    @property
    def functions(self) -> Mapping[str, ActiveFunction]:
        return self._node.functions

    @property
    def resources(self) -> Mapping[str, Mapping[str, Resource]]:
        return self._node.resources

    def get(self, name: str) -> ActiveFunction:
        return self._node.get(name)

    def pick(self, name: str, alias: str = LIVE_ALIAS) -> ActiveFunction | None:
        return self._node.pick(name, alias)

    async def resolve(self, target: str, qualifier: str | None = None) -> ActiveFunction:
        return await self._node.resolve(target, qualifier)

    async def invoke(self, function: HostedFunction, event: bytes, request_id: str | None = None) -> Invocation:
        assert isinstance(function, ActiveFunction), function  # the events only hold what this host gave them
        return await self._node.invoke(function, event, request_id)

    def stop_request(self, request_id: str) -> bool:
        return self._node.pool.stop_request(request_id)

    def store_changed(self) -> None:
        self._node.store_changed()


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
    """Routes of `(function name, version config)` pairs, each to `(function, alias)`; raises
    ValueError when two functions claim the same route."""
    routes = []
    for name, config in functions:
        for trigger in config.get("triggers", []):
            if "http" in trigger:
                target = (name, trigger.get("alias") or LIVE_ALIAS)
                routes.append(Route.from_key(trigger["http"], target, trigger.get("auth")))
    return RouteTable(routes)

