"""The table service (squall/tables/service.py) on the node, through three doors that take
the same DynamoDB JSON requests:

    POST /_squall/aws/dynamodb/            DynamoDB's protocol (X-Amz-Target, SigV4), for boto3
                                           (a plain ASGI app: squall/server/app.py)
    POST /_squall/sdk/tables/{Operation}   function code (squall.sdk.tables), its own credential
    POST /_squall/api/tables/{Operation}   the admin (the CLI), the admin token

The DynamoDB door answers errors as DynamoDB does (400, `{"__type": "...#Code", "message"}`),
so boto3 raises the same exceptions; the other two use the platform's error shape
`{"error": {"type": Code, "message"}}`. The admin's AWS credential is access key id `admin`
with the admin token as secret; a function's is the one squall/credentials.py issued it.
Table definitions come from the node's resources (squall.yaml `tables:` or CreateTable).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall import credentials
from squall.aws_auth import AwsAuthError, check_asgi_headers
from squall.exceptions import Conflict, StoreError
from squall.request_ids import new_request_id
from squall.server.bodies import (
    MAX_TABLE_REQUEST_BYTES,
    UNVERIFIED,
    BodySlotsSpent,
    BodyTooLarge,
    BodyTooSlow,
    read_body,
    request_body,
)
from squall.node.core import Node
from squall.server.responses import error_response, json_response
from squall.server.sdk_api import SdkApi, unauthorized
from squall.store.resources import Resource
from squall.tables.catalog import TableDefinition
from squall.tables.errors import AccessDenied, ResourceInUse, TableError, TransactionCanceled, ValidationError
from squall.tables.service import ADMIN, Caller, TableService

Endpoint = Callable[[Request], Awaitable[Response]]
DYNAMODB_PREFIX = "/_squall/aws/dynamodb"
ADMIN_ACCESS_KEY = "admin"
TARGET_PREFIX = "DynamoDB_20120810."
AMZ_JSON = "application/x-amz-json-1.0"
EXPIRY_INTERVAL = 30.0
EXPIRY_BATCH = 1000


def _header(scope: dict[str, Any], name: bytes) -> str:
    return next((value.decode("latin-1") for key, value in scope["headers"] if key.lower() == name), "")


class UnknownOperation(TableError):
    """An operation the table service does not have: the caller's mistake (DynamoDB's 400)."""

    code = "UnknownOperationException"


class NotJson(TableError):
    """A request body that is not JSON, or holds a value of the wrong JSON type where the table
    service expects another (DynamoDB's 400 SerializationException)."""

    code = "SerializationException"


WRONG_SHAPE = (TypeError, AttributeError, KeyError, ValueError)
"""What the table service raises when a request's JSON has a list where it reads a number or a
string (it trusts the shapes boto3 sends): the caller's mistake, answered 400."""


class Throttling(TableError):
    """The node is busy reading unverified bodies (DynamoDB's 400 ThrottlingException; boto3 retries)."""

    code = "ThrottlingException"


class RequestTimeout(TableError):
    """An unverified body that did not keep arriving (400 RequestTimeoutException; boto3 retries)."""

    code = "RequestTimeoutException"


class NodeCatalog:
    """Table definitions as the node's resources hold them; changes go to the store first."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._source: dict[str, Resource] | None = None
        self._definitions: dict[str, TableDefinition] = {}

    def _tables(self) -> dict[str, TableDefinition]:
        """The definitions of the node's table resources, made again only when those change
        (the node replaces its resources dict then), not on every request."""
        tables = self.node.resources.get("table", {})
        if tables is not self._source:
            self._source, self._definitions = tables, {n: TableDefinition.of(r) for n, r in tables.items()}
        return self._definitions

    def get(self, name: str) -> TableDefinition | None:
        definition = self._tables().get(name)
        if definition is None:  # made through another node a moment ago?
            resource = next((r for r in self.node.store.list_resources("table") if r.name == name), None)
            definition = TableDefinition.of(resource) if resource is not None else None
        return definition

    def names(self) -> list[str]:
        return sorted(self._tables())

    def create(self, definition: TableDefinition) -> None:
        try:
            self.node.store.put_resource(Resource("table", definition.name, "", definition.config()), create=True)
        except Conflict:
            raise ResourceInUse(f"Table already exists: {definition.name}") from None
        self.node.resources = self.node.load_resources()

    def delete(self, definition: TableDefinition) -> None:
        if definition.project:
            raise ResourceInUse(f"Table {definition.name} is declared in the squall.yaml of project "
                                f"{definition.project}: remove it there and deploy")
        self.node.store.delete_resource("table", definition.name)
        self.node.resources = self.node.load_resources()

    def set_ttl(self, definition: TableDefinition, attribute: str | None) -> TableDefinition:
        changed = TableDefinition(definition.name, definition.key, definition.sort_key, attribute, definition.project)
        self.node.store.put_resource(Resource("table", changed.name, changed.project, changed.config()),
                                     create=False)
        self.node.resources = self.node.load_resources()
        return changed


class TablesApi:
    def __init__(self, node: Node, token: str, sdk: SdkApi) -> None:
        self.node, self.token, self.sdk = node, token, sdk
        settings = node.settings
        self.service = TableService(node.store, NodeCatalog(node), region=settings.region,
                                    account=settings.account_id)
        self.operations = frozenset(self.service.operations)

    def routes(self, admin_only: Callable[[Endpoint], Endpoint]) -> list[Route]:
        return [
            Route("/_squall/sdk/tables/{operation}", self.from_function, methods=["POST"]),
            Route("/_squall/api/tables/{operation}", admin_only(self.from_admin), methods=["POST"]),
        ]

    async def run(self, operation: str, body: bytes, caller: Caller) -> dict[str, Any]:
        if operation not in self.operations:
            raise UnknownOperation(f"Operation {operation} is not supported by squall's tables; supported: "
                                   f"{', '.join(sorted(self.operations))}")
        try:
            request = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise NotJson(f"The request body is not valid JSON: {exc}") from None
        try:
            if self.node.store.calls_are_local:
                return self.service.call(operation, request, caller)
            return await asyncio.to_thread(self.service.call, operation, request, caller)
        except StoreError as exc:
            raise TableError(f"The table store failed: {exc}") from None
        except WRONG_SHAPE as exc:  # a request field of the wrong JSON type, as DynamoDB answers it
            raise NotJson(f"The request has a value of the wrong type or shape for {operation}: "
                          f"{type(exc).__name__}: {exc}") from None

    # -- DynamoDB's protocol ----------------------------------------------------
    def secret_for(self, access_key: str) -> str | None:
        if hmac.compare_digest(access_key, ADMIN_ACCESS_KEY):
            return self.token
        return credentials.secret_for(self.node.settings.sdk_key, access_key, time.time())

    def token_for(self, access_key: str) -> str | None:
        return credentials.session_token_for(self.node.settings.sdk_key, access_key)

    def aws_caller(self, access_key: str) -> Caller:
        if access_key == ADMIN_ACCESS_KEY:
            return ADMIN
        function = credentials.function_of(access_key)
        if function not in self.node.functions:
            raise AccessDenied(f"User: function/{function} is not active on this server")
        return self.function_caller(function)

    def function_caller(self, function: str) -> Caller:
        """An active function as a caller: the tables its manifest grants it."""
        return Caller(function, frozenset(self.node.functions[function].version.config.get("tables", ())))

    async def dynamodb(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The DynamoDB door as a plain ASGI app: app.py routes its path here past the
        platform's router (a quarter of the cost of a request at thousands per second)."""
        response = await self.dynamodb_answer(scope, receive)
        await response(scope, receive, send)

    async def dynamodb_answer(self, scope: dict[str, Any], receive: Any) -> Response:
        """Authenticate from the headers, read at most MAX_TABLE_REQUEST_BYTES, check the body against
        the signature, then run the operation."""
        headers = {"x-amzn-RequestId": new_request_id()}
        try:
            if scope["method"] != "POST":
                raise TableError("The DynamoDB endpoint takes POST requests")
            pending = check_asgi_headers(scope, self.secret_for, datetime.now(UTC), token_for=self.token_for)
            try:
                body = await read_body(scope, receive, MAX_TABLE_REQUEST_BYTES,
                                       None if pending.signature_checked else UNVERIFIED)
            except BodyTooLarge:
                raise ValidationError(f"The request is larger than {MAX_TABLE_REQUEST_BYTES} bytes") from None
            except BodySlotsSpent:
                raise Throttling("Too many requests whose body is not yet verified are being read (or too "
                                 "many from this client); retry shortly") from None
            except BodyTooSlow:
                raise RequestTimeout("The request body did not arrive in time (a body read before its "
                                     "signature is checked must keep arriving)") from None
            identity = pending.check_body(body)
            target = _header(scope, b"x-amz-target")
            if not target.startswith(TARGET_PREFIX):
                raise TableError(f"Unknown X-Amz-Target {target!r}: expected {TARGET_PREFIX}<Operation>")
            answer = await self.run(target.removeprefix(TARGET_PREFIX), body, self.aws_caller(identity.access_key_id))
            return Response(orjson.dumps(answer), 200, headers=headers, media_type=AMZ_JSON)
        except AwsAuthError as exc:
            return _aws_error(400 if exc.status < 500 else exc.status, exc.code, exc.message, headers,
                              namespace="com.amazon.coral.service")
        except TableError as exc:
            return _aws_error(400 if exc.code != "InternalServerError" else 500, exc.code, exc.message, headers,
                              **_extra(exc))

    # -- the platform's doors ---------------------------------------------------
    async def from_function(self, request: Request) -> Response:
        function = self.sdk.caller(request)
        if function is None:
            return unauthorized()
        return await self.answer(request, self.function_caller(function))

    async def from_admin(self, request: Request) -> Response:
        return await self.answer(request, ADMIN)

    async def answer(self, request: Request, caller: Caller) -> Response:
        try:
            body = await request_body(request, MAX_TABLE_REQUEST_BYTES)
            return json_response(await self.run(request.path_params["operation"], body, caller))
        except BodyTooLarge as exc:
            return error_response(413, "RequestTooLarge", str(exc))
        except TableError as exc:
            status = 403 if isinstance(exc, AccessDenied) else 500 if exc.code == "InternalServerError" else 400
            return error_response(status, exc.code, exc.message, **_extra(exc))

    # -- TTL housekeeping -------------------------------------------------------
    async def expire_forever(self) -> None:
        """Delete expired items in the background (reads already skip them)."""
        while True:
            await asyncio.sleep(EXPIRY_INTERVAL)
            try:
                while await asyncio.to_thread(self.node.store.expire_items, now=time.time(),
                                              limit=EXPIRY_BATCH) == EXPIRY_BATCH:
                    pass
            except StoreError:
                continue


def _extra(exc: TableError) -> dict[str, Any]:
    return {"CancellationReasons": exc.reasons} if isinstance(exc, TransactionCanceled) else {}


def _aws_error(status: int, code: str, message: str, headers: dict[str, str], *,
               namespace: str = "com.amazonaws.dynamodb.v20120810", **extra: Any) -> Response:
    if code == "AccessDeniedException":
        namespace = "com.amazon.coral.service"
    body = {"__type": f"{namespace}#{code}", "message": message, **extra}
    return Response(orjson.dumps(body), status, headers=headers, media_type=AMZ_JSON)
