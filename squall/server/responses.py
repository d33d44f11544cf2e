"""The JSON responses of the platform's own endpoints (API, events, SDK): one shape for
data and one for errors, `{"error": {"type", "message", ...}}`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def error_response(status: int, kind: str, message: str, **extra: Any) -> Response:
    return json_response({"error": {"type": kind, "message": message, **extra}}, status)
