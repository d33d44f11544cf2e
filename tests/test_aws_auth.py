"""Tests of squall.aws_auth: SigV4 verification against requests signed by botocore itself.

No mocks: every request is signed by `botocore.auth.SigV4Auth` (or by a real boto3
client talking to a real HTTP server on 127.0.0.1), then verified.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest
import uvicorn
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from squall.aws_auth import (
    BAD_SIGNATURE,
    UNKNOWN_KEY,
    AwsAuthError,
    SignedIdentity,
    asgi_headers,
    asgi_signed_url,
    aws_error_body,
    aws_error_headers,
    check_headers,
    verify_asgi,
    verify_sigv4,
)

SECRETS = {"admin": "tok", "reader": "other-secret"}
LAMBDA = "https://lambda.us-east-1.amazonaws.com"
DYNAMODB = "http://localhost:8000"
SCOPE = "admin/20261123/us-east-1/lambda/aws4_request"
ARN = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn"


@dataclass
class Signed:
    """A request as it arrives: what the client signed plus the Host header it sent."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""
    calls: list[str] = field(default_factory=list)

    @property
    def signed_at(self) -> datetime:
        return datetime.strptime(self.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)

    def secret_for(self, access_key_id: str) -> str | None:
        self.calls.append(access_key_id)
        return SECRETS.get(access_key_id)

    def verify(self, now: datetime | None = None, **kwargs: Any) -> SignedIdentity:
        return verify_sigv4(self.method, self.url, self.headers, self.body, self.secret_for,
                            now or self.signed_at, **kwargs)


def sign(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None, *,
         service: str = "lambda", region: str = "us-east-1", key: str = "admin",
         secret: str = "tok") -> Signed:
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    sent = dict(request.headers.items())
    sent["Host"] = urlsplit(url).netloc  # what an HTTP client sends; botocore signs it from the URL
    return Signed(method, url, sent, body)


def refused(signed: Signed, now: datetime | None = None, **kwargs: Any) -> AwsAuthError:
    with pytest.raises(AwsAuthError) as caught:
        signed.verify(now, **kwargs)
    assert caught.value.status in (400, 403)
    return caught.value


def invoke() -> Signed:
    return sign("POST", f"{LAMBDA}/2015-03-31/functions/my-fn/invocations?Qualifier=%24LATEST", b'{"a": 1}',
                {"X-Amz-Invocation-Type": "RequestResponse"})


def put_item() -> Signed:
    return sign("POST", f"{DYNAMODB}/", b'{"TableName": "t", "Item": {"pk": {"S": "1"}}}',
                {"X-Amz-Target": "DynamoDB_20120810.PutItem",
                 "Content-Type": "application/x-amz-json-1.0"}, service="dynamodb", region="eu-west-1")


# --- accepted -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("signed", "identity"), [
    (invoke(), SignedIdentity("admin", "us-east-1", "lambda")),
    (sign("POST", f"{LAMBDA}/2015-03-31/functions/{ARN}/invocations?Qualifier=%24LATEST", b"{}"),
     SignedIdentity("admin", "us-east-1", "lambda")),
    (sign("GET", f"{LAMBDA}/2015-03-31/functions/my-fn?b=x%20y&a=%2B1%3D2&c=%E2%9C%93&a=0", key="reader",
          secret="other-secret"), SignedIdentity("reader", "us-east-1", "lambda")),
    (sign("GET", "http://127.0.0.1:9000/"), SignedIdentity("admin", "us-east-1", "lambda")),
    (put_item(), SignedIdentity("admin", "eu-west-1", "dynamodb")),
])
def test_botocore_signed_requests_verify(signed: Signed, identity: SignedIdentity) -> None:
    assert signed.verify() == identity
    assert signed.calls == [identity.access_key_id]


@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_header_names_in_any_case(case: Any) -> None:
    signed = put_item()
    now, original = signed.signed_at, signed.headers
    signed.headers = {case(name): value for name, value in original.items()}
    assert signed.verify(now).service == "dynamodb"
    signed.headers = Headers(headers={k.lower(): v for k, v in original.items()})  # type: ignore[assignment]
    assert signed.verify(now).region == "eu-west-1"


