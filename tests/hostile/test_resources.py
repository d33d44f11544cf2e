"""The standing hostile suite, resources: what a function or its callers can make a node hold
stays bounded. Each attack runs against a real `squall server` while a bystander function is
called again and again (tests/hostile/bystander.py): it must answer during and after.

* a deploy check that cannot start all its instances leaves none of them behind;
* a forged result frame claiming gigabytes is refused from its header, unread;
* a function printing 1 MB per call, called as fast as its callers can: the node's memory and
  its stored logs stay within their bounds, and other functions' logs still get stored;
* the same in the root stage and another stage at once: the log cap holds for both together."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.hostile.bystander import bystander
from tests.support import PeakMemory, SquallServer, wait_until, write_project

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # measures a server under attack: runs alone

MB = 1024 * 1024


def instance_count(node: SquallServer) -> int:
    with node.api() as api:
        return len(api.get("/_squall/api/instances").json()["instances"])


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
        with bystander(node.url, "/steady"), PeakMemory(server_pid(node)) as memory:
            answer = node.invoke("forge")
            again = node.invoke("forge")
            honest = node.invoke("big")
    finally:
        node.stop()

    print(f"server RSS {memory.before / MB:.0f} MB before, peak {memory.peak / MB:.0f} MB during the attack")
    error = answer["payload"]
    assert answer["ok"] is False and error["errorType"] == "Function.ResponseSizeTooLarge", answer
    assert "6291456 bytes" in error["errorMessage"]
    assert again["payload"]["errorType"] == "Function.ResponseSizeTooLarge"  # a fresh instance, refused again
    assert honest["payload"]["errorType"] == "Function.ResponseSizeTooLarge"
    assert memory.growth_mb < 64, f"the server grew by {memory.growth_mb:.0f} MB"


# -- 6: a function printing 1 MB per call, called by unauthenticated clients as fast as they can --------
LOUD = {
    "squall.yaml": """
        name: loud
        functions:
          loud:
            handler: app.loud
            timeout: 10
            triggers: [{http: "POST /loud"}]
          steady:
            handler: app.steady
            triggers: [{http: "GET /steady"}]
    """,
    "app.py": '''
import sys

def loud(event, context):
    sys.stdout.write(("x" * 1023 + "\\\\n") * 1024)  # 1 MB of output, the most one invocation keeps
    return {"statusCode": 200, "body": "printed"}

def steady(event, context):
    print("steady answered", context.aws_request_id)
    return {"statusCode": 200, "body": "ok"}
''',
}
LOG_CAP_MB = 16


def stored_log_bytes(data_dir: Path) -> int:
    """The bytes of every stored log batch's lines, read from the SQLite file itself (a
    stage's: `data_dir` DATA/stages/NAME)."""
    with sqlite3.connect(f"file:{data_dir / 'squall.db'}?mode=ro", uri=True) as db:
        return int(db.execute("SELECT coalesce(sum(length(CAST(lines AS BLOB))), 0) FROM log_batches").fetchone()[0])


def flood(url: str, clients: int, seconds: float) -> int:
    """POST to `url` from `clients` threads for `seconds`; how many calls answered 200."""
    answered: list[int] = []

    def client() -> None:
        done = 0
        deadline = time.monotonic() + seconds
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < deadline:
                done += http.post(url).status_code == 200
        answered.append(done)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return sum(answered)


def test_a_function_printing_1mb_per_call_keeps_the_nodes_memory_and_stored_logs_bounded(tmp_path: Path) -> None:
    environ = {"SQUALL_LOG_MAX_MB": str(LOG_CAP_MB), "SQUALL_LOG_SWEEP_SECONDS": "1"}
    node = SquallServer(tmp_path / "data", environ=environ).start()
    try:
        node.cli("deploy", str(write_project(tmp_path / "loud", LOUD)), check=True)
        with bystander(node.url, "/steady"), PeakMemory(server_pid(node)) as memory:
            calls = flood(f"{node.url}/loud", clients=6, seconds=12)
        wait_until(lambda: stored_log_bytes(node.data_dir) <= LOG_CAP_MB * MB, timeout=30)
        after = httpx.get(f"{node.url}/steady", timeout=10).headers["apigw-requestid"]
        after_lines = node.wait_logs("steady", after)
        steady_lines = node.logs("steady", limit=10000)
    finally:
        node.stop()

    print(f"{calls} calls printed {calls} MB; server RSS {memory.before / MB:.0f} MB before, "
          f"peak {memory.peak / MB:.0f} MB")
    assert calls >= 50  # the attack did print much more than the cap
    assert memory.growth_mb < 400, f"the server grew by {memory.growth_mb:.0f} MB"  # the log queue: 36 MB
    assert [line["message"] for line in after_lines][1] == f"steady answered {after}"
    # the bystander's small batches were never shortened (the cap may sweep them away as the oldest)
    assert not [line for line in steady_lines if "log of this invocation was dropped" in line["message"]]


def test_the_log_cap_holds_for_the_root_and_a_stage_together(tmp_path: Path) -> None:
    cap_mb = 4
    environ = {"SQUALL_LOG_MAX_MB": str(cap_mb), "SQUALL_LOG_SWEEP_SECONDS": "1"}
    node = SquallServer(tmp_path / "data", environ=environ).start()
    stage_dir = node.data_dir / "stages" / "staging"
    try:
        project = write_project(tmp_path / "loud", LOUD)
        node.cli("deploy", str(project), check=True)
        node.cli("deploy", str(project), "--stage", "staging", check=True)
        results: list[int] = []
        floods = [threading.Thread(target=lambda url=url: results.append(flood(url, clients=2, seconds=8)))
                  for url in (f"{node.url}/loud", f"{node.url}/_squall/stages/staging/loud")]
        for thread in floods:
            thread.start()
        for thread in floods:
            thread.join(120)
        # each store alone may stay under the cap: only a server-wide sweep brings both together under it
        wait_until(lambda: stored_log_bytes(node.data_dir) + stored_log_bytes(stage_dir) <= cap_mb * MB, timeout=30)
    finally:
        node.stop()

    assert len(results) == 2 and min(results) >= 2 * cap_mb, results  # each stage printed twice the cap or more
