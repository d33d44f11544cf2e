"""The platform API under `/_squall/api/` (admin token required) and `/_squall/health`.

The admin token is checked before any body is read, and every body is read through
squall/server/bodies.py under its endpoint's cap (a deploy's bundle: 256 MB)."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import os
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall import __version__
from squall.exceptions import BadInput, NotFound, SquallError
from squall.runtime.instance import Instance
from squall.server.aliases_api import AliasesApi
from squall.server.bodies import MAX_DEPLOY_BYTES, request_body
from squall.node.deploy import Deployer
from squall.server.events_api import EventsApi
from squall.node.core import ActiveFunction, Node
from squall.server.responses import error_response, event_payload, invocation_response, json_response
from squall.server.sdk_api import SdkApi
from squall.server.secrets_api import SecretsApi
from squall.server.versions_api import VersionsApi
from squall.store.base import LogRecord

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

Endpoint = Callable[[Request], Awaitable[Response]]


def function_info(function: ActiveFunction) -> dict[str, Any]:
    version, config = function.version, function.version.config
    return {
        "name": function.name, "project": version.project, "version": version.number,
        "code_hash": version.code_hash, "handler": config.get("handler"), "runtime": config.get("runtime"),
        "memory": config.get("memory"), "timeout": config.get("timeout"),
        "routes": [t["http"] for t in config.get("triggers", []) if "http" in t],
        "updated_at": version.created_at,
    }


def instance_info(instance: Instance) -> dict[str, Any]:
    state = instance.state.value + (" (frozen)" if instance.frozen else "")
    return {"function": instance.spec.function, "version": instance.spec.version, "pid": instance.pid,
            "state": state, "started_at": instance.created_at, "invocations": instance.invocations,
            "memory_mb": resident_mb(instance.pid), "init_ms": instance.init_ms}


def resident_mb(pid: int) -> float | None:
    """Resident memory of a process from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * PAGE_SIZE / 2**20, 1)


def log_info(record: LogRecord) -> dict[str, Any]:
    return {"id": record.id, "ts": record.ts, "level": record.level.value, "message": record.message,
            "request_id": record.request_id, "version": record.version}


NOT_ADMIN = "missing or wrong admin token (send 'Authorization: Bearer <token>'; the CLI reads SQUALL_TOKEN)"


def is_admin(authorization: str, token: bytes) -> bool:
    """Whether an Authorization header carries the admin bearer `token`."""
    given = authorization.removeprefix("Bearer ").strip().encode()
    return bool(given) and hmac.compare_digest(given, token)


class PlatformApi:
    """Endpoints of the platform API, bound to one node."""

    def __init__(self, node: Node, token: str) -> None:
        self.node = node
        self.token = token.encode()
        self.deployer = Deployer(node)
        self.events = EventsApi(node)

    def routes(self) -> list[Route]:
        guard = self.admin_only
        return [
            Route("/_squall/health", self.health),
            Route("/_squall/api/deploy", guard(self.deploy), methods=["POST"]),
            Route("/_squall/api/functions", guard(self.list_functions)),
            Route("/_squall/api/functions/{name}", guard(self.get_function)),
            Route("/_squall/api/functions/{name}/invoke", guard(self.invoke), methods=["POST"]),
            Route("/_squall/api/functions/{name}/logs", guard(self.logs)),
            Route("/_squall/api/instances", guard(self.instances)),
            Route("/_squall/api/functions/{name}/recycle", guard(self.recycle), methods=["POST"]),
            *self.events.routes(guard),
            *SecretsApi(self.node).routes(guard),
            *VersionsApi(self.node).routes(guard),
            *AliasesApi(self.node).routes(guard),
            *SdkApi(self.node, self.events).routes(),
        ]

    def admin_only(self, endpoint: Endpoint) -> Endpoint:
        """Wrap `endpoint`: 401 without the admin bearer token; SquallErrors become JSON errors."""
        async def guarded(request: Request) -> Response:
            if not is_admin(request.headers.get("authorization", ""), self.token):
                return error_response(401, "Unauthorized", NOT_ADMIN)
            try:
                return await endpoint(request)
            except SquallError as exc:
                return json_response({"error": exc.to_dict()}, exc.status_code)
        return guarded

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok", "version": __version__})

    async def deploy(self, request: Request) -> Response:
        bundle = await request_body(request, MAX_DEPLOY_BYTES)
        return json_response(await self.deployer.deploy(bundle))

    async def list_functions(self, request: Request) -> Response:
        functions = sorted(self.node.functions.values(), key=lambda f: f.name)
        return json_response({"functions": [function_info(f) for f in functions]})

    async def get_function(self, request: Request) -> Response:
        return json_response(function_info(self.node.get(request.path_params["name"])))

    async def invoke(self, request: Request) -> Response:
        function = await self.node.resolve(request.path_params["name"])
        event = await event_payload(request)
        return invocation_response(await self.node.invoke(function, event))

    async def instances(self, request: Request) -> Response:
        name = request.query_params.get("function") or None
        if name is not None:
            self.node.get(name)
        live = [i for i in self.node.pool.instances() if name is None or i.spec.function == name]
        live.sort(key=lambda i: (i.spec.function, i.spec.version, i.created_at))
        return json_response({"instances": [instance_info(i) for i in live],
                              "stats": dataclasses.asdict(self.node.pool.stats)})

    async def recycle(self, request: Request) -> Response:
        function = self.node.get(request.path_params["name"])
        stopped = self.node.pool.recycle(function.name)
        if function.spec.min_instances:
            asyncio.ensure_future(self.node.pool.provision(function.spec))
        return json_response({"function": function.name, "stopped": stopped})

    async def logs(self, request: Request) -> Response:
        name = request.path_params["name"]
        query = request.query_params
        if name not in self.node.functions and await run_in_threadpool(self.node.store.get_function, name) is None:
            raise NotFound(f"Function not found: {name}")
        try:
            since = float(query["since"]) if query.get("since") else None
            after, limit = int(query.get("after", 0)), min(int(query.get("limit", 1000)), 10000)
        except ValueError as exc:
            raise BadInput(f"bad log query: {exc}") from None
        records = await run_in_threadpool(self.node.store.read_logs, name, since=since,
                                          request_id=query.get("request_id") or None, after_id=after, limit=limit)
        return json_response({"logs": [log_info(r) for r in records]})
