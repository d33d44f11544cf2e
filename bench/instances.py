"""Instances: a burst of concurrent first calls, memory of idle instances (USS), and many
idle instances at once, through a real squall server.

    python bench/instances.py [--burst 50] [--idle 200]

Prints one table. USS (unique set size) is the memory an instance does not share
with the zygote or other instances: what each extra instance really costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stats import percentile  # noqa: E402

from tests.support import SquallServer, wait_until, write_project  # noqa: E402


def project(idle: int) -> dict[str, str]:
    return {
        "squall.yaml": f"""
            name: instances-bench
            functions:
              burst:
                handler: app.handler
                concurrency: 200
                triggers: [{{http: "GET /burst"}}]
              idle:
                handler: app.handler
                concurrency: {max(idle, 1)}
                min_instances: {idle}
                triggers: [{{http: "GET /idle"}}]
        """,
        "app.py": """
            import time

            def handler(event, context):
                if (event.get("queryStringParameters") or {}).get("hold"):
                    time.sleep(0.2)
                return {"ok": True}
        """,
    }


async def burst(url: str, size: int) -> tuple[int, list[float]]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=size)) as client:
        async def one() -> tuple[int, float]:
            started = time.perf_counter()
            response = await client.get(url, params={"hold": "1"})
            return response.status_code, (time.perf_counter() - started) * 1000
        results = await asyncio.gather(*(one() for _ in range(size)))
    return sum(1 for status, _ in results if status == 200), [ms for _, ms in results]


def uss_mb(pids: list[int]) -> list[float]:
    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid).memory_full_info().uss / 2**20)
        except psutil.Error:
            pass
    return found


def instance_pids(server: SquallServer, function: str) -> list[int]:
    with server.api() as api:
        return [i["pid"] for i in api.get("/_squall/api/instances", params={"function": function}).json()["instances"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--idle", type=int, default=200)
    args = parser.parse_args()
    table = Table(title="Instances")
    table.add_column("what")
    table.add_column("value", justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        server = SquallServer(Path(tmp) / "data").start()
        try:
            deployed = time.perf_counter()
            server.cli("deploy", str(write_project(Path(tmp) / "p", project(args.idle))), check=True)
            served, latencies = asyncio.run(burst(f"{server.url}/burst", args.burst))
            table.add_row(f"burst of {args.burst} first calls (each holds 200 ms): served", f"{served}/{args.burst}")
            table.add_row("burst latency p50 / p99 (ms)",
                          f"{statistics.median(latencies):.0f} / {percentile(latencies, 99):.0f}")
            pids = wait_until(lambda: len(p := instance_pids(server, "idle")) >= args.idle and p, timeout=300)
            table.add_row(f"{args.idle} provisioned idle instances alive, seconds after the deploy began",
                          f"{time.perf_counter() - deployed:.1f}")
            memory = uss_mb(pids)
            table.add_row("USS of an idle instance, median / max (MB)",
                          f"{statistics.median(memory):.2f} / {max(memory):.2f}")
            with httpx.Client(base_url=server.url) as client:
                for _ in range(1000):
                    client.get("/burst")
            after = uss_mb(instance_pids(server, "burst"))
            table.add_row("USS of a burst instance after 1,000 more calls, median / max (MB)",
                          f"{statistics.median(after):.2f} / {max(after):.2f}")
            assert server.process is not None
            table.add_row("server RSS (MB)", f"{psutil.Process(server.process.pid).memory_info().rss / 2**20:.0f}")
        finally:
            server.stop()
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
