"""The server's ASGI app: requests for a stage (squall/server/stages.py) go to that stage's
node; for each node, `/_squall/...` goes to the platform API and every other path to the
gateway. The app answers ASGI lifespan itself: starting the root node, then the stages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from squall.server.api import PlatformApi
from squall.server.aws_lambda import LambdaApi
from squall.node.credential_refresh import refresh_credentials_forever
from squall.server.gateway import Gateway
from squall.node.core import Node
from squall.server.responses import error_response
from squall.server.sdk_api import SdkApi
from squall.server.tables_api import DYNAMODB_PREFIX, TablesApi
from squall.tasks import cancel_and_wait

PREFIX = "/_squall/"
ExtraRoutes = Callable[[Callable[[Any], Any]], list[Route]]
"""Given the admin guard, more platform routes (the stages API, on the root node)."""


class NodeApp:
    """One node's requests: platform API, DynamoDB and Lambda doors, gateway; and its start/stop."""

    def __init__(self, node: Node, token: str, extra_routes: ExtraRoutes | None = None) -> None:
        self.node = node
        api = PlatformApi(node, token)
        self.tables = TablesApi(node, token, SdkApi(node, api.events))
        routes = [*api.routes(), *LambdaApi(node, token).routes(), *self.tables.routes(api.admin_only),
                  *(extra_routes(api.admin_only) if extra_routes else [])]
        self.platform = Starlette(routes=routes, exception_handlers={404: _not_found})
        self.gateway = Gateway(node)
        self._background: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.node.start()
        self._background = [asyncio.create_task(self.tables.expire_forever()),
                            asyncio.create_task(refresh_credentials_forever(self.node))]

    async def stop(self) -> None:
        for task in self._background:
            await cancel_and_wait(task)
        await self.node.stop()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not scope["path"].startswith(PREFIX):
            await self.gateway(scope, receive, send)
        elif scope["path"].startswith(DYNAMODB_PREFIX):
            await self.tables.dynamodb(scope, receive, send)
        else:
            await self.platform(scope, receive, send)


async def _not_found(request: Any, exc: Exception) -> Any:
    return error_response(404, "NotFound", f"no platform endpoint at {request.url.path}")
