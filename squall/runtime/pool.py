"""InstancePool: reuses warm instances, starts new ones up to a cap, reaps idle ones.

One invocation at a time per instance. When a function's instances are all busy
and its cap is reached, `invoke` raises `Throttled` at once rather than waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import orjson

from squall.exceptions import Throttled
from squall.runtime.instance import ON_DEMAND, PROVISIONED, SHUTDOWN_GRACE, Instance, InstanceSpec, InstanceState, InvokeOutcome
from squall.runtime.launcher import InstanceLauncher
from squall.settings import MAX_INSTANCES, Settings
from squall.types import LogLine

Key = tuple[str, int]


@dataclass(frozen=True)
class PoolLimits:
    """Node-wide limits. A function's own `concurrency` and `idle_timeout` (in its spec)
    apply under these ceilings."""

    per_function: int = 1000
    per_node: int = MAX_INSTANCES.default
    idle_timeout: float = 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> PoolLimits:
        """The defaults, with `per_node` from the server's SQUALL_MAX_INSTANCES."""
        return cls(per_node=settings.max_instances)


@dataclass
class PoolStats:
    """Counters for metrics: how invocations found their instance."""

    warm_starts: int = 0
    cold_starts: int = 0
    init_failures: int = 0
    throttles: int = 0
    reaped: int = 0


