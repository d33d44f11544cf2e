"""End to end: user routes served on the direct lane (squall/server/direct.py) speak HTTP/1.1
as the ASGI lane does, over raw sockets: keep-alive, pipelining mixed with platform requests
on one connection (answered in order), HTTP/1.0, HEAD, Expect: 100-continue, chunked bodies;
and a stage's routes still reach the stage."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests.support import SquallServer, serving, write_project

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: lane
        functions:
          hello:
            handler: app.hello
            triggers: [{http: "GET /hello/{who}"}, {http: "HEAD /hello/{who}"}]
          echo:
            handler: app.echo
            triggers: [{http: "POST /echo"}]
          work:
            handler: app.work
    """,
    "app.py": """
        import json

        def hello(event, context):
            return {"statusCode": 200, "body": "hello " + event["pathParameters"]["who"]}

        def work(event, context):
            return event

        def echo(event, context):
            return {"statusCode": 200, "body": json.dumps({"body": event.get("body"),
                                                           "length": event["headers"].get("content-length"),
                                                           "chunked": event["headers"].get("transfer-encoding")})}
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("lane"), PROJECT) as node:
        yield node


def connect(server: SquallServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    return sock


def read_responses(sock: socket.socket, count: int, no_body: tuple[int, ...] = ()) -> list[tuple[int, dict[str, str], bytes]]:
    """`count` whole responses (status, headers, body) in the order they arrive; those whose
    index is in `no_body` (answers to HEAD) end with their head."""
    data = b""
    responses: list[tuple[int, dict[str, str], bytes]] = []
    while len(responses) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError(f"the server closed after {len(responses)} responses: {data!r}")
            data += chunk
        head, data = data.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
        status = int(status_line.split(" ")[1])
        if status == 100:
            continue
        length = 0 if len(responses) in no_body else int(headers.get("content-length", "0"))
        while len(data) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise AssertionError("the server closed in the middle of a body")
            data += chunk
        responses.append((status, headers, data[:length]))
        data = data[length:]
    return responses


def get(path: str, *extra: str, version: str = "1.1") -> bytes:
    return "\r\n".join([f"GET {path} HTTP/{version}", "Host: 127.0.0.1", *extra, "", ""]).encode()


def test_keep_alive_serves_many_requests_on_one_connection(server: SquallServer) -> None:
    with connect(server) as sock:
        for who in ("a", "b", "c"):
            sock.sendall(get(f"/hello/{who}"))
            [(status, headers, body)] = read_responses(sock, 1)
            assert (status, body) == (200, f"hello {who}".encode())
            assert "connection" not in headers and headers["x-squall-version"] == "1"


def test_pipelined_requests_of_both_lanes_are_answered_in_order(server: SquallServer) -> None:
    token = f"Authorization: Bearer {server.token}"
    with connect(server) as sock:
        sock.sendall(get("/hello/one") + get("/_squall/api/functions", token) + get("/hello/two")
                     + get("/nowhere") + get("/hello/three"))
        answers = read_responses(sock, 5)
    assert [status for status, _, _ in answers] == [200, 200, 200, 404, 200]
    assert answers[0][2] == b"hello one" and answers[2][2] == b"hello two" and answers[4][2] == b"hello three"
    assert {f["name"] for f in json.loads(answers[1][2])["functions"]} == {"hello", "echo", "work"}


def test_http_1_0_gets_its_answer_and_the_connection_closes(server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(get("/hello/old", version="1.0"))
        [(status, headers, body)] = read_responses(sock, 1)
        assert (status, body, headers["connection"]) == (200, b"hello old", "close")
        assert sock.recv(10) == b""


def test_connection_close_is_honoured(server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(get("/hello/bye", "Connection: close"))
        [(status, headers, _)] = read_responses(sock, 1)
        assert (status, headers["connection"]) == (200, "close")
        assert sock.recv(10) == b""


def test_head_gets_the_headers_and_no_body(server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(get("/hello/x").replace(b"GET", b"HEAD", 1) + get("/hello/after"))
        (status, headers, body), (next_status, _, next_body) = read_responses(sock, 2, no_body=(0,))
    assert (status, body, headers["content-length"]) == (200, b"", str(len("hello x")))
    assert (next_status, next_body) == (200, b"hello after")  # it starts right after the head


def test_expect_100_continue_is_answered_before_the_body_is_sent(server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"howdy")
        [(status, _, body)] = read_responses(sock, 1)
        assert status == 200 and json.loads(body)["body"] == "howdy"


def test_a_chunked_body_reaches_the_function_whole(server: SquallServer) -> None:
    pieces = [b"abc", b"defgh", b"i" * 70_000]
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunks + get("/hello/next"))
        [(status, _, body), (next_status, _, next_body)] = read_responses(sock, 2)
    echoed = json.loads(body)
    assert status == 200 and echoed["body"] == "abcdefgh" + "i" * 70_000 and echoed["chunked"] == "chunked"
    assert (next_status, next_body) == (200, b"hello next")


def test_a_stage_route_still_reaches_the_stage(server: SquallServer, tmp_path: Path) -> None:
    project = write_project(tmp_path / "blue", {**PROJECT, "app.py": PROJECT["app.py"].replace('"hello "', '"blue "')})
    server.cli("deploy", str(project), "--stage", "blue", check=True)
    with connect(server) as sock:
        sock.sendall(get("/_squall/stages/blue/hello/x") + get("/hello/x"))
        [(status, _, body), (root_status, _, root_body)] = read_responses(sock, 2)
    assert (status, body) == (200, b"blue x")
    assert (root_status, root_body) == (200, b"hello x")


def test_an_idle_kept_alive_connection_serves_on_then_is_closed_after_the_keep_alive_timeout(
        server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(get("/hello/first"))
        [(status, _, _)] = read_responses(sock, 1)
        time.sleep(1.5)  # idle, within the keep-alive timeout (5 s)
        sock.sendall(get("/hello/second"))
        [(status, _, body)] = read_responses(sock, 1)
        assert (status, body) == (200, b"hello second")
        sock.settimeout(20)
        assert sock.recv(10) == b""  # closed by the server once idle for long enough


def submit(server: SquallServer, body: bytes, *extra: str, name: str = "work", token: str | None = None) -> bytes:
    token = server.token if token is None else token
    return "\r\n".join([f"POST /_squall/api/functions/{name}/events HTTP/1.1", "Host: 127.0.0.1",
                        f"Authorization: Bearer {token}", f"Content-Length: {len(body)}", *extra, "", ""]
                       ).encode() + body


def test_event_submissions_on_the_direct_lane_answer_as_the_platform_api_does(server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(submit(server, b'{"n": 1}', "Idempotency-Key: same")
                     + submit(server, b'{"n": 2}', "Idempotency-Key: same")
                     + submit(server, b"", name="work:live")
                     + submit(server, b'{"n": 3}', token="wrong")
                     + submit(server, b"{not json")
                     + submit(server, b"{}", name="nothing")
                     + submit(server, b"{}", "Idempotency-Key: " + "k" * 300))
        answers = read_responses(sock, 7)
    statuses = [status for status, _, _ in answers]
    bodies = [json.loads(body) for _, _, body in answers]
    assert statuses == [202, 202, 202, 401, 400, 404, 400]
    assert bodies[0] == bodies[1] and bodies[0]["function"] == "work"  # the repeat answers the first's id
    assert bodies[2]["function"] == "work:live" and bodies[2]["requestId"] != bodies[0]["requestId"]
    assert bodies[3]["error"]["type"] == "Unauthorized"
    assert bodies[4]["error"]["type"] == "BadInput" and "not valid JSON" in bodies[4]["error"]["message"]
    assert bodies[5]["error"]["type"] == "NotFound"
    assert "Idempotency-Key" in bodies[6]["error"]["message"]
    assert all(headers["content-type"] == "application/json" for _, headers, _ in answers)


def test_an_oversized_event_is_refused_before_it_is_read(server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(submit(server, b"")[:-2].replace(b"Content-Length: 0", b"Content-Length: 2000000") + b"\r\n")
        [(status, _, body)] = read_responses(sock, 1)
    assert status == 413 and json.loads(body)["error"]["type"] == "BodyTooLarge"


def test_a_submitted_event_runs(server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(submit(server, b'{"body": "ran"}'))
        [(status, _, body)] = read_responses(sock, 1)
    assert status == 202
    request_id = json.loads(body)["requestId"]
    with server.api() as api:  # a succeeded event is removed; a failed one would stay, dead
        deadline = time.monotonic() + 30
        while (answer := api.get(f"/_squall/api/events/{request_id}")).status_code == 200 \
                and answer.json()["status"] != "dead" and time.monotonic() < deadline:
            time.sleep(0.1)
    assert answer.status_code == 404


def test_a_percent_encoded_platform_path_is_still_the_platform_s(server: SquallServer) -> None:
    with connect(server) as sock:
        sock.sendall(get("/%5Fsquall/health") + get("/hello/%5Fsquall"))
        [(status, _, body), (route_status, _, route_body)] = read_responses(sock, 2)
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert (route_status, route_body) == (200, b"hello _squall")
