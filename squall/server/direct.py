"""The direct lane: the root node's user routes, and its busiest platform door (submitting
an asynchronous event), served from the HTTP protocol itself.

On the ASGI lane uvicorn hands each request to the app in a task of its own, through dict
messages, a middleware and two routers before the gateway sees it; a user route needs none of
that. When a request's head is complete (and within the bounds of
squall/server/connections.py), `DirectRoutes.begin` looks at its target: `/_squall/...` and
whatever a stage serves go on to the ASGI app (squall/server/root.py) as before, except
`POST /_squall/api/functions/{name}/events`; every other request is a user route of the root
node. Each is served by a `DirectExchange` through its `DirectDoor` (the `Gateway`, or the
`EventSubmissionDoor` of squall/server/events_api.py), which the ASGI lane uses too:

* routed and authenticated at once, before any of its body is read (`door.route`: the
  route's api_key, or the admin token);
* its body gathered as the parser delivers it: at most the door's `body_limit` (413 past it,
  at once for a declared length); a door with a `body_budget` (the gateway: ROUTES) counts
  bodies over SMALL_BODY against it (503 with Retry-After when it has no room), as on the ASGI
  lane (squall/server/bodies.py);
* answered by `door.answer`, and written to the transport as bytes: the status line, the
  response's headers, the server's own Content-Length (a function's framing headers are
  dropped by the gateway) and `connection: close` when the connection ends.

The exchange stands in the protocol's `cycle`, where uvicorn keeps its own, so keep-alive,
pipelining (a request that arrives while another is answered waits, reading paused, and
requests are answered in order), graceful shutdown and every bound of the protocol hold on
both lanes, and a connection may mix them.
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
import re
from typing import Any, Protocol
from urllib.parse import unquote

import httptools

from squall.http_event import HttpRequest, HttpResponse, json_error
from squall.server.app import PREFIX
from squall.server.bodies import SMALL_BODY, BodyBudget, BodySlotsSpent, client_key, declared_length
from squall.server.connections import NO_EVENT
from squall.server.gateway import Gateway, encode_header_value
from squall.server.stages import StageSet

logger = logging.getLogger("squall.server")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
STATUS_LINES = {status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode())
                for status in HTTPStatus}
SUBMIT_EVENT = re.compile(r"/_squall/api/functions/([^/]+)/events")
"""The platform door the direct lane serves (POST): an asynchronous event's submission."""


class DirectDoor(Protocol):
    """What a DirectExchange serves its request through."""

    body_limit: int
    body_budget: BodyBudget | None

    def route(self, method: str, raw_path: str, headers: list[tuple[bytes, bytes]]) -> Any:
        """The request's target, authenticated, before its body is read; or the HttpResponse
        that refuses it."""

    async def answer(self, routed: Any, request: HttpRequest) -> HttpResponse: ...

    def too_large(self) -> HttpResponse: ...

    def too_busy(self) -> HttpResponse: ...


def status_line(status: int) -> bytes:
    return STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status


def encode_response(response: HttpResponse, keep_alive: bool, head_only: bool) -> bytes:
    """The response as bytes on the wire (HTTP/1.1); no body for a HEAD request."""
    parts = [status_line(response.status)]
    for name, value in response.headers:
        parts.append(b"%s: %s\r\n" % (name.lower().encode("latin-1"), encode_header_value(value)))
    parts.append(b"content-length: %d\r\n" % len(response.body))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head_only:
        parts.append(response.body)
    return b"".join(parts)


class DirectRoutes:
    """Which requests the direct lane serves, and through which door: the root node's user
    routes through its gateway, event submissions through `submissions`."""

    def __init__(self, gateway: Gateway, stages: StageSet, submissions: DirectDoor | None = None) -> None:
        self.gateway = gateway
        self.stages = stages
        self.submissions = submissions

    def begin(self, protocol: Any) -> bool:
        """Called by the protocol once a request's head is complete: start serving it on the
        direct lane and return True, or return False to leave it to the ASGI app."""
        parser = protocol.parser
        if parser.should_upgrade():
            return False
        try:
            parsed = httptools.parse_url(protocol.url)
        except httptools.HttpParserInvalidURLError:
            return False  # the ASGI lane answers it as it always has
        raw_path = parsed.path.decode("latin-1")
        method = parser.get_method().decode("ascii")
        door = self._door(method, raw_path)
        if door is None or self._for_a_stage(raw_path, protocol.headers):
            return False
        http_version = parser.get_http_version()
        exchange = DirectExchange(door, protocol, method, raw_path, parsed.query or b"", http_version,
                                  http_version != "1.0" and parser.should_keep_alive())
        existing = protocol.cycle
        protocol.cycle = exchange
        if existing is None or existing.response_complete:
            exchange.start()
        else:  # pipelined: answered once the requests before it are
            protocol.flow.pause_reading()
            protocol.pipeline.appendleft((exchange, None))
        return True

    def _door(self, method: str, raw_path: str) -> DirectDoor | None:
        path = unquote(raw_path) if "%" in raw_path else raw_path  # decoded, as the ASGI app decides
        if not path.startswith(PREFIX):
            return self.gateway
        if method == "POST" and self.submissions is not None and SUBMIT_EVENT.fullmatch(raw_path):
            return self.submissions
        return None

    def _for_a_stage(self, raw_path: str, headers: list[tuple[bytes, bytes]]) -> bool:
        if not self.stages.stages:
            return False
        return self.stages.route({"path": unquote(raw_path), "headers": headers}) is not None