class InstancePool:
    """Instances per (function, version). All methods run on the event loop's thread."""

    def __init__(self, launcher: InstanceLauncher, limits: PoolLimits | None = None) -> None:
        self.launcher = launcher
        self.limits = limits if limits is not None else PoolLimits()
        self._idle: dict[Key, list[Instance]] = defaultdict(list)
        self._counts: dict[Key, int] = defaultdict(int)
        self._live: set[Instance] = set()
        self._retired: set[Key] = set()
        self._total = 0
        self._reaper: asyncio.Task[None] | None = None
        self.stats = PoolStats()
        self._ending: set[asyncio.Future[object]] = set()
        self.on_idle_output: Callable[[InstanceSpec, list[LogLine]], None] | None = None
        """Receives what an instance printed outside any invocation: its init when it was
        started ahead of calls (deploy check, min_instances), its shutdown hook."""

    # -- the hot path -------------------------------------------------------
    async def invoke(self, spec: InstanceSpec, request_id: str, event: bytes, arn: str, **call: Any) -> InvokeOutcome:
        """Run one invocation on a warm instance, or a new one (then `init_ms` is set); `call`:
        what else the instance is told of the call (`Instance.invoke`)."""
        instance = self._take_idle(spec.key)
        init = None
        if instance is None:
            if spec.init_error is not None:
                self.stats.init_failures += 1
                return refused_start(spec)
            instance, init = await self._start(spec)
            self.stats.cold_starts += 1
            if not init.ok:
                self.stats.init_failures += 1
                return init
        else:
            self.stats.warm_starts += 1
        try:
            outcome = await instance.invoke(request_id, event, spec.timeout, arn, **call)
        finally:
            self._release(instance)
        if init is not None:
            outcome.init_ms = init.init_ms
            outcome.logs[:0] = init.logs  # what the module printed while it was imported
        return outcome

    def _take_idle(self, key: Key) -> Instance | None:
        idle = self._idle.get(key)
        while idle:
            instance = idle.pop()
            if instance.state is InstanceState.IDLE and instance.process.returncode is None:
                instance.state = InstanceState.BUSY
                return instance
            instance.state = InstanceState.DEAD
            self._release(instance)
        return None

    async def _start(self, spec: InstanceSpec, initialization: str = ON_DEMAND) -> tuple[Instance, InvokeOutcome]:
        key = spec.key
        cap = min(spec.concurrency, self.limits.per_function)
        if self._counts[key] >= cap:
            self.stats.throttles += 1
            raise Throttled(f"Rate exceeded: function {spec.function} is at its concurrency limit of {cap}")
        if self._total >= self.limits.per_node:
            self.stats.throttles += 1
            raise Throttled(f"Rate exceeded: this node runs its maximum of {self.limits.per_node} instances")
        self._total += 1
        self._counts[key] += 1
        started = time.perf_counter()
        try:
            instance = await self.launcher.launch(spec)
        except BaseException:
            self._total -= 1
            self._counts[key] -= 1
            raise
        self._live.add(instance)
        try:
            outcome = await instance.init(spec.init_timeout, initialization)
        except BaseException:  # cancelled while it started: it must not stay counted forever
            instance.state = InstanceState.DEAD
            self._release(instance)
            raise
        outcome.init_ms = instance.init_ms = (time.perf_counter() - started) * 1000
        if not outcome.ok:
            self._release(instance)
        instance.state = InstanceState.BUSY if outcome.ok else InstanceState.DEAD
        return instance, outcome

    def _release(self, instance: Instance) -> None:
        """Back to the idle list; or, for a retired version or a dead instance, out of the pool."""
        key = instance.spec.key
        if instance.state is InstanceState.IDLE and key not in self._retired and not instance.recycle_after_call:
            self._idle[key].append(instance)
            return
        self._forget(instance)
        if instance.state is InstanceState.IDLE:
            self._track(self._stop(instance))
        else:
            instance.kill()
            self._track(instance.process.wait())

    def _track(self, work: Awaitable[object]) -> None:
        """Run the end of an instance in the background; `close()` waits for all of them."""
        task = asyncio.ensure_future(work)
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    def _forget(self, instance: Instance) -> None:
        if instance in self._live:
            self._live.discard(instance)
            self._total -= 1
            self._counts[instance.spec.key] -= 1

    async def _stop(self, instance: Instance) -> None:
        """Stop an idle instance gracefully: its shutdown hook runs, its output is kept."""
        self._idle_output(instance.spec, await instance.stop())

    def _idle_output(self, spec: InstanceSpec, lines: list[LogLine]) -> None:
        if lines and self.on_idle_output is not None:
            self.on_idle_output(spec, lines)

    # -- deploy support -----------------------------------------------------
    async def prewarm(self, spec: InstanceSpec) -> InvokeOutcome:
        """Start one instance ahead of calls (the deploy check, `min_instances`); a healthy one
        stays idle for the first call. Of a function with `min_instances` it is one of those
        kept ready (AWS_LAMBDA_INITIALIZATION_TYPE `provisioned-concurrency`)."""
        if spec.init_error is not None:
            return refused_start(spec)
        instance, outcome = await self._start(spec, PROVISIONED if spec.min_instances else ON_DEMAND)
        if outcome.ok:
            instance.state = InstanceState.IDLE
            self._release(instance)
            self._idle_output(spec, outcome.logs)
        return outcome

    async def provision(self, spec: InstanceSpec) -> None:
        """Start instances until `spec.min_instances` are alive (provisioned concurrency)."""
        missing = spec.min_instances - self._counts[spec.key]
        if missing > 0 and spec.key not in self._retired:
            await asyncio.gather(*(self.prewarm(spec) for _ in range(missing)), return_exceptions=True)

    def retire(self, key: Key) -> None:
        """Stop serving a version: idle instances die now, busy ones when they finish."""
        self._retired.add(key)
        for instance in self._idle.pop(key, []):
            self._release(instance)

    def recycle(self, function: str) -> int:
        """Stop every idle instance of `function` (their shutdown hooks run); busy ones
        finish their call first and are stopped then. Returns how many were stopped now."""
        keys = [key for key in self._idle if key[0] == function]
        stopped = 0
        for key in keys:
            for instance in self._idle.pop(key, []):
                if instance.state is InstanceState.IDLE:
                    self._forget(instance)
                    self._track(self._stop(instance))
                    stopped += 1
        for instance in self._live:
            if instance.spec.function == function and instance.state is InstanceState.BUSY:
                instance.recycle_after_call = True
        return stopped

    def reinstate(self, key: Key) -> None:
        """Serve a version again (a retired version number can be reused after a failed deploy)."""
        self._retired.discard(key)

    # -- housekeeping -------------------------------------------------------
    def stop_request(self, request_id: str) -> bool:
        """Kill the instance running `request_id` (its invocation fails with an exit error)."""
        for instance in list(self._live):
            if instance.request_id == request_id:
                instance.kill()
                return True
        return False

    def instances(self) -> list[Instance]:
        return list(self._live)

    def reap_idle(self, now: float | None = None) -> int:
        """Kill instances idle for longer than `idle_timeout`; returns how many."""
        now = time.monotonic() if now is None else now
        reaped = 0
        for key, idle in list(self._idle.items()):
            expired = [i for i in idle if now - i.last_used >= self._idle_timeout(i.spec)]
            spare = max(0, self._counts[key] - min(i.spec.min_instances for i in idle)) if idle else 0
            for instance in sorted(expired, key=lambda i: i.last_used)[:spare]:
                idle.remove(instance)
                self._forget(instance)
                self._track(self._stop(instance))
                reaped += 1
        self.stats.reaped += reaped
        return reaped

    def _idle_timeout(self, spec: InstanceSpec) -> float:
        return min(spec.idle_timeout, self.limits.idle_timeout)

    def start_reaper(self, interval: float = 5.0) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                self.reap_idle()
        self._reaper = asyncio.ensure_future(loop())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        idle = [i for group in self._idle.values() for i in group if i.state is InstanceState.IDLE]
        stops = [i.stop() for i in idle if i.spec.shutdown]
        if stops:  # a node that stops gracefully lets shutdown hooks run, briefly
            await asyncio.wait(map(asyncio.ensure_future, stops), timeout=SHUTDOWN_GRACE + 0.5)
        instances = self.instances()
        for instance in instances:
            instance.kill()
        await asyncio.gather(*(i.process.wait() for i in instances), *self._ending, return_exceptions=True)
        await self.launcher.close()
        self._idle.clear()
        self._live.clear()
        self._counts.clear()
        self._total = 0


def refused_start(spec: InstanceSpec) -> InvokeOutcome:
    """The init error of a spec that cannot start (its `init_error`), as if an instance had failed."""
    error_type, message = spec.init_error or ("Runtime.InitError", "the instance cannot start")
    error = {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": []}
    return InvokeOutcome(False, orjson.dumps(error), [], 0.0)
