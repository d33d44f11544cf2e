"""Unit: the direct lane writes a response as HTTP/1.1 bytes: the status line, the headers as
given (names lowercased), the server's own content-length, `connection: close` when the
connection ends, and no body for HEAD."""

from __future__ import annotations

from squall.http_event import HttpResponse
from squall.server.direct import encode_response


def test_a_response_is_framed_by_the_server() -> None:
    response = HttpResponse(201, [("Content-Type", "text/plain"), ("X-Count", "3")], b"made")
    assert encode_response(response, keep_alive=True, head_only=False) == (
        b"HTTP/1.1 201 Created\r\ncontent-type: text/plain\r\nx-count: 3\r\ncontent-length: 4\r\n\r\nmade")


def test_a_closing_connection_says_so() -> None:
    wire = encode_response(HttpResponse(200, [], b"x"), keep_alive=False, head_only=False)
    assert wire == b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\nconnection: close\r\n\r\nx"


def test_head_gets_the_length_but_no_body() -> None:
    wire = encode_response(HttpResponse(200, [], b"hello"), keep_alive=True, head_only=True)
    assert wire == b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


def test_a_status_without_a_standard_phrase_and_a_non_latin_value() -> None:
    wire = encode_response(HttpResponse(599, [("x-name", "café ☕")], b""), keep_alive=True, head_only=False)
    assert wire.startswith(b"HTTP/1.1 599 \r\n")
    assert "x-name: café ☕\r\n".encode() in wire
