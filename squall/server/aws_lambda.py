"""AWS Lambda's Invoke API under `/_squall/aws/lambda`, so that boto3 and the AWS CLI work
unchanged with `endpoint_url=URL + "/_squall/aws/lambda"`:

    POST /2015-03-31/functions/{FunctionName}/invocations?Qualifier=...

* `X-Amz-Invocation-Type`: `RequestResponse` (default: 200 with the function's result; a
  failed invocation adds `X-Amz-Function-Error: Unhandled` and the error object is the
  body), `Event` (202 once the event is stored, run like `squall invoke --async`) or
  `DryRun` (204: the function exists and the caller may invoke it).
* `X-Amz-Log-Type: Tail` returns the last 4 KB of the invocation's log in
  `X-Amz-Log-Result` (base64), as Lambda does.
* `FunctionName` is a name, a full ARN or a partial ARN (`ACCOUNT:function:NAME`), with an
  optional `:QUALIFIER`: `$LATEST` (the `live` alias), an alias or a version number.
* Requests are signed with SigV4 and verified with botocore's signer
  (squall/aws_auth.py), from the headers before the body is read; the body is read up to
  the payload limit (6 MB, 1 MB for `Event`) and then checked against the signature; the admin credential is access key id `admin` with the admin
  token as its secret. Errors have Lambda's shape: `x-amzn-ErrorType` and
  `{"Type": "User", "message": ...}`.
"""

from __future__ import annotations

import base64
import hmac
from datetime import datetime, timezone

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.aws_auth import AwsAuthError, check_asgi_headers
from squall.events.engine import MAX_ASYNC_PAYLOAD
from squall.exceptions import NotFound, PayloadTooLarge, Throttled
from squall.request_ids import trace_id_from
from squall.server.bodies import UNVERIFIED, BodySlotsSpent, BodyTooLarge, BodyTooSlow, read_body
from squall.runtime.protocol import MAX_PAYLOAD_BYTES
from squall.node.core import ActiveFunction, Invocation, Node

PREFIX = "/_squall/aws/lambda"
ADMIN_ACCESS_KEY = "admin"
LOG_TAIL_BYTES = 4096
MAX_CLIENT_CONTEXT = 3583
"""Invoke's ClientContext, base64, at most (Lambda's limit)."""


class LambdaError(Exception):
    """An error answered in Lambda's shape."""

    def __init__(self, status: int, code: str, message: str, kind: str = "User") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.kind = status, code, message, kind

    def response(self) -> Response:
        return Response(orjson.dumps({"Type": self.kind, "message": self.message}), self.status,
                        headers={"x-amzn-ErrorType": self.code}, media_type="application/json")


