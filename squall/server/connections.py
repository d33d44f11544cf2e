"""The node's HTTP connections, bounded before any request reaches the app.

uvicorn's httptools protocol parses requests fast but bounds nothing: a request head may grow
without limit (httptools buffers a header until its end), a connection that never finishes
its head is never closed, and every connection costs a file descriptor. `BoundedHttpProtocol`
adds, at the cost of one comparison per received chunk:

* a request head (request line and headers) of at most `max_head_bytes`, with at most
  `max_headers` headers: past either the client gets 431 and the connection is closed;
* a head that is not complete `head_timeout` seconds after its first byte (or after the
  connection opened), and a body that stalls (no byte for `body_idle_timeout` seconds while
  the app waits for it), close the connection (408 for the head); a kept-alive connection
  idle for uvicorn's `timeout_keep_alive` after its last answer is closed by the same sweep
  (uvicorn's own way makes and cancels a timer per request);
* at most `max_connections` open connections in all, of which loopback (whence the node's
  own instances call it) may hold at most `max_loopback` and every other address together
  the rest (`max_connections - max_loopback`, a reserve neither side can take from the other),
  and at most `max_per_client` from one non-loopback address: a connection past any of these
  gets 503 at once and is closed;
* a response sent before the request's body was read (a refusal) lets the client send up to
  DRAIN_BYTES more, thrown away, so that it can read the answer (closing at once could reset
  the connection before the client reads it); past that the connection is closed, so an
  unread body is not streamed in for nothing.

`BoundedServer` sweeps the connections for the two timeouts once a second. `serve_limits()`
takes the limits from the server's settings (docs/settings.md); `raise_open_file_limit()` lifts
the open-file soft limit to the hard limit at start.
"""

from __future__ import annotations

import asyncio
import resource
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from squall.settings import (
    BODY_IDLE_TIMEOUT,
    HEADER_TIMEOUT,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_LOOPBACK,
    MAX_CONNECTIONS_PER_CLIENT,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    Settings,
)

FILE_RESERVE = 512
"""Descriptors kept for everything but client connections (store, instances, logs)."""

NODE_ADDRESSES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
"""Loopback, whence the node's own function instances call the SDK and AWS doors (each may
keep connections open): not capped per client, but together by `max_loopback`."""
LOOPBACK_SHARE = 4
"""Without SQUALL_MAX_CONNECTIONS_LOOPBACK, loopback may hold a quarter of the connection cap."""
DRAIN_BYTES = 8 * 1024 * 1024
"""How much of an unread body is thrown away after a refusal before the connection is closed."""

class DirectLane(Protocol):
    """What the protocol asks of the direct lane (squall/server/direct.py, DirectRoutes)."""

    def begin(self, protocol: Any) -> bool: ...


class _NoEvent:
    """The `message_event` of a direct-lane exchange, which uvicorn's protocol sets when the
    connection is lost (the exchange learns of that from its transport instead); also how the
    protocol tells an exchange from one of uvicorn's cycles."""

    @staticmethod
    def set() -> None:
        return None


NO_EVENT = _NoEvent()

HEAD = "head"
BODY = "body"
IDLE = "idle"


@dataclass(frozen=True)
class ConnectionLimits:
    max_head_bytes: int = MAX_HEADER_BYTES.default
    max_headers: int = MAX_HEADERS.default
    head_timeout: float = HEADER_TIMEOUT.default
    body_idle_timeout: float = BODY_IDLE_TIMEOUT.default
    max_connections: int = MAX_CONNECTIONS.default
    max_per_client: int = MAX_CONNECTIONS_PER_CLIENT.default
    max_loopback: int = MAX_CONNECTIONS.default // LOOPBACK_SHARE


