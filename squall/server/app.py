"""The node's ASGI app: `/_squall/...` goes to the platform API, every other path to the gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette

from squall.server.api import PlatformApi
from squall.server.aws_lambda import LambdaApi
from squall.server.credential_refresh import refresh_credentials_forever
from squall.server.gateway import Gateway
from squall.server.node import Node
from squall.server.responses import error_response
from squall.server.sdk_api import SdkApi
from squall.server.tables_api import DYNAMODB_PREFIX, TablesApi
from squall.tasks import cancel_and_wait

PREFIX = "/_squall/"
StartupHook = Callable[[Node], Awaitable[None]]


def build_app(node: Node, token: str, on_startup: StartupHook | None = None) -> Callable[..., Any]:
    """The ASGI app of `node`; `on_startup` runs once the node is started (used by `squall dev`)."""
    api = PlatformApi(node, token)
    tables = TablesApi(node, token, SdkApi(node, api.events))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await node.start()
        background = [asyncio.ensure_future(tables.expire_forever()),
                      asyncio.ensure_future(refresh_credentials_forever(node))]
        if on_startup is not None:
            await on_startup(node)
        try:
            yield
        finally:
            for task in background:
                await cancel_and_wait(task)
            await node.stop()

    async def not_found(request: Any, exc: Exception) -> Any:
        return error_response(404, "NotFound", f"no platform endpoint at {request.url.path}")

    routes = [*api.routes(), *LambdaApi(node, token).routes(), *tables.routes(api.admin_only)]
    platform = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found})
    gateway = Gateway(node)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(PREFIX):
            await gateway(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].startswith(DYNAMODB_PREFIX):
            await tables.dynamodb(scope, receive, send)
        else:
            await platform(scope, receive, send)

    return app
