"""The platform API for aliases and rollback (`/_squall/api/...`, admin token):

    GET    /functions/{name}/aliases          {"aliases": [{"function", "name", "version",
                                              "weights": {"7": 90, "8": 10}, "updated_at"}]}
    PUT    /functions/{name}/aliases/{alias}  body {"version": 7} or {"weights": {"7": 90, "8": 10}}
                                              -> the alias as above
    DELETE /functions/{name}/aliases/{alias}  -> {"function", "name"}
    POST   /functions/{name}/rollback         body {"alias": "live", "to": 6} (both optional)
                                              -> {"function", "alias", "from", "to"}

A change is committed to the store, then served by this node before the answer, and by the
other nodes of a shared store as soon as they hear its notice: no instance is started or
rebuilt for it, so it takes effect in well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.node import aliases as releases
from squall.exceptions import BadInput
from squall.server.bodies import MAX_JSON_REQUEST_BYTES, request_body
from squall.server.events_api import json_object
from squall.node.core import Node
from squall.server.responses import json_response
from squall.releases import LIVE_ALIAS
from squall.manifest.values import check_alias_name


class AliasesApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def routes(self, guard: Callable[[Any], Any]) -> list[Route]:
        base = "/_squall/api/functions/{name}"
        return [
            Route(f"{base}/aliases", guard(self.list_aliases), methods=["GET"]),
            Route(f"{base}/aliases/{{alias}}", guard(self.set_alias), methods=["PUT"]),
            Route(f"{base}/aliases/{{alias}}", guard(self.remove_alias), methods=["DELETE"]),
            Route(f"{base}/rollback", guard(self.rollback), methods=["POST"]),
        ]

    async def list_aliases(self, request: Request) -> Response:
        found = await run_in_threadpool(releases.current_aliases, self.node.store, request.path_params["name"])
        return json_response({"aliases": [releases.alias_info(a) for a in found]})

    async def set_alias(self, request: Request) -> Response:
        name, alias = request.path_params["name"], alias_name(request.path_params["alias"])
        weights = weights_of(await json_object(request))
        async with self.node.deploy_lock:
            moved = await run_in_threadpool(releases.set_alias, self.node.store, name, alias, weights)
            await self.node.sync_from_store()
        return json_response(releases.alias_info(moved))

    async def remove_alias(self, request: Request) -> Response:
        name, alias = request.path_params["name"], request.path_params["alias"]
        async with self.node.deploy_lock:
            await run_in_threadpool(releases.remove_alias, self.node.store, name, alias)
            await self.node.sync_from_store()
        return json_response({"function": name, "name": alias})

    async def rollback(self, request: Request) -> Response:
        body = await json_object(request) if await request_body(request, MAX_JSON_REQUEST_BYTES) else {}
        alias = alias_name(body.get("alias") or LIVE_ALIAS)
        to = body.get("to")
        if to is not None and (not isinstance(to, int) or isinstance(to, bool) or to < 1):
            raise BadInput(f'"to" must be a version number, got {to!r}')
        async with self.node.deploy_lock:
            moved = await run_in_threadpool(releases.rollback, self.node.store, request.path_params["name"],
                                            alias, to)
            await self.node.sync_from_store()
        return json_response(moved)


def alias_name(value: Any) -> str:
    try:
        return check_alias_name(value)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def weights_of(body: dict[str, Any]) -> dict[int, int]:
    """`{"version": 7}` or `{"weights": {"7": 90, "8": 10}}` as `{7: 100}` / `{7: 90, 8: 10}`."""
    if ("version" in body) == ("weights" in body):
        raise BadInput('give either "version" or "weights"')
    if "version" in body:
        body = {"weights": {str(body["version"]): 100}}
    raw = body["weights"]
    if not isinstance(raw, dict) or not raw:
        raise BadInput('"weights" must be an object of version number to percentage')
    weights = {}
    for number, weight in raw.items():
        if not str(number).isdigit() or not isinstance(weight, int) or isinstance(weight, bool):
            raise BadInput(f"bad weight {number!r}: {weight!r} (want version number: whole percentage)")
        weights[int(number)] = weight
    return weights
