"""End to end: provisioned instances, `squall instances`, freezing between invocations."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support import SquallServer, serving, wait_until, write_project

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: lifecycle
        functions:
          warm:
            handler: app.warm
            min_instances: 2
            triggers: [{http: "GET /warm"}]
          ticker:
            handler: app.ticker
            triggers: [{http: "GET /ticker"}]
    """,
    "app.py": """
        import os, threading, time

        def host_pid():  # os.getpid() is 1: each instance is pid 1 of its own PID namespace
            for line in open("/proc/self/cgroup"):
                _, controllers, path = line.strip().split(":", 2)
                if "pids" in controllers.split(","):
                    return int(path.rsplit("/", 1)[-1])

        ticks = 0
        started = False

        def _tick():
            global ticks
            while True:
                ticks += 1
                time.sleep(0.01)

        def warm(event, context):
            return {"pid": host_pid()}

        def ticker(event, context):
            global started
            if not started:
                started = True
                threading.Thread(target=_tick, daemon=True).start()
                time.sleep(0.2)
            return {"ticks": ticks}
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("lifecycle"), PROJECT) as node:
        yield node


def instances(server: SquallServer, name: str | None = None) -> list[dict]:
    args = ["instances", *([name] if name else []), "--json"]
    return list(json.loads(server.cli(*args, check=True).stdout)["instances"])


def test_min_instances_are_started_ahead_of_calls(server: SquallServer) -> None:
    live = wait_until(lambda: len(found := instances(server, "warm")) == 2 and found)
    assert all(i["state"].startswith("idle") and i["invocations"] == 0 for i in live)
    pid = httpx.get(f"{server.url}/warm").json()["pid"]
    assert pid in {i["pid"] for i in live}, "the first call is served by a provisioned instance"
    table = server.cli("instances", check=True).stdout
    assert "warm" in table and "PID" in table


def test_idle_instances_are_frozen(server: SquallServer) -> None:
    first = httpx.get(f"{server.url}/ticker").json()["ticks"]
    assert first > 0, "the thread runs during an invocation"
    live = instances(server, "ticker")
    assert live and live[0]["state"] == "idle (frozen)"
    time.sleep(1.0)
    second = httpx.get(f"{server.url}/ticker").json()["ticks"]
    assert second - first < 20, f"a frozen instance's thread got CPU while idle ({second - first} ticks)"


def test_instances_of_an_unknown_function_is_an_error(server: SquallServer) -> None:
    result = server.cli("instances", "nobody")
    assert result.returncode == 1 and "nobody" in result.stderr


HOOKS = {
    "squall.yaml": """
        name: hooks
        functions:
          hooked:
            handler: app.handler
            initializer: app.init
            shutdown: app.close
            triggers: [{http: "GET /hooked"}]
    """,
    "app.py": """
        import os

        def host_pid():  # os.getpid() is 1: each instance is pid 1 of its own PID namespace
            for line in open("/proc/self/cgroup"):
                _, controllers, path = line.strip().split(":", 2)
                if "pids" in controllers.split(","):
                    return int(path.rsplit("/", 1)[-1])

        state = {"inits": 0, "calls": 0}

        def init(context):
            state["inits"] += 1
            print("opening connection for", context.function_name)

        def close(context):
            print("closing connection after", state["calls"], "calls")

        def broken_init(context):
            raise ConnectionError("database unreachable")

        def init_arn(context):
            print("initializer sees", context.invoked_function_arn)

        def close_arn(context):
            print("shutdown hook sees", context.invoked_function_arn)

        def handler(event, context):
            state["calls"] += 1
            return {"inits": state["inits"], "calls": state["calls"], "pid": host_pid(),
                    "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
                    "arn": context.invoked_function_arn}
    """,
}


def test_initializer_runs_once_and_shutdown_runs_when_replaced(tmp_path: Path, server: SquallServer) -> None:
    project = write_project(tmp_path / "hooks", HOOKS)
    server.cli("deploy", str(project), check=True)
    first = httpx.get(f"{server.url}/hooked").json()
    second = httpx.get(f"{server.url}/hooked").json()
    assert (first["inits"], second["inits"], second["calls"]) == (1, 1, 2)
    assert first["pid"] == second["pid"]
    (project / "app.py").write_text((project / "app.py").read_text() + "\n# v2\n")
    server.cli("deploy", str(project), check=True)
    lines = wait_until(lambda: [line["message"] for line in server.logs("hooked")
                                if "closing connection" in line["message"]])
    assert lines == ["closing connection after 2 calls"]
    messages = [line["message"] for line in server.logs("hooked")]
    assert "opening connection for hooked" in messages


def test_a_failing_initializer_is_an_init_error(tmp_path: Path, server: SquallServer) -> None:
    manifest = HOOKS["squall.yaml"].replace("name: hooks", "name: hooks-broken").replace(
        "hooked:", "init-fails:").replace("app.init", "app.broken_init").replace("/hooked", "/init-fails")
    project = write_project(tmp_path / "hooks-broken", {**HOOKS, "squall.yaml": manifest})
    result = server.cli("deploy", str(project))
    assert result.returncode == 2, "the deploy check runs the initializer too"
    assert "database unreachable" in result.stderr and "init-fails" in result.stderr


@pytest.mark.e2e
def test_the_initializer_and_the_shutdown_hook_see_the_functions_arn(tmp_path: Path,
                                                                     server: SquallServer) -> None:
    manifest = HOOKS["squall.yaml"]
    for old, new in (("name: hooks", "name: hooks-arn"), ("hooked:", "arn-hooked:"), ("/hooked", "/arn-hooked"),
                     ("app.init", "app.init_arn"), ("app.close", "app.close_arn")):
        manifest = manifest.replace(old, new)
    project = write_project(tmp_path / "hooks-arn", {**HOOKS, "squall.yaml": manifest})
    server.cli("deploy", str(project), check=True)
    arn = httpx.get(f"{server.url}/arn-hooked").json()["arn"]
    assert arn.startswith("arn:aws:lambda:") and arn.endswith(":function:arn-hooked")
    assert json.loads(server.cli("recycle", "arn-hooked", "--json", check=True).stdout)["stopped"] >= 1
    closing = wait_until(lambda: {line["message"] for line in server.logs("arn-hooked")
                                  if line["message"].startswith("shutdown hook sees")})
    assert closing == {f"shutdown hook sees {arn}"}
    opening = {line["message"] for line in server.logs("arn-hooked")
               if line["message"].startswith("initializer sees")}
    assert opening == {f"initializer sees {arn}"}, "the deploy check's instance and the serving one alike"


def test_recycle_stops_idle_instances_and_the_next_call_is_cold(server: SquallServer) -> None:
    wait_until(lambda: len(instances(server, "warm")) == 2)
    before = {i["pid"] for i in instances(server, "warm")}
    answer = json.loads(server.cli("recycle", "warm", "--json", check=True).stdout)
    assert answer == {"function": "warm", "stopped": 2}
    pid = httpx.get(f"{server.url}/warm").json()["pid"]
    assert pid not in before
    wait_until(lambda: len(instances(server, "warm")) >= 2, timeout=20)  # min_instances come back
    assert server.cli("recycle", "nobody").returncode == 1
