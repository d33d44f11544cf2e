"""A Lambda-style HTTP handler: `GET /hello?name=you` or `POST /hello {"name": "you"}`."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Greet the caller; the event is an HTTP API (payload 2.0) request."""
    name = name_from(event)
    logger.info("saying hello to %s", name)
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": f"hello, {name}"}),
    }


def name_from(event: dict[str, Any]) -> str:
    """`?name=` from the query string, else `"name"` from a JSON body, else `world`."""
    query = event.get("queryStringParameters") or {}
    if query.get("name"):
        return str(query["name"])
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {}
    if isinstance(data, dict) and data.get("name"):
        return str(data["name"])
    return "world"
