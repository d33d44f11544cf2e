"""Fuzzing the doors: malformed input always gets a 4xx with a message, never a 500.

Hypothesis generates malformed JSON, wrong types, huge numbers, odd unicode, bad headers and
bad paths against one real server (started once for the module): the platform API, the
Lambda door (signed and unsigned), the DynamoDB door (signed and unsigned), the route gateway.
Once the server has stopped, its log holds no traceback. (squall.yaml texts against the
manifest loader, which needs no server: tests/test_manifest_fuzz.py.)"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator
from urllib.parse import quote

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile.bystander import bystander
from tests.support import SquallServer, serving

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # measures a server under attack: runs alone

PROJECT = {
    "squall.yaml": """
        name: fuzz
        functions:
          steady:
            handler: app.steady
            triggers:
              - http: "GET /steady"
              - http: "ANY /items/{id}"
              - http: "POST /keyed"
                auth: {type: api_key, secret_env: FUZZ_KEY}
              - http: "POST /signed"
                auth: {type: hmac, preset: github, secret_env: FUZZ_KEY}
            env: {FUZZ_KEY: fuzz-key}
            tables: [things]
        tables:
          things: {key: id}
    """,
    "app.py": """
        def steady(event, context):
            return {"statusCode": 200, "body": "steady"}
    """,
}
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))

# ---------------------------------------------------------------- strategies

odd_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
header_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
                      max_size=40).map(lambda text: text.strip())
"""Text an HTTP client can put in a header (httpx refuses control characters and edge spaces)."""
huge_numbers = st.one_of(st.integers(min_value=10**30, max_value=10**300), st.integers(max_value=-(10**30)),
                         st.just(10**4000), st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_numbers, odd_text)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(odd_text, inner, max_size=4)), max_leaves=12)


def dump(value: Any) -> bytes:
    """JSON text of `value`, the huge and non-finite numbers written as they are."""
    return json.dumps(value, default=str).encode()


malformed = st.sampled_from([b"{", b"[1,", b'{"a":}', b"\xff\xfe", b"nul", b"{}}", b"1e999999", b"-",
                             b'"\\ud800"', b"[" * 2000 + b"]" * 2000, b'{"a": 1' + b"0" * 5000 + b"}"])
bodies = st.one_of(json_values.map(dump), malformed, st.binary(max_size=200))
segment = st.one_of(odd_text.filter(bool).map(lambda text: quote(text, safe="")),
                    st.sampled_from(["..", "%00", "%ff", "%2f", "a" * 3000, "$LATEST", "fn:1:2:3", "-1"]))
header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60).map(
    lambda value: value.strip(" \t"))
headers = st.dictionaries(st.sampled_from(["content-type", "x-amz-invocation-type", "x-amz-log-type",
                                           "x-api-key", "x-hub-signature-256", "idempotency-key",
                                           "x-amz-target", "x-amz-date", "authorization", "cookie"]),
                          header_value, max_size=4)

PLATFORM_PATHS = [
    ("POST", "/_squall/api/functions/{s}/invoke"), ("GET", "/_squall/api/functions/{s}"),
    ("GET", "/_squall/api/functions/{s}/logs?limit={s}&since={s}&after={s}"),
    ("POST", "/_squall/api/functions/{s}/events"), ("GET", "/_squall/api/events/{s}"),
    ("POST", "/_squall/api/functions/{s}/dlq/redrive"), ("POST", "/_squall/api/functions/{s}/dlq/purge"),
    ("POST", "/_squall/api/topics/{s}/publish"), ("POST", "/_squall/api/queues/{s}/messages"),
    ("GET", "/_squall/api/buckets/{s}/objects?limit={s}"), ("PUT", "/_squall/api/buckets/{s}/objects/{s}"),
    ("POST", "/_squall/api/functions/{s}/trigger"), ("POST", "/_squall/api/schedules/{s}/run"),
    ("PUT", "/_squall/api/secrets/{s}"), ("DELETE", "/_squall/api/secrets/{s}"),
    ("PUT", "/_squall/api/functions/{s}/aliases/{s}"), ("POST", "/_squall/api/functions/{s}/rollback"),
    ("GET", "/_squall/api/functions/{s}/versions"), ("POST", "/_squall/api/tables/{s}"),
    ("POST", "/_squall/api/deploy"), ("GET", "/_squall/api/instances?function={s}"),
    ("POST", "/_squall/api/stages/{s}"), ("GET", "/_squall/{s}"),
]


@st.composite
def platform_requests(draw: st.DrawFn) -> tuple[str, str, bytes]:
    method, template = draw(st.sampled_from(PLATFORM_PATHS))
    method = draw(st.sampled_from([method, method, "PATCH", "GET"]))
    path = template
    while "{s}" in path:
        path = path.replace("{s}", draw(st.one_of(st.just("steady"), segment)), 1)
    return method, path, draw(bodies)


# ---------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("fuzz"), PROJECT) as node:
        yield node
    output = node.output()  # read once the server has stopped, so tracebacks at shutdown count too
    assert "Traceback" not in output, output[output.index("Traceback") - 200:][:3000]


@pytest.fixture(scope="module")
def http(server: SquallServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def assert_clear_refusal(response: httpx.Response, what: object) -> None:
    """Not a 5xx; a 4xx says what is wrong: a JSON error has a message (the platform's, Lambda's,
    DynamoDB's or API Gateway's shape), a plain-text one (the HTTP parser's) a sentence."""
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    if response.status_code < 400 or response.request.method == "HEAD":
        return
    if response.headers.get("content-type", "").startswith("application/"):
        assert '"message":"' in response.text.replace('": "', '":"'), f"{what}: {response.text[:500]}"
    else:
        assert len(response.text) > 10, f"{what}: {response.status_code} {response.text[:500]}"


def raw(headers: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """Headers as bytes, so any latin-1 value is sent as it is."""
    return [(name.encode(), value if isinstance(value, bytes) else latin1_or_utf8(value))
            for name, value in headers.items()]


def latin1_or_utf8(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def signed(server: SquallServer, method: str, path: str, body: bytes, headers: dict[str, str],
           service: str) -> httpx.Request:
    """A request signed with the admin credential, as boto3 would sign it."""
    url = server.url + path
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(Credentials("admin", server.token), service, "us-east-1").add_auth(request)
    return httpx.Request(method, url, content=body, headers=raw(dict(request.headers.items())))


# ---------------------------------------------------------------- the doors


def test_signed_requests_reach_past_authentication(server: SquallServer, http: httpx.Client) -> None:
    """The fuzzed signed requests are signed as the doors expect, so they test what lies behind."""
    tables = http.send(signed(server, "POST", "/_squall/aws/dynamodb/", b"{}",
                              {"x-amz-target": "DynamoDB_20120810.ListTables"}, "dynamodb"))
    assert tables.status_code == 200 and "things" in tables.json()["TableNames"]
    invoked = http.send(signed(server, "POST", "/_squall/aws/lambda/2015-03-31/functions/steady/invocations",
                               b"{}", {}, "lambda"))
    assert invoked.status_code == 200 and invoked.json()["body"] == "steady"



@FUZZ
@given(request=platform_requests(), extra=headers)
def test_the_platform_api_answers_bad_input_with_a_4xx(server: SquallServer, http: httpx.Client,
                                                       request: tuple[str, str, bytes],
                                                       extra: dict[str, str]) -> None:
    method, path, body = request
    extra.pop("authorization", None)
    response = http.request(method, path, content=body,
                            headers=raw({**extra, "authorization": f"Bearer {server.token}"}))
    assert_clear_refusal(response, (method, path, body[:200]))


@FUZZ
@given(name=st.one_of(st.just("steady"), segment), qualifier=st.one_of(st.none(), odd_text),
       body=bodies, extra=headers, sign=st.booleans())
def test_the_lambda_door_answers_bad_input_with_a_4xx(server: SquallServer, http: httpx.Client, name: str,
                                                      qualifier: str | None, body: bytes,
                                                      extra: dict[str, str], sign: bool) -> None:
    path = f"/_squall/aws/lambda/2015-03-31/functions/{name}/invocations"
    if qualifier is not None:
        path += "?Qualifier=" + quote(qualifier, safe="")
    extra.pop("authorization" if sign else "x-amz-date", None)
    request = (signed(server, "POST", path, body, extra, "lambda") if sign
               else http.build_request("POST", path, content=body, headers=raw(extra)))
    response = http.send(request)
    assert_clear_refusal(response, (path, body[:200], extra))


@FUZZ
@given(operation=st.one_of(st.sampled_from(["ListTables", "GetItem", "PutItem", "Query", "Scan",
                                            "UpdateItem", "BatchWriteItem", "TransactWriteItems",
                                            "CreateTable", "DescribeTable", "UpdateTimeToLive"]), header_text),
       request=st.one_of(bodies, st.fixed_dictionaries({}, optional={
           "TableName": st.one_of(st.just("things"), json_values), "Key": json_values, "Item": json_values,
           "KeyConditionExpression": json_values, "ExpressionAttributeValues": json_values,
           "UpdateExpression": json_values, "Limit": json_values, "RequestItems": json_values,
           "TransactItems": json_values}).map(dump)),
       sign=st.booleans(), extra=headers)
def test_the_dynamodb_door_answers_bad_input_with_a_4xx(server: SquallServer, http: httpx.Client, operation: str,
                                                        request: bytes, sign: bool,
                                                        extra: dict[str, str]) -> None:
    headers = {**extra, "x-amz-target": f"DynamoDB_20120810.{operation}",
               "content-type": "application/x-amz-json-1.0"}
    if sign:
        headers.pop("authorization", None)
        headers.pop("x-amz-date", None)
        built = signed(server, "POST", "/_squall/aws/dynamodb/", request, headers, "dynamodb")
    else:
        built = http.build_request("POST", "/_squall/aws/dynamodb/", content=request, headers=raw(headers))
    response = http.send(built)
    assert_clear_refusal(response, (operation, request[:200], sign))
    admin = http.post(f"/_squall/api/tables/{quote(operation, safe='')}", content=request,
                      headers={"authorization": f"Bearer {server.token}"})
    assert_clear_refusal(admin, ("admin tables", operation, request[:200]))


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW"]),
       path=st.one_of(st.sampled_from(["/steady", "/items/1", "/keyed", "/signed"]),
                      st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts)),
                      segment.map(lambda part: f"/items/{part}")),
       query=st.one_of(st.just(""), odd_text.map(lambda text: "?" + quote(text, safe="=&"))),
       body=bodies, extra=headers)
def test_the_route_gateway_answers_bad_input_with_a_4xx(server: SquallServer, http: httpx.Client, method: str,
                                                        path: str, query: str, body: bytes,
                                                        extra: dict[str, str]) -> None:
    response = http.request(method, path + query, content=body, headers=raw(extra))
    assert_clear_refusal(response, (method, path + query, body[:200], extra))


def test_the_doors_kept_serving_and_a_bad_access_key_is_a_4xx(server: SquallServer, http: httpx.Client) -> None:
    """Odd credentials on both AWS doors, while the bystander answers."""
    with bystander(server.url, "/steady"):
        now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for key in ("adm\u00efn", "\u2603", "a" * 5000, ""):
            for path in ("/_squall/aws/lambda/2015-03-31/functions/steady/invocations", "/_squall/aws/dynamodb/"):
                auth = (f"AWS4-HMAC-SHA256 Credential={key}/{now[:8]}/us-east-1/x/aws4_request, "
                        "SignedHeaders=host;x-amz-date, Signature=00").encode("utf-8")
                response = http.post(path, content=b"{}", headers=[(b"authorization", auth),
                                                                   (b"x-amz-date", now.encode())])
                assert 400 <= response.status_code < 500, (key, path, response.text)
