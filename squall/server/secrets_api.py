"""The platform API for secrets (`/_squall/api/...`, admin token). Values go in, never out:
no answer, error or log line of these endpoints holds a secret's value.

    GET    /secrets         {"secrets": [{"name", "status", "created_at", "updated_at",
                            "functions"}]}: every stored secret, and every secret a function
                            lists that is not set; `status` is "set", "not set" or
                            "unreadable" (it does not decrypt with this node's key);
                            `functions` are the active functions that list it
    PUT    /secrets/{name}  the body is the value (UTF-8 text, at most 32 KB)
                            -> {"name", "created", "functions"}
    DELETE /secrets/{name}  -> {"name", "functions"}; 404 when no such secret is set

A set or a delete takes effect on this node at once (the functions that list the secret get
the new value in their next instance; idle ones are recycled) and on the other nodes of a
shared store within a few seconds (squall/node/secret_env.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.exceptions import NotFound, PayloadTooLarge, SquallError
from squall.secrets import KEY_ENV, KEY_FILE, MAX_SECRET_BYTES, check_secret_name, check_secret_value
from squall.server.bodies import BodyTooLarge, read_body
from squall.node.core import Node
from squall.server.responses import json_response


class SecretsApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def routes(self, guard: Callable[[Any], Any]) -> list[Route]:
        return [
            Route("/_squall/api/secrets", guard(self.list_secrets), methods=["GET"]),
            Route("/_squall/api/secrets/{name}", guard(self.set_secret), methods=["PUT"]),
            Route("/_squall/api/secrets/{name}", guard(self.delete_secret), methods=["DELETE"]),
        ]

    def users(self, name: str) -> list[str]:
        """The active functions that list the secret `name`."""
        return sorted(f.name for f in self.node.functions.values() if name in (f.version.config.get("secrets") or ()))

    async def list_secrets(self, request: Request) -> Response:
        await self.node.sync_secrets()
        stored = await run_in_threadpool(self.node.store.list_secrets)
        unreadable = self.node.secrets.unreadable()
        rows: dict[str, dict[str, Any]] = {
            info.name: {"name": info.name, "status": "unreadable" if info.name in unreadable else "set",
                        "created_at": info.created_at, "updated_at": info.updated_at}
            for info in stored}
        for function in self.node.functions.values():
            for name in function.version.config.get("secrets") or ():
                rows.setdefault(name, {"name": name, "status": "not set", "created_at": None, "updated_at": None})
        return json_response({"secrets": [{**rows[name], "functions": self.users(name)} for name in sorted(rows)]})

    async def set_secret(self, request: Request) -> Response:
        name = check_secret_name(request.path_params["name"])
        try:
            body = await read_body(request.scope, request.receive, MAX_SECRET_BYTES)
        except BodyTooLarge:
            raise PayloadTooLarge(f"the value is over {MAX_SECRET_BYTES} bytes, the most a secret holds (put "
                                  "larger data in a bucket and keep its key as the secret)") from None
        value = check_secret_value(body)
        box = self.node.secrets.box
        if box is None:
            raise SquallError(f"this node has no secret key ({KEY_ENV} or DATA/{KEY_FILE}), so it cannot "
                              "store secrets")
        store = self.node.store
        existed = bool(await run_in_threadpool(store.get_secrets, [name]))
        await run_in_threadpool(lambda: store.put_secret(name, box.seal(name, value), now=time.time()))
        await self.node.sync_secrets()
        return json_response({"name": name, "created": not existed, "functions": self.users(name)})

    async def delete_secret(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not await run_in_threadpool(self.node.store.delete_secret, name):
            raise NotFound(f"secret {name} is not set")
        await self.node.sync_secrets()
        return json_response({"name": name, "functions": self.users(name)})