class DirectExchange:
    """One user-route request on a connection, from its head to its response."""

    message_event = NO_EVENT

    def __init__(self, door: DirectDoor, protocol: Any, method: str, raw_path: str, query: bytes,
                 http_version: str, keep_alive: bool) -> None:
        self.door = door
        self.protocol = protocol
        self.method = method
        self.raw_path = raw_path
        self.query = query
        self.headers: list[tuple[bytes, bytes]] = protocol.headers
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.expect_continue: bool = protocol.expect_100_continue
        self.response_complete = False
        self.disconnected = False
        self.started = False
        self.complete = False
        self.routed: Any = None
        self.refusal: HttpResponse | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.held = 0
        """Bytes of this body counted against the door's budget (given back when answered)."""
        self.budget_client = ""
        """The address they are counted for (squall/server/bodies.py, `client_key`)."""
        self.client = protocol.client[0] if protocol.client else ""

    # -- driven by the protocol --------------------------------------------------
    def start(self) -> None:
        """The exchange's turn on its connection: route it, refuse it, or wait for its body."""
        self.started = True
        if self.refusal is not None:  # its body already broke a bound while it waited its turn
            self.send(self.refusal)
            return
        routed = self.door.route(self.method, self.raw_path, self.headers)
        if isinstance(routed, HttpResponse):
            self.send(routed)
            return
        declared = declared_length({"headers": self.headers})
        if declared is not None and declared > self.door.body_limit:
            self.send(self.door.too_large())
            return
        self.routed = routed
        if self.complete:
            self.run()
        elif self.expect_continue:
            self.protocol.transport.write(CONTINUE)

    def on_body(self, data: bytes) -> None:
        if self.refusal is not None:
            return
        self.size += len(data)
        door = self.door
        if self.size > door.body_limit:
            self.refuse(door.too_large())
            return
        if self.size > SMALL_BODY and door.body_budget is not None:
            if not self.held:
                self.budget_client = client_key({"client": self.protocol.client})
            try:
                door.body_budget.take(self.budget_client, self.size - self.held)
            except BodySlotsSpent:
                self.refuse(door.too_busy())
                return
            self.held = self.size
        self.chunks.append(data)

    def on_message_complete(self) -> None:
        self.complete = True
        if self.started and self.routed is not None and not self.response_complete:
            self.run()

    # -- answering ---------------------------------------------------------------
    def refuse(self, response: HttpResponse) -> None:
        """Answer now (once it is this exchange's turn); what is left of the body is drained."""
        self.refusal = response
        self.chunks.clear()
        self.release()
        if self.started:
            self.send(response)

    def run(self) -> None:
        task = asyncio.get_running_loop().create_task(self.answer())
        tasks = self.protocol.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def answer(self) -> None:
        assert self.routed is not None
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        request = HttpRequest(method=self.method, raw_path=self.raw_path, query_string=self.query,
                              headers=self.headers, body=body, source_ip=self.client or "127.0.0.1",
                              http_version=self.http_version)
        try:
            response = await self.door.answer(self.routed, request)
        except Exception:  # noqa: BLE001 - as the ASGI lane: logged, answered 500
            logger.exception("the direct lane failed on %s %s", self.method, self.raw_path)
            response = json_error(500, "Internal Server Error")
        finally:
            self.release()
        self.send(response)

    def send(self, response: HttpResponse) -> None:
        if self.response_complete:
            return
        self.response_complete = True
        self.release()
        transport = self.protocol.transport
        if transport.is_closing():
            return
        transport.write(encode_response(response, self.keep_alive, self.method == "HEAD"))
        if not self.keep_alive:
            transport.close()
        self.protocol.on_response_complete()

    def release(self) -> None:
        if self.held and self.door.body_budget is not None:
            self.door.body_budget.give(self.budget_client, self.held)
            self.held = 0
