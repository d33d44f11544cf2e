"""Where a request's CPU goes: microseconds of CPU per hello request, by part, for squall and
for the floor (bench/floor_server.py, 8 workers), under the same wrk load.

    python bench/cpu_per_request.py [--seconds 4] [--concurrency 50] [--rounds 3] [--one-core]

The parts are read from /proc (user + system time) while wrk runs, and divided by the requests
served meanwhile:

* `loop`: the server process's main thread (squall: the node's event loop; the floor: its loop);
* `threads`: the server's other threads (squall: the log writer and the store's threads);
* `instances`: every process the server started (squall: zygotes and instances; the floor:
  its workers);
* `load`: wrk itself.

On two cores the rate is capped by the busiest part (for squall, the loop: one thread); on one
core (`--one-core`: servers on cpu 0, wrk on cpu 1) by the sum. Rounds alternate the servers;
the table shows the median of each part. Needs wrk (`apt install wrk`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from http_throughput import start_floor, start_squall  # noqa: E402
from peer_servers import pinned  # noqa: E402
from wrk import parse_wrk  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
PARTS = ("loop", "threads", "instances", "load")


def cpu_ticks(path: str) -> tuple[str, int, int]:
    """(command name, parent pid, user + system ticks) of /proc/<pid>[/task/<tid>]/stat."""
    text = Path(path).read_text()
    fields = text.rsplit(")", 1)[1].split()
    return text[text.index("(") + 1:text.rindex(")")], int(fields[1]), int(fields[11]) + int(fields[12])


def parts_of(server: int) -> dict[str, int]:
    """CPU ticks so far of each part of the server whose pid is `server` (and of wrk)."""
    processes = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                processes[int(entry)] = cpu_ticks(f"/proc/{entry}/stat")
            except (OSError, IndexError, ValueError):
                pass  # ended meanwhile
    ticks = dict.fromkeys(PARTS, 0)
    for task in os.listdir(f"/proc/{server}/task"):
        ticks["loop" if int(task) == server else "threads"] += cpu_ticks(f"/proc/{server}/task/{task}/stat")[2]
    for pid, (name, parent, used) in processes.items():
        if name == "wrk":
            ticks["load"] += used
        elif descends_from(pid, parent, server, processes):
            ticks["instances"] += used
    return ticks


def descends_from(pid: int, parent: int, ancestor: int, processes: dict[int, tuple[str, int, int]]) -> bool:
    while parent > 1 and parent in processes:
        if parent == ancestor:
            return True
        parent = processes[parent][1]
    return False


def measure(server: int, port: int, concurrency: int, seconds: float) -> dict[str, float]:
    """µs of CPU per request by part, and the rate, over `seconds` of wrk load (after a warm-up)."""
    url = f"http://127.0.0.1:{port}/hello"
    subprocess.run(["wrk", "-t1", f"-c{concurrency}", "-d2s", url], capture_output=True, check=True)
    load = subprocess.Popen(["wrk", "-t1", f"-c{concurrency}", f"-d{round(seconds) + 1}s", "--latency", url],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    before, started = parts_of(server), time.monotonic()
    time.sleep(seconds)
    after, elapsed = parts_of(server), time.monotonic() - started
    rate = parse_wrk(load.communicate()[0]).rps
    row = {part: 1e6 * (after[part] - before[part]) / TICKS / elapsed / rate for part in PARTS}
    row["total"] = sum(row.values())
    row["requests/s"] = rate
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one-core", action="store_true", help="servers on cpu 0, wrk on cpu 1")
    args = parser.parse_args()
    server_cpus, load_cpus = ({0}, {1}) if args.one_core else (os.sched_getaffinity(0),) * 2
    rows: dict[str, list[dict[str, float]]] = {"floor W=8": [], "squall route": []}
    with tempfile.TemporaryDirectory() as tmp, pinned(server_cpus):
        floor, floor_port = start_floor(8)
        squall = start_squall(Path(tmp))
        assert squall.process is not None
        servers = {"floor W=8": (floor.pid, floor_port), "squall route": (squall.process.pid, squall.port)}
        try:
            with pinned(load_cpus):
                for _ in range(args.rounds):
                    for name, (pid, port) in servers.items():
                        rows[name].append(measure(pid, port, args.concurrency, args.seconds))
        finally:
            squall.stop()
            floor.terminate()
            floor.wait()
    where = "one core (wrk on another)" if args.one_core else f"{os.cpu_count()} cores"
    table = Table(title=f"µs of CPU per request, hello at c={args.concurrency}, {where}, median of {args.rounds}")
    for column in ("server", "requests/s", *PARTS, "total"):
        table.add_column(column, justify="right" if column != "server" else "left")
    for name, measured in rows.items():
        median = {key: statistics.median(row[key] for row in measured) for key in measured[0]}
        table.add_row(name, f"{median['requests/s']:,.0f}", *(f"{median[key]:.1f}" for key in (*PARTS, "total")))
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
