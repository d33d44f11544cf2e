"""What function code reaches through `squall.sdk`: publishing to topics, sending to queues
and reading and writing bucket objects, under `/_squall/sdk/`.

Each instance gets `SQUALL_API_URL` and `SQUALL_FUNCTION_TOKEN`, its function's scoped
credential (squall/credentials.py). A function may use the topics, queues, buckets and tables
its manifest lists under its own keys (squall/manifest/grants.py); anything else is 403 `AccessDenied`.

    POST /tables/{Operation}               a DynamoDB request (squall/server/tables_api.py)
    POST /topics/{name}/publish            {"message", "subject"?, "attributes"?}
    POST /queues/{name}/messages           {"body", "attributes"?, "group_id"?, ...}
    GET  /buckets/{b}/objects              ?prefix=&start_after=&limit=
    PUT/GET/DELETE /buckets/{b}/objects/{key}
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall import credentials
from squall.exceptions import SquallError
from squall.server.events_api import EventsApi
from squall.node.core import Node
from squall.server.responses import error_response, json_response

Endpoint = Callable[[Request], Awaitable[Response]]
PREFIX = "/_squall/sdk"


def unauthorized() -> Response:
    return error_response(401, "Unauthorized", "missing, expired or unknown function credential "
                          "(squall.sdk reads SQUALL_FUNCTION_TOKEN)")


class SdkApi:
    def __init__(self, node: Node, events: EventsApi) -> None:
        self.node = node
        self.events = events

    def routes(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/topics/{{name}}/publish", self.guard("topic", self.events.publish), methods=["POST"]),
            Route(f"{PREFIX}/queues/{{name}}/messages", self.guard("queue", self.events.send_message),
                  methods=["POST"]),
            Route(f"{PREFIX}/buckets/{{bucket}}/objects", self.guard("bucket", self.events.list_objects)),
            Route(f"{PREFIX}/buckets/{{bucket}}/objects/{{key:path}}", self.guard("bucket", self.events.object),
                  methods=["GET", "PUT", "DELETE"]),
        ]

    def caller(self, request: Request) -> str | None:
        """The active function whose credential the request carries, or None."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        function = credentials.check_token(self.node.settings.sdk_key, token, time.time()) if token else None
        return function if function in self.node.functions else None

    def guard(self, kind: str, endpoint: Endpoint) -> Endpoint:
        """Wrap `endpoint`: the caller's credential must name an active function that is
        granted the resource; errors become JSON errors."""
        async def guarded(request: Request) -> Response:
            function = self.caller(request)
            if function is None:
                return unauthorized()
            name = str(request.path_params.get("name") or request.path_params.get("bucket"))
            if name not in self.node.functions[function].version.config.get(f"{kind}s", ()):
                return error_response(403, "AccessDenied", f"function {function} may not use {kind} {name}: "
                                      f"list it under the function's {kind}s: in squall.yaml")
            try:
                return await endpoint(request)
            except SquallError as exc:
                return json_response({"error": exc.to_dict()}, exc.status_code)
        return guarded
