"""The server's ASGI app: the root node's app (squall/server/app.py) and the apps of its
stages (squall/server/stages.py), with the stages API on the root; and ASGI lifespan, which it
answers itself: starting the root node, then the stages."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from squall.node.core import Node
from squall.server.app import NodeApp
from squall.server.stages import StageSet
from squall.server.stages_api import StagesApi

StartupHook = Callable[[Node], Awaitable[None]]


def build_app(node: Node, token: str, on_startup: StartupHook | None = None) -> Callable[..., Any]:
    """The ASGI app of the root `node` and its stages; `on_startup` runs once the root node is
    started (used by `squall dev`)."""
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

    return app


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
