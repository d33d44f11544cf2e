"""Cold starts through HTTP on a real server: request in to response out, for a trivial
function and for one that imports boto3 at top level, next to warm calls of the same.

    python bench/cold_start_http.py [--rounds 30]

Before each cold call the function's idle instances are stopped (`squall recycle`),
so the timed request pays for a fork from the zygote, the sandbox and the import.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cold_start import process_baseline  # noqa: E402
from stats import percentile  # noqa: E402

from tests.support import SquallServer, write_project  # noqa: E402

PROJECT = {
    "squall.yaml": """
        name: cold-http
        functions:
          trivial:
            handler: trivial.handler
            triggers: [{http: "GET /trivial"}]
          with-boto3:
            handler: with_boto3.handler
            triggers: [{http: "GET /boto3"}]
    """,
    "trivial.py": "def handler(event, context):\n    return {'ok': True}\n",
    "with_boto3.py": "import boto3\n\ndef handler(event, context):\n    return {'ok': boto3.__version__}\n",
}


class RawClient:
    """HTTP/1.1 GETs over one keep-alive socket: a client that costs tens of microseconds,
    so that the table shows the server's time (httpx adds about 0.25 ms per request)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")

    def get(self, path: str) -> int:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n\r\n".encode())
        status = int(self.file.readline().split()[1])
        length = 0
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        self.file.read(length)
        return status

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def timed_get(client: RawClient, path: str) -> float:
    started = time.perf_counter()
    status = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    table = Table(title="HTTP request in to response out (ms)")
    for column in ("function", "start", "p50", "p99"):
        table.add_column(column, justify="left" if column in ("function", "start") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        server = SquallServer(Path(tmp) / "data").start()
        try:
            server.cli("deploy", str(write_project(Path(tmp) / "p", PROJECT)), check=True)
            time.sleep(2)  # both zygotes up
            client = RawClient(server.port)
            with server.api() as api:
                for name, path in (("trivial", "/trivial"), ("with-boto3", "/boto3")):
                    cold = []
                    for _ in range(args.rounds):
                        api.post(f"/_squall/api/functions/{name}/recycle").raise_for_status()
                        time.sleep(0.05)
                        cold.append(timed_get(client, path))
                    warm = [timed_get(client, path) for _ in range(args.rounds * 10)]
                    for start, values in (("cold", cold), ("warm", warm)):
                        table.add_row(name, start, f"{statistics.median(values):.2f}",
                                      f"{percentile(values, 99):.2f}")
            client.close()
            for name, code in (("fresh `python3 -c pass`", "pass"), ("fresh `python3 -c 'import boto3'`",
                                                                      "import boto3")):
                values = process_baseline(max(5, args.rounds // 3), code)
                table.add_row(name, "baseline", f"{statistics.median(values):.2f}",
                              f"{percentile(values, 99):.2f}")
        finally:
            server.stop()
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
