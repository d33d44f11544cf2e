"""Schedule precision and publish latency through a real server.

    python bench/events_latency.py [--schedules 100] [--seconds 30] [--publishes 200]

* 100 schedules at `rate(1 second)` for 30 s: how late each run starts after its fire
  time (p50, p99, max), and whether any fire time was missed or ran twice. The scheduled
  function is trivial: it prints its start time, which the bench reads back from the logs
  (a function that POSTs to a recorder spends more CPU per run than the platform does, and
  100 of them at once on 2 cores measured their own queueing: p50 30 ms against 10 ms).
* time from `publish` (an API call) to the first line of the subscribed function: p50, p99.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stats import percentile  # noqa: E402

from tests.support import Recorder, SquallServer, wait_until, write_project  # noqa: E402

HANDLER = """
import json, os, time, urllib.request

def tick(event, context):
    print(json.dumps({"at": time.time(), "event": {"time": event["time"], "resources": event["resources"]}}))

def handler(event, context):
    at = time.time()
    body = {"at": at, "event": event}
    request = urllib.request.Request(os.environ["RECORDER"], data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).read()
"""


def project(recorder: Recorder, schedules: int) -> dict[str, str]:
    triggers = "".join(f'              - schedule: "rate(1 second)"\n                name: s{n}\n'
                       for n in range(schedules))
    return {
        "squall.yaml": f"""
name: bench
topics:
  news: {{}}
functions:
  tick:
    handler: app.tick
    concurrency: 200
    env: {{RECORDER: "{recorder.url}"}}
    triggers:
{triggers.replace("              ", "      ")}
  listener:
    handler: app.handler
    env: {{RECORDER: "{recorder.url}"}}
    triggers:
      - topic: news
""",
        "app.py": HANDLER,
    }


def started_runs(server: SquallServer) -> list[dict]:  # type: ignore[type-arg]
    """What each run of `tick` printed when it started, read back from its logs."""
    runs, after = [], 0
    with server.api() as api:
        while True:
            logs = api.get("/_squall/api/functions/tick/logs", params={"after": after, "limit": 5000}).json()["logs"]
            if not logs:
                return runs
            after = logs[-1]["id"]
            runs += [json.loads(line["message"][line["message"].index("{"):]) for line in logs
                     if '"resources"' in line["message"]]


def fire_time(event: dict) -> float:  # type: ignore[type-arg]
    return float(calendar.timegm(time.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--publishes", type=int, default=200)
    args = parser.parse_args()
    table = Table(title=f"Events latency, {os.cpu_count()} cores")
    for column in ("what", "value"):
        table.add_column(column, justify="left" if column == "what" else "right")
    with tempfile.TemporaryDirectory() as tmp, Recorder() as recorder:
        server = SquallServer(Path(tmp) / "data").start()
        try:
            server.cli("deploy", str(write_project(Path(tmp) / "p", project(recorder, args.schedules))), check=True)
            started = time.time()
            time.sleep(args.seconds)
            server.cli("deploy", str(write_project(Path(tmp) / "p", project(recorder, 0))), check=True)
            time.sleep(2)
            runs = started_runs(server)
            window = [r for r in runs if started + 3 <= fire_time(r["event"]) <= started + args.seconds - 1]
            late = [(r["at"] - fire_time(r["event"])) * 1000 for r in window]
            counts = Counter((r["event"]["resources"][0], r["event"]["time"]) for r in runs)
            per_schedule = Counter(r["event"]["resources"][0] for r in window)
            expected = int(args.seconds - 4)
            table.add_row(f"{args.schedules} schedules at rate(1 second), {args.seconds:g} s: runs",
                          f"{len(runs):,}")
            table.add_row("fire to handler start, p50 / p99 / max (ms, warm, after 3 s)",
                          f"{percentile(late, 50):.1f} / {percentile(late, 99):.1f} / {max(late):.1f}")
            table.add_row("fire times that ran twice", str(sum(1 for n in counts.values() if n > 1)))
            table.add_row(f"schedules short of {expected} runs in the window",
                          str(sum(1 for n in per_schedule.values() if n < expected)
                              + args.schedules - len(per_schedule)))
            delays = []
            with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {server.token}"}) as api:
                for n in range(args.publishes):
                    sent = time.time()
                    api.post("/_squall/api/topics/news/publish", json={"message": str(n)}).raise_for_status()
                    arrived = wait_until(lambda: [r for r in recorder.json() if "Records" in r["event"]
                                                  and r["event"]["Records"][0]["Sns"]["Message"] == str(n)],
                                         timeout=10, interval=0.0005)
                    delays.append((arrived[0]["at"] - sent) * 1000)
            table.add_row(f"publish to subscriber's first line, p50 / p99 (ms, {args.publishes} messages)",
                          f"{percentile(delays, 50):.1f} / {percentile(delays, 99):.1f}")
        finally:
            server.stop()
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
