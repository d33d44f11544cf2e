"""Asynchronous invocations per second, end to end: events accepted (each committed to the
store before its 202) and completed (run by the trivial function and recorded), on SQLite
and on PostgreSQL.

    python bench/async_throughput.py [--events 20000] [--clients 50] [--store sqlite,postgres]

PostgreSQL runs against postgresql://127.0.0.1:5432 (a database made for the run).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import SquallServer, write_project  # noqa: E402

PROJECT = {
    "squall.yaml": "name: bench\nfunctions:\n  work:\n    handler: app.handler\n",
    "app.py": "def handler(event, context):\n    return event['n']\n",
}


async def submit(port: int, token: str, total: int, clients: int) -> float:
    """POST `total` events from `clients` keep-alive connections; seconds taken."""
    request_head = (f"POST /_squall/api/functions/work/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n")
    counter = iter(range(total))

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in counter:
            body = f'{{"n": {n}}}'.encode()
            writer.write(f"{request_head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 202"):
                raise RuntimeError(f"submission refused: {head[:100]!r}")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


def wait_done(server: SquallServer, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with server.api() as api:
        while time.monotonic() < deadline:
            counts = api.get("/_squall/api/functions/work/events").json()["events"]
            if counts["queued"] == 0 and counts["running"] == 0:
                return
            time.sleep(0.02)
    raise RuntimeError("events did not complete in time")


def postgres_database() -> tuple[str, str]:
    name = f"squall_bench_{uuid.uuid4().hex[:8]}"
    user = getpass.getuser()
    with psycopg.connect(f"postgresql://{user}@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql://{user}@127.0.0.1:5432/{name}", name


def drop_database(name: str) -> None:
    with psycopg.connect(f"postgresql://{getpass.getuser()}@127.0.0.1:5432/test", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def measure(store: str, events: int, clients: int) -> tuple[float, float, float]:
    url, database = postgres_database() if store == "postgres" else (None, "")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            server = SquallServer(Path(tmp) / "data", store=url).start()
            try:
                server.cli("deploy", str(write_project(Path(tmp) / "p", PROJECT)), check=True)
                asyncio.run(submit(server.port, server.token, 200, clients))  # warm-up
                wait_done(server)
                started = time.perf_counter()
                accepted_in = asyncio.run(submit(server.port, server.token, events, clients))
                wait_done(server)
                total = time.perf_counter() - started
            finally:
                server.stop()
    finally:
        if database:
            drop_database(database)
    return events / accepted_in, events / total, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--store", default="sqlite,postgres")
    args = parser.parse_args()
    table = Table(title=f"Async invocations: {args.events:,} events from {args.clients} clients, "
                        f"{os.cpu_count()} cores")
    for column in ("store", "accepted/s", "completed/s (end to end)", "seconds"):
        table.add_column(column, justify="left" if column == "store" else "right")
    for store in args.store.split(","):
        accepted, completed, seconds = measure(store, args.events, args.clients)
        table.add_row(store, f"{accepted:,.0f}", f"{completed:,.0f}", f"{seconds:.1f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
