"""Converters between HTTP and the Lambda HTTP API contract (payload format 2.0).

`build_event_v2` turns a received request and its `RouteMatch` into the event
API Gateway HTTP APIs hand to a Lambda function; `parse_lambda_response` turns
the function's (JSON-decoded) return value into the HTTP response API Gateway
would send. Both are pure: no I/O, the clock is a parameter. The HTTP server
and `squall.testing` use the same functions, so a test sees exactly the event
production code sees. The user-facing reference is `docs/http.md`.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import unquote, unquote_plus

import orjson

from squall.routing import RouteMatch

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript",
                         "application/x-www-form-urlencoded"})
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_CHARS = re.compile(r"[\r\n\x00]")
DEFAULT_RESPONSE_CONTENT_TYPE = "text/plain; charset=utf-8"
"""What API Gateway HTTP APIs send when a `statusCode` response names no content-type."""


@dataclass(slots=True)
class HttpRequest:
    """A received HTTP request, as the server (or the test client) saw it.

    `raw_path` is percent-encoded and has no query; `query_string` is raw
    (without `?`); `headers` are ASGI-style byte pairs in received order.
    `host` overrides the Host header for `requestContext.domainName`.
    """

    method: str
    raw_path: str
    query_string: bytes | str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    source_ip: str
    scheme: str = "http"
    http_version: str = "1.1"
    host: str = ""


@dataclass(slots=True)
class HttpResponse:
    """The response to send.

    Header names are as the function wrote them; values may hold any
    character (encode them as latin-1 when possible, else UTF-8).
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedResponse(ValueError):
    """A function returned a `statusCode` result API Gateway would reject (HTTP 502).

    `str()` says what is wrong, for the function's log.
    """


# ---------------------------------------------------------------- request side


