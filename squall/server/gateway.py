"""The HTTP gateway: user routes -> function -> HTTP API 2.0 event -> invoke -> HTTP response.

A raw ASGI app (no framework on the hot path). Everything outside `/_squall/`
lands here. A route's api_key is checked before the body is read; the body is read through
squall/server/bodies.py, at most 6 MB, within the node's budget for route bodies (bodies.ROUTES:
past it 503 with Retry-After); an hmac route checks it once read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import orjson

from squall import lambda_json
from squall.exceptions import Throttled
from squall.http_event import (
    HttpRequest,
    HttpResponse,
    build_event_v2,
    event_headers,
    json_error,
    method_not_allowed,
    parse_lambda_response,
)
from squall.releases import LIVE_ALIAS
from squall.request_ids import new_request_id, trace_id_from
from squall.route_auth import AuthFailure, check_api_key, check_hmac_sha256, is_platform_variable
from squall.routing import MethodNotAllowed, RouteMatch
from squall.server.bodies import ROUTES, BodyBudget, BodySlotsSpent, BodyTooLarge, read_body
from squall.runtime.protocol import MAX_PAYLOAD_BYTES
from squall.node.core import ActiveFunction, Node

LIMIT_MB = MAX_PAYLOAD_BYTES // (1024 * 1024)
Scope = dict[str, Any]


def check_route_auth(auth: Mapping[str, Any] | None, function: ActiveFunction, headers: Mapping[str, str],
                     body: bytes) -> AuthFailure | None:
    """Apply the route's declared `auth`, if any; the secret is the function's env variable
    (never a platform variable: the manifest refuses those, and so does this, for old versions)."""
    if not auth:
        return None
    name = str(auth.get("secret_env", ""))
    secret = "" if is_platform_variable(name) else function.spec.environ.get(name, "")
    header = str(auth.get("header", ""))
    if auth.get("type") == "api_key":
        return check_api_key(headers, header, secret)
    return check_hmac_sha256(headers, body, header, str(auth.get("prefix", "")), secret)


def needs_body(auth: Mapping[str, Any] | None) -> bool:
    """Whether the route's auth checks the body (hmac); an api_key is checked before reading it."""
    return auth is not None and bool(auth) and auth.get("type") != "api_key"


def named_header(headers: list[tuple[bytes, bytes]], header: str) -> dict[str, str]:
    """The one header an api_key route checks, as the event would carry it (not all of them)."""
    wanted = header.lower().encode("latin-1", "replace")
    return event_headers((name, value) for name, value in headers if name.lower() == wanted)


BUSY = [("retry-after", "1")]
HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade"})
"""Response headers a function cannot set: the server frames the response itself (a
function's Content-Length or Transfer-Encoding could otherwise split the connection's stream)."""
TOO_LARGE = f"Request body is larger than the {LIMIT_MB} MB limit"
TOO_MANY_BODIES = "The server is reading too many request bodies at once (or too many from this client); retry shortly"


@dataclass(slots=True)
class Routed:
    """A request the gateway will serve: its route, its function, and whether the route's
    auth checks the body (hmac) once it is read."""

    match: RouteMatch
    function: ActiveFunction
    signed: bool