class LambdaApi:
    def __init__(self, node: Node, token: str) -> None:
        self.node = node
        self.token = token

    def routes(self) -> list[Route]:
        return [Route(f"{PREFIX}/2015-03-31/functions/{{name}}/invocations", self.invoke, methods=["POST"])]

    def secret_for(self, access_key: str) -> str | None:
        return self.token if hmac.compare_digest(access_key, ADMIN_ACCESS_KEY) else None

    async def invoke(self, request: Request) -> Response:
        """Authenticate from the headers, then read at most the invocation type's payload limit,
        then check the body against the signature, then invoke."""
        try:
            pending = check_asgi_headers(request.scope, self.secret_for, datetime.now(timezone.utc))
            body = await self.read_payload(request, verified=pending.signature_checked)
            pending.check_body(body)
            return await self._invoke(request, body)
        except AwsAuthError as exc:
            return LambdaError(exc.status, exc.code, exc.message).response()
        except LambdaError as exc:
            return exc.response()

    @staticmethod
    async def read_payload(request: Request, verified: bool) -> bytes:
        """The payload, up to the invocation type's limit; a body whose signature is still to be
        checked is read within the node's budget for those (squall/server/bodies.py)."""
        limit = MAX_ASYNC_PAYLOAD if request.headers.get("x-amz-invocation-type") == "Event" else MAX_PAYLOAD_BYTES
        try:
            return await read_body(request.scope, request.receive, limit, None if verified else UNVERIFIED)
        except BodySlotsSpent:
            raise LambdaError(429, "TooManyRequestsException", "Rate exceeded: too many requests whose payload "
                              "is not yet verified are being read (or too many from this client); "
                              "retry shortly") from None
        except BodyTooSlow:
            raise LambdaError(408, "RequestTimeoutException", "The request payload did not arrive in time "
                              "(a payload read before its signature is checked must keep arriving)") from None
        except BodyTooLarge:
            raise LambdaError(413, "RequestTooLargeException",
                              f"Request must be smaller than {limit} bytes for the InvokeFunction operation") from None

    async def _invoke(self, request: Request, body: bytes) -> Response:
        function, qualifier = await self.resolve(request.path_params["name"], request.query_params.get("Qualifier"))
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if kind == "DryRun":
            return Response(status_code=204)
        payload = self.payload(body)
        client_context = self.client_context(request.headers.get("x-amz-client-context"))
        if kind == "Event":
            try:
                request_id = await self.node.events.invoke_async(function, payload, qualifier=qualifier)
            except PayloadTooLarge as exc:
                raise LambdaError(413, "RequestTooLargeException", str(exc)) from None
            return Response(status_code=202, headers={"x-amzn-RequestId": request_id})
        if kind != "RequestResponse":
            raise LambdaError(400, "InvalidParameterValueException",
                              f"Unsupported invocation type {kind!r}: use RequestResponse, Event or DryRun")
        try:
            invocation = await self.node.invoke(function, payload, qualifier=qualifier, client_context=client_context,
                                                trace_id=trace_id_from(request.headers.get("x-amzn-trace-id")))
        except Throttled as exc:
            raise LambdaError(429, "TooManyRequestsException", str(exc)) from None
        headers = {"x-amzn-RequestId": invocation.request_id,
                   "X-Amz-Executed-Version": str(invocation.version)}
        if not invocation.ok:
            headers["X-Amz-Function-Error"] = "Unhandled"
        if request.headers.get("x-amz-log-type") == "Tail":
            headers["X-Amz-Log-Result"] = self.log_tail(function, invocation)
        return Response(invocation.payload, 200, headers=headers, media_type="application/json")

    async def resolve(self, name: str, qualifier: str | None) -> tuple[ActiveFunction, str | None]:
        """The version a FunctionName (name, ARN or partial ARN, maybe qualified) and Qualifier
        (`$LATEST`, an alias or a version number) reach, and the qualifier in effect."""
        function_name, name_qualifier = split_function_name(name)
        if qualifier and name_qualifier and qualifier != name_qualifier:
            raise LambdaError(400, "InvalidParameterValueException",
                              "The derived qualifier from the function name does not match the specified qualifier.")
        qualifier = qualifier or name_qualifier
        try:
            return await self.node.resolve(function_name, qualifier), qualifier
        except NotFound:
            arn = self.node.arn(function_name) + (f":{qualifier}" if qualifier else "")
            raise LambdaError(404, "ResourceNotFoundException", f"Function not found: {arn}") from None

    @staticmethod
    def payload(body: bytes) -> bytes:
        """The event of a body read within its limit (read_payload): JSON, `{}` when empty."""
        body = body or b"{}"
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise LambdaError(400, "InvalidRequestContentException",
                              f"Could not parse request body into json: {exc}") from None
        return body

    @staticmethod
    def client_context(header: str | None) -> str | None:
        """Invoke's `ClientContext` (base64 of a JSON object, 3,583 bytes at most) as JSON text."""
        if header is None:
            return None
        try:
            if len(header) > MAX_CLIENT_CONTEXT:
                raise ValueError("too long")
            text = base64.b64decode(header, validate=True).decode()
            if not isinstance(orjson.loads(text), dict):
                raise ValueError("not an object")
        except (ValueError, UnicodeDecodeError):
            raise LambdaError(400, "InvalidRequestContentException",
                              "Client context must be a valid Base64-encoded JSON object.") from None
        return text

    def log_tail(self, function: ActiveFunction, invocation: Invocation) -> str:
        lines = self.node.log_batch(function, invocation).lines
        text = "".join(line.message + "\n" for line in lines).encode()
        return base64.b64encode(text[-LOG_TAIL_BYTES:]).decode()


def split_function_name(name: str) -> tuple[str, str | None]:
    """`fn`, `fn:1`, `arn:aws:lambda:REGION:ACCOUNT:function:fn[:Q]`, `ACCOUNT:function:fn[:Q]`
    -> (function name, qualifier or None)."""
    parts = name.split(":")
    if "function" in parts:
        rest = parts[parts.index("function") + 1:]
    else:
        rest = parts
    if not rest or not rest[0] or len(rest) > 2:
        raise LambdaError(400, "InvalidParameterValueException", f"Invalid function name: {name}")
    return rest[0], rest[1] if len(rest) == 2 else None
