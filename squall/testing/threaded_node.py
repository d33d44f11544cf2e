"""A real squall node serving from a thread of this process, for tests.

`ThreadedNode` makes the node `squall server` makes (squall/server/run.py: `make_node`, the
same store, instance pool, zygote and sandbox) and serves its ASGI app (`build_app`) with
uvicorn, configured as the server is (`server_config`), on a free loopback port, with the
server's event loop on a thread of its own. Function instances are processes forked by the
zygote, as always; the node, its doors and its background loops live in this process.

While a node runs, the process's umask is the node's (077, as `squall server` sets it); when
the last node of the process stops, the umask is given back, and what the nodes' starts moved
out of the garbage collector's sight (`gc.freeze`) is returned to it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from squall.exceptions import SquallError

if TYPE_CHECKING:
    from squall.node.core import Node
    from squall.server.connections import BoundedServer

T = TypeVar("T")
HOST = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
GRACEFUL_SHUTDOWN = 10.0
"""Seconds the server waits for requests in flight when it stops, before it cancels them."""


class NodeStartError(SquallError):
    """The node did not start (its store, its app's start-up, or the server failed)."""


class _ProcessState:
    """What running nodes change for the whole process (the umask, the frozen heap), given back
    when the last of them stops: nodes may overlap (a module's node and a test's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes = 0
        self._umask = 0

    def enter(self) -> None:
        with self._lock:
            umask = os.umask(0o077)
            if self._nodes == 0:
                self._umask = umask
            self._nodes += 1

    def leave(self) -> None:
        with self._lock:
            self._nodes -= 1
            if self._nodes == 0:
                os.umask(self._umask)
                gc.unfreeze()


_PROCESS = _ProcessState()


class ThreadedNode:
    """A node on `data_dir` answering at `url` with the admin token `token`. `on_startup`
    runs on the node's loop once the node has started, before the port is served."""

    def __init__(self, data_dir: Path, token: str,
                 on_startup: Callable[[Node], Awaitable[None]] | None = None) -> None:
        self.data_dir = data_dir
        self.token = token
        self.url = ""
        self.on_startup = on_startup
        self._node: Node | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: BoundedServer | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._entered = False
        self._failure: str | None = None

    @property
    def node(self) -> Node:
        if self._node is None:
            raise RuntimeError("the node has not been started")
        return self._node

    def start(self, timeout: float = START_TIMEOUT) -> ThreadedNode:
        """Start the node and serve it; returns once it answers. Raises NodeStartError."""
        from squall.server.root import build_app
        from squall.server.connections import BoundedServer
        from squall.server.run import make_node, server_config
        from squall.settings import Settings

        _PROCESS.enter()
        self._entered = True
        try:
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.bind((HOST, 0))
            self.url = f"http://{HOST}:{self._socket.getsockname()[1]}"
            settings = Settings.from_environ()  # the server's settings, as `squall server` reads them
            self._node = make_node(self.data_dir, None, settings, api_url=self.url)
            served = build_app(self._node, self.token, self._started)
            app = self._watched(served)
            config = server_config(app, HOST, int(self._socket.getsockname()[1]), settings, served.direct,
                                   log_config=None,
                                   timeout_graceful_shutdown=GRACEFUL_SHUTDOWN)
            self._server = BoundedServer(config)
            self._thread = threading.Thread(target=self._serve, name="squall-test-node", daemon=True)
            self._thread.start()
            self._wait_started(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coroutine` on the node's loop and return its result (from any other thread)."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("the node is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop serving and stop the node (its instances, its zygote, its store). Idempotent."""
        thread, server = self._thread, self._server
        try:
            if thread is not None and server is not None and thread.is_alive():
                server.should_exit = True
                thread.join(timeout)
                if thread.is_alive():
                    server.force_exit = True
                    thread.join(5.0)
                if thread.is_alive():
                    raise RuntimeError(f"the squall node at {self.url} did not stop within {timeout:g} s")
            elif self._node is not None and thread is None:
                self._node.store.close()  # made, never started
        finally:
            self._thread = self._server = self._loop = None
            if self._socket is not None:
                self._socket.close()
                self._socket = None
            if self._entered:
                self._entered = False
                _PROCESS.leave()

    # -- the server thread ---------------------------------------------------------

    async def _started(self, node: Node) -> None:
        self._loop = asyncio.get_running_loop()
        if self.on_startup is not None:
            await self.on_startup(node)

    def _watched(self, app: Callable[..., Any]) -> Callable[..., Any]:
        """`app`, keeping the message of a failed lifespan start-up for NodeStartError."""
        async def watched(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "lifespan":
                await app(scope, receive, send)
                return

            async def sending(message: dict[str, Any]) -> None:
                if message["type"] == "lifespan.startup.failed":
                    self._failure = str(message.get("message") or "the start-up failed")
                await send(message)

            await app(scope, receive, sending)
        return watched

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # noqa: BLE001 - uvicorn exits (SystemExit) when the start-up fails
            self._failure = self._failure or f"{type(exc).__name__}: {exc}"

    def _wait_started(self, timeout: float) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise NodeStartError(f"the squall node did not start: {self._failure or 'the server exited'}")
            if time.monotonic() > deadline:
                raise NodeStartError(f"the squall node did not start within {timeout:g} s")
            time.sleep(0.01)