def event_headers(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names lowercased, repeated headers joined with ",", cookie left out.

    Values are decoded as latin-1 (the HTTP and ASGI convention, lossless).
    """
    joined: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").lower()
        if name == "cookie":
            continue
        value = raw_value.decode("latin-1")
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def request_cookies(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """Every `name=value` pair of every Cookie header, in order."""
    cookies: list[str] = []
    for raw_name, raw_value in headers:
        if raw_name.lower() == b"cookie":
            pairs = raw_value.decode("latin-1").split(";")
            cookies.extend(pair.strip() for pair in pairs if pair.strip())
    return cookies


def query_parameters(raw_query: str) -> dict[str, str]:
    """Decode a raw query string; repeated keys are joined with ",".

    `+` decodes to a space and `%XX` to its UTF-8 character, as API Gateway
    does; a key without `=` gets the value "", empty pairs are skipped.
    """
    params: dict[str, str] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        raw_key, _, raw_value = pair.partition("=")
        key, value = unquote_plus(raw_key), unquote_plus(raw_value)
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def is_text_content_type(content_type: str) -> bool:
    """Whether a body of this media type is passed as text (when it is UTF-8)."""
    media = content_type.split(";", 1)[0].split(",", 1)[0].strip().lower()
    if media.startswith("text/") or media in _TEXT_TYPES:
        return True
    return media.startswith("application/") and media.endswith(("+json", "+xml"))


def encode_body(body: bytes, content_type: str | None) -> tuple[str, bool]:
    """The event's `(body, isBase64Encoded)` for a request body."""
    if content_type is None or is_text_content_type(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def format_request_time(now: float) -> str:
    """`12/Mar/2020:19:03:58 +0000`, independent of the locale (made once per second)."""
    second = int(now)
    if second != _last_time[0]:
        _last_time[:] = [second, _format_time(second)]
    return str(_last_time[1])


_last_time: list[Any] = [None, ""]


def _format_time(now: float) -> str:
    t = time.gmtime(now)
    return (f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")


def domain_prefix(domain: str) -> str:
    """The first label of the host name: `api` for `api.example.com:8080`."""
    hostname = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
    return hostname.split(".", 1)[0]


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _request_context(request: HttpRequest, headers: Mapping[str, str], match: RouteMatch,
                     *, request_id: str, api_id: str, stage: str, account_id: str,
                     now: float) -> dict[str, Any]:
    domain = request.host or headers.get("host", "") or "localhost"
    epoch_ms = round(now * 1000)
    return {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain_prefix(domain),
        "http": {
            "method": request.method.upper(),
            "path": unquote(request.raw_path),
            "protocol": f"HTTP/{request.http_version}",
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": match.route.route_key,
        "stage": stage,
        "time": format_request_time(epoch_ms // 1000),
        "timeEpoch": epoch_ms,
    }


def build_event_v2(request: HttpRequest, match: RouteMatch, *, request_id: str,
                   api_id: str = "squall", stage: str = "$default",
                   account_id: str = "000000000000", now: float | None = None) -> dict[str, Any]:
    """The HTTP API payload format 2.0 event for `request` routed to `match`.

    Optional keys (`cookies`, `queryStringParameters`, `pathParameters`,
    `body`) are left out when empty, as API Gateway does.
    """
    now = time.time() if now is None else now
    headers = event_headers(request.headers)
    raw_query = _text(request.query_string)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": raw_query,
    }
    cookies = request_cookies(request.headers)
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    params = query_parameters(raw_query)
    if params:
        event["queryStringParameters"] = params
    event["requestContext"] = _request_context(
        request, headers, match, request_id=request_id, api_id=api_id, stage=stage,
        account_id=account_id, now=now)
    body, is_base64 = encode_body(request.body, headers.get("content-type"))
    if body:
        event["body"] = body
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    event["isBase64Encoded"] = is_base64 if body else False
    return event


# --------------------------------------------------------------- response side


def json_error(status: int, message: str,
               extra_headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    """An error written the way API Gateway writes its own: `{"message": ...}`."""
    headers = [("content-type", "application/json"), *extra_headers]
    return HttpResponse(status, headers, orjson.dumps({"message": message}))


def method_not_allowed(allowed: Iterable[str]) -> HttpResponse:
    """405 with an `Allow` header listing the methods routed for the path."""
    return json_error(405, "Method Not Allowed", [("allow", ", ".join(allowed))])


def parse_lambda_response(result: Any, payload: bytes | None = None) -> HttpResponse:
    """The HTTP response API Gateway sends for a function's return value (`payload`: the
    result as the function's runtime encoded it, when it is at hand).

    A malformed `statusCode` result becomes 502 `{"message": "Internal Server
    Error"}`; use `convert_lambda_result` to learn why.
    """
    try:
        return convert_lambda_result(result, payload)
    except MalformedResponse:
        return json_error(502, "Internal Server Error")


def convert_lambda_result(result: Any, payload: bytes | None = None) -> HttpResponse:
    """Like `parse_lambda_response`, but raises `MalformedResponse` with the reason. A result
    without a statusCode is the body, as the function's runtime wrote it (`payload`) when
    given: API Gateway passes it on as it is."""
    if isinstance(result, dict) and "statusCode" in result:
        return _structured_response(result)
    if payload is not None:
        return HttpResponse(200, [("content-type", "application/json")], payload)
    try:
        body = orjson.dumps(result)
    except TypeError as exc:  # orjson.JSONEncodeError: not a JSON value
        raise MalformedResponse(f"the result is not JSON: {exc}") from None
    return HttpResponse(200, [("content-type", "application/json")], body)


def _structured_response(result: dict[str, Any]) -> HttpResponse:
    status = _status_code(result["statusCode"])
    is_base64 = result.get("isBase64Encoded")
    if is_base64 is not None and not isinstance(is_base64, bool):
        raise MalformedResponse("isBase64Encoded must be true or false")
    headers = _merge_headers(_single_headers(result.get("headers")),
                             _multi_headers(result.get("multiValueHeaders")))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("content-type", DEFAULT_RESPONSE_CONTENT_TYPE))
    headers.extend(("set-cookie", cookie) for cookie in _cookies(result.get("cookies")))
    return HttpResponse(status, headers, _body(result.get("body"), bool(is_base64)))


def _status_code(value: Any) -> int:
    status: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        status = value
    elif isinstance(value, float) and value.is_integer():
        status = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        status = int(value.strip())
    if status is None or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode must be an HTTP status (100-599), got {value!r}")
    return status


def _header_value(name: Any, value: Any) -> str | None:
    """Validate a header name and render its value; None drops the header."""
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise MalformedResponse(f"{name!r} is not a valid header name")
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise MalformedResponse(f"header {name!r} has a {type(value).__name__} value")
    if _BAD_VALUE_CHARS.search(text):
        raise MalformedResponse(f"header {name!r} contains a line break or NUL")
    return text


def _single_headers(headers: Any) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if not isinstance(headers, dict):
        raise MalformedResponse("headers must be an object of name: value")
    pairs = ((name, _header_value(name, value)) for name, value in headers.items())
    return [(name, text) for name, text in pairs if text is not None]


def _multi_headers(headers: Any) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if not isinstance(headers, dict):
        raise MalformedResponse("multiValueHeaders must be an object of name: [values]")
    pairs: list[tuple[str, str]] = []
    for name, values in headers.items():
        if not isinstance(values, list):
            raise MalformedResponse(f"multiValueHeaders[{name!r}] must be a list")
        for value in values:
            text = _header_value(name, value)
            if text is not None:
                pairs.append((name, text))
    return pairs


def _merge_headers(single: list[tuple[str, str]],
                   multi: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`headers` then `multiValueHeaders`; a name/value pair given in both appears once."""
    merged = list(single)
    seen = {(name.lower(), value) for name, value in single}
    for name, value in multi:
        if (name.lower(), value) not in seen:
            seen.add((name.lower(), value))
            merged.append((name, value))
    return merged


def _cookies(cookies: Any) -> list[str]:
    if cookies is None:
        return []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise MalformedResponse("cookies must be a list of strings")
    if any(_BAD_VALUE_CHARS.search(cookie) for cookie in cookies):
        raise MalformedResponse("a cookie contains a line break or NUL")
    return cookies


def _body(body: Any, is_base64: bool) -> bytes:
    if body is None:
        return b""
    if not isinstance(body, str):
        if is_base64:
            raise MalformedResponse("isBase64Encoded is true but body is not a string")
        try:
            return orjson.dumps(body)
        except TypeError as exc:
            raise MalformedResponse(f"body is not JSON: {exc}") from None
    if not is_base64:
        return body.encode("utf-8", "replace")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedResponse("isBase64Encoded is true but body is not valid base64") from None
