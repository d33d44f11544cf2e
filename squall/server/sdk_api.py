"""What function code reaches through `squall.sdk`: publishing to topics, sending to queues
and reading and writing bucket objects, under `/_squall/sdk/`.

Each instance gets `SQUALL_API_URL` and `SQUALL_FUNCTION_TOKEN` (its function's name
signed with a key kept in the store, squall/server/specs.py). A function may use the
topics, queues and buckets of its own project (declared in the same squall.yaml);
anything else is 403 `AccessDenied`. Finer grants per function are the permissions
feature's business.

    POST /topics/{name}/publish            {"message", "subject"?, "attributes"?}
    POST /queues/{name}/messages           {"body", "attributes"?, "group_id"?, ...}
    GET  /buckets/{b}/objects              ?prefix=&start_after=&limit=
    PUT/GET/DELETE /buckets/{b}/objects/{key}
"""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.exceptions import SquallError
from squall.server.events_api import EventsApi
from squall.server.node import Node
from squall.server.responses import error_response, json_response
from squall.server.specs import token_function

Endpoint = Callable[[Request], Awaitable[Response]]
PREFIX = "/_squall/sdk"


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

    def guard(self, kind: str, endpoint: Endpoint) -> Endpoint:
        """Wrap `endpoint`: the caller's credential must name an active function whose
        project declares the resource; errors become JSON errors."""
        async def guarded(request: Request) -> Response:
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            function = token_function(self.node.settings.sdk_key, token) if token else None
            if function is None or function not in self.node.functions:
                return error_response(401, "Unauthorized", "missing or unknown function credential "
                             "(squall.sdk reads SQUALL_FUNCTION_TOKEN)")
            name = request.path_params.get("name") or request.path_params.get("bucket")
            resource = self.node.resources.get(kind, {}).get(str(name))
            project = self.node.functions[function].version.project
            if resource is not None and resource.project != project:
                return error_response(403, "AccessDenied", f"function {function} (project {project}) may not use "
                             f"{kind} {name} of project {resource.project}")
            try:
                return await endpoint(request)
            except SquallError as exc:
                return json_response({"error": exc.to_dict()}, exc.status_code)
        return guarded
