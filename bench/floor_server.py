"""The floor of a process-per-invocation HTTP path on this machine, for bench/http_throughput.py:
the least work such a request can take, not a design.

    python bench/floor_server.py PORT WORKERS

One event loop (uvloop) takes HTTP/1.1 keep-alive requests (the request line only: no
headers kept, no bodies, no bounds), makes a small event of each, and hands it to one of
WORKERS processes forked at start, over a socketpair: a 4-byte length and JSON, one request
in flight per worker (as an instance takes one invocation at a time); requests wait in order
for a free worker. The worker calls the same hello handler as the benchmark's function and
answers the same way; the loop writes the response. No sandbox, no logs, no routing.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import struct
import sys

import orjson

LENGTH = struct.Struct("!I")


def handler(event: dict[str, object], context: object) -> dict[str, str]:
    return {"message": "hello"}


def serve_worker(sock: socket.socket) -> None:
    """A worker's life: read an event, call the handler, write its result; exit at EOF."""
    stream = sock.makefile("rb")
    while True:
        head = stream.read(LENGTH.size)
        if len(head) < LENGTH.size:
            os._exit(0)
        event = orjson.loads(stream.read(LENGTH.unpack(head)[0]))
        result = orjson.dumps(handler(event, None))
        sock.sendall(LENGTH.pack(len(result)) + result)


class Worker(asyncio.Protocol):
    """The loop's end of one worker's socket: one request in flight."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.buffer = bytearray()
        self.waiter: asyncio.Future[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= LENGTH.size:
            size = LENGTH.unpack_from(self.buffer)[0]
            if len(self.buffer) >= LENGTH.size + size:
                result = bytes(self.buffer[LENGTH.size:LENGTH.size + size])
                del self.buffer[:LENGTH.size + size]
                waiter, self.waiter = self.waiter, None
                assert waiter is not None
                waiter.set_result(result)
                self.workers.release(self)

    def send(self, event: bytes, waiter: asyncio.Future[bytes]) -> None:
        self.waiter = waiter
        self.transport.write(LENGTH.pack(len(event)) + event)


class Workers:
    """Idle workers, and the events waiting for one, in order."""

    def __init__(self) -> None:
        self.idle: collections.deque[Worker] = collections.deque()
        self.waiting: collections.deque[tuple[bytes, asyncio.Future[bytes]]] = collections.deque()

    def release(self, worker: Worker) -> None:
        if self.waiting:
            worker.send(*self.waiting.popleft())
        else:
            self.idle.append(worker)

    def invoke(self, event: bytes) -> asyncio.Future[bytes]:
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if self.idle:
            self.idle.popleft().send(event, waiter)
        else:
            self.waiting.append((event, waiter))
        return waiter


class Http(asyncio.Protocol):
    """Keep-alive HTTP/1.1 without bodies; responses in request order."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.buffer = b""
        self.pending: collections.deque[asyncio.Future[bytes]] = collections.deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            method, path, _ = self.buffer[:self.buffer.find(b"\r\n")].split(b" ", 2)
            self.buffer = self.buffer[end + 4:]
            event = orjson.dumps({"httpMethod": method.decode(), "rawPath": path.decode()})
            waiter = self.workers.invoke(event)
            self.pending.append(waiter)
            waiter.add_done_callback(self.flush)

    def flush(self, _: object) -> None:
        while self.pending and self.pending[0].done():
            body = self.pending.popleft().result()
            if self.transport.is_closing():  # the client left (wrk does, at the end of a run)
                continue
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(body), body))


async def serve(port: int, sockets: list[socket.socket]) -> None:
    loop = asyncio.get_running_loop()
    workers = Workers()
    for sock in sockets:
        _, worker = await loop.create_unix_connection(lambda: Worker(workers), sock=sock)
        workers.idle.append(worker)
    server = await loop.create_server(lambda: Http(workers), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    port, count = int(sys.argv[1]), int(sys.argv[2])
    ours = []
    for _ in range(count):
        parent, child = socket.socketpair()
        if os.fork() == 0:
            parent.close()
            serve_worker(child)
        child.close()
        ours.append(parent)
    import uvloop

    uvloop.run(serve(port, ours))


if __name__ == "__main__":
    main()
