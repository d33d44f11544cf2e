"""HTTP throughput and latency of a hello function behind a squall route, next to a bare
uvicorn + Starlette hello app and the floor of a process-per-invocation path
(bench/floor_server.py, with 1 and 8 workers), all measured in the same run.

    python bench/http_throughput.py [--seconds 5] [--concurrency 1,50] [--loadgen wrk|python]
    python bench/http_throughput.py --one-core [--seconds 5] [--concurrency 50]

Prints one row per (server, concurrency), each server's requests/s over the baseline's and
over the floor's with 8 workers, and squall's latency over the baseline's, which calls the
same handler in its own process: at concurrency 1 that is the warm overhead of a route
(gateway, event, instance pipe, response, logs).
The load comes from wrk when it is installed (`apt install wrk`), else from the asyncio
load generator of bench/loadgen.py in a process of its own (which saturates far earlier).

`--one-core` measures squall against the process-isolating peers a team would run instead
(bench/peer_servers.py: awslambdaric behind a Runtime API endpoint, serverless-offline), the same
way for each: every server and all it starts on core 0, the load (wrk) on core 1. Each is
warmed until its rate settles (serverless-offline starts a Python process per concurrent
request on its first calls), then measured; the table shows squall's rate over each.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from loadgen import LoadSummary, run_load  # noqa: E402
from peer_servers import PeerMissing, pinned, start_runtime_api, start_serverless_offline, stop  # noqa: E402
from wrk import run_wrk, wrk_available  # noqa: E402

from tests.support import SquallServer, free_port, write_project  # noqa: E402

HELLO = {
    "squall.yaml": 'name: bench\nfunctions:\n  hello:\n    handler: app.handler\n'
                   '    triggers:\n      - http: "GET /hello"\n',
    "app.py": 'def handler(event, context):\n    return {"message": "hello"}\n',
}


def measure(port: int, concurrency: int, seconds: float, loadgen: str) -> LoadSummary:
    if loadgen == "wrk":
        return run_wrk(port, "/hello", concurrency, seconds)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_load, (port, "/hello", concurrency, seconds)).summary()


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


def start_baseline() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(HERE / "baseline_app.py"), str(port)], start_new_session=True)
    wait_ready(f"http://127.0.0.1:{port}/hello")
    return process, port


def start_floor(workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(HERE / "floor_server.py"), str(port), str(workers)])
    wait_ready(f"http://127.0.0.1:{port}/hello")
    return process, port


def start_squall(root: Path) -> SquallServer:
    server = SquallServer(root / "data").start()
    server.cli("deploy", str(write_project(root / "bench", HELLO)), check=True)
    wait_ready(f"{server.url}/hello")
    return server


SERVER_CPU, LOAD_CPU = {0}, {1}
RUNTIME_API_WORKERS = 8
WARM_ROUNDS = 6


def warm_until_settled(port: int, concurrency: int, loadgen: str) -> None:
    """2-second runs until two in a row are within 10% of each other (at most WARM_ROUNDS)."""
    last = 0.0
    for _ in range(WARM_ROUNDS):
        rate = measure(port, concurrency, 2.0, loadgen).rps
        if last and abs(rate - last) <= 0.1 * max(rate, last):
            return
        last = rate


def start_peers(root: Path) -> tuple[dict[str, int], list[subprocess.Popen[bytes]], SquallServer]:
    """Every server of the one-core mode, started on SERVER_CPU; (ports by name, peers, squall)."""
    ports: dict[str, int] = {}
    processes: list[subprocess.Popen[bytes]] = []
    with pinned(SERVER_CPU):
        baseline, ports["uvicorn+starlette"] = start_baseline()
        processes.append(baseline)
        for name, start in ((f"awslambdaric W={RUNTIME_API_WORKERS}", start_awslambdaric),
                            ("serverless-offline", start_offline)):
            try:
                process, ports[name] = start()
                processes.append(process)
            except PeerMissing as missing:
                print(f"{name}: left out, {missing}", flush=True)
        server = start_squall(root)
        ports["squall route"] = server.port
    return ports, processes, server


def start_awslambdaric() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = start_runtime_api(port, RUNTIME_API_WORKERS)
    wait_ready(f"http://127.0.0.1:{port}/hello")
    return process, port


def start_offline() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = start_serverless_offline(port, free_port())
    wait_ready(f"http://127.0.0.1:{port}/hello", timeout=120)
    return process, port


def one_core(args: argparse.Namespace, levels: list[int]) -> None:
    table = Table(title=f"HTTP hello on one core (servers on cpu 0, wrk on cpu 1), {args.seconds:g} s per row")
    for column in ("server", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors", "squall / this"):
        table.add_column(column, justify="right" if column != "server" else "left")
    with tempfile.TemporaryDirectory() as tmp:
        ports, processes, server = start_peers(Path(tmp))
        try:
            for concurrency in levels:
                results = {}
                for name, port in ports.items():
                    with pinned(LOAD_CPU):
                        warm_until_settled(port, concurrency, args.loadgen)
                        results[name] = measure(port, concurrency, args.seconds, args.loadgen)
                ours = results["squall route"]
                for name, result in results.items():
                    table.add_row(name, str(concurrency), f"{result.rps:,.0f}", f"{result.p50:.2f}",
                                  f"{result.p99:.2f}", str(result.errors), f"{ours.rps / result.rps:.2f}")
        finally:
            server.stop()
            for process in processes:
                stop(process)
    Console(width=120).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default=None, help="levels, comma-separated (default 1,50; 50 with --one-core)")
    parser.add_argument("--loadgen", choices=("wrk", "python"), default="wrk" if wrk_available() else "python")
    parser.add_argument("--one-core", action="store_true", help="squall against its peers, each on one core")
    args = parser.parse_args()
    levels = [int(c) for c in (args.concurrency or ("50" if args.one_core else "1,50")).split(",")]
    if args.one_core:
        one_core(args, levels)
        return
    table = Table(title=f"HTTP hello, {args.seconds:g} s per row, {os.cpu_count()} cores, load from {args.loadgen}")
    for column in ("server", "concurrency", "requests/s", "p50 ms", "p99 ms", "errors", "vs baseline",
                   "vs floor W=8", "overhead p50/p99 µs"):
        table.add_column(column, justify="right" if column != "server" else "left")
    others = {"uvicorn+starlette": start_baseline(), "floor W=1": start_floor(1), "floor W=8": start_floor(8)}
    with tempfile.TemporaryDirectory() as tmp:
        server = start_squall(Path(tmp))
        ports = {**{name: port for name, (_, port) in others.items()}, "squall route": server.port}
        try:
            for concurrency in levels:
                results = {}
                for name, port in ports.items():
                    measure(port, concurrency, 1.0, args.loadgen)  # warm-up
                    results[name] = measure(port, concurrency, args.seconds, args.loadgen)
                base, floor = results["uvicorn+starlette"], results["floor W=8"]
                for name, result in results.items():
                    overhead = (f"{(result.p50 - base.p50) * 1000:,.0f} / {(result.p99 - base.p99) * 1000:,.0f}"
                                if name == "squall route" else "")
                    table.add_row(name, str(concurrency), f"{result.rps:,.0f}", f"{result.p50:.2f}",
                                  f"{result.p99:.2f}", str(result.errors), f"{result.rps / base.rps:.2f}",
                                  f"{result.rps / floor.rps:.2f}", overhead)
        finally:
            server.stop()
            for process, _ in others.values():
                process.terminate()
                process.wait()
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
