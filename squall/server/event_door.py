"""`POST /_squall/api/functions/{name}/events` on the direct lane (squall/server/direct.py):
the platform door that clients call most, served without Starlette's app, middleware and
router. It answers as the ASGI endpoint does (squall/server/events_api.py, `submit_event`):
401 without the admin token (checked before any of the body is read), the body at most
MAX_ASYNC_PAYLOAD bytes and valid JSON (empty is `{}`), 202 `{"requestId", "function"}` once
the event is stored, and a SquallError as `{"error": {"type", "message"}}` with its status.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import orjson

from squall.events.engine import MAX_ASYNC_PAYLOAD
from squall.exceptions import BadInput, SquallError
from squall.http_event import HttpResponse
from squall.node.core import Node
from squall.server.api import NOT_ADMIN, is_admin
from squall.server.bodies import BodyBudget, BodyTooLarge
from squall.server.events_api import submit_event

JSON = [("content-type", "application/json")]


def json_answer(data: Any, status: int) -> HttpResponse:
    return HttpResponse(status, list(JSON), orjson.dumps(data))


def error_answer(error: SquallError) -> HttpResponse:
    return json_answer({"error": error.to_dict()}, error.status_code)


class EventSubmissionDoor:
    """A DirectDoor (squall/server/direct.py) for submitting an event to the root node."""

    body_limit = MAX_ASYNC_PAYLOAD
    body_budget: BodyBudget | None = None
    """None: the sender is the admin, known before a byte of the body is read."""

    def __init__(self, node: Node, token: str) -> None:
        self.node = node
        self.token = token.encode()

    def route(self, method: str, raw_path: str, headers: list[tuple[bytes, bytes]]) -> str | HttpResponse:
        """The function's name (NAME, NAME:ALIAS or NAME:7) once the admin token is checked."""
        authorization = next((value for name, value in headers if name == b"authorization"), b"")
        if not is_admin(authorization.decode("latin-1"), self.token):
            return json_answer({"error": {"type": "Unauthorized", "message": NOT_ADMIN}}, 401)
        return unquote(raw_path.split("/")[4])

    async def answer(self, routed: str, request: Any) -> HttpResponse:
        try:
            function = await self.node.resolve(routed)
            payload = request.body or b"{}"
            try:
                orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise BadInput(f"the event is not valid JSON: {exc}") from None
            key = next((value.decode("latin-1") for name, value in request.headers
                        if name == b"idempotency-key"), None)
            return json_answer(await submit_event(self.node, routed, function, payload, key), 202)
        except SquallError as exc:
            return error_answer(exc)

    def too_large(self) -> HttpResponse:
        return error_answer(BodyTooLarge(self.body_limit, self.body_limit + 1))

    def too_busy(self) -> HttpResponse:  # never: no budget
        return json_answer({"error": {"type": "Busy", "message": "retry shortly"}}, 503)
