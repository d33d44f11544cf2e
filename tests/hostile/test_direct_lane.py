"""End to end: a function cannot split the connection its response goes out on. The direct
lane frames every response itself: a function's Content-Length, Transfer-Encoding and
Connection headers are dropped, and a header value carrying a line break is a 502, so a
forged second response in a body or a header never reaches the client as one, and the
next request on the same connection gets its own answer."""

from __future__ import annotations

import socket
from typing import Iterator

import pytest

from tests.hostile.bystander import bystander
from tests.support import SquallServer, serving
from tests.test_e2e_direct_lane import get, read_responses

pytestmark = [pytest.mark.e2e, pytest.mark.serial]

FORGED = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged"
PROJECT = {
    "squall.yaml": """
        name: framing
        functions:
          steady:
            handler: app.steady
            triggers: [{http: "GET /steady"}]
          splitter:
            handler: app.splitter
            triggers: [{http: "GET /split"}, {http: "GET /inject"}]
    """,
    "app.py": f"""
        FORGED = {FORGED!r}

        def steady(event, context):
            return {{"statusCode": 200, "body": "steady"}}

        def splitter(event, context):
            if event["rawPath"] == "/inject":
                return {{"statusCode": 200, "headers": {{"x-a": "1\\r\\n\\r\\n" + FORGED}}, "body": "x"}}
            return {{"statusCode": 200, "body": FORGED,
                     "headers": {{"Content-Length": "0", "Transfer-Encoding": "chunked", "Connection": "close",
                                  "Keep-Alive": "timeout=1", "Upgrade": "h2c"}}}}
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("framing"), PROJECT) as node:
        yield node


def test_a_function_s_framing_headers_cannot_split_the_connection(server: SquallServer) -> None:
    with bystander(server.url, "/steady"), socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(get("/split") + get("/steady"))
        (status, headers, body), (next_status, _, next_body) = read_responses(sock, 2)
    assert status == 200 and body == FORGED.encode()
    assert headers["content-length"] == str(len(FORGED))
    assert not {"transfer-encoding", "connection", "keep-alive", "upgrade"} & set(headers)
    assert (next_status, next_body) == (200, b"steady")


def test_a_line_break_in_a_header_value_is_a_502_not_a_second_response(server: SquallServer) -> None:
    with bystander(server.url, "/steady"), socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(get("/inject") + get("/steady"))
        (status, headers, _), (next_status, _, next_body) = read_responses(sock, 2)
    assert status == 502 and "x-a" not in headers
    assert (next_status, next_body) == (200, b"steady")
