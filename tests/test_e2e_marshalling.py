"""Results as Lambda's Python runtime writes them (squall/lambda_json.py), seen through a route,
the Lambda Invoke API (boto3) and squall's own invoke API."""

from __future__ import annotations

import json
from typing import Any, Iterator

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.support import SquallServer, serving

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: marshal
        functions:
          shapes:
            handler: app.shapes
            triggers: [{http: "GET /shapes/{kind}"}]
          modern:
            handler: app.shapes
            runtime: python3.12
    """,
    "app.py": """
import datetime, decimal

RESULTS = {
    "dynamodb": lambda: {"price": decimal.Decimal("1.10"), "counts": {200: 5, 404: 1}, "big": 2 ** 64},
    "nan": lambda: {"ratio": float("nan")},
    "datetime": lambda: {"when": datetime.datetime(2026, 1, 1)},
    "set": lambda: {"tags": {"a"}},
    "base64": lambda: {"statusCode": 200, "headers": {"content-type": "image/png"},
                       "body": b"iVBORw0K", "isBase64Encoded": True},
    "text-bytes": lambda: b"plain text",
    "png-bytes": lambda: b"\\x89PNG\\r\\n",
    "accents": lambda: {"city": "Zürich"},
}

def shapes(event, context):
    kind = (event.get("pathParameters") or {}).get("kind") or event.get("kind")
    return RESULTS[kind]()
""",
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("marshal"), PROJECT) as server:
        yield server


def invoke(node: SquallServer, kind: str, function: str = "shapes") -> tuple[dict[str, Any], bytes]:
    client = boto3.client("lambda", endpoint_url=f"{node.url}/_squall/aws/lambda", region_name="us-east-1",
                          aws_access_key_id="admin", aws_secret_access_key=node.token,
                          config=Config(retries={"max_attempts": 0}))
    response = client.invoke(FunctionName=function, Payload=json.dumps({"kind": kind}))
    return response, response["Payload"].read()


def test_a_dynamodb_item_comes_back_with_numbers_and_string_keys(node: SquallServer) -> None:
    response, payload = invoke(node, "dynamodb")

    assert "FunctionError" not in response
    assert payload == b'{"price": 1.10, "counts": {"200": 5, "404": 1}, "big": 18446744073709551616}'
    routed = httpx.get(f"{node.url}/shapes/dynamodb")
    assert routed.status_code == 200 and routed.content == payload  # API Gateway passes the JSON on as it is


def test_nan_is_written_as_lambda_writes_it_and_squalls_api_still_answers_json(node: SquallServer) -> None:
    assert invoke(node, "nan")[1] == b'{"ratio": NaN}'

    answer = httpx.post(f"{node.url}/_squall/api/functions/shapes/invoke", json={"kind": "nan"},
                        headers={"authorization": f"Bearer {node.token}"}).json()
    assert answer["ok"] is True and answer["payloadText"] is True and answer["payload"] == '{"ratio": NaN}'


@pytest.mark.parametrize(("kind", "message"), [
    ("datetime", "Unable to marshal response: Object of type datetime is not JSON serializable"),
    ("set", "Unable to marshal response: Object of type set is not JSON serializable"),
    ("png-bytes", "Unable to marshal response: 'utf-8' codec can't decode byte 0x89 in position 0: invalid start byte"),
])
def test_what_lambda_cannot_write_is_a_marshal_error(node: SquallServer, kind: str, message: str) -> None:
    response, payload = invoke(node, kind)

    assert response["FunctionError"] == "Unhandled"
    error = json.loads(payload)
    assert (error["errorType"], error["errorMessage"], error["stackTrace"]) == ("Runtime.MarshalError", message, [])
    assert httpx.get(f"{node.url}/shapes/{kind}").status_code == 502


def test_bytes_in_a_route_response_are_its_text(node: SquallServer) -> None:
    routed = httpx.get(f"{node.url}/shapes/base64")

    assert routed.status_code == 200 and routed.headers["content-type"] == "image/png"
    assert routed.content == b"\x89PNG\r\n"  # "iVBORw0K", decoded


def test_a_bytes_result_is_the_payload_as_it_is(node: SquallServer) -> None:
    response, payload = invoke(node, "text-bytes")

    assert "FunctionError" not in response and payload == b"plain text"
    assert httpx.get(f"{node.url}/shapes/text-bytes").status_code == 502  # not JSON: API Gateway cannot read it


def test_non_ascii_text_is_escaped_up_to_python_3_11_and_utf8_after(node: SquallServer) -> None:
    assert invoke(node, "accents")[1] == b'{"city": "Z\\u00fcrich"}'
    assert invoke(node, "accents", "modern")[1] == '{"city": "Zürich"}'.encode()
