"""The server's ASGI app: the root node's app (squall/server/app.py) and the apps of its
stages (squall/server/stages.py), with the stages API on the root; and ASGI lifespan, which it
answers itself: starting the root node, then the stages. Beside it, the direct lane that serves
the root node's user routes without ASGI (squall/server/direct.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from squall.node.core import Node
from squall.server.app import NodeApp
from squall.server.direct import DirectRoutes
from squall.server.event_door import EventSubmissionDoor
from squall.server.stages import StageSet
from squall.server.stages_api import StagesApi

StartupHook = Callable[[Node], Awaitable[None]]


class ServerApp:
    """The server's ASGI app (called as one) and its direct lane, which the HTTP protocol
    is given (squall/server/run.py, `server_config`)."""

    def __init__(self, asgi: Callable[..., Any], direct: DirectRoutes) -> None:
        self.asgi = asgi
        self.direct = direct

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.asgi(scope, receive, send)


def build_app(node: Node, token: str, on_startup: StartupHook | None = None) -> ServerApp:
    """The ASGI app of the root `node` and its stages, and the direct lane of the root's user
    routes; `on_startup` runs once the root node is started (used by `squall dev`)."""
    stages = StageSet(node, token)
    root = NodeApp(node, token, lambda guard: StagesApi(stages).routes(guard))

    async def start() -> None:
        await root.start()
        await stages.start()
        if on_startup is not None:
            await on_startup(node)

    async def stop() -> None:
        await stages.stop()
        await root.stop()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            routed = stages.route(scope)
            if routed is None:
                await root(scope, receive, send)
            else:
                await routed[0](routed[1], receive, send)
        elif scope["type"] == "lifespan":
            await run_lifespan(receive, send, start, stop)

    return ServerApp(app, DirectRoutes(root.gateway, stages, EventSubmissionDoor(node, token)))


async def run_lifespan(receive: Any, send: Any, start: Callable[[], Awaitable[None]],
                       stop: Callable[[], Awaitable[None]]) -> None:
    """ASGI's lifespan protocol: `start` on startup, `stop` on shutdown, failures reported."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await start()
            except BaseException as exc:  # noqa: BLE001 - reported to the server, which exits
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            with contextlib.suppress(Exception):
                await stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
