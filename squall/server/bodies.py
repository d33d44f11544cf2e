"""The one way a door reads a request body: bounded, after the caller is authenticated.

`read_body(scope, receive, limit)` refuses a declared `Content-Length` over `limit` before
reading a byte, and stops a chunked (or lying) body as soon as it passes `limit`, so a door
never holds more than `limit` bytes of one request. `request_body(request, limit)` is the same
for a Starlette request. Each door's limit is named here.

Some bodies are read before anything about their sender is known to be true, so a door's
limit alone would let strangers make the node hold limit x connections bytes. Those are read
within a `BodyBudget` (`read_body(..., budget=...)`): at most `limit` bytes of such bodies at
once node-wide, and at most `share` of them for one client address (an IPv6 client's /64),
each body counted at its declared length before it is read, or as it is read when chunked;
past either the door answers at once (`BodySlotsSpent`). Bodies that declare SMALL_BODY bytes
or less are not counted: uvicorn buffers that much per connection anyway, and so the many
small calls of legitimate clients are never refused for strangers' big ones.

* UNVERIFIED: bodies read before their SigV4 signature can be checked (boto3 signs Lambda and
  DynamoDB payloads without a hash header, and the key id `admin`, the date and the scope are
  public): 64 MB, 16 MB per client, and each must keep arriving (`BodyTooSlow` otherwise:
  nothing for UNVERIFIED_GRACE seconds, then at least UNVERIFIED_MIN_RATE bytes a second on
  average), so a held share costs its holder bandwidth, not only a connection;
* ROUTES: bodies of the users' HTTP routes, open to anyone by design: 256 MB, 64 MB per
  client (SQUALL_ROUTE_BODY_BUDGET_MB sets the whole; a client's share is a quarter).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from typing import Any, Callable

from starlette.requests import Request

from squall.events.engine import MAX_ASYNC_PAYLOAD
from squall.exceptions import PayloadTooLarge
from squall.runtime.protocol import MAX_PAYLOAD_BYTES
from squall.settings import ROUTE_BODY_BUDGET_MB

MB = 1024 * 1024
MAX_DEPLOY_BYTES = 256 * MB
"""The largest deploy upload (a bundle)."""
MAX_TABLE_REQUEST_BYTES = 16 * MB
"""The largest DynamoDB request (BatchWriteItem of 25 items of 400 KB, with room)."""
MAX_JSON_REQUEST_BYTES = MAX_PAYLOAD_BYTES
"""The largest JSON body of the other platform endpoints (a sync invoke's 6 MB event)."""
MAX_EVENT_BYTES = MAX_ASYNC_PAYLOAD
"""The largest asynchronous event (1 MB, as Lambda's)."""
SMALL_BODY = 64 * 1024
"""A body declaring at most this many bytes is not counted against a budget."""
UNVERIFIED_BUDGET_BYTES = 64 * MB
"""Bytes of bodies read before their signature is checked, at once, node-wide."""
UNVERIFIED_GRACE = 5.0
"""Seconds an unverified body may take before it must arrive at UNVERIFIED_MIN_RATE."""
UNVERIFIED_MIN_RATE = 256 * 1024
"""Bytes a second an unverified body must average after its first UNVERIFIED_GRACE seconds."""
ROUTE_BUDGET_BYTES = ROUTE_BODY_BUDGET_MB.default * MB
"""Bytes of route bodies read at once, node-wide (default of SQUALL_ROUTE_BODY_BUDGET_MB)."""
CLIENT_SHARE = 4
"""One client address may hold at most 1/CLIENT_SHARE of a budget."""
BODY_KEY = "squall.body"
"""Where `request_body` keeps a body it read, in the request's ASGI scope."""

__all__ = ["BodyBudget", "BodySlotsSpent", "BodyTooLarge", "BodyTooSlow", "MAX_DEPLOY_BYTES",
           "MAX_EVENT_BYTES", "MAX_JSON_REQUEST_BYTES", "MAX_TABLE_REQUEST_BYTES", "ROUTES", "UNVERIFIED",
           "check_declared_length", "configure_route_budget", "declared_length", "read_body", "request_body"]


class BodyTooLarge(PayloadTooLarge):
    """A body over the door's limit (`size` is what was declared or read before stopping); a
    SquallError, so the platform's guards answer it 413."""

    def __init__(self, limit: int, size: int) -> None:
        super().__init__(f"the request body is over {limit} bytes, the most this endpoint takes")
        self.limit, self.size = limit, size


class BodySlotsSpent(Exception):
    """The budget has no room for this body (node-wide, or for this client): retry later."""


class BodyTooSlow(Exception):
    """A paced body did not arrive in time; the bytes it held are freed."""


class BodyBudget:
    """Bytes held by body reads in progress, in all and per client (one event loop: no lock)."""

    def __init__(self, limit: int, paced: bool = False) -> None:
        self.paced = paced
        self.used = 0
        self.clients: dict[str, int] = {}
        self.resize(limit)

    def resize(self, limit: int) -> None:
        self.limit, self.share = limit, limit // CLIENT_SHARE

    def take(self, client: str, size: int) -> None:
        held = self.clients.get(client, 0)
        if self.used + size > self.limit or held + size > self.share:
            raise BodySlotsSpent()
        self.used += size
        self.clients[client] = held + size

    def give(self, client: str, size: int) -> None:
        if size:
            self.used -= size
            left = self.clients[client] - size
            if left > 0:
                self.clients[client] = left
            else:
                del self.clients[client]


UNVERIFIED = BodyBudget(UNVERIFIED_BUDGET_BYTES, paced=True)
ROUTES = BodyBudget(ROUTE_BUDGET_BYTES)


def configure_route_budget(megabytes: int) -> None:
    """Size ROUTES to the server's SQUALL_ROUTE_BODY_BUDGET_MB."""
    ROUTES.resize(megabytes * MB)


def client_key(scope: Mapping[str, Any]) -> str:
    """The address a budget's share is counted for: the client's IP, an IPv6 one's /64."""
    client = scope.get("client")
    address = str(client[0]) if client else ""
    if ":" in address:
        try:
            return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
        except ValueError:
            return address
    return address


def declared_length(scope: Mapping[str, Any]) -> int | None:
    """The request's Content-Length (the HTTP parser has already refused a malformed one)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def check_declared_length(scope: Mapping[str, Any], limit: int) -> None:
    """Raise BodyTooLarge if the request declares a body over `limit` bytes."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared)


async def read_body(scope: Mapping[str, Any], receive: Any, limit: int,
                    budget: BodyBudget | None = None) -> bytes:
    """The whole request body; BodyTooLarge past `limit` bytes, declared or received. With a
    `budget`, a body over SMALL_BODY is read within it (the module docstring): BodySlotsSpent
    when it has no room, BodyTooSlow when a paced body is overdue."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared)
    if budget is None or (declared is not None and declared <= SMALL_BODY):
        return await _read(receive, limit)
    if declared is None:  # no body (a GET), or a chunked one: counted from its second message
        message = await receive()
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise BodyTooLarge(limit, len(body))
        if not message.get("more_body"):
            return body
        return await _read_counted(receive, limit, budget, client_key(scope), body)
    client = client_key(scope)
    budget.take(client, declared)
    try:
        return await (_read_paced(receive, limit) if budget.paced else _read(receive, limit))
    finally:
        budget.give(client, declared)


async def _read(receive: Any, limit: int) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):  # the whole body in one message: most requests
        if len(body) > limit:
            raise BodyTooLarge(limit, len(body))
        return body
    return await _receive_rest(receive, limit, [body], len(body))


async def _receive_rest(receive: Any, limit: int, chunks: list[bytes], size: int,
                        on_chunk: Callable[[int, int], None] | None = None) -> bytes:
    """The rest of a body whose `chunks` so far hold `size` bytes, within `limit`;
    `on_chunk(length, size)` sees each chunk once it is known to fit."""
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, size)
        if on_chunk is not None:
            on_chunk(len(chunk), size)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _read_paced(receive: Any, limit: int) -> bytes:
    """`_read`, but BodyTooSlow unless the body keeps up with UNVERIFIED_GRACE and _MIN_RATE."""
    start = asyncio.get_running_loop().time() + UNVERIFIED_GRACE
    try:
        async with asyncio.timeout_at(start) as timer:
            return await _receive_rest(receive, limit, [], 0,
                                       lambda _length, size: timer.reschedule(start + size / UNVERIFIED_MIN_RATE))
    except TimeoutError:
        raise BodyTooSlow() from None


async def _read_counted(receive: Any, limit: int, budget: BodyBudget, client: str, first: bytes) -> bytes:
    """A body of unknown length (chunked) whose `first` message said more follows, counted
    against `budget` as it arrives (the first message's bytes, at most what uvicorn buffers
    per connection, as well)."""
    start = asyncio.get_running_loop().time() + UNVERIFIED_GRACE
    budget.take(client, len(first))
    held = [len(first)]
    try:
        async with asyncio.timeout_at(start if budget.paced else None) as timer:
            def count(length: int, size: int) -> None:
                budget.take(client, length)
                held[0] += length
                if budget.paced:
                    timer.reschedule(start + size / UNVERIFIED_MIN_RATE)

            return await _receive_rest(receive, limit, [first], len(first), count)
    except TimeoutError:
        raise BodyTooSlow() from None
    finally:
        budget.give(client, held[0])


async def request_body(request: Request, limit: int) -> bytes:
    """`read_body` for a Starlette request; read once (a second call answers the same bytes,
    kept in the request's scope)."""
    scope = request.scope
    body = scope.get(BODY_KEY)
    if body is None:
        body = scope[BODY_KEY] = await read_body(scope, request.receive, limit)
    return bytes(body)