def serve_limits(settings: Settings, open_files: int) -> ConnectionLimits:
    """The limits from the server's SQUALL_MAX_HEADER_BYTES, SQUALL_MAX_HEADERS,
    SQUALL_HEADER_TIMEOUT, SQUALL_BODY_IDLE_TIMEOUT, SQUALL_MAX_CONNECTIONS,
    SQUALL_MAX_CONNECTIONS_PER_CLIENT and SQUALL_MAX_CONNECTIONS_LOOPBACK; the connection
    cap is kept FILE_RESERVE below the open-file limit `open_files`, and loopback's share is a
    quarter of it unless set (at most all of it)."""
    cap = min(settings.max_connections, max(64, open_files - FILE_RESERVE))
    loopback = settings.max_connections_loopback
    return ConnectionLimits(
        max_head_bytes=settings.max_header_bytes, max_headers=settings.max_headers,
        head_timeout=settings.header_timeout, body_idle_timeout=settings.body_idle_timeout,
        max_connections=cap, max_per_client=settings.max_connections_per_client,
        max_loopback=min(loopback, cap) if loopback is not None else cap // LOOPBACK_SHARE)


def raise_open_file_limit() -> int:
    """Lift the soft open-file limit (often 1024) to the hard limit; returns the soft limit in effect."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _status(code: int, reason: str, message: str) -> bytes:
    body = message.encode()
    return (f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


_data_received = HttpToolsProtocol.data_received
_on_headers_complete = HttpToolsProtocol.on_headers_complete
_on_message_complete = HttpToolsProtocol.on_message_complete
"""uvicorn's own handlers, called directly on the hot path (cheaper than super())."""


class _Refused(Exception):
    """Raised in a parser callback to stop parsing; the refusal is on the protocol."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring. `limits`,
    `clients` (open connections per non-loopback client address) and `counts` (open
    connections from loopback and from elsewhere) are set by `bounded_protocol`."""

    limits: ClassVar[ConnectionLimits]
    clients: ClassVar[Counter[str]]
    counts: ClassVar[list[int]]
    direct: ClassVar[DirectLane | None] = None
    """The user routes served without ASGI (squall/server/direct.py), when the server has them."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.phase, self.since, self.head_bytes = HEAD, self.loop.time(), 0
        self.answered_at: float | None = None
        """When the last answer went out, while no request follows it (for the keep-alive sweep)."""
        self.refusal: bytes | None = None
        self.client_ip: str | None = None
        self.side = -1
        ip = self.client[0] if self.client else ""
        limits, counts = self.limits, self.counts
        if len(self.connections) > limits.max_connections:
            self.refuse(503, "Service Unavailable", "the server has too many open connections; try again")
        elif ip in NODE_ADDRESSES:
            if counts[0] >= limits.max_loopback:
                self.refuse(503, "Service Unavailable", f"too many open connections from loopback (at most "
                            f"{limits.max_loopback}: {MAX_CONNECTIONS_LOOPBACK.name}); close some and try again")
            else:
                counts[0] += 1
                self.side = 0
        elif counts[1] >= limits.max_connections - limits.max_loopback:
            self.refuse(503, "Service Unavailable", "the server has too many open connections; try again")
        elif self.clients[ip] >= limits.max_per_client:
            self.refuse(503, "Service Unavailable", f"too many open connections from {ip} "
                        f"(at most {limits.max_per_client}); close some and try again")
        else:
            counts[1] += 1
            self.side = 1
            self.clients[ip] += 1
            self.client_ip = ip

    def connection_lost(self, exc: Exception | None) -> None:
        if self.side >= 0:
            self.counts[self.side] -= 1
            self.side = -1
        if self.client_ip is not None:
            left = self.clients[self.client_ip] - 1
            if left > 0:
                self.clients[self.client_ip] = left
            else:
                del self.clients[self.client_ip]
            self.client_ip = None
        super().connection_lost(exc)

    def refuse(self, code: int, reason: str, message: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(_status(code, reason, message))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase is BODY:
            self.since = self.loop.time()
        elif phase is HEAD:
            self.head_bytes += len(data)
        else:  # the first bytes of the next request on a kept-alive connection
            self.phase, self.since, self.head_bytes = HEAD, self.loop.time(), len(data)
            self.answered_at = None
        _data_received(self, data)
        if self.phase is HEAD and self.head_bytes > self.limits.max_head_bytes:
            self.refuse(431, "Request Header Fields Too Large", self.head_too_large())

    def head_too_large(self) -> str:
        return (f"the request line and headers are over {self.limits.max_head_bytes} bytes, "
                "the most this server reads")

    def on_headers_complete(self) -> None:
        self.phase, self.since, self.drained = BODY, self.loop.time(), 0
        if len(self.headers) > self.limits.max_headers:
            self.refusal = _status(431, "Request Header Fields Too Large",
                                   f"the request has {len(self.headers)} headers, over the limit of "
                                   f"{self.limits.max_headers}")
            raise _Refused()
        if self.head_bytes > self.limits.max_head_bytes and self.head_size() > self.limits.max_head_bytes:
            self.refusal = _status(431, "Request Header Fields Too Large", self.head_too_large())
            raise _Refused()
        if self.direct is None or not self.direct.begin(self):
            _on_headers_complete(self)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if app is None:  # a pipelined request of the direct lane, whose turn has come
            cycle.start()
        else:
            super()._start_asgi_task(cycle, app)

    def head_size(self) -> int:
        """The request head's size as parsed (the last received chunk may hold some body too)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def send_400_response(self, msg: str) -> None:
        if self.refusal is None:
            super().send_400_response(msg)
        elif not self.transport.is_closing():
            self.transport.write(self.refusal)
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        if self.cycle.response_complete:  # answered without reading the body (a refusal)
            self.drained += len(body)
            if self.drained > DRAIN_BYTES:
                self.transport.close()
            return
        cycle: Any = self.cycle
        if cycle.message_event is NO_EVENT:  # the direct lane's exchange
            cycle.on_body(body)
        else:
            super().on_body(body)

    def on_message_complete(self) -> None:
        self.phase = IDLE
        cycle: Any = self.cycle
        if cycle.message_event is NO_EVENT:
            if not cycle.response_complete:
                cycle.on_message_complete()
        else:
            _on_message_complete(self)

    def on_response_complete(self) -> None:
        """uvicorn's, but the keep-alive timeout is the sweep's (no timer per request)."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self.answered_at = self.loop.time()

    def sweep(self, now: float) -> None:
        """Close the connection if its head or its body is overdue, or it has been idle since
        its last answer for longer than the keep-alive timeout."""
        if self.phase is IDLE:
            if self.answered_at is not None and now - self.answered_at > self.timeout_keep_alive:
                self.transport.close()
        elif self.phase is HEAD and now - self.since > self.limits.head_timeout:
            self.refuse(408, "Request Timeout", f"the request head did not arrive within "
                        f"{self.limits.head_timeout:g} seconds")
        elif self.phase is BODY and now - self.since > self.limits.body_idle_timeout and not self.flow.read_paused:
            self.transport.close()  # paused reading is the app's doing, not the client's


def bounded_protocol(limits: ConnectionLimits, direct: DirectLane | None = None) -> type[BoundedHttpProtocol]:
    """A protocol class for one server, with its own limits and per-client counts, and the
    user routes it serves on the direct lane, if any."""
    return type("NodeHttpProtocol", (BoundedHttpProtocol,), {"limits": limits, "clients": Counter(),
                                                             "counts": [0, 0], "direct": direct})


class BoundedServer(uvicorn.Server):
    """uvicorn's server, also sweeping its connections for overdue heads and bodies each second."""

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:
            now = asyncio.get_running_loop().time()
            for connection in list(self.server_state.connections):
                if isinstance(connection, BoundedHttpProtocol):
                    connection.sweep(now)
        return await super().on_tick(counter)

