"""The one way a door reads a request body: bounded, after the caller is authenticated.

`read_body(scope, receive, limit)` refuses a declared `Content-Length` over `limit` before
reading a byte, and stops a chunked (or lying) body as soon as it passes `limit`, so a door
never holds more than `limit` bytes of one request. `request_body(request, limit)` is the same
for a Starlette request. Each door's limit is named here.

A SigV4 door can check the whole signature before the body only when the client signed the
payload's hash in a header; boto3's Lambda and DynamoDB requests do not, so their bodies are
read (under the cap) before the signature is known good. `read_unverified_body` bounds those
node-wide: at most UNVERIFIED_BUDGET_BYTES of such bodies are being read at once (each counts
its declared length, or the door's whole limit when chunked); past that the door answers a
throttling error at once, so strangers cannot make the node hold cap x connections bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from squall.events.engine import MAX_ASYNC_PAYLOAD
from squall.exceptions import PayloadTooLarge
from squall.server.node import MAX_PAYLOAD_BYTES

MAX_DEPLOY_BYTES = 256 * 1024 * 1024
"""The largest deploy upload (a bundle)."""
MAX_TABLE_REQUEST_BYTES = 16 * 1024 * 1024
"""The largest DynamoDB request (BatchWriteItem of 25 items of 400 KB, with room)."""
MAX_JSON_REQUEST_BYTES = MAX_PAYLOAD_BYTES
"""The largest JSON body of the other platform endpoints (a sync invoke's 6 MB event)."""
MAX_EVENT_BYTES = MAX_ASYNC_PAYLOAD
"""The largest asynchronous event (1 MB, as Lambda's)."""
UNVERIFIED_BUDGET_BYTES = 64 * 1024 * 1024
"""Bytes of bodies read before their signature is checked, at once, node-wide."""

__all__ = ["BodyTooLarge", "MAX_DEPLOY_BYTES", "MAX_EVENT_BYTES", "MAX_JSON_REQUEST_BYTES",
           "MAX_TABLE_REQUEST_BYTES", "UNVERIFIED_BUDGET_BYTES", "UnverifiedBudgetSpent", "declared_length",
           "read_body", "read_unverified_body", "request_body"]


class BodyTooLarge(PayloadTooLarge):
    """A body over the door's limit (`size` is what was declared or read before stopping); a
    SquallError, so the platform's guards answer it 413."""

    def __init__(self, limit: int, size: int) -> None:
        super().__init__(f"the request body is over {limit} bytes, the most this endpoint takes")
        self.limit, self.size = limit, size


class UnverifiedBudgetSpent(Exception):
    """Too many bytes of unverified bodies are being read at once: retry later."""


class _Budget:
    """Bytes held by reads in progress (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0


_UNVERIFIED = _Budget(UNVERIFIED_BUDGET_BYTES)


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


async def read_body(scope: Mapping[str, Any], receive: Any, limit: int) -> bytes:
    """The whole request body; BodyTooLarge past `limit` bytes, declared or received."""
    check_declared_length(scope, limit)
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit, size)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def read_unverified_body(scope: Mapping[str, Any], receive: Any, limit: int) -> bytes:
    """`read_body` for a body whose sender is not yet verified (see the module docstring);
    UnverifiedBudgetSpent when the node is already reading its budget's worth of such bodies."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared)
    size = limit if declared is None else declared
    if _UNVERIFIED.used + size > _UNVERIFIED.limit:
        raise UnverifiedBudgetSpent()
    _UNVERIFIED.used += size
    try:
        return await read_body(scope, receive, limit)
    finally:
        _UNVERIFIED.used -= size


async def request_body(request: Request, limit: int) -> bytes:
    """`read_body` for a Starlette request; read once (a second call answers the same bytes)."""
    cached = getattr(request, "_body", None)
    if cached is not None:
        return bytes(cached)
    body = await read_body(request.scope, request.receive, limit)
    request._body = body
    return body
