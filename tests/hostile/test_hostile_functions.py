"""End to end: hostile functions on a real `squall server`. Each test checks that the caller
gets Lambda's error object (or the function reports what it could not do), that a broken
instance is replaced, and that another function keeps serving during and after."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any, Iterator

import httpx
import psutil
import pytest

from tests.hostile.bystander import bystander
from tests.support import SquallServer, plant_admin_token, serving, wait_until
from tests.test_sandbox import HANDLERS

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # measures a server under attack: runs alone

EXTRA = '''
import ctypes, json

def hostile(event, context):
    if "body" in event:  # called over HTTP
        event = json.loads(event["body"])
    action = event.get("do")
    if action == "loop":
        while True:
            pass
    if action == "exit":
        os._exit(3)
    if action == "segfault":
        ctypes.string_at(0)
    if action == "sys_exit":
        sys.exit()
    if action == "print":
        line = "x" * 1023 + "\\n"
        for _ in range(100 * 1024):
            sys.stdout.write(line)
        return {"printed_mb": 100}
    return handler(event, context)

def steady(event, context):
    return {"pid": os.getpid()}
'''

PROJECT = {
    "squall.yaml": """
        name: hostile
        functions:
          hostile:
            handler: app.hostile
            memory: 256
            ephemeral_storage: 64
            timeout: 2
            triggers: [{http: "POST /hostile"}]
          offline:
            handler: app.hostile
            network: none
          steady:
            handler: app.steady
            triggers: [{http: "GET /steady"}]
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    root = tmp_path_factory.mktemp("hostile")
    plant_admin_token(root / "data")
    with serving(root, {**PROJECT, "app.py": HANDLERS + EXTRA}) as node:
        yield node


def steady_pid(server: SquallServer) -> int:
    response = httpx.get(f"{server.url}/steady", timeout=10)
    assert response.status_code == 200, response.text
    return int(response.json()["pid"])


