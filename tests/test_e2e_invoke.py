"""End to end: `squall invoke`, `squall ls`, `squall logs` (filters, follow) against a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.support import SQUALL, SquallServer, serving, wait_until, write_project

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: tools
        functions:
          greet:
            handler: app.greet
            memory: 192
          broken:
            handler: app.broken
    """,
    "app.py": """
        import logging
        logger = logging.getLogger()
        logger.setLevel(logging.INFO)

        def greet(event, context):
            print("printed", event.get("name"))
            logger.warning("careful\\nsecond line")
            return {"hello": event.get("name"), "request": context.aws_request_id}

        def broken(event, context):
            raise KeyError("missing")
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("invoke"), PROJECT) as node:
        yield node


def test_invoke_with_data_prints_the_result(server: SquallServer) -> None:
    result = server.cli("invoke", "greet", "--data", '{"name": "ada"}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hello"] == "ada"


def test_invoke_with_event_file_and_json_envelope(server: SquallServer, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text('{"name": "grace"}')
    result = server.cli("invoke", "greet", "--event", str(event), "--json")
    envelope = json.loads(result.stdout)
    assert envelope["ok"] is True and envelope["function"] == "greet" and envelope["version"] == 1
    assert envelope["payload"] == {"hello": "grace", "request": envelope["requestId"]}


def test_invoke_error_exits_1_with_lambda_error_object(server: SquallServer) -> None:
    result = server.cli("invoke", "broken")
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["errorType"] == "KeyError"
    assert error["errorMessage"] == "'missing'"
    assert error["requestId"] and isinstance(error["stackTrace"], list) and error["stackTrace"]
    assert "KeyError" in result.stderr


def test_invoke_bad_input(server: SquallServer) -> None:
    bad = server.cli("invoke", "greet", "--data", "{not json")
    assert bad.returncode == 2 and "--data" in bad.stderr
    unknown = server.cli("invoke", "nobody")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr


def test_ls_lists_functions(server: SquallServer) -> None:
    listed = {f["name"]: f for f in json.loads(server.cli("ls", "--json", check=True).stdout)}
    assert set(listed) == {"greet", "broken"}
    assert listed["greet"]["memory"] == 192 and listed["greet"]["runtime"] == "python3.11"
    table = server.cli("ls", check=True).stdout
    assert "greet" in table and "broken" in table


def test_logs_have_start_end_report_and_levels(server: SquallServer) -> None:
    request_id = json.loads(server.cli("invoke", "greet", "--data", '{"name": "x"}', "--json").stdout)["requestId"]
    server.wait_logs("greet", request_id)
    result = server.cli("logs", "greet", "--request-id", request_id, "--json", check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    messages = [line["message"] for line in lines]
    assert messages[0].startswith(f"START RequestId: {request_id} Version: 1")
    assert messages[-2] == f"END RequestId: {request_id}"
    report = messages[-1]
    for part in ("REPORT RequestId", "Duration:", "Billed Duration:", "Memory Size: 192 MB", "Max Memory Used:"):
        assert part in report
    assert "printed x" in messages
    warning = next(line for line in lines if "careful" in line["message"])
    assert warning["level"] == "WARN" and "careful\nsecond line" in warning["message"]
    assert {line["request_id"] for line in lines} == {request_id}


def test_cold_start_reports_init_duration(server: SquallServer, tmp_path: Path) -> None:
    project = write_project(tmp_path / "cold", {
        "squall.yaml": "name: cold\nfunctions:\n  cold-fn:\n    handler: app.handler\n",
        "app.py": "print('module loading')\n\ndef handler(event, context):\n    return 1\n",
    })
    server.cli("deploy", str(project), check=True)
    server.restart()  # no warm instance left: the first call is a cold start
    first = json.loads(server.cli("invoke", "cold-fn", "--json", check=True).stdout)["requestId"]
    second = json.loads(server.cli("invoke", "cold-fn", "--json", check=True).stdout)["requestId"]
    first_report = server.wait_logs("cold-fn", first)[-1]["message"]
    second_report = server.wait_logs("cold-fn", second)[-1]["message"]
    assert "Init Duration:" in first_report
    assert "Init Duration:" not in second_report
    first_lines = [line["message"] for line in server.logs("cold-fn", request_id=first)]
    assert "module loading" in first_lines, "what the module prints at import shows on the cold call"


def test_logs_since_filters_old_lines(server: SquallServer) -> None:
    request_id = json.loads(server.cli("invoke", "greet", "--json", check=True).stdout)["requestId"]
    server.wait_logs("greet", request_id)
    time.sleep(1.2)
    recent = server.cli("logs", "greet", "--since", "1s", "--json", check=True).stdout
    assert request_id not in recent
    everything = server.cli("logs", "greet", "--since", "10m", "--json", check=True).stdout
    assert request_id in everything


def test_logs_follow_streams_new_lines(server: SquallServer) -> None:
    follower = subprocess.Popen([*SQUALL, "logs", "greet", "--follow", "--since", "1s", "--json"],
                                env=server.env(), stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        request_id = json.loads(server.cli("invoke", "greet", "--data", '{"name": "follow"}', "--json",
                                           check=True).stdout)["requestId"]
        assert follower.stdout is not None
        seen: list[dict] = []

        def got_report() -> bool:
            line = follower.stdout.readline()  # type: ignore[union-attr]
            if line:
                seen.append(json.loads(line))
            return any(r["request_id"] == request_id and r["message"].startswith("REPORT") for r in seen)
        wait_until(got_report, timeout=20)
        assert any(r["message"] == "printed follow" for r in seen)
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=10)
        if follower.stdout is not None:
            follower.stdout.close()
    assert follower.returncode == 0, "Ctrl-C ends --follow cleanly"
