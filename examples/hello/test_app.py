"""Tests of app.handler with the event and context AWS Lambda would pass."""

from __future__ import annotations

import json
from typing import Any

import app


class FakeContext:
    """The few context attributes a handler usually reads."""

    aws_request_id = "test-request-id"
    function_name = "hello"
    function_version = "1"
    memory_limit_in_mb = "128"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def http_event(method: str, query: dict[str, str] | None = None, body: str | None = None) -> dict[str, Any]:
    """A minimal HTTP API (payload format 2.0) event for `<method> /hello`."""
    return {
        "version": "2.0",
        "routeKey": f"{method} /hello",
        "rawPath": "/hello",
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json"},
        "queryStringParameters": query,
        "requestContext": {"http": {"method": method, "path": "/hello"}},
        "body": body,
        "isBase64Encoded": False,
    }


def test_get_greets_the_name_in_the_query_string() -> None:
    response = app.handler(http_event("GET", query={"name": "you"}), FakeContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"message": "hello, you"}


def test_post_greets_the_name_in_the_json_body() -> None:
    response = app.handler(http_event("POST", body=json.dumps({"name": "squall"})), FakeContext())
    assert json.loads(response["body"]) == {"message": "hello, squall"}


def test_greets_the_world_without_a_name() -> None:
    response = app.handler(http_event("GET"), FakeContext())
    assert json.loads(response["body"]) == {"message": "hello, world"}
