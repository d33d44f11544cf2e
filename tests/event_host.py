"""What the events' unit tests run them with: a real SQLite store, a ManualClock, and
`FakeHost`, a small EventHost whose functions are configs and whose `invoke` records each
call and answers what the test scripted.

Store calls run inline on the event loop (`InlineExecutor`), so after a test moves the
clock, `settle()` lets every task run until each waits for the clock again: nothing
depends on real time or on threads finishing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from squall.events.clock import ManualClock
from squall.events.host import HostedFunction
from squall.exceptions import NotFound, Throttled
from squall.logs import LogWriter
from squall.releases import LIVE_ALIAS, split_target
from squall.settings import Settings
from squall.store.base import BaseStore, FunctionVersion
from squall.store.resources import Resource
from squall.store.sqlite import SqliteStore

T = TypeVar("T")

SETTLE_TURNS = 2000
"""Most event loop turns `settle()` gives the tasks (a store call costs two): a task that
never waits for the clock (a loop that spins) cannot hold a test up longer than that."""


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """Runs what `asyncio.to_thread` hands it at once, on the calling thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            future.set_exception(exc)
        return future


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run `scenario()` on a new event loop whose store calls run inline."""

    async def main() -> T:
        asyncio.get_running_loop().set_default_executor(InlineExecutor())
        return await scenario()

    return asyncio.run(main())


async def settle() -> bool:
    """Let the tasks run until each waits (for the clock, or for a wake-up): until the event
    loop has no callback ready to run after this one's turn. False when they were still busy
    after SETTLE_TURNS turns.

    The event loop's queue of ready callbacks is CPython's `BaseEventLoop._ready`; on a loop
    without one, settling takes SETTLE_TURNS turns."""
    loop = asyncio.get_running_loop()
    ready: Sized | None = getattr(loop, "_ready", None)
    for _ in range(SETTLE_TURNS):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            return True
    return False


async def run_for(clock: ManualClock, seconds: float) -> None:
    """Move `clock` forward `seconds`, stopping at each sleeper's time on the way so that every
    task wakes when it asked to, and settle."""
    end = clock.monotonic() + seconds
    await settle()
    while (due := clock.next_wake()) is not None and due <= end:
        clock.advance(max(0.0, due - clock.monotonic()))
        await settle()
    clock.advance(end - clock.monotonic())
    await settle()


async def complete(clock: ManualClock, awaitable: Awaitable[T], within: float = 60.0) -> T:
    """Await `awaitable` (a component's `stop()`, say) while moving `clock` forward as its
    tasks ask, for at most `within` seconds."""
    task = asyncio.ensure_future(awaitable)
    end = clock.monotonic() + within
    await settle()
    while not task.done():
        due = clock.next_wake()
        if due is None or due > end:
            task.cancel()
            raise AssertionError(f"{awaitable!r} did not end within {within} s of the clock")
        clock.advance(max(0.0, due - clock.monotonic()))
        await settle()
    return task.result()


async def run_until(clock: ManualClock, wall_time: float) -> None:
    """`run_for` up to the wall-clock time `wall_time`."""
    await run_for(clock, wall_time - clock.time())


async def jump(clock: ManualClock, seconds: float) -> None:
    """Move `clock` forward `seconds` at once (each sleeper wakes once, late), and settle."""
    clock.advance(seconds)
    await settle()


def open_store(tmp_path: Path) -> BaseStore:
    store = SqliteStore(tmp_path / "squall.db")
    store.migrate()
    return store


# -- the host -------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """What a scripted invocation answers (the InvocationResult Protocol)."""

    ok: bool
    payload: bytes


def ok(value: Any = None) -> Result:
    return Result(True, json.dumps(value).encode())


def error(message: str = "boom") -> Result:
    return Result(False, json.dumps({"errorType": "RuntimeError", "errorMessage": message}).encode())


THROTTLED = "throttled"
"""Scripted: the invocation raises Throttled (the function is at its concurrency limit)."""
HOLD = "hold"
"""Scripted: the invocation runs until the test ends it (`FakeHost.finish`) or it is stopped."""


@dataclass(frozen=True)
class FakeFunction:
    """A deployed function: its name and its version's configuration (the HostedFunction Protocol)."""

    name: str
    version: FunctionVersion


@dataclass(frozen=True)
class HostSettings:
    """The HostSettings Protocol: the node's data dir and AWS identity, and the server's
    settings at their defaults."""

    data_dir: Path
    region: str = "us-east-1"
    account_id: str = "000000000000"
    server: Settings = field(default_factory=Settings)


@dataclass
class Call:
    """One invocation: of which function, with what event, under which request id, when."""

    function: str
    event: Any
    request_id: str | None
    at: float


@dataclass
class FakeHost:
    """An EventHost whose functions are configs and whose invocations are scripted."""

    store: BaseStore
    clock: ManualClock
    settings: HostSettings
    functions: dict[str, FakeFunction] = field(default_factory=dict)
    resources: dict[str, dict[str, Resource]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    held: dict[str, asyncio.Future[Result]] = field(default_factory=dict)
    """The invocations running until the test ends them, by request id (or function name)."""
    running: int = 0
    most_running: int = 0
    """The most invocations that ran at the same time."""
    _scripts: dict[str, list[Result | str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logs = LogWriter(self.store)  # never started: nothing is written, so nothing is waited for

    # -- what the test sets up --
    def deploy(self, name: str, **config: Any) -> FakeFunction:
        version = FunctionVersion(name, 1, "project", "hash", dict(config), "", 0.0)
        function = self.functions[name] = FakeFunction(name, version)
        return function

    def declare(self, kind: str, name: str, **config: Any) -> None:
        self.resources.setdefault(kind, {})[name] = Resource(kind, name, "project", dict(config))

    def script(self, function: str, *answers: Result | str) -> None:
        """What the next invocations of `function` answer, in order (then: ok)."""
        self.scripts(function).extend(answers)

    def scripts(self, function: str) -> list[Result | str]:
        return self._scripts.setdefault(function, [])

    def finish(self, key: str, result: Result | None = None) -> None:
        """End the held invocation `key` (its request id, or its function's name) with `result`."""
        self.held.pop(key).set_result(result or ok())

    def calls_of(self, function: str) -> list[Call]:
        return [call for call in self.calls if call.function == function]

    # -- the EventHost Protocol --
    def get(self, name: str) -> HostedFunction:
        if name not in self.functions:
            raise NotFound(f"Function not found: {name}")
        return self.functions[name]

    def pick(self, name: str, alias: str = LIVE_ALIAS) -> HostedFunction | None:
        return self.functions.get(name)

    async def resolve(self, target: str, qualifier: str | None = None) -> HostedFunction:
        return self.get(split_target(target)[0])

    async def invoke(self, function: HostedFunction, event: bytes, request_id: str | None = None) -> Result:
        script = self.scripts(function.name)
        answer = script.pop(0) if script else ok()
        if answer == THROTTLED:
            raise Throttled(f"{function.name} is at its concurrency limit")
        self.calls.append(Call(function.name, json.loads(event), request_id, self.clock.time()))
        if not isinstance(answer, Result):  # HOLD
            held = self.held[request_id or function.name] = asyncio.get_running_loop().create_future()
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            try:
                return await held
            finally:
                self.running -= 1
        return answer

    def stop_request(self, request_id: str) -> bool:
        self.stopped.append(request_id)
        if request_id not in self.held:
            return False
        self.finish(request_id, error("the instance was stopped"))
        return True

    def store_changed(self) -> None:
        pass


def make_host(tmp_path: Path, clock: ManualClock | None = None) -> FakeHost:
    return FakeHost(open_store(tmp_path), clock or ManualClock(), HostSettings(tmp_path))
