"""Bodies in and out of the platform's own endpoints (API, events, SDK): an event payload
read from a request, one JSON shape for data and one for errors,
`{"error": {"type", "message", ...}}`, and an invocation's answer."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from squall.exceptions import BadInput
from squall.server.bodies import request_body
from squall.runtime.protocol import MAX_PAYLOAD_BYTES
from squall.node.core import Invocation


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def error_response(status: int, kind: str, message: str, **extra: Any) -> Response:
    return json_response({"error": {"type": kind, "message": message, **extra}}, status)


async def event_payload(request: Request, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The request body as an event: valid JSON (an empty body is `{}`), at most `limit`
    bytes (6 MB for a synchronous invoke, 1 MB for an asynchronous one), read no further than that."""
    body = await request_body(request, limit) or b"{}"
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"the event is not valid JSON: {exc}") from None
    return body


def invocation_response(invocation: Invocation, **extra: bytes) -> Response:
    """`{"requestId", "function", "version", "ok", ..., "payload"}` with the function's JSON
    result as it came (not decoded again; the instance protocol refuses one over 6 MB). A
    result that is not strict JSON (`NaN`, or bytes that are text but not JSON, as Lambda's
    runtime may give) comes as a string, with `"payloadText": true`."""
    parts = [b'{"requestId":' + orjson.dumps(invocation.request_id), b'"function":' + orjson.dumps(invocation.function),
             b'"version":' + str(invocation.version).encode(), b'"ok":' + (b"true" if invocation.ok else b"false")]
    parts += [orjson.dumps(key) + b":" + value for key, value in extra.items()]
    payload = invocation.payload
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        parts.append(b'"payloadText":true')
        payload = orjson.dumps(payload.decode("utf-8", "replace"))
    parts.append(b'"payload":' + payload + b"}")
    return Response(b",".join(parts), 200, media_type="application/json")