def while_serving(server: SquallServer, function: str, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke `function` with `event` while `steady` is called again and again: every steady
    call must succeed, during and after. Returns the envelope of the hostile call."""
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(server.invoke(function, event, timeout=30)))
    thread.start()
    calls = 0
    while thread.is_alive() or calls == 0:
        steady_pid(server)
        calls += 1
    thread.join(30)
    steady_pid(server)
    return result


def zygote_pid(server: SquallServer) -> int:
    assert server.process is not None
    return next(child.pid for child in psutil.Process(server.process.pid).children()
                if "squall.runtime.zygote" in " ".join(child.cmdline()))


def probe_event(server: SquallServer) -> dict[str, Any]:
    return {"do": "probe", "data": str(server.data_dir.resolve()),
            "other": str(next((server.data_dir / "code").iterdir()).resolve()),
            "deps": "/nonexistent", "port": server.port, "zygote": zygote_pid(server)}


def pid_of(server: SquallServer, function: str = "hostile") -> int:
    return int(server.payload(function)["pid"])


def assert_replaced(server: SquallServer, before: int) -> None:
    assert pid_of(server) != before
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(before).status()


def error_logs(server: SquallServer, envelope: dict[str, Any]) -> str:
    lines = server.wait_logs(envelope["function"], envelope["requestId"])
    return "\n".join(line["message"] for line in lines)


def test_data_dir_store_and_token_are_not_readable(server: SquallServer) -> None:
    envelope = while_serving(server, "hostile", probe_event(server))
    seen = envelope["payload"]
    assert envelope["ok"], envelope
    assert not seen["store"]["ok"] and seen["store"]["errno"] == errno.ENOENT
    assert not seen["token"]["ok"] and seen["token"]["errno"] in (errno.ENOENT, errno.EACCES)
    assert not seen["other_code"]["ok"]
    # its code and deps, and the runtime folder (links to the server's installed boto3 and squall)
    assert set(seen["data_listing"]["value"]) <= {"code", "deps", "runtime"}


def test_runs_as_its_own_uid_with_read_only_code_and_no_platform_secrets(server: SquallServer) -> None:
    seen = while_serving(server, "hostile", probe_event(server))["payload"]
    assert 100000 <= seen["uid"] <= 165535 and seen["gid"] == seen["uid"] and seen["groups"] == []  # its own
    assert not seen["write_code"]["ok"] and seen["write_code"]["errno"] in (errno.EROFS, errno.EACCES)
    assert seen["tmp_write"]["ok"]
    allowed = {"SQUALL_FUNCTION", "SQUALL_STAGE", "SQUALL_API_URL", "SQUALL_FUNCTION_TOKEN"}  # the SDK's, scoped to the function
    assert not [k for k in seen["environ"] if k.startswith("SQUALL_") and k not in allowed]
    assert seen["environ"]["SQUALL_STAGE"] == "default"
    assert not any(server.token in value for value in seen["environ"].values())
    credential = seen["environ"]["SQUALL_FUNCTION_TOKEN"]
    assert httpx.get(f"{server.url}/_squall/api/functions",
                     headers={"authorization": f"Bearer {credential}"}).status_code == 401
    assert not seen["kill_zygote"]["ok"] and seen["kill_zygote"]["errno"] == errno.ESRCH  # not in its PID namespace
    assert seen["connect"]["ok"]


def test_network_none_cannot_reach_the_server(server: SquallServer) -> None:
    seen = while_serving(server, "offline", probe_event(server))["payload"]
    assert not seen["connect"]["ok"] and seen["connect"]["errno"] in (errno.ENETUNREACH, errno.ECONNREFUSED)


def test_tmp_past_its_cap_is_enospc(server: SquallServer) -> None:
    envelope = while_serving(server, "hostile", {"do": "fill_tmp"})
    assert envelope["ok"], envelope["payload"]
    assert envelope["payload"]["errno"] == errno.ENOSPC
    assert 60 <= envelope["payload"]["written_mb"] <= 64


def test_memory_past_the_limit_kills_and_replaces_the_instance(server: SquallServer) -> None:
    before = pid_of(server)
    envelope = while_serving(server, "hostile", {"do": "allocate"})
    assert not envelope["ok"]
    error = envelope["payload"]
    assert "signal: killed (out of memory: more than the 256 MB limit)" in error["errorMessage"] \
        or error["errorType"] == "MemoryError", error
    assert "out of memory" in error_logs(server, envelope) or error["errorType"] == "MemoryError"
    assert_replaced(server, before)


def test_fork_bomb_is_capped_and_the_platform_survives(server: SquallServer) -> None:
    """pids.max (1024) stops the bomb, unless its 1,024 processes outgrow the memory limit
    first (then the instance is killed); either way nothing of it survives the instance."""
    from squall.runtime import cgroups

    before = pid_of(server)
    envelope = while_serving(server, "hostile", {"do": "fork_bomb"})
    result = envelope["payload"]
    if envelope["ok"]:
        assert result["errno"] == errno.EAGAIN and result["forks"] < 1024
        server.invoke("hostile", {"do": "exit"})
    else:  # killed out of memory, or too slow to fork under memory pressure
        assert "signal: killed" in result["errorMessage"] or "Task timed out" in result["errorMessage"]
    groups = [Path(root) / str(before) for root in cgroups.cgroup_roots().values()]
    assert groups
    wait_until(lambda: not any(group.exists() for group in groups), timeout=20)
    assert_replaced(server, before)
    steady_pid(server)


def test_thread_bomb_is_capped(server: SquallServer) -> None:
    envelope = while_serving(server, "hostile", {"do": "thread_bomb"})
    assert envelope["ok"] and "can't start new thread" in envelope["payload"]["error"]
    assert envelope["payload"]["threads"] < 1024


def test_too_many_open_files_is_emfile(server: SquallServer) -> None:
    envelope = while_serving(server, "hostile", {"do": "files"})
    assert envelope["ok"] and envelope["payload"]["errno"] == errno.EMFILE
    assert envelope["payload"]["opened"] < 1024


@pytest.mark.parametrize(("action", "message"), [
    ("loop", "Task timed out after 2.00 seconds"),
    ("exit", "Runtime exited with error: exit status 3"),
    ("segfault", "Runtime exited with error: signal: segmentation fault"),
    ("sys_exit", "Runtime exited with error: exit status 0"),
])
def test_dying_instances_are_reported_and_replaced(server: SquallServer, action: str, message: str) -> None:
    before = pid_of(server)
    envelope = while_serving(server, "hostile", {"do": action})
    assert not envelope["ok"] and message in envelope["payload"]["errorMessage"]
    assert message in error_logs(server, envelope)
    assert_replaced(server, before)


def test_http_caller_gets_502_when_the_instance_dies(server: SquallServer) -> None:
    with bystander(server.url, "/steady"):
        response = httpx.post(f"{server.url}/hostile", json={"do": "exit"}, timeout=30)
    assert response.status_code == 502
    lines = server.wait_logs("hostile", response.headers["apigw-requestid"])
    assert any("exit status 3" in line["message"] for line in lines)


def test_printing_100_mb_is_truncated_and_the_server_stays_small(server: SquallServer) -> None:
    assert server.process is not None
    node = psutil.Process(server.process.pid)
    rss_before = node.memory_info().rss
    envelope = while_serving(server, "hostile", {"do": "print"})
    assert envelope["ok"], envelope
    lines = wait_until(lambda: [line["message"] for line in server.logs(
        "hostile", request_id=envelope["requestId"], limit=10000) if "REPORT" in line["message"]
        or "[squall] log output truncated" in line["message"]])
    assert any("[squall] log output truncated" in line for line in lines)
    assert node.memory_info().rss - rss_before < 200 * 1024 * 1024


def test_killing_the_zygote_is_survived(server: SquallServer) -> None:
    """Inside the sandbox the instance cannot signal its root-owned parent; should the
    zygote die anyway, the node starts another one on the next cold start."""
    seen = server.payload("hostile", probe_event(server))
    assert not seen["kill_zygote"]["ok"] and seen["kill_zygote"]["errno"] == errno.ESRCH
    zygote = psutil.Process(seen["pid"]).ppid()
    os.kill(zygote, 9)
    wait_until(lambda: not psutil.pid_exists(seen["pid"]))
    # An idle instance that died with its zygote answers one call with an error (the pool
    # does not check idle instances before use); after that, new instances are forked.
    wait_until(lambda: server.invoke("hostile")["ok"], timeout=20)
    wait_until(lambda: httpx.get(f"{server.url}/steady", timeout=10).status_code == 200, timeout=20)
    assert pid_of(server) != seen["pid"]
    assert psutil.Process(pid_of(server)).ppid() != zygote


def test_no_instance_cgroups_are_left_behind(server: SquallServer) -> None:
    from squall.runtime import cgroups

    before = pid_of(server)
    while_serving(server, "hostile", {"do": "exit"})
    groups = [Path(root) / str(before) for root in cgroups.cgroup_roots().values()]
    assert groups
    wait_until(lambda: not any(group.exists() for group in groups), timeout=10)