def test_equivalent_query_encoding_verifies() -> None:
    signed = sign("GET", f"{LAMBDA}/2015-03-31/functions?Marker=a~b&MaxItems=5")
    signed.url = f"{LAMBDA}/2015-03-31/functions?Marker=a%7Eb&MaxItems=5"
    assert signed.verify().access_key_id == "admin"


def test_decoded_path_does_not_verify() -> None:
    """botocore encodes the received path once more: the raw path must be used, never the decoded one."""
    signed = sign("POST", f"{LAMBDA}/2015-03-31/functions/{ARN}/invocations", b"{}")
    signed.url = signed.url.replace("%3A", ":")
    assert refused(signed).code == "InvalidSignatureException"


def test_within_fifteen_minutes_either_way() -> None:
    signed = invoke()
    for skew in (timedelta(minutes=14), -timedelta(minutes=14), timedelta(0)):
        assert signed.verify(signed.signed_at + skew).service == "lambda"


def test_unsigned_payload_accepted() -> None:
    signed = sign("POST", f"{LAMBDA}/x", b"body", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert signed.verify().access_key_id == "admin"


def test_matching_content_sha256_accepted() -> None:
    signed = sign("POST", f"{LAMBDA}/x", b"body", {"X-Amz-Content-SHA256": hashlib.sha256(b"body").hexdigest()})
    assert signed.verify().access_key_id == "admin"


# --- refused ------------------------------------------------------------------------------------------

def _tamper_body(s: Signed) -> None:
    s.body += b" "


def _tamper_path(s: Signed) -> None:
    s.url = s.url.replace("my-fn", "my-fo")


def _tamper_query(s: Signed) -> None:
    s.url = s.url.replace("%24LATEST", "%241")


def _tamper_header(s: Signed) -> None:
    s.headers["X-Amz-Invocation-Type"] = "Event"


def _tamper_method(s: Signed) -> None:
    s.method = "PUT"


def _tamper_host(s: Signed) -> None:
    s.headers["Host"] = "evil.example.com"


def _tamper_signature(s: Signed) -> None:
    auth = s.headers["Authorization"]
    s.headers["Authorization"] = auth[:-1] + ("0" if auth[-1] != "0" else "1")


def _drop_signed_header(s: Signed) -> None:
    del s.headers["X-Amz-Invocation-Type"]


@pytest.mark.parametrize("tamper", [_tamper_body, _tamper_path, _tamper_query, _tamper_header, _tamper_method,
                                    _tamper_host, _tamper_signature, _drop_signed_header])
def test_tampered_request_is_invalid_signature(tamper: Any) -> None:
    signed = invoke()
    assert signed.verify().service == "lambda"
    tamper(signed)
    error = refused(signed)
    assert (error.code, error.message, error.status) == ("InvalidSignatureException", BAD_SIGNATURE, 403)


def test_wrong_secret() -> None:
    error = refused(sign("POST", f"{LAMBDA}/x", b"{}", secret="not-tok"))
    assert (error.code, error.message) == ("InvalidSignatureException", BAD_SIGNATURE)


def test_unknown_access_key() -> None:
    signed = sign("POST", f"{LAMBDA}/x", b"{}", key="nobody")
    error = refused(signed)
    assert (error.code, error.message, error.status) == ("UnrecognizedClientException", UNKNOWN_KEY, 403)
    assert signed.calls == ["nobody"]


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_authorization(value: str | None) -> None:
    signed = invoke()
    del signed.headers["Authorization"]
    if value is not None:
        signed.headers["authorization"] = value
    error = refused(signed)
    assert (error.code, error.message, error.status) == (
        "MissingAuthenticationTokenException", "Missing Authentication Token", 403)
    assert signed.calls == []


@pytest.mark.parametrize(("authorization", "named"), [
    ("Bearer abc", "Unsupported AWS 'algorithm': 'Bearer'"),
    (f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host",
     "Authorization header requires 'Signature' parameter."),
    ("AWS4-HMAC-SHA256 Signature=ab",
     "requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter."),
    ("AWS4-HMAC-SHA256 Credential admin/20261123, SignedHeaders=host, Signature=ab",
     "'Credential admin/20261123' not a valid key=value pair (missing equal-sign)"),
    ("AWS4-HMAC-SHA256 Credential=admin/20261123/us-east-1, SignedHeaders=host, Signature=ab",
     "Credential must have exactly 5 slash-delimited elements"),
    (f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=x-amz-date, Signature=ab",
     "'Host' or ':authority' must be a 'SignedHeader'"),
])
def test_malformed_authorization(authorization: str, named: str) -> None:
    signed = invoke()
    signed.headers["Authorization"] = authorization
    error = refused(signed)
    assert error.code == "IncompleteSignatureException" and error.status == 403
    assert named in error.message
    assert signed.calls == []


def test_missing_or_malformed_amz_date() -> None:
    signed = invoke()
    amz_date = signed.headers.pop("X-Amz-Date")
    error = refused(signed, now=datetime.now(UTC))
    assert error.code == "IncompleteSignatureException" and "'X-Amz-Date'" in error.message
    signed.headers["X-Amz-Date"] = amz_date.replace("T", "-")
    error = refused(signed, now=datetime.now(UTC))
    assert error.code == "IncompleteSignatureException" and "ISO-8601 'basic format'" in error.message


def test_expired_and_not_yet_current() -> None:
    signed = invoke()
    amz_date = signed.headers["X-Amz-Date"]
    now = signed.signed_at + timedelta(minutes=16)
    error = refused(signed, now)
    stamp = "%Y%m%dT%H%M%SZ"
    expected = (f"Signature expired: {amz_date} is now earlier than "
                f"{(now - timedelta(minutes=15)).strftime(stamp)} ({now.strftime(stamp)} - 15 min.)")
    assert (error.code, error.message) == ("InvalidSignatureException", expected)
    error = refused(signed, signed.signed_at - timedelta(minutes=16))
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith(f"Signature not yet current: {amz_date} is still later than ")
    assert signed.calls == []


def test_credential_scope_date_must_match_amz_date() -> None:
    signed = invoke()
    amz_date = signed.headers["X-Amz-Date"]
    other_day = (signed.signed_at + timedelta(days=1)).strftime("%Y%m%d")
    signed.headers["Authorization"] = signed.headers["Authorization"].replace(f"/{amz_date[:8]}/",
                                                                              f"/{other_day}/")
    error = refused(signed)
    assert error.code == "InvalidSignatureException"
    assert f"'{other_day}' != '{amz_date[:8]}'" in error.message


def test_service_scope_can_be_required() -> None:
    signed = put_item()
    assert signed.verify(service="dynamodb").service == "dynamodb"
    error = refused(signed, service="lambda")
    assert (error.code, error.message) == ("InvalidSignatureException",
                                           "Credential should be scoped to correct service: 'lambda'.")


def test_content_sha256_must_match_body() -> None:
    signed = sign("POST", f"{LAMBDA}/x", b"body",
                  {"X-Amz-Content-SHA256": hashlib.sha256(b"other").hexdigest()})
    error = refused(signed)
    assert (error.code, error.status) == ("XAmzContentSHA256Mismatch", 400)
    # botocore trusts the signed header: a swapped body still signs, so the hash check must catch it
    signed = sign("POST", f"{LAMBDA}/x", b"body", {"X-Amz-Content-SHA256": hashlib.sha256(b"body").hexdigest()})
    signed.body = b"evil"
    assert refused(signed).code == "XAmzContentSHA256Mismatch"


def test_error_shapes() -> None:
    error = AwsAuthError("InvalidSignatureException", BAD_SIGNATURE)
    assert error.status == 403 and str(error) == BAD_SIGNATURE
    assert aws_error_body(error) == {"__type": "InvalidSignatureException", "message": BAD_SIGNATURE}
    assert aws_error_headers(error) == {"x-amzn-errortype": "InvalidSignatureException"}


# --- ASGI helpers -------------------------------------------------------------------------------------

def _scope(signed: Signed, *, raw_path: bool = True) -> dict[str, Any]:
    parts = urlsplit(signed.url)
    scope: dict[str, Any] = {
        "type": "http", "method": signed.method, "scheme": parts.scheme, "path": parts.path,
        "query_string": parts.query.encode(), "server": ("127.0.0.1", 8000),
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in signed.headers.items()],
    }
    if raw_path:
        scope["raw_path"] = parts.path.encode()
    return scope


