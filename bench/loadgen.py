"""A small HTTP/1.1 keep-alive load generator (asyncio, raw sockets) for the benchmarks.

It runs in its own process so that it measures the server, not itself;
`run_load(url_path, port, concurrency, seconds)` returns requests/s and latencies.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from stats import percentile


@dataclass(frozen=True)
class LoadSummary:
    """What a benchmark table shows of one load run."""

    rps: float
    p50: float
    p99: float
    errors: int


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    def summary(self) -> LoadSummary:
        return LoadSummary(self.rps, self.p50, self.percentile(99), self.errors)


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _worker(port: int, request: bytes, stop_at: float, result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status = await _read_response(reader)
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            if status == 200:
                result.requests += 1
            else:
                result.errors += 1
    finally:
        writer.close()


async def _run(port: int, path: str, concurrency: int, seconds: float) -> LoadResult:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: squall-bench\r\n\r\n".encode()
    result = LoadResult(0, 0, seconds, [])
    started = time.perf_counter()
    await asyncio.gather(*(_worker(port, request, started + seconds, result) for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


def run_load(port: int, path: str, concurrency: int, seconds: float) -> LoadResult:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_run(port, path, concurrency, seconds))
