"""Unit tests of the CLI and the client that need no running server.

The network is replaced by `httpx.MockTransport`, handed in through the click
context (`obj=Settings(transport=...)`), never patched.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from squall.cli.project import NO_CHANGES, print_deploy_result
from squall.cli.logs import parse_since
from squall.cli.main import cli
from squall.cli.options import Settings
from squall.cli.output import format_ts, relative_time
from squall.client import ApiError, SquallClient
from squall.scaffold import project_name_for

NOW = 1_800_000_000.0
Handler = Callable[[httpx.Request], httpx.Response]


def run(args: list[str], transport: Handler | None = None, input: str | None = None) -> Result:
    """Run `squall ARGS` with the network replaced by `transport` (if given)."""
    settings = Settings(transport=httpx.MockTransport(transport) if transport else None)
    env = {"SQUALL_URL": None, "SQUALL_TOKEN": None}
    return CliRunner().invoke(cli, args, obj=settings, input=input, env=env)


def api_error(status: int, kind: str, message: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"type": kind, "message": message, **extra}})


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- invoke: where the event comes from ------------------------------------------------

def test_invalid_data_json_is_a_usage_error_naming_data() -> None:
    result = run(["invoke", "hello", "--data", "{not json"])
    assert result.exit_code == 2
    assert "--data" in result.stderr and "not valid JSON" in result.stderr
    assert "line 1 column 2" in result.stderr


def test_missing_event_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(["invoke", "hello", "--event", str(tmp_path / "missing.json")])
    assert result.exit_code == 2
    assert "--event" in result.stderr


def test_event_file_with_invalid_json_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text("[1, 2", encoding="utf-8")
    result = run(["invoke", "hello", "--event", str(tmp_path / "event.json")])
    assert result.exit_code == 2
    assert "--event" in result.stderr and "not valid JSON" in result.stderr


def test_data_and_event_together_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "event.json").write_text("{}", encoding="utf-8")
    result = run(["invoke", "hello", "--data", "{}", "--event", str(tmp_path / "event.json")])
    assert result.exit_code == 2
    assert "not both" in result.stderr


def invoke_api(seen: list[httpx.Request], ok: bool = True, payload: Any = None) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"requestId": "req-1", "function": "hello",
                                         "version": 3, "ok": ok, "payload": payload})
    return handle


def test_event_dash_reads_stdin_and_sends_it_unchanged() -> None:
    seen: list[httpx.Request] = []
    result = run(["invoke", "hello", "--event", "-"], invoke_api(seen, payload={"a": 1}),
                 input='{"name": "you"}')
    assert result.exit_code == 0, result.output
    assert seen[0].url.path == "/_squall/api/functions/hello/invoke"
    assert seen[0].content == b'{"name": "you"}'
    assert json.loads(result.stdout) == {"a": 1}


def test_invoke_without_event_sends_an_empty_object() -> None:
    seen: list[httpx.Request] = []
    result = run(["invoke", "hello"], invoke_api(seen, payload="hi"))
    assert result.exit_code == 0
    assert seen[0].content == b"{}"
    assert json.loads(result.stdout) == "hi"


def test_invoke_json_prints_the_whole_envelope() -> None:
    result = run(["invoke", "hello", "-d", "{}", "--json"], invoke_api([], payload=[1]))
    assert json.loads(result.stdout) == {"requestId": "req-1", "function": "hello",
                                         "version": 3, "ok": True, "payload": [1]}


def test_a_function_error_prints_the_error_object_and_exits_1() -> None:
    error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": [],
             "requestId": "req-1"}
    result = run(["invoke", "hello"], invoke_api([], ok=False, payload=error))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == error
    assert "error: ValueError: boom" in result.stderr


# -- logs --since ------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [("30s", 30), ("10m", 600), ("2h", 7200),
                                           ("1d", 86400), ("1.5h", 5400)])
def test_since_durations_count_back_from_now(text: str, seconds: int) -> None:
    assert parse_since(text, NOW) == NOW - seconds


def test_since_iso_times() -> None:
    expected = datetime(2026, 11, 23, 9, 40, 1, tzinfo=timezone.utc).timestamp()
    assert parse_since("2026-11-23T09:40:01Z", NOW) == expected
    assert parse_since("2026-11-23T09:40:01", NOW) == expected  # no offset: UTC
    assert parse_since("2026-11-23T10:40:01+01:00", NOW) == expected


def test_since_rejects_other_text() -> None:
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday", NOW)


def test_bad_since_is_a_usage_error() -> None:
    result = run(["logs", "hello", "--since", "10 parsecs"])
    assert result.exit_code == 2
    assert "--since" in result.stderr


# -- errors from the server ----------------------------------------------------------------

def test_unreachable_server_exits_1_saying_so() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    result = run(["--server", url, "ls"])
    assert result.exit_code == 1
    assert f"error: cannot reach squall at {url}: connection refused" in result.stderr
    assert "SQUALL_URL" in result.stderr


def test_unknown_function_exits_1_with_the_server_message() -> None:
    result = run(["invoke", "nope"], lambda r: api_error(404, "NotFound", "no function 'nope'"))
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: no function 'nope'"


@pytest.mark.parametrize("status, exit_code", [(400, 2), (401, 2), (403, 2), (409, 2),
                                               (413, 2), (422, 2), (404, 1), (429, 1),
                                               (500, 1), (503, 1)])
def test_api_error_exit_codes(status: int, exit_code: int) -> None:
    assert ApiError(status, "X", "m").exit_code == exit_code


def test_api_error_keeps_type_and_extra_fields() -> None:
    client = SquallClient("http://squall.test", "tok", transport=httpx.MockTransport(
        lambda r: api_error(422, "ManifestError", "squall.yaml:3: bad", file="squall.yaml",
                            line=3)))
    with client, pytest.raises(ApiError) as caught:
        client.list_functions()
    assert (caught.value.status, caught.value.type) == (422, "ManifestError")
    assert caught.value.details == {"file": "squall.yaml", "line": 3}
    assert str(caught.value) == "squall.yaml:3: bad"


def test_a_non_json_error_page_still_gives_a_message() -> None:
    client = SquallClient("http://squall.test", transport=httpx.MockTransport(
        lambda r: httpx.Response(502, text="<html>Bad Gateway</html>")))
    with client, pytest.raises(ApiError, match="HTTP 502 Bad Gateway") as caught:
        client.health()
    assert caught.value.exit_code == 1


def test_token_is_sent_and_missing_token_is_explained() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return api_error(401, "Unauthorized", "missing or wrong token")
    assert run(["--token", "s3cret", "ls"], handle).exit_code == 2
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    result = run(["ls"], handle)
    assert "authorization" not in seen[1].headers
    assert "set SQUALL_TOKEN" in result.stderr


# -- ls, logs, deploy output ------------------------------------------------------------------

FUNCTION = {"name": "hello", "project": "demo", "version": 2, "code_hash": "ab12",
            "handler": "app.handler", "runtime": "python3.11", "memory": 128, "timeout": 30,
            "routes": ["GET /hello", "POST /hello"], "updated_at": NOW - 300}


def test_ls_prints_a_table_and_json() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/_squall/api/functions"
        return httpx.Response(200, json={"functions": [FUNCTION]})
    table = run(["ls"], handle)
    assert table.exit_code == 0
    for text in ("NAME", "hello", "python3.11", "128 MB", "30s", "GET /hello", "POST /hello"):
        assert text in table.stdout
    assert json.loads(run(["ls", "--json"], handle).stdout) == [FUNCTION]


LINES = [
    {"id": 1, "ts": 1_795_426_801.123, "level": "SYSTEM", "message": "START", "request_id": "r1",
     "version": 2},
    {"id": 2, "ts": 1_795_426_801.5, "level": "INFO", "message": "hi", "request_id": "r1",
     "version": 2},
]


def test_logs_prints_one_line_per_log_line() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"logs": LINES})
    result = run(["logs", "hello", "--request-id", "r1"], handle)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "2026-11-23T09:40:01.123Z  r1  SYSTEM  START",
        "2026-11-23T09:40:01.500Z  r1  INFO    hi",
    ]
    assert seen[0].url.params["request_id"] == "r1"
    json_lines = run(["logs", "hello", "--json"], handle).stdout.splitlines()
    assert [json.loads(line) for line in json_lines] == LINES


def test_follow_polls_after_the_last_id_and_ctrl_c_exits_0() -> None:
    afters: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        afters.append(request.url.params["after"])
        if len(afters) == 3:
            raise KeyboardInterrupt
        return httpx.Response(200, json={"logs": LINES if len(afters) == 1 else []})
    result = run(["logs", "hello", "-f", "--json"], handle)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2
    assert afters == ["0", "2", "2"]


def test_follow_logs_yields_new_lines_as_they_come() -> None:
    pages = [LINES[:1], [], LINES[1:]]

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"logs": pages.pop(0) if pages else []})
    client = SquallClient("http://squall.test", transport=httpx.MockTransport(handle))
    with client:
        lines = list(islice(client.follow_logs("hello", poll_interval=0), 2))
    assert [line["id"] for line in lines] == [1, 2]


def test_deploy_output(capsys: pytest.CaptureFixture[str]) -> None:
    print_deploy_result({"project": "demo", "changed": False, "removed": [], "functions": []})
    assert capsys.readouterr().out.strip() == NO_CHANGES
    print_deploy_result({"project": "demo", "changed": True, "removed": ["old"], "functions": [
        {"name": "hello", "version": 3, "code_hash": "x", "changed": True,
         "routes": ["GET /hello"]}]})
    out = capsys.readouterr().out
    assert "Deployed project demo" in out and "GET /hello" in out and "Removed: old" in out


def test_time_formats() -> None:
    assert format_ts(1_795_426_801.123) == "2026-11-23T09:40:01.123Z"
    assert relative_time(NOW - 0.2, NOW) == "just now"
    assert relative_time(NOW - 42, NOW) == "42s ago"
    assert relative_time(NOW - 7300, NOW) == "2h ago"
    assert relative_time(NOW + 120, NOW) == "in 2m"


# -- init ------------------------------------------------------------------------------------

PROJECT_FILES = {"squall.yaml", "app.py", "test_app.py", "requirements.txt", ".gitignore"}


def test_init_writes_a_project_and_says_what_next(tmp_path: Path) -> None:
    target = tmp_path / "My_App"
    result = run(["init", str(target)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in target.iterdir()} == PROJECT_FILES
    assert "name: my-app" in (target / "squall.yaml").read_text()
    assert f"squall dev {target}" in result.stdout
    assert "curl" in result.stdout


def test_init_refuses_a_non_empty_directory_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    result = run(["init", str(tmp_path), "--name", "demo"])
    assert result.exit_code == 2
    assert "not empty" in result.stderr and "--force" in result.stderr
    assert not (tmp_path / "squall.yaml").exists()
    assert run(["init", str(tmp_path), "--name", "demo", "--force"]).exit_code == 0
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert "name: demo" in (tmp_path / "squall.yaml").read_text()


def test_init_rejects_an_invalid_name(tmp_path: Path) -> None:
    result = run(["init", str(tmp_path / "p"), "--name", "Bad Name!"])
    assert result.exit_code == 2
    assert "invalid project name" in result.stderr


def test_project_names_made_from_directories() -> None:
    assert project_name_for(Path("/x/My Cool_App")) == "my-cool-app"
    assert project_name_for(Path("/x/42")) == "hello"