@pytest.mark.parametrize("path", [f"/2015-03-31/functions/{ARN}/invocations", "/functions/my-fn=1/x"])
def test_verify_asgi_uses_raw_path_and_host_header(path: str) -> None:
    signed = sign("POST", f"{LAMBDA}{path}?Qualifier=%24LATEST", b"{}")
    scope = _scope(signed)
    scope["path"] = unquote(scope["path"])  # as an ASGI server decodes it
    assert asgi_signed_url(scope) == signed.url
    assert verify_asgi(scope, b"{}", SECRETS.get, signed.signed_at) == SignedIdentity("admin", "us-east-1",
                                                                                       "lambda")
    with pytest.raises(AwsAuthError) as caught:
        verify_asgi(scope, b"{!}", SECRETS.get, signed.signed_at)
    assert caught.value.code == "InvalidSignatureException"


def test_asgi_without_raw_path_falls_back_to_the_path() -> None:
    signed = sign("GET", f"{LAMBDA}/2015-03-31/functions/my-fn")
    assert verify_asgi(_scope(signed, raw_path=False), b"", SECRETS.get, signed.signed_at).service == "lambda"


def test_asgi_headers_lowercase_and_join_repeats() -> None:
    scope = {"headers": [(b"X-Thing", b" a "), (b"x-thing", b"b"), (b"Host", b"h:1")]}
    assert asgi_headers(scope) == {"x-thing": "a,b", "host": "h:1"}


