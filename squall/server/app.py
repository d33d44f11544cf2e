"""The node's ASGI app: `/_squall/...` goes to the platform API, every other path to the gateway."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette

from squall.server.api import PlatformApi
from squall.server.aws_lambda import LambdaApi
from squall.server.gateway import Gateway
from squall.server.node import Node
from squall.server.responses import error_response

PREFIX = "/_squall/"
StartupHook = Callable[[Node], Awaitable[None]]


def build_app(node: Node, token: str, on_startup: StartupHook | None = None) -> Callable[..., Any]:
    """The ASGI app of `node`; `on_startup` runs once the node is started (used by `squall dev`)."""
    api = PlatformApi(node, token)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await node.start()
        if on_startup is not None:
            await on_startup(node)
        try:
            yield
        finally:
            await node.stop()

    async def not_found(request: Any, exc: Exception) -> Any:
        return error_response(404, "NotFound", f"no platform endpoint at {request.url.path}")

    platform = Starlette(routes=[*api.routes(), *LambdaApi(node, token).routes()], lifespan=lifespan, exception_handlers={404: not_found})
    gateway = Gateway(node)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(PREFIX):
            await gateway(scope, receive, send)
        else:
            await platform(scope, receive, send)

    return app
