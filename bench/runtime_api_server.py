"""A peer for bench/http_throughput.py's one-core mode: Lambda's own Python runtime interface
client (awslambdaric, from PyPI) behind a minimal Lambda Runtime API endpoint with an HTTP
front, which is what a team would run to keep Lambda's runtime while hosting it themselves.

    python bench/runtime_api_server.py PORT WORKERS HANDLER_DIR    # needs awslambdaric

One process (uvicorn with httptools and uvloop, a bare ASGI app: no framework) serves both:

* the HTTP front: any request not under /2018-06-01/ becomes an API Gateway HTTP API
  (payload 2.0) event, queued for a worker; the worker's result is the response (a
  `statusCode`/`body` object as API Gateway reads it, anything else as a JSON body);
* the Runtime API (the paths Lambda documents under /2018-06-01/runtime/): `invocation/next`
  hands out the next queued event with its Lambda-Runtime-* headers, `invocation/{id}/response`
  and `/error` complete it, `init/error` is logged.

WORKERS processes of `python -m awslambdaric app.handler` run from HANDLER_DIR with
AWS_LAMBDA_RUNTIME_API pointing here, each taking one invocation at a time, as Lambda's
execution environments do. No sandbox, no logs stored, no auth: it does less than squall.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import orjson
import uvicorn

PREFIX = "/2018-06-01/runtime/"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:hello"


class RuntimeApi:
    """The queue between the HTTP front and the workers polling the Runtime API."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.waiting: dict[str, asyncio.Future[tuple[bool, bytes]]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        body = await read_body(receive)
        if path.startswith(PREFIX):
            await self.runtime(path[len(PREFIX):], body, send)
        else:
            await self.front(scope, body, send)

    async def front(self, scope: dict[str, Any], body: bytes, send: Any) -> None:
        request_id = str(uuid.uuid4())
        done = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = done
        await self.queue.put((request_id, orjson.dumps(http_event(scope, body, request_id))))
        ok, result = await done
        status, headers, payload = http_response(ok, result)
        await respond(send, status, payload, headers)

    async def runtime(self, path: str, body: bytes, send: Any) -> None:
        if path == "invocation/next":
            request_id, event = await self.queue.get()
            deadline = int((time.time() + 30) * 1000)
            await respond(send, 200, event, [  # awslambdaric 4.2 crashes (SIGSEGV) without a content-type
                (b"content-type", b"application/json"),
                (b"lambda-runtime-aws-request-id", request_id.encode()),
                (b"lambda-runtime-deadline-ms", str(deadline).encode()),
                (b"lambda-runtime-invoked-function-arn", ARN.encode()),
                (b"lambda-runtime-trace-id", b"Root=1-00000000-000000000000000000000000;Sampled=0")])
            return
        if path.startswith("invocation/"):
            request_id, _, outcome = path[len("invocation/"):].partition("/")
            done = self.waiting.pop(request_id, None)
            if done is not None and not done.done():
                done.set_result((outcome == "response", body))
            await respond(send, 202, b'{"status":"OK"}')
            return
        if path == "init/error":
            print(f"runtime init error: {body[:500]!r}", file=sys.stderr, flush=True)
            await respond(send, 202, b'{"status":"OK"}')
            return
        await respond(send, 404, b'{"message":"not found"}')


def http_event(scope: dict[str, Any], body: bytes, request_id: str) -> dict[str, Any]:
    """An API Gateway HTTP API (2.0) event, the shape squall builds for the same request."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    method, path = scope["method"], scope["path"]
    return {
        "version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
        "rawQueryString": scope["query_string"].decode("latin-1"), "headers": headers,
        "requestContext": {
            "accountId": "000000000000", "apiId": "peer", "domainName": headers.get("host", ""),
            "domainPrefix": "peer", "requestId": request_id, "routeKey": f"{method} {path}", "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()), "timeEpoch": int(time.time() * 1000),
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": (scope.get("client") or ("127.0.0.1", 0))[0],
                     "userAgent": headers.get("user-agent", "")}},
        "body": body.decode() if body else None, "isBase64Encoded": False,
    }


def http_response(ok: bool, result: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    if not ok:
        return 502, [], b'{"message":"Internal Server Error"}'
    value = orjson.loads(result) if result else None
    if isinstance(value, dict) and "statusCode" in value:
        headers = [(k.lower().encode(), str(v).encode()) for k, v in (value.get("headers") or {}).items()]
        payload = value.get("body") or ""
        return int(value["statusCode"]), headers, payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    return 200, [(b"content-type", b"application/json")], orjson.dumps(value)


async def read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*(headers or []), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def start_workers(port: int, count: int, handler_dir: str) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", LAMBDA_TASK_ROOT=handler_dir,
               AWS_LAMBDA_FUNCTION_NAME="hello", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_REGION="us-east-1")
    return [subprocess.Popen([sys.executable, "-m", "awslambdaric", "app.handler"], cwd=handler_dir, env=env)
            for _ in range(count)]


async def serve(port: int, workers: int, handler_dir: str) -> None:
    server = uvicorn.Server(uvicorn.Config(RuntimeApi(), host="127.0.0.1", port=port, loop="uvloop",
                                           http="httptools", log_level="warning", access_log=False))
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    processes = start_workers(port, workers, handler_dir)
    try:
        await serving
    finally:
        for process in processes:
            process.terminate()


if __name__ == "__main__":
    import uvloop

    uvloop.install()
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
