"""How fast releases switch: an alias move and a rollback through the API, from the request
to the first answer of the new version on a route, and a deploy of one changed function;
next to a warm request of the same route as the baseline.

    python bench/releases.py [--rounds 30]

Each switch alternates `live` between versions 1 and 2 (each already warm once), so the
timed part is the store write, the node's switch and, for a version that was retired, a
fork from the zygote.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stats import percentile  # noqa: E402

from squall.bundle import pack_project  # noqa: E402

from tests.support import SquallServer, write_project  # noqa: E402


def project(version: str) -> dict[str, str]:
    return {
        "squall.yaml": "name: rel\nfunctions:\n  page:\n    handler: app.handler\n"
                       "    triggers: [{http: \"GET /page\"}]\n",
        "app.py": f"def handler(event, context):\n    return {{'statusCode': 200, 'body': '{version}'}}\n",
    }


def until_served(client: httpx.Client, body: str, started: float) -> float:
    while client.get("/page").text != body:
        pass
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = SquallServer(root / "data").start()
        try:
            rows = measure(server, root, args.rounds)
        finally:
            server.stop()
    table = Table(title=f"Release switches, {args.rounds} rounds (ms, request to first answer of the new version)")
    for column in ("what", "p50", "p99", "max"):
        table.add_column(column, justify="right" if column != "what" else "left")
    for name, values in rows:
        table.add_row(name, f"{statistics.median(values):.2f}", f"{percentile(values, 99):.2f}", f"{max(values):.2f}")
    Console().print(table)


def measure(server: SquallServer, root: Path, rounds: int) -> list[tuple[str, list[float]]]:
    for n in (1, 2):
        server.cli("deploy", str(write_project(root / f"v{n}", project(f"v{n}"))), check=True)
    warm, alias, rollback, deploy = [], [], [], []
    with httpx.Client(base_url=server.url) as client, server.api() as api:
        for i in range(rounds):
            started = time.perf_counter()
            client.get("/page")
            warm.append((time.perf_counter() - started) * 1000)

            target = 1 if i % 2 == 0 else 2
            started = time.perf_counter()
            api.put("/_squall/api/functions/page/aliases/live", json={"version": target}).raise_for_status()
            alias.append(until_served(client, f"v{target}", started))

            back = 2 if target == 1 else 1
            api.put("/_squall/api/functions/page/aliases/live", json={"version": back}).raise_for_status()
            until_served(client, f"v{back}", time.perf_counter())
            started = time.perf_counter()
            api.post("/_squall/api/functions/page/rollback", json={"to": target}).raise_for_status()
            rollback.append(until_served(client, f"v{target}", started))
        for i in range(min(rounds, 10)):
            bundle_dir = write_project(root / f"d{i}", project(f"d{i}"))
            bundle = pack_project(bundle_dir)
            started = time.perf_counter()
            api.post("/_squall/api/deploy", content=bundle).raise_for_status()
            deploy.append(until_served(client, f"d{i}", started))
    return [("warm request (baseline)", warm), ("alias move (API)", alias), ("rollback (API)", rollback),
            ("deploy of one changed function (API)", deploy)]


if __name__ == "__main__":
    main()