# --- real servers, real boto3 -------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(service: str, endpoint: str, secret: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, aws_access_key_id="admin", aws_secret_access_key=secret,
                        region_name="us-east-1", config=Config(retries={"max_attempts": 1}))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = f"http://{self.headers['Host']}{self.path}"  # self.path: the raw request target
        payload: dict[str, object] = {"ok": True}
        status, extra = 200, {}
        try:
            verify_sigv4(self.command, url, dict(self.headers.items()), body, SECRETS.get, datetime.now(UTC))
        except AwsAuthError as error:
            status, payload, extra = error.status, {**aws_error_body(error)}, aws_error_headers(error)
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **extra}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def plain_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_boto3_against_http_server(plain_server: str) -> None:
    good = _client("lambda", plain_server, "tok")
    bad = _client("lambda", plain_server, "wrong")
    try:
        response = good.invoke(FunctionName="my-fn", Payload=b"{}", Qualifier="$LATEST")
        assert (response["StatusCode"], json.loads(response["Payload"].read())) == (200, {"ok": True})
        with pytest.raises(ClientError) as caught:
            bad.invoke(FunctionName="my-fn", Payload=b"{}", Qualifier="$LATEST")
        assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    finally:
        good.close()
        bad.close()


async def _asgi_endpoint(request: Request) -> Response:
    body = await request.body()
    try:
        identity = verify_asgi(request.scope, body, SECRETS.get, datetime.now(UTC))
    except AwsAuthError as error:
        return JSONResponse(aws_error_body(error), error.status, headers=aws_error_headers(error))
    return JSONResponse({"raw_path": request.scope["raw_path"].decode(), "query": request.url.query,
                         "service": identity.service})


