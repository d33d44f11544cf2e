"""Unit tests of squall.http_event: HTTP <-> HTTP API payload format 2.0."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.http_event import (
    HttpRequest,
    HttpResponse,
    MalformedResponse,
    build_event_v2,
    convert_lambda_result,
    encode_body,
    format_request_time,
    json_error,
    method_not_allowed,
    parse_lambda_response,
    query_parameters,
)
from squall.routing import Route, RouteMatch, RouteTable

NOW = 1583348638.390  # 04/Mar/2020:19:03:58.390 UTC
JSON_HEADERS = [("content-type", "application/json")]
BAD_GATEWAY = HttpResponse(502, JSON_HEADERS, b'{"message":"Internal Server Error"}')


def request(method: str = "GET", path: str = "/", query: bytes | str = b"",
            headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"",
            **extra: Any) -> HttpRequest:
    if headers is None:
        headers = [(b"host", b"api.example.com")]
    return HttpRequest(method, path, query, headers, body, "203.0.113.9", **extra)


def routed(route_key: str, req: HttpRequest) -> RouteMatch:
    result = RouteTable([Route.from_key(route_key, target="fn")]).match(req.method, req.raw_path)
    assert isinstance(result, RouteMatch)
    return result


def event_for(route_key: str, req: HttpRequest) -> dict[str, Any]:
    return build_event_v2(req, routed(route_key, req), request_id="req-1", now=NOW)


def context(method: str, path: str, route_key: str, **http: str) -> dict[str, Any]:
    return {
        "accountId": "000000000000",
        "apiId": "squall",
        "domainName": "api.example.com",
        "domainPrefix": "api",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                 "sourceIp": "203.0.113.9", "userAgent": "", **http},
        "requestId": "req-1",
        "routeKey": route_key,
        "stage": "$default",
        "time": "04/Mar/2020:19:03:58 +0000",
        "timeEpoch": 1583348638390,
    }


# ------------------------------------------------------------------- events


def test_get_with_query_and_cookies() -> None:
    req = request("GET", "/pets/42", b"sort=name&tag=a&tag=b%20c&flag&x=1+2", [
        (b"Host", b"api.example.com"),
        (b"User-Agent", b"curl/8.5"),
        (b"Cookie", b"session=abc; theme=dark"),
        (b"Accept", b"*/*"),
    ])
    assert event_for("GET /pets/{id}", req) == {
        "version": "2.0",
        "routeKey": "GET /pets/{id}",
        "rawPath": "/pets/42",
        "rawQueryString": "sort=name&tag=a&tag=b%20c&flag&x=1+2",
        "cookies": ["session=abc", "theme=dark"],
        "headers": {"host": "api.example.com", "user-agent": "curl/8.5", "accept": "*/*"},
        "queryStringParameters": {"sort": "name", "tag": "a,b c", "flag": "", "x": "1 2"},
        "requestContext": context("GET", "/pets/42", "GET /pets/{id}", userAgent="curl/8.5"),
        "pathParameters": {"id": "42"},
        "isBase64Encoded": False,
    }


def test_post_json() -> None:
    body = b'{"name": "Rex", "emoji": "\xf0\x9f\x90\xb6"}'
    req = request("POST", "/pets", b"", [
        (b"host", b"api.example.com"),
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ], body)
    assert event_for("POST /pets", req) == {
        "version": "2.0",
        "routeKey": "POST /pets",
        "rawPath": "/pets",
        "rawQueryString": "",
        "headers": {"host": "api.example.com", "content-type": "application/json; charset=utf-8",
                    "content-length": str(len(body))},
        "requestContext": context("POST", "/pets", "POST /pets"),
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }


def test_binary_upload_is_base64() -> None:
    body = bytes(range(256))
    req = request("PUT", "/upload", b"", [
        (b"host", b"api.example.com"), (b"content-type", b"image/png")], body)
    assert event_for("$default", req) == {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/upload",
        "rawQueryString": "",
        "headers": {"host": "api.example.com", "content-type": "image/png"},
        "requestContext": context("PUT", "/upload", "$default"),
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def test_repeated_headers_and_greedy_path() -> None:
    req = request("DELETE", "/files/a/b%20c.txt", "", [
        (b"Host", b"api.example.com:8443"),
        (b"X-Tag", b"one"),
        (b"accept", b"text/html"),
        (b"x-tag", b"two"),
        (b"COOKIE", b"a=1"),
        (b"cookie", b"b=2;c=3"),
    ], http_version="2")
    event = event_for("ANY /files/{path+}", req)
    assert event == {
        "version": "2.0",
        "routeKey": "ANY /files/{path+}",
        "rawPath": "/files/a/b%20c.txt",
        "rawQueryString": "",
        "cookies": ["a=1", "b=2", "c=3"],
        "headers": {"host": "api.example.com:8443", "x-tag": "one,two", "accept": "text/html"},
        "requestContext": {
            **context("DELETE", "/files/a/b c.txt", "ANY /files/{path+}", protocol="HTTP/2"),
            "domainName": "api.example.com:8443",
        },
        "pathParameters": {"path": "a/b c.txt"},
        "isBase64Encoded": False,
    }


def test_percent_encoded_path_parameters() -> None:
    req = request("GET", "/users/J%C3%BCrgen%20M/tags/a%2Fb")
    event = event_for("GET /users/{name}/tags/{tag}", req)
    assert event["pathParameters"] == {"name": "Jürgen M", "tag": "a/b"}
    assert event["rawPath"] == "/users/J%C3%BCrgen%20M/tags/a%2Fb"
    assert event["requestContext"]["http"]["path"] == "/users/Jürgen M/tags/a/b"


def test_host_override_and_missing_host() -> None:
    req = request(headers=[], host="fn.squall.local")
    event = event_for("GET /", req)
    assert event["requestContext"]["domainName"] == "fn.squall.local"
    assert event["requestContext"]["domainPrefix"] == "fn"
    assert event_for("GET /", request(headers=[]))["requestContext"]["domainName"] == "localhost"


def test_empty_body_is_omitted_and_never_base64() -> None:
    req = request("POST", "/x", headers=[(b"content-type", b"application/octet-stream")])
    event = event_for("POST /x", req)
    assert "body" not in event and event["isBase64Encoded"] is False


def test_event_is_json_serializable() -> None:
    req = request("POST", "/x", "q=%FF", [(b"x", b"\xff")], b"\xff\xfe")
    assert orjson.loads(orjson.dumps(event_for("POST /x", req)))["body"] == "//4="


@pytest.mark.parametrize("content_type, body, expected", [
    (None, b"plain", ("plain", False)),
    (None, b"\xff", ("/w==", True)),
    ("text/csv", b"a,b", ("a,b", False)),
    ("text/plain", b"\xff", ("/w==", True)),
    ("application/vnd.api+json", b"{}", ("{}", False)),
    ("application/atom+xml", b"<a/>", ("<a/>", False)),
    ("application/xml", b"<a/>", ("<a/>", False)),
    ("application/javascript", b"1", ("1", False)),
    ("Application/X-WWW-Form-Urlencoded", b"a=1", ("a=1", False)),
    ("application/octet-stream", b"abc", ("YWJj", True)),
    ("multipart/form-data; boundary=x", b"abc", ("YWJj", True)),
])
def test_body_encoding(content_type: str | None, body: bytes, expected: tuple[str, bool]) -> None:
    assert encode_body(body, content_type) == expected


def test_request_time_format_is_locale_free() -> None:
    assert format_request_time(0) == "01/Jan/1970:00:00:00 +0000"
    assert format_request_time(1700000000) == "14/Nov/2023:22:13:20 +0000"


def test_query_parameters_skip_empty_pairs() -> None:
    assert query_parameters("&a=1&&a=&=x&") == {"a": "1,", "": "x"}


# ------------------------------------------------------- property-based tests


query_text = st.text(max_size=12)


@given(pairs=st.lists(st.tuples(query_text.filter(bool), query_text), max_size=8))
def test_query_string_decodes_back(pairs: list[tuple[str, str]]) -> None:
    raw = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    event = event_for("$default", request(query=raw.encode()))
    expected: dict[str, list[str]] = {}
    for key, value in pairs:
        expected.setdefault(key, []).append(value)
    assert event["rawQueryString"] == raw
    assert event.get("queryStringParameters", {}) == {k: ",".join(v) for k, v in expected.items()}


@given(raw=st.text(max_size=40))
def test_raw_query_string_is_kept_verbatim(raw: str) -> None:
    assert event_for("$default", request(query=raw))["rawQueryString"] == raw


@given(value=st.text(min_size=1, max_size=20))
def test_path_parameter_decodes_back(value: str) -> None:
    req = request(path=f"/items/{quote(value, safe='')}")
    assert event_for("GET /items/{id}", req)["pathParameters"] == {"id": value}


header_name = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_0123456789",
                      min_size=1, max_size=10).filter(lambda n: n.lower() != "cookie")
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=12)


@given(headers=st.lists(st.tuples(header_name, header_value), max_size=10))
def test_headers_are_lowercased_and_joined_in_order(headers: list[tuple[str, str]]) -> None:
    raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    expected: dict[str, list[str]] = {}
    for name, value in headers:
        expected.setdefault(name.lower(), []).append(value)
    event = event_for("$default", request(headers=raw))
    assert event["headers"] == {name: ",".join(values) for name, values in expected.items()}
    assert list(event["headers"]) == list(expected)


# ----------------------------------------------------------------- responses


def test_structured_response() -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "text/html", "X-Count": 3, "X-Flag": True, "X-None": None},
        "multiValueHeaders": {"Vary": ["Accept", "Origin"], "X-Count": ["3", "4"]},
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": "<p>héllo</p>",
        "isBase64Encoded": False,
    }
    assert parse_lambda_response(result) == HttpResponse(201, [
        ("Content-Type", "text/html"), ("X-Count", "3"), ("X-Flag", "true"),
        ("Vary", "Accept"), ("Vary", "Origin"), ("X-Count", "4"),
        ("set-cookie", "a=1; Path=/"), ("set-cookie", "b=2; HttpOnly"),
    ], "<p>héllo</p>".encode())


def test_base64_response_body() -> None:
    result = {"statusCode": "200", "isBase64Encoded": True, "body": "AAEC/w==",
              "headers": {"content-type": "image/png"}}
    assert parse_lambda_response(result) == HttpResponse(
        200, [("content-type", "image/png")], b"\x00\x01\x02\xff")


def test_status_only_gets_the_default_content_type_and_empty_body() -> None:
    assert parse_lambda_response({"statusCode": 204}) == HttpResponse(
        204, [("content-type", "text/plain; charset=utf-8")], b"")


def test_non_string_body_is_json_encoded() -> None:
    result = {"statusCode": 200.0, "body": {"a": [1, None]}, "headers": {"content-type": "x/y"}}
    assert parse_lambda_response(result) == HttpResponse(200, [("content-type", "x/y")],
                                                         b'{"a":[1,null]}')


@pytest.mark.parametrize("result, body", [
    ({"message": "hi"}, b'{"message":"hi"}'),
    ({"status": 500}, b'{"status":500}'),
    ([1, "two"], b'[1,"two"]'),
    ("Hello from Lambda!", b'"Hello from Lambda!"'),
    (42, b"42"),
    (True, b"true"),
    (None, b"null"),
])
def test_any_other_json_value_is_a_200_json_response(result: Any, body: bytes) -> None:
    assert parse_lambda_response(result) == HttpResponse(200, JSON_HEADERS, body)


@pytest.mark.parametrize("result, reason", [
    ({"statusCode": "abc"}, "statusCode"),
    ({"statusCode": True}, "statusCode"),
    ({"statusCode": None}, "statusCode"),
    ({"statusCode": 99}, "statusCode"),
    ({"statusCode": 200.5}, "statusCode"),
    ({"statusCode": 200, "headers": ["a"]}, "headers must be an object"),
    ({"statusCode": 200, "headers": {"a": {"b": 1}}}, "has a dict value"),
    ({"statusCode": 200, "headers": {"bad name": "x"}}, "not a valid header name"),
    ({"statusCode": 200, "headers": {"x": "a\r\nb: c"}}, "line break"),
    ({"statusCode": 200, "multiValueHeaders": {"x": "a"}}, "must be a list"),
    ({"statusCode": 200, "multiValueHeaders": []}, "multiValueHeaders must be an object"),
    ({"statusCode": 200, "cookies": "a=1"}, "cookies must be a list"),
    ({"statusCode": 200, "cookies": ["a=1\n"]}, "line break"),
    ({"statusCode": 200, "isBase64Encoded": "yes", "body": ""}, "true or false"),
    ({"statusCode": 200, "isBase64Encoded": True, "body": "not base64!"}, "not valid base64"),
    ({"statusCode": 200, "isBase64Encoded": True, "body": [1]}, "not a string"),
])
def test_malformed_responses_are_502(result: Any, reason: str) -> None:
    assert parse_lambda_response(result) == BAD_GATEWAY
    with pytest.raises(MalformedResponse, match=reason):
        convert_lambda_result(result)


def test_json_error_and_method_not_allowed() -> None:
    assert json_error(429, "Too Many Requests", [("retry-after", "1")]) == HttpResponse(
        429, [("content-type", "application/json"), ("retry-after", "1")],
        b'{"message":"Too Many Requests"}')
    assert method_not_allowed(("GET", "POST")) == HttpResponse(
        405, [("content-type", "application/json"), ("allow", "GET, POST")],
        b'{"message":"Method Not Allowed"}')
