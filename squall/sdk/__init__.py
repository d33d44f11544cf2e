"""What function code imports to use the platform: topics, queues and buckets.

    from squall import sdk

    sdk.publish("deploys", "v2 is out", attributes={"env": "prod"})
    sdk.send("jobs", '{"card": 7}')
    uploads = sdk.bucket("uploads")
    uploads.put("reports/today.txt", b"...")
    data = uploads.get("reports/today.txt")
    for item in uploads.list(prefix="reports/"):
        ...

Tables are in `from squall.sdk import tables` (squall/sdk/tables.py).

It imports only the standard library, squall.settings and squall.exceptions (fast inside
an instance, no server code) and talks to the node that runs the instance
(`SQUALL_API_URL`) with the function's own credential (`SQUALL_FUNCTION_TOKEN`), both set
by squall in every instance, over one kept-alive connection per thread. A function may use
the topics, queues, buckets and tables its manifest lists under its own keys. Failures
raise `SdkError` with the platform's message and HTTP status.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import urllib.parse
from typing import Any, Iterator

from squall.exceptions import SettingError
from squall.settings import API_URL, FUNCTION_TOKEN

__all__ = ["Bucket", "SdkError", "bucket", "publish", "send"]

TIMEOUT = 30.0


class SdkError(Exception):
    """`status` (0 when squall was not reached), `kind` (the server's error type), `message`,
    and `details`: the error's other fields, if any."""

    def __init__(self, status: int, kind: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{kind}: {message}" if kind else message)
        self.status, self.kind, self.message = status, kind, message
        self.details = details or {}


class _Connection(threading.local):
    """This thread's kept-alive connection to the node (a new one after a fork)."""

    conn: http.client.HTTPConnection | None = None
    pid = 0

    def get(self, base: str) -> tuple[http.client.HTTPConnection, bool]:
        """(the connection, whether it was used before)."""
        if self.conn is not None and self.pid == os.getpid():
            return self.conn, True
        parts = urllib.parse.urlsplit(base)
        self.conn, self.pid = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=TIMEOUT), os.getpid()
        return self.conn, False

    def drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


_connection = _Connection()


def _request(method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
             query: dict[str, Any] | None = None) -> bytes:
    try:
        base, token = API_URL.read(), FUNCTION_TOKEN.read()  # set by the node in every instance
    except SettingError as exc:  # the function's own env replaced one
        raise SdkError(0, "NotConfigured", str(exc)) from None
    if not base or not token:
        raise SdkError(0, "NotConfigured", "squall.sdk works inside a squall function "
                       f"({API_URL.name} and {FUNCTION_TOKEN.name} are not set)")
    target = f"{urllib.parse.urlsplit(base).path}/_squall/sdk{path}" + (
        f"?{urllib.parse.urlencode(query)}" if query else "")
    headers = {"authorization": f"Bearer {token}", "content-type": content_type}
    while True:
        conn, reused = _connection.get(base)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            break
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
            _connection.drop()  # the node closed an idle kept-alive connection: once more on a new one
            if not reused:
                raise SdkError(0, "ConnectionError", f"cannot reach squall at {base}: {exc}") from None
        except OSError as exc:
            _connection.drop()
            raise SdkError(0, "ConnectionError", f"cannot reach squall at {base}: {exc}") from None
    if response.will_close:
        _connection.drop()
    if response.status >= 400:
        raise _error(response.status, data)
    return data


def _error(status: int, body: bytes) -> SdkError:
    try:
        error = json.loads(body)["error"]
        details = {k: v for k, v in error.items() if k not in ("type", "message")}
        return SdkError(status, str(error.get("type", "")), str(error.get("message", "")), details)
    except (ValueError, KeyError, TypeError):
        return SdkError(status, "", body.decode("utf-8", "replace")[:500])


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def _json(method: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(_request(method, path, json.dumps(data).encode())))


def publish(topic: str, message: str, *, subject: str | None = None,
            attributes: dict[str, Any] | None = None) -> str:
    """Publish `message` to `topic`; its message id once every subscriber's event is stored."""
    data: dict[str, Any] = {"message": message}
    if subject is not None:
        data["subject"] = subject
    if attributes:
        data["attributes"] = attributes
    return str(_json("POST", f"/topics/{_quote(topic)}/publish", data)["messageId"])


def send(queue: str, body: str, *, attributes: dict[str, Any] | None = None, group_id: str | None = None,
         deduplication_id: str | None = None, delay: float | None = None) -> str:
    """Send a message to `queue`; its message id once stored."""
    data: dict[str, Any] = {"body": body}
    for key, value in (("attributes", attributes), ("group_id", group_id),
                       ("deduplication_id", deduplication_id), ("delay", delay)):
        if value is not None:
            data[key] = value
    return str(_json("POST", f"/queues/{_quote(queue)}/messages", data)["messageId"])


class Bucket:
    """The objects of one bucket."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _path(self, key: str) -> str:
        return f"/buckets/{_quote(self.name)}/objects/{urllib.parse.quote(key, safe='/')}"

    def put(self, key: str, content: bytes | str, content_type: str = "application/octet-stream") -> dict[str, Any]:
        """Store `content` as `key` (ObjectCreated:Put notifications follow)."""
        data = content.encode() if isinstance(content, str) else content
        return dict(json.loads(_request("PUT", self._path(key), data, content_type)))

    def get(self, key: str) -> bytes:
        """The content of `key`; SdkError 404 when there is none."""
        return _request("GET", self._path(key))

    def delete(self, key: str) -> None:
        _request("DELETE", self._path(key))

    def list(self, prefix: str = "") -> Iterator[dict[str, Any]]:
        """Every object under `prefix`, in key order (`key`, `size`, `etag`, ...)."""
        start_after = ""
        while True:
            page = json.loads(_request("GET", f"/buckets/{_quote(self.name)}/objects",
                                       query={"prefix": prefix, "start_after": start_after}))
            yield from page["objects"]
            if not page.get("next"):
                return
            start_after = page["next"]


def bucket(name: str) -> Bucket:
    return Bucket(name)