class Gateway:
    """The users' HTTP routes of one node: routing and auth (`route`), then the event, the
    invocation and the response (`answer`). The ASGI app (`__call__`) and the server's direct
    lane (squall/server/direct.py) read the body in between, each its own way."""

    body_limit = MAX_PAYLOAD_BYTES
    body_budget: BodyBudget | None = ROUTES

    def __init__(self, node: Node) -> None:
        self.node = node

    def too_large(self) -> HttpResponse:
        return json_error(413, TOO_LARGE)

    def too_busy(self) -> HttpResponse:
        return json_error(503, TOO_MANY_BODIES, BUSY)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        response = await self.handle(scope, receive)
        await send_response(send, response)

    async def handle(self, scope: Scope, receive: Any) -> HttpResponse:
        path = request_path(scope)
        routed = self.route(scope["method"], path, scope["headers"])
        if isinstance(routed, HttpResponse):
            return routed
        try:
            body = await read_body(scope, receive, self.body_limit, self.body_budget)
        except BodyTooLarge:
            return self.too_large()
        except BodySlotsSpent:
            return self.too_busy()
        return await self.answer(routed, http_request(scope, path, body))

    def route(self, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Routed | HttpResponse:
        """The route and function for `method` on `path` (raw, no query), its api_key checked
        against `headers` (lowercased names); or the refusal to send (404, 405, 401, 503)."""
        match = self.node.routes.match(method, path)
        if match is None:
            return json_error(404, "Not Found")
        if isinstance(match, MethodNotAllowed):
            return method_not_allowed(match.allowed)
        function = self.node.pick(*match.route.target)
        if function is None:
            return self.unserved(*match.route.target)
        auth = match.route.auth
        signed = needs_body(auth)
        if auth and not signed:
            failure = check_route_auth(auth, function, named_header(headers, str(auth.get("header", ""))), b"")
            if failure is not None:
                return json_error(failure.status, failure.message)
        return Routed(match, function, signed)

    def unserved(self, name: str, alias: str) -> HttpResponse:
        """The answer of a route whose function is gone (404) or whose alias is not set (503)."""
        if name in self.node.functions:
            return json_error(503, f"alias {alias} of function {name} is not set (squall alias set {name} {alias} N)")
        return json_error(404, "Not Found")

    async def answer(self, routed: Routed, request: HttpRequest) -> HttpResponse:
        """Invoke the routed function with `request` (its body read) and convert its result."""
        match, function = routed.match, routed.function
        request_id = new_request_id()
        event = build_event_v2(request, match, request_id=request_id, account_id=self.node.settings.account_id)
        if routed.signed:
            failure = check_route_auth(match.route.auth, function, event["headers"], request.body)
            if failure is not None:
                return json_error(failure.status, failure.message)
        alias = match.route.target[1]
        try:
            invocation = await self.node.invoke(
                function, orjson.dumps(event), request_id, qualifier=None if alias == LIVE_ALIAS else alias,
                trace_id=trace_id_from(event["headers"].get("x-amzn-trace-id")))
        except Throttled:
            return json_error(429, "Too Many Requests")
        headers = [("apigw-requestid", request_id), ("x-squall-version", str(invocation.version))]
        if not invocation.ok:
            return json_error(502, "Internal Server Error", headers)
        try:
            result = lambda_json.loads(invocation.payload)
        except ValueError:  # a bytes result that is not JSON: API Gateway cannot read it either
            return json_error(502, "Internal Server Error", headers)
        response = parse_lambda_response(result, invocation.payload)
        kept = [(name, value) for name, value in response.headers if name.lower() not in HOP_BY_HOP]
        return HttpResponse(response.status, [*kept, *headers], response.body)


def request_path(scope: Scope) -> str:
    """The path as received (percent-encoded, no query)."""
    raw_path = scope.get("raw_path")
    return raw_path.decode("latin-1") if raw_path else str(scope["path"])


def http_request(scope: Scope, path: str, body: bytes) -> HttpRequest:
    client = scope.get("client") or ("127.0.0.1", 0)
    return HttpRequest(
        method=scope["method"], raw_path=path, query_string=scope.get("query_string", b""),
        headers=list(scope.get("headers", [])), body=body, source_ip=client[0],
        scheme=scope.get("scheme", "http"), http_version=scope.get("http_version", "1.1"))


async def send_response(send: Any, response: HttpResponse) -> None:
    headers = [(name.lower().encode("latin-1"), encode_header_value(value)) for name, value in response.headers]
    headers.append((b"content-length", str(len(response.body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


def encode_header_value(value: str) -> bytes:
    """A header value as sent: latin-1 when it can be, else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")