@pytest.fixture
def asgi_server() -> Iterator[str]:
    app = Starlette(routes=[Route("/{rest:path}", _asgi_endpoint, methods=["GET", "POST", "PUT", "DELETE"])])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http="httptools", loop="asyncio",
                                          lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_boto3_against_starlette_with_verify_asgi(asgi_server: str) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
    good, bad = _client("lambda", asgi_server, "tok"), _client("lambda", asgi_server, "wrong")
    dynamodb = _client("dynamodb", asgi_server, "tok")
    try:
        payload = json.loads(good.invoke(FunctionName=arn, Payload=b'{"x": "y z"}', Qualifier="$LATEST")
                             ["Payload"].read())
        assert payload == {"raw_path": f"/2015-03-31/functions/{ARN}/invocations",
                           "query": "Qualifier=%24LATEST", "service": "lambda"}
        with pytest.raises(ClientError) as caught:
            bad.invoke(FunctionName=arn, Payload=b"{}")
        assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert caught.value.response["Error"]["Message"] == BAD_SIGNATURE
        assert dynamodb.list_tables()["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        for client in (good, bad, dynamodb):
            client.close()



# --- checked before the body is read ------------------------------------------------------------------

def test_a_non_ascii_access_key_is_an_incomplete_signature_not_a_type_error() -> None:
    signed = invoke()
    signed.headers["Authorization"] = signed.headers["Authorization"].replace("Credential=admin",
                                                                              "Credential=adm\u00efn")
    error = refused(signed)
    assert error.code == "IncompleteSignatureException" and "ASCII" in error.message
    assert signed.calls == []


def test_an_unknown_key_is_refused_from_the_headers_alone() -> None:
    signed = sign("POST", f"{LAMBDA}/2015-03-31/functions/my-fn/invocations", b"{}", key="stranger")
    with pytest.raises(AwsAuthError) as caught:
        check_headers(signed.method, signed.url, signed.headers, signed.secret_for, signed.signed_at)
    assert caught.value.code == "UnrecognizedClientException"


def test_a_signed_payload_hash_lets_the_signature_be_checked_before_the_body() -> None:
    body = b'{"a": 1}'
    signed = sign("POST", f"{LAMBDA}/2015-03-31/functions/my-fn/invocations", body,
                  {"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    pending = check_headers(signed.method, signed.url, signed.headers, signed.secret_for, signed.signed_at)
    assert pending.signature_checked
    assert pending.check_body(body) == SignedIdentity("admin", "us-east-1", "lambda")
    with pytest.raises(AwsAuthError) as caught:
        pending.check_body(b'{"a": 2}')
    assert caught.value.code == "XAmzContentSHA256Mismatch"


def test_without_a_payload_hash_header_the_body_is_checked_after_reading() -> None:
    signed = invoke()
    pending = check_headers(signed.method, signed.url, signed.headers, signed.secret_for, signed.signed_at)
    assert not pending.signature_checked
    assert pending.check_body(signed.body).access_key_id == "admin"
    with pytest.raises(AwsAuthError) as caught:
        pending.check_body(b'{"a": 2}')
    assert caught.value.code == "InvalidSignatureException"


SESSION = {"SQFWORKER": "the-session-token"}


def signed_with_session(token: str | None, *, sign_it: bool = True) -> Signed:
    request = AWSRequest(method="POST", url=f"{DYNAMODB}/", data=b"{}", headers={})
    SigV4Auth(Credentials("SQFWORKER", "worker-secret", token if sign_it else None), "dynamodb",
              "us-east-1").add_auth(request)
    sent = dict(request.headers.items())
    if token is not None and not sign_it:
        sent["X-Amz-Security-Token"] = token  # added after signing: not a signed header
    sent["Host"] = urlsplit(DYNAMODB).netloc
    return Signed("POST", f"{DYNAMODB}/", sent, b"{}")


def check_session(signed: Signed) -> None:
    check_headers(signed.method, signed.url, signed.headers, {"SQFWORKER": "worker-secret", **SECRETS}.get,
                  signed.signed_at, token_for=SESSION.get).check_body(signed.body)


def test_a_function_key_needs_its_session_token_signed() -> None:
    check_session(signed_with_session("the-session-token"))
    for bad in (signed_with_session(None), signed_with_session("forged-token"),
                signed_with_session("the-session-token", sign_it=False)):
        with pytest.raises(AwsAuthError) as caught:
            check_session(bad)
        assert caught.value.code in ("UnrecognizedClientException", "IncompleteSignatureException")


def test_a_key_without_a_session_token_ignores_one_sent() -> None:
    request = AWSRequest(method="POST", url=f"{DYNAMODB}/", data=b"{}", headers={})
    SigV4Auth(Credentials("admin", "tok", "a-real-aws-session-token"), "dynamodb", "us-east-1").add_auth(request)
    sent = {**dict(request.headers.items()), "Host": urlsplit(DYNAMODB).netloc}
    check_session(Signed("POST", f"{DYNAMODB}/", sent, b"{}"))
