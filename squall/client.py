"""HTTP client of the platform API (`/_squall/api/...`), used by the CLI and by scripts.

    with SquallClient() as client:          # SQUALL_URL / SQUALL_TOKEN from the env
        client.deploy(bundle)
        client.invoke("hello", b'{"name": "you"}')

Every non-2xx answer raises `ApiError`, which carries the server's error `type`,
`message` and extra fields; a server that cannot be reached raises `ApiError`
with status 0 and a message that says what to check.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

import httpx
import orjson

from squall.exceptions import SquallError
from squall.releases import LIVE_ALIAS
from squall.settings import STAGE, TOKEN, URL

API_PREFIX = "/_squall/api"
LOG_PAGE_SIZE = 1000

_BAD_INPUT_STATUSES = frozenset({400, 401, 403, 409, 413, 422})
"""Answers that mean the caller's input or credentials are wrong (CLI exit code 2)."""


class ApiError(SquallError):
    """The server answered with an error, or could not be reached (`status` 0).

    `str()` is the server's message; `exit_code` is 2 for answers that blame the
    caller's input (400, 401, 403, 409, 413, 422) and 1 for everything else.
    """

    def __init__(self, status: int, type: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = details or {}
        self.exit_code = 2 if status in _BAD_INPUT_STATUSES else 1

    @property
    def kind(self) -> str:
        return self.type

    def to_dict(self) -> dict[str, object]:
        return {**self.details, "type": self.type, "message": self.message}


class SquallClient:
    """A synchronous client of one squall server."""

    def __init__(self, url: str | None = None, token: str | None = None,
                 timeout: float = 60, *, transport: httpx.BaseTransport | None = None,
                 stage: str | None = None) -> None:
        """`transport` replaces the network (e.g. `httpx.MockTransport` in tests); `stage` (default
        SQUALL_STAGE, else the root) is the stage every call goes to."""
        self.server_url = (url or URL.read()).rstrip("/")
        self.stage = stage or STAGE.read()
        self.url = self.server_url + stage_path(self.stage)
        self.token = token if token is not None else TOKEN.read()
        headers = {"user-agent": "squall-client"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SquallClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- API -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`{"status": "ok", "version": ...}`; needs no token."""
        return self._object(self._request("GET", "/_squall/health"))

    def deploy(self, bundle: bytes) -> dict[str, Any]:
        """Upload a project bundle (tar.gz); returns what changed per function."""
        response = self._request("POST", f"{API_PREFIX}/deploy", content=bundle,
                                 headers={"content-type": "application/gzip"})
        return self._object(response)

    def list_versions(self, name: str) -> dict[str, Any]:
        """The stored versions of `name`, newest first, with their provenance and the aliases
        pointing at them: `{"function", "latest", "aliases", "versions"}`; `ApiError` 404 when unknown."""
        return self._object(self._request("GET", _function_path(name, "versions")))

    def diff_versions(self, name: str, a: int, b: int) -> dict[str, Any]:
        """How version `b` of `name` differs from version `a`: `{"config", "files", "summary", ...}`
        (unified diffs); `ApiError` 404 when the function or a version is unknown."""
        return self._object(self._request("GET", _function_path(name, "diff"), params={"a": a, "b": b}))

    def list_functions(self) -> list[dict[str, Any]]:
        """Every deployed function, with its latest version."""
        body = self._object(self._request("GET", f"{API_PREFIX}/functions"))
        return list(body.get("functions", []))

    def list_instances(self, function: str | None = None) -> dict[str, Any]:
        """Live instances (of `function` when given) and the pool's counters:
        `{"instances": [...], "stats": {...}}`."""
        params = {"function": function} if function else None
        return self._object(self._request("GET", f"{API_PREFIX}/instances", params=params))

    def recycle(self, name: str) -> dict[str, Any]:
        """Stop the idle instances of `name`: `{"function", "stopped"}`."""
        return self._object(self._request("POST", _function_path(name, "recycle")))

    def get_function(self, name: str) -> dict[str, Any]:
        """One function's latest version; `ApiError` 404 when unknown."""
        return self._object(self._request("GET", _function_path(name)))

    def invoke(self, name: str, event_json: bytes) -> dict[str, Any]:
        """Invoke synchronously; returns `{"requestId", "function", "version", "ok", "payload"}`."""
        response = self._request("POST", _function_path(name, "invoke"), content=event_json,
                                 headers={"content-type": "application/json"})
        return self._object(response)

    def invoke_async(self, name: str, event_json: bytes, *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Queue an asynchronous invocation; `{"requestId", "function"}` once it is stored."""
        headers = {"content-type": "application/json"}
        if idempotency_key:
            headers["idempotency-key"] = idempotency_key
        return self._object(self._request("POST", _function_path(name, "events"), content=event_json,
                                          headers=headers))

    def get_event(self, event_id: str) -> dict[str, Any]:
        """One stored event, with its payload."""
        return self._object(self._request("GET", f"{API_PREFIX}/events/{quote(event_id, safe='')}"))

    def dead_letters(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The dead letters of `name`, oldest first."""
        body = self._object(self._request("GET", _function_path(name, "dlq"), params={"limit": limit}))
        return list(body.get("events", []))

    def redrive(self, name: str, ids: list[str] | None = None) -> int:
        """Queue dead letters again (those in `ids`, or all); how many."""
        body = self._object(self._request("POST", _function_path(name, "dlq/redrive"),
                                          content=orjson.dumps({"ids": ids} if ids else {})))
        return int(body.get("redriven", 0))

    def purge(self, name: str, ids: list[str] | None = None) -> int:
        """Delete dead letters (those in `ids`, or all); how many."""
        body = self._object(self._request("POST", _function_path(name, "dlq/purge"),
                                          content=orjson.dumps({"ids": ids} if ids else {})))
        return int(body.get("purged", 0))

    def publish(self, topic: str, message: str, *, subject: str | None = None,
                attributes: dict[str, Any] | None = None) -> dict[str, Any]:
        """Publish to a topic; `{"messageId", "topic"}` once every subscriber's event is stored."""
        body: dict[str, Any] = {"message": message}
        if subject is not None:
            body["subject"] = subject
        if attributes:
            body["attributes"] = attributes
        return self._object(self._request("POST", f"{API_PREFIX}/topics/{quote(topic, safe='')}/publish",
                                          content=orjson.dumps(body)))

    def list_topics(self) -> list[dict[str, Any]]:
        return list(self._object(self._request("GET", f"{API_PREFIX}/topics")).get("topics", []))

    def send_message(self, queue: str, body: str, *, attributes: dict[str, Any] | None = None,
                     group_id: str | None = None, deduplication_id: str | None = None,
                     delay: float | None = None) -> dict[str, Any]:
        """Send a message to a queue; `{"messageId", "queue"}` once it is stored."""
        data: dict[str, Any] = {"body": body}
        for key, value in (("attributes", attributes), ("group_id", group_id),
                           ("deduplication_id", deduplication_id), ("delay", delay)):
            if value is not None:
                data[key] = value
        return self._object(self._request("POST", f"{API_PREFIX}/queues/{quote(queue, safe='')}/messages",
                                          content=orjson.dumps(data)))

    def list_queues(self) -> list[dict[str, Any]]:
        return list(self._object(self._request("GET", f"{API_PREFIX}/queues")).get("queues", []))

    def trigger(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """Invoke `name` with the event of one of its triggers: `{"ok", "event", "payload", ...}`."""
        return self._object(self._request("POST", _function_path(name, "trigger"), content=orjson.dumps(request)))

    def list_buckets(self) -> list[dict[str, Any]]:
        return list(self._object(self._request("GET", f"{API_PREFIX}/buckets")).get("buckets", []))

    def put_object(self, bucket: str, key: str, content: bytes | IO[bytes],
                   content_type: str = "application/octet-stream") -> dict[str, Any]:
        """Store an object (`content` may be a file, streamed); `{"size", "etag", ...}`."""
        return self._object(self._request("PUT", _object_path(bucket, key), content=content,
                                          headers={"content-type": content_type}))

    def get_object(self, bucket: str, key: str) -> bytes:
        return self._request("GET", _object_path(bucket, key)).content

    def delete_object(self, bucket: str, key: str) -> None:
        self._request("DELETE", _object_path(bucket, key))

    def iter_objects(self, bucket: str, *, prefix: str = "", page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """Every object of `bucket` under `prefix`, in key order, page by page."""
        start_after = ""
        while True:
            page = self._object(self._request("GET", f"{API_PREFIX}/buckets/{quote(bucket, safe='')}/objects",
                                              params={"prefix": prefix, "start_after": start_after,
                                                      "limit": page_size}))
            yield from page.get("objects", [])
            if not page.get("next"):
                return
            start_after = str(page["next"])

    def table_call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One DynamoDB operation (`PutItem`, `Query`, ...) on squall's tables: DynamoDB's JSON
        request in, its JSON response out (`squall.sdk.tables.Table(name, call=client.table_call)`
        speaks it with plain values)."""
        return self._object(self._request("POST", f"{API_PREFIX}/tables/{quote(operation, safe='')}",
                                          content=orjson.dumps(request),
                                          headers={"content-type": "application/json"}))

    # -- stages (always the server's root API, whatever `stage` is) --------------------
    def list_stages(self) -> list[dict[str, Any]]:
        stages: list[dict[str, Any]] = self._object(self._request("GET", self._root_api("stages")))["stages"]
        return stages

    def put_stage(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Create stage `name` or change its settings (`host` or `path_prefix`, `env`)."""
        return self._object(self._request("PUT", self._root_api(f"stages/{quote(name, safe='')}"), json=settings))

    def promote(self, source: str, target: str) -> dict[str, Any]:
        """Deploy to stage `target` exactly the versions stage `source` runs."""
        return self._object(self._request("POST", self._root_api(f"stages/{quote(target, safe='')}/promote"),
                                          json={"from": source}))

    def _root_api(self, path: str) -> str:
        return f"{self.server_url}{API_PREFIX}/{path}"

    def list_aliases(self, name: str) -> list[dict[str, Any]]:
        aliases: list[dict[str, Any]] = self._object(self._request("GET", _function_path(name, "aliases")))["aliases"]
        return aliases

    def set_alias(self, name: str, alias: str, weights: dict[int, int]) -> dict[str, Any]:
        body = {"weights": {str(number): weight for number, weight in weights.items()}}
        return self._object(self._request("PUT", _function_path(name, "aliases") + "/" + quote(alias, safe=""),
                                          json=body))

    def delete_alias(self, name: str, alias: str) -> dict[str, Any]:
        return self._object(self._request("DELETE", _function_path(name, "aliases") + "/" + quote(alias, safe="")))

    def rollback(self, name: str, *, alias: str = LIVE_ALIAS, to: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"alias": alias} if to is None else {"alias": alias, "to": to}
        return self._object(self._request("POST", _function_path(name, "rollback"), json=body))

    def list_secrets(self) -> list[dict[str, Any]]:
        """Every secret, and every one a function lists that is not set: `{"name", "status",
        "created_at", "updated_at", "functions"}` each; never a value."""
        return list(self._object(self._request("GET", f"{API_PREFIX}/secrets")).get("secrets", []))

    def set_secret(self, name: str, value: bytes) -> dict[str, Any]:
        """Create or replace the secret `name`: `{"name", "created", "functions"}` (not the value)."""
        return self._object(self._request("PUT", _secret_path(name), content=value,
                                          headers={"content-type": "application/octet-stream"}))

    def delete_secret(self, name: str) -> dict[str, Any]:
        """Remove the secret `name`: `{"name", "functions"}`; `ApiError` 404 when it is not set."""
        return self._object(self._request("DELETE", _secret_path(name)))

    def list_schedules(self) -> list[dict[str, Any]]:
        return list(self._object(self._request("GET", f"{API_PREFIX}/schedules")).get("schedules", []))

    def run_schedule(self, name: str) -> dict[str, Any]:
        return self._object(self._request("POST", f"{API_PREFIX}/schedules/{quote(name, safe='/')}/run"))

    def logs(self, name: str, *, since: float | None = None, request_id: str | None = None,
             after: int = 0, limit: int = LOG_PAGE_SIZE) -> list[dict[str, Any]]:
        """One page of log lines, oldest first, with `id` greater than `after`."""
        params: dict[str, str | int | float] = {"after": after, "limit": limit}
        if since is not None:
            params["since"] = since
        if request_id is not None:
            params["request_id"] = request_id
        body = self._object(self._request("GET", _function_path(name, "logs"), params=params))
        return list(body.get("logs", []))

    def iter_logs(self, name: str, *, since: float | None = None,
                  request_id: str | None = None, after: int = 0,
                  page_size: int = LOG_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every stored log line after `after`, page by page, oldest first."""
        while True:
            page = self.logs(name, since=since, request_id=request_id, after=after,
                             limit=page_size)
            yield from page
            if page:
                after = int(page[-1]["id"])
            if len(page) < page_size:
                return

    def follow_logs(self, name: str, *, since: float | None = None,
                    request_id: str | None = None,
                    poll_interval: float = 0.5) -> Iterator[dict[str, Any]]:
        """Stored lines, then new lines as they arrive (polls with `after` = last id seen).

        Never ends by itself; the caller stops iterating (or presses Ctrl-C).
        """
        after = 0
        while True:
            for line in self.iter_logs(name, since=since, request_id=request_id, after=after):
                after = int(line["id"])
                yield line
            time.sleep(poll_interval)

    # -- plumbing --------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise self._unreachable(_describe_connect_error(exc)) from exc
        except httpx.TimeoutException as exc:
            raise self._unreachable(f"no answer within the timeout ({type(exc).__name__})") \
                from exc
        except httpx.TransportError as exc:
            raise self._unreachable(str(exc) or type(exc).__name__) from exc
        if response.is_error:
            raise _error_from(response, has_token=bool(self.token))
        return response

    def _unreachable(self, why: str) -> ApiError:
        return ApiError(0, "ConnectionError",
                        f"cannot reach squall at {self.server_url}: {why} "
                        "(is the server running? set SQUALL_URL)")

    @staticmethod
    def _object(response: httpx.Response) -> dict[str, Any]:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(response.status_code, "BadResponse",
                           f"the server's answer to {response.request.url.path} "
                           "is not a JSON object")
        return body


def stage_path(stage: str | None) -> str:
    """Where a stage's API is on the server: `/_squall/stages/NAME` (nothing for the root)."""
    return "" if not stage or stage == "default" else f"/_squall/stages/{quote(stage, safe='')}"


def _object_path(bucket: str, key: str) -> str:
    return f"{API_PREFIX}/buckets/{quote(bucket, safe='')}/objects/{quote(key, safe='/')}"


def _secret_path(name: str) -> str:
    return f"{API_PREFIX}/secrets/{quote(name, safe='')}"


def _function_path(name: str, action: str | None = None) -> str:
    path = f"{API_PREFIX}/functions/{quote(name, safe='')}"
    return f"{path}/{action}" if action else path


def _describe_connect_error(exc: httpx.ConnectError) -> str:
    text = str(exc)
    return "connection refused" if "refused" in text.lower() else (text or "connection failed")


def _error_from(response: httpx.Response, *, has_token: bool) -> ApiError:
    """Build an ApiError from `{"error": {"type", "message", ...}}`, or from any body."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        details = {k: v for k, v in error.items() if k not in ("type", "message")}
        kind = str(error.get("type") or "Error")
        message = str(error.get("message") or response.reason_phrase)
    else:
        details = {}
        kind = "HTTPError"
        text = response.text.strip()[:200]
        message = f"HTTP {response.status_code} {response.reason_phrase}" + \
            (f": {text}" if text else "")
    if response.status_code == 401 and not has_token:
        message += " (pass --token or set SQUALL_TOKEN)"
    return ApiError(response.status_code, kind, message, details)
