"""The standing hostile suite, resources: what a function or its callers can make a node hold
stays bounded. Each attack runs against a real `squall server` while a bystander function is
called again and again (tests/hostile/bystander.py): it must answer during and after.

* a deploy check that cannot start all its instances leaves none of them behind;
* a forged result frame claiming gigabytes is refused from its header, unread;
* a function printing 1 MB per call, called as fast as its callers can: the node's memory and
  its stored logs stay within their bounds, and other functions' logs still get stored."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import psutil
import pytest

from tests.hostile.bystander import bystander
from tests.support import SquallServer, wait_until, write_project

pytestmark = pytest.mark.e2e

MB = 1024 * 1024


def instance_count(node: SquallServer) -> int:
    with node.api() as api:
        return len(api.get("/_squall/api/instances").json()["instances"])


class PeakMemory:
    """The highest RSS of a process seen while the block runs, sampled on a thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.before = self.process.memory_info().rss
        self.peak = self.before
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.before) / MB


def server_pid(node: SquallServer) -> int:
    assert node.process is not None
    return node.process.pid


# -- 9: a deploy check with no room --------------------------------------------------
STEADY = {
    "squall.yaml": """
        name: steady
        functions:
          steady:
            handler: app.handler
            min_instances: 4
            triggers: [{http: "GET /steady"}]
          later:
            handler: app.handler
            triggers: [{http: "GET /later"}]
    """,
    "app.py": "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n",
}


def crowd(count: int) -> dict[str, str]:
    """Project `crowd`: `count` functions, each starting an instance in the deploy check."""
    functions = "".join(f"  f{i}:\n    handler: app.handler\n" for i in range(count))
    return {"squall.yaml": f"name: crowd\nfunctions:\n{functions}",
            "app.py": "def handler(event, context):\n    return 'ok'\n"}


@pytest.fixture
def small_node(tmp_path: Path) -> Iterator[SquallServer]:
    """A node that runs at most 10 instances, 4 of them the bystander's (min_instances)."""
    node = SquallServer(tmp_path / "data", environ={"SQUALL_MAX_INSTANCES": "10"}).start()
    try:
        node.cli("deploy", str(write_project(tmp_path / "steady", STEADY)), check=True)
        wait_until(lambda: instance_count(node) >= 4)
        yield node
    finally:
        node.stop()


def test_a_deploy_check_without_room_retires_every_instance_it_started(
        small_node: SquallServer, tmp_path: Path) -> None:
    with bystander(small_node.url, "/steady"):
        refused = small_node.cli("deploy", str(write_project(tmp_path / "crowd8", crowd(8))))  # room for 6
        left = instance_count(small_node)
        too_many = small_node.cli("deploy", str(write_project(tmp_path / "crowd12", crowd(12))))
        after_too_many = instance_count(small_node)
        accepted = small_node.cli("deploy", str(write_project(tmp_path / "crowd3", crowd(3))))
        cold = httpx.get(f"{small_node.url}/later", timeout=10)

    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, said
    assert "deploy rejected, nothing was changed" in said and "could not start for their import check" in said
    assert left <= 5, f"{left} instances still up after the refused deploy"  # steady's 4, and one busy
    assert too_many.returncode == 2 and "runs at most 10 instances" in too_many.stdout + too_many.stderr
    assert after_too_many <= 5
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert cold.status_code == 200 and cold.text == "ok"
    with small_node.api() as api:
        assert [f["name"] for f in api.get("/_squall/api/functions").json()["functions"]
                if f["name"].startswith("f")] == ["f0", "f1", "f2"]


# -- 7: a forged result frame claiming 1.5 GB ------------------------------------------
FORGER = {
    "squall.yaml": """
        name: forger
        functions:
          forge:
            handler: app.forge
            timeout: 10
          big:
            handler: app.big
          steady:
            handler: app.steady
            triggers: [{http: "GET /steady"}]
    """,
    "app.py": '''
import gc, os, struct

def big(event, context):
    return "y" * (7 * 1024 * 1024)  # an honest result over the limit

def forge(event, context):
    """Write a result frame on the instance's own channel whose header claims 1.5 GB, then
    300 MB of it, as fast as the node takes them."""
    channel = next(o for o in gc.get_objects() if type(o).__name__ == "Channel")
    head = b'{"t":"result","ok":true,"duration_ms":1}'
    os.write(1, channel.nonce + struct.pack(">II", len(head), 1_500_000_000) + head)
    chunk = b"x" * (1024 * 1024)
    for _ in range(300):
        os.write(1, chunk)
    return "not reached"

def steady(event, context):
    return {"statusCode": 200, "body": "ok"}
''',
}


def test_a_forged_frame_header_is_refused_before_its_bytes_are_read(tmp_path: Path) -> None:
    node = SquallServer(tmp_path / "data").start()
    try:
        node.cli("deploy", str(write_project(tmp_path / "forger", FORGER)), check=True)
        with bystander(node.url, "/steady"), PeakMemory(server_pid(node)) as memory, node.api() as api:
            answer = api.post("/_squall/api/functions/forge/invoke", json={}, timeout=60).json()
            again = api.post("/_squall/api/functions/forge/invoke", json={}, timeout=60).json()
            honest = api.post("/_squall/api/functions/big/invoke", json={}, timeout=60).json()
    finally:
        node.stop()

    print(f"server RSS {memory.before / MB:.0f} MB before, peak {memory.peak / MB:.0f} MB during the attack")
    error = answer["payload"]
    assert answer["ok"] is False and error["errorType"] == "Function.ResponseSizeTooLarge", answer
    assert "6291456 bytes" in error["errorMessage"]
    assert again["payload"]["errorType"] == "Function.ResponseSizeTooLarge"  # a fresh instance, refused again
    assert honest["payload"]["errorType"] == "Function.ResponseSizeTooLarge"
    assert memory.growth_mb < 64, f"the server grew by {memory.growth_mb:.0f} MB"
