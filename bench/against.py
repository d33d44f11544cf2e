"""This checkout against an earlier one, in one run: HTTP cold start and hello throughput
of a server from each tree, alternated round by round so that both see the same noise.

    git worktree add /tmp/base <commit>                     # the tree to compare against
    python bench/against.py --base /tmp/base [--rounds 40] [--seconds 3] [--repeats 3]

Each tree's server runs from its own folder (`python -m squall.cli.main` with that
folder as the working directory, so it imports that folder's `squall`), on a fresh data
dir, with the same project deployed. Cold starts: the function's idle instances are
stopped (`recycle`), then one GET is timed over a kept-alive socket; the trees take turns
per round. Throughput: `--repeats` runs of `--seconds` each per tree and concurrency,
alternated, from wrk when it is installed, else the asyncio load generator in a process of
its own; the table shows the median run. The last column is this tree over the base.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cold_start_http import RawClient, timed_get  # noqa: E402
from loadgen import LoadSummary, run_load  # noqa: E402
from wrk import run_wrk, wrk_available  # noqa: E402
from stats import percentile  # noqa: E402

TOKEN = "bench-token"
PROJECT = {
    "squall.yaml": 'name: against\nfunctions:\n  hello:\n    handler: app.handler\n'
                   '    triggers:\n      - http: "GET /hello"\n',
    "app.py": 'def handler(event, context):\n    return {"message": "hello"}\n',
}


@dataclass
class TreeServer:
    """A squall server started from one source tree."""

    name: str
    tree: Path
    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    cold_ms: list[float] = field(default_factory=list)
    runs: dict[int, list[LoadSummary]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "squall.cli.main", *args]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_")}
        env.update(SQUALL_URL=self.url, SQUALL_TOKEN=TOKEN, PYTHONPATH=str(self.tree))
        return env

    def start(self) -> None:
        self.port = free_port()
        log = open(self.root / "server.log", "ab")
        self.process = subprocess.Popen(self.command("server", "--data", str(self.root / "data"),
                                                     "--port", str(self.port)),
                                        cwd=self.tree, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_ready(f"{self.url}/_squall/health", self.process)
        project = self.root / "project"
        project.mkdir(exist_ok=True)
        for name, text in PROJECT.items():
            (project / name).write_text(text)
        subprocess.run(self.command("deploy", str(project)), cwd=self.tree, env=self.env(), check=True,
                       capture_output=True)
        wait_ready(f"{self.url}/hello", self.process)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


def cold_round(server: TreeServer, client: RawClient, api: httpx.Client) -> None:
    api.post(f"{server.url}/_squall/api/functions/hello/recycle").raise_for_status()
    time.sleep(0.05)
    server.cold_ms.append(timed_get(client, "/hello"))


def load_run(server: TreeServer, concurrency: int, seconds: float) -> LoadSummary:
    if wrk_available():
        return run_wrk(server.port, "/hello", concurrency, seconds)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_load, (server.port, "/hello", concurrency, seconds)).summary()


def median_run(runs: list[LoadSummary]) -> LoadSummary:
    return sorted(runs, key=lambda run: run.rps)[len(runs) // 2]


def table_of(base: TreeServer, ours: TreeServer, levels: list[int]) -> Table:
    table = Table(title=f"this tree against {base.tree} ({os.cpu_count()} cores)")
    for column in ("measure", "base", "this tree", "this / base"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for label, q in (("cold start p50 ms", 50), ("cold start p99 ms", 99)):
        a, b = percentile(base.cold_ms, q), percentile(ours.cold_ms, q)
        table.add_row(label, f"{a:.2f}", f"{b:.2f}", f"{b / a:.2f}")
    for concurrency in levels:
        a_run, b_run = median_run(base.runs[concurrency]), median_run(ours.runs[concurrency])
        table.add_row(f"hello c={concurrency} req/s", f"{a_run.rps:,.0f}", f"{b_run.rps:,.0f}",
                      f"{b_run.rps / a_run.rps:.2f}")
        table.add_row(f"hello c={concurrency} p99 ms", f"{a_run.p99:.2f}", f"{b_run.p99:.2f}",
                      f"{b_run.p99 / a_run.p99:.2f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, type=Path, help="the earlier source tree (a git worktree)")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,50")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        servers = [TreeServer(name, tree.resolve(), Path(tmp) / name)
                   for name, tree in (("base", args.base), ("ours", HERE.parent))]
        try:
            for server in servers:
                server.root.mkdir()
                server.start()
            time.sleep(2)  # zygotes up
            clients = [RawClient(server.port) for server in servers]
            with httpx.Client(headers={"authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
                for round_number in range(args.rounds):
                    order = servers if round_number % 2 == 0 else servers[::-1]
                    for server in order:
                        cold_round(server, clients[servers.index(server)], api)
            for client in clients:
                client.close()
            for concurrency in levels:
                for server in servers:
                    load_run(server, concurrency, 1.0)  # warm-up
                for repeat in range(args.repeats):
                    for server in servers if repeat % 2 == 0 else servers[::-1]:
                        server.runs.setdefault(concurrency, []).append(load_run(server, concurrency, args.seconds))
        finally:
            for server in servers:
                server.stop()
    Console(width=120).print(table_of(servers[0], servers[1], levels))
    spread = statistics.pstdev(servers[0].cold_ms) if servers[0].cold_ms else 0.0
    print(f"base cold start spread (stdev): {spread:.2f} ms over {len(servers[0].cold_ms)} rounds")


if __name__ == "__main__":
    main()
