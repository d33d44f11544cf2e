"""End to end: every door of a real `squall server` refuses an oversized or unauthenticated body
before reading it, bounds request heads, closes slow and idle-forever connections, caps the
connections of one client, and refuses bad input with a 4xx. Each attack runs while a bystander
function keeps answering (tests/hostile/bystander.py).

The server starts with the open-file soft limit at 1024 (a common default, the hard limit
left as it is), so the half-open test shows the server raises it; the head and body timeouts
are set short (SQUALL_HEADER_TIMEOUT, SQUALL_BODY_IDLE_TIMEOUT) so those tests run fast."""

from __future__ import annotations

import base64
import contextlib
import json
import resource
import socket
import time
from pathlib import Path
from typing import Iterator

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.hostile.bystander import bystander
from tests.support import PeakMemory, SquallServer, serving, wait_until, write_project

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # measures a server under attack: runs alone

PROJECT = {
    "squall.yaml": """
        name: doors
        functions:
          steady:
            handler: app.steady
            triggers: [{http: "GET /steady"}]
          echo:
            handler: app.echo
            env: {DOOR_KEY: door-key-value}
            triggers:
              - http: "POST /echo"
              - http: "POST /keyed"
                auth: {type: api_key, secret_env: DOOR_KEY}
          leak:
            handler: app.leak
    """,
    "app.py": """
        def steady(event, context):
            return {"statusCode": 200, "body": "steady"}

        def echo(event, context):
            return {"statusCode": 200, "body": str(len(event.get("body") or ""))}

        def leak(event, context):  # a function whose credential gets out
            import os
            return [os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    """,
}
HEADER_TIMEOUT = 2
MB = 1024 * 1024
HUGE = 1_500_000_000
"""The Content-Length of the attacks: 1.5 GB, of which at most ATTACK_SEND is sent."""
ATTACK_SEND = 300 * MB


class LowFileLimitServer(SquallServer):
    """A server started with the open-file soft limit at 1024."""

    def start(self) -> SquallServer:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        try:
            return super().start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    root = tmp_path_factory.mktemp("doors")
    project = write_project(root / "project", PROJECT)
    node = LowFileLimitServer(root / "data", environ={"SQUALL_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
                                                      "SQUALL_BODY_IDLE_TIMEOUT": str(HEADER_TIMEOUT)})
    (root / "data").mkdir()
    node.start()
    node.cli("deploy", str(project), check=True)
    yield node
    node.stop()


def peak_memory(server: SquallServer) -> PeakMemory:
    """The server process's peak resident memory while the block runs."""
    assert server.process is not None
    return PeakMemory(server.process.pid)


def connect(server: SquallServer, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    return sock


def head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_answer(sock: socket.socket, timeout: float = 20) -> bytes:
    """What the server wrote before closing or going quiet (b"" if it closed without a word)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data and data.split(b"\r\n\r\n", 1)[0].lower().find(b"content-length") >= 0:
                length = int(data.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                if len(data.split(b"\r\n\r\n", 1)[1]) >= length:
                    break
    return data


def status_of(answer: bytes) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def send_until_answered(server: SquallServer, request_head: bytes, limit: int = ATTACK_SEND) -> tuple[bytes, int]:
    """Send `request_head` then body bytes (up to `limit`) until the server answers or closes;
    returns the answer and how many body bytes went out."""
    sock = connect(server)
    chunk = b"x" * MB
    sent = 0
    try:
        sock.sendall(request_head)
        sock.setblocking(False)
        while sent < limit:
            try:
                if sock.recv(1, socket.MSG_PEEK):
                    break
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                break
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                time.sleep(0.001)
            except (ConnectionResetError, BrokenPipeError):
                break
        sock.setblocking(True)
        return read_answer(sock), sent
    finally:
        sock.close()


def lambda_client(server: SquallServer, key: str = "admin") -> object:
    return boto3.client("lambda", endpoint_url=f"{server.url}/_squall/aws/lambda", region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=server.token,
                        config=Config(retries={"max_attempts": 0}))


def dynamodb_client(server: SquallServer, key: str = "admin") -> object:
    return boto3.client("dynamodb", endpoint_url=f"{server.url}/_squall/aws/dynamodb", region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=server.token,
                        config=Config(retries={"max_attempts": 0}))


# ---------------------------------------------------------------- item 5: bodies


BODY_DOORS = [
    ("lambda unsigned", "/_squall/aws/lambda/2015-03-31/functions/echo/invocations", {}, 403),
    ("lambda unknown key", "/_squall/aws/lambda/2015-03-31/functions/echo/invocations",
     {"authorization": "AWS4-HMAC-SHA256 Credential=stranger/20260101/us-east-1/lambda/aws4_request, "
                       "SignedHeaders=host;x-amz-date, Signature=00", "x-amz-date": "20260101T000000Z"}, 403),
    ("dynamodb unsigned", "/_squall/aws/dynamodb/", {"x-amz-target": "DynamoDB_20120810.ListTables"}, 400),
    ("deploy without token", "/_squall/api/deploy", {}, 401),
    ("invoke without token", "/_squall/api/functions/echo/invoke", {}, 401),
    ("event without token", "/_squall/api/functions/echo/events", {}, 401),
    ("sdk without credential", "/_squall/sdk/topics/t/publish", {}, 401),
    ("tables sdk without credential", "/_squall/sdk/tables/ListTables", {}, 401),
    ("route with a wrong api key", "/keyed", {"x-api-key": "wrong"}, 403),
]


@pytest.mark.parametrize(("door", "path", "headers", "status"), BODY_DOORS, ids=[d[0] for d in BODY_DOORS])
def test_a_stranger_s_huge_body_is_refused_before_it_is_read(server: SquallServer, door: str, path: str,
                                                             headers: dict[str, str], status: int) -> None:
    request = head("POST", path, {**headers, "content-length": str(HUGE)})
    with bystander(server.url, "/steady"), peak_memory(server) as memory:
        answer, sent = send_until_answered(server, request)
    assert status_of(answer) == status, f"{door}: {answer[:300]!r}"
    assert sent < ATTACK_SEND, f"{door}: the server read all {sent} bytes sent before answering"
    assert memory.growth_mb < 100, f"{door}: the server grew by {memory.growth_mb:.0f} MB"


def test_strangers_cannot_make_the_node_hold_many_unverified_bodies(server: SquallServer) -> None:
    """Requests signed-looking enough to be read (the well-known key id `admin`, today's date, a
    wrong signature, no payload hash header), each declaring 16 MB: past the node's 64 MB budget
    for bodies whose signature is not yet checked, the rest are throttled without being read."""
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    request = head("POST", "/_squall/aws/dynamodb/", {
        "authorization": f"AWS4-HMAC-SHA256 Credential=admin/{now[:8]}/us-east-1/dynamodb/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=00",
        "x-amz-date": now, "x-amz-target": "DynamoDB_20120810.ListTables", "content-length": str(16 * MB)})
    sockets = []
    try:
        with bystander(server.url, "/steady"), peak_memory(server) as memory:
            for _ in range(10):
                sockets.append(connect(server))
                sockets[-1].sendall(request)
            answers = [read_answer(sock, timeout=HEADER_TIMEOUT * 5) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    throttled = [answer for answer in answers if b"ThrottlingException" in answer]
    assert len(throttled) >= 6, answers
    assert status_of(throttled[0]) == 400
    assert memory.growth_mb < 100


def trickle_until_answered(sock: socket.socket, *, interval: float, tries: int) -> bytes:
    """Send a byte every `interval` seconds until the server answers (what it said) or
    closes the connection (b""), at most `tries` times."""
    sock.settimeout(interval)
    for _ in range(tries):
        try:
            sock.sendall(b"x")
            return sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    return b""


def forged_aws_head(path: str, service: str, length: int | None, **headers: str) -> bytes:
    """A request head anyone can write: the public key id `admin`, today's date, a wrong
    signature and no payload hash, declaring `length` bytes (chunked when None)."""
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    size = {"transfer-encoding": "chunked"} if length is None else {"content-length": str(length)}
    return head("POST", path, {
        "authorization": f"AWS4-HMAC-SHA256 Credential=admin/{now[:8]}/us-east-1/{service}/aws4_request, "
                         "SignedHeaders=host;x-amz-date, Signature=00",
        "x-amz-date": now, **headers, **size})


LAMBDA_ECHO = "/_squall/aws/lambda/2015-03-31/functions/echo/invocations"
DYNAMODB = "/_squall/aws/dynamodb/"


def test_a_stranger_s_held_unverified_bodies_do_not_starve_boto3_callers(server: SquallServer) -> None:
    """One stranger opens Lambda requests declaring 64 MB in all and four chunked DynamoDB
    requests, sends none of their bodies and holds them: boto3 callers elsewhere still invoke
    with a 1 MB payload and put a 300 KB item (each counted against the unverified budget, of
    which the stranger may hold only a share)."""
    lambda_head = forged_aws_head(LAMBDA_ECHO, "lambda", 6 * MB)
    sockets: list[socket.socket] = []
    try:
        with bystander(server.url, "/steady"):
            for request in [lambda_head] * 10 + [forged_aws_head(LAMBDA_ECHO, "lambda", 2 * MB)] * 2:
                sockets.append(connect(server, source="127.0.0.2"))
                sockets[-1].sendall(request)
            for _ in range(4):
                sockets.append(connect(server, source="127.0.0.2"))
                sockets[-1].sendall(forged_aws_head(DYNAMODB, "dynamodb", None,
                                                    **{"x-amz-target": "DynamoDB_20120810.ListTables"}))
            last = connect(server, source="127.0.0.2")  # past the budget either way: answered at once
            sockets.append(last)
            last.sendall(lambda_head)
            assert status_of(read_answer(last)) == 429
            invoked = lambda_client(server).invoke(  # type: ignore[attr-defined]
                FunctionName="echo", Payload=b'{"body": "' + b"x" * MB + b'"}')
            assert invoked["StatusCode"] == 200 and json.loads(invoked["Payload"].read())["body"] == str(MB)
            with pytest.raises(ClientError) as caught:
                dynamodb_client(server).put_item(  # type: ignore[attr-defined]
                    TableName="missing", Item={"k": {"S": "x" * (300 * 1024)}})
            assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException", caught.value.response
    finally:
        for sock in sockets:
            sock.close()


def test_an_unverified_body_that_does_not_keep_arriving_is_cut_off(server: SquallServer) -> None:
    """A forged-signature Lambda request declaring 1 MB, whose body trickles in a byte at a
    time (each within the stall timeout): the door stops waiting and answers 408, freeing what
    it held of the unverified budget, instead of holding it as long as the client likes."""
    sock = connect(server, source="127.0.0.3")
    answer = b""
    try:
        with bystander(server.url, "/steady"):
            sock.sendall(forged_aws_head(LAMBDA_ECHO, "lambda", MB))
            answer = trickle_until_answered(sock, interval=0.5, tries=120)  # up to a minute
    finally:
        sock.close()
    assert status_of(answer) == 408 and b"RequestTimeoutException" in answer, answer[:300]


SIZED_DOORS = [
    ("deploy over 256 MB", "/_squall/api/deploy", 256 * MB + 1),
    ("invoke over 6 MB", "/_squall/api/functions/echo/invoke", 6 * MB + 1),
    ("event over 1 MB", "/_squall/api/functions/echo/events", MB + 1),
    ("admin tables over 16 MB", "/_squall/api/tables/ListTables", 16 * MB + 1),
    ("route over 6 MB", "/echo", 6 * MB + 1),
]


@pytest.mark.parametrize(("door", "path", "length"), SIZED_DOORS, ids=[d[0] for d in SIZED_DOORS])
def test_an_admin_s_declared_oversize_body_is_refused_unread(server: SquallServer, door: str, path: str,
                                                             length: int) -> None:
    """The head alone declares the size: a door that waited for the body would never answer."""
    request = head("POST", path, {"authorization": f"Bearer {server.token}", "content-length": str(length)})
    with bystander(server.url, "/steady"):
        sock = connect(server)
        try:
            sock.sendall(request)
            answer = read_answer(sock, timeout=HEADER_TIMEOUT * 5)
        finally:
            sock.close()
    assert status_of(answer) == 413, f"{door}: {answer[:300]!r}"


def chunked(total: int, piece: int = MB) -> Iterator[bytes]:
    for _ in range(total // piece):
        yield b"x" * piece


@pytest.mark.parametrize(("door", "path", "limit"), [
    ("invoke", "/_squall/api/functions/echo/invoke", 6 * MB),
    ("event", "/_squall/api/functions/echo/events", MB),
    ("route", "/echo", 6 * MB),
    ("admin tables", "/_squall/api/tables/ListTables", 16 * MB),
], ids=["invoke", "event", "route", "admin tables"])
def test_a_chunked_body_is_cut_off_at_the_door_s_limit(server: SquallServer, door: str, path: str,
                                                       limit: int) -> None:
    with bystander(server.url, "/steady"), peak_memory(server) as memory:
        try:
            response = httpx.post(server.url + path, content=chunked(200 * MB), timeout=30,
                                  headers={"authorization": f"Bearer {server.token}"})
            status: int | str = response.status_code
        except httpx.TransportError as exc:  # closed while we were still sending: also a refusal
            status = type(exc).__name__
    assert status in (413, "WriteError", "RemoteProtocolError", "ReadError"), f"{door}: {status}"
    assert memory.growth_mb < limit / MB + 60, f"{door}: grew {memory.growth_mb:.0f} MB"


def test_boto3_still_invokes_and_a_signed_oversized_lambda_payload_is_413(server: SquallServer) -> None:
    client = lambda_client(server)
    assert client.invoke(FunctionName="steady", Payload=b"{}")["StatusCode"] == 200  # type: ignore[attr-defined]
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="echo", Payload=b'"' + b"x" * (6 * MB) + b'"')  # type: ignore[attr-defined]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_boto3_still_reaches_dynamodb_and_an_oversized_request_is_refused(server: SquallServer) -> None:
    client = dynamodb_client(server)
    assert "TableNames" in client.list_tables()  # type: ignore[attr-defined]
    with pytest.raises(ClientError) as caught:
        client.put_item(TableName="t", Item={"k": {"S": "x" * (17 * MB)}})  # type: ignore[attr-defined]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "larger than" in caught.value.response["Error"]["Message"]


# ---------------------------------------------------------------- item 11: heads and connections


@pytest.mark.parametrize("size", [1 * MB, 64 * MB], ids=["1MB", "64MB"])
def test_a_huge_header_gets_431_and_never_reaches_the_function(server: SquallServer, size: int) -> None:
    request = head("POST", "/echo", {"content-length": "2"})[:-2]
    with bystander(server.url, "/steady"), peak_memory(server) as memory:
        sock = connect(server)
        try:
            sock.settimeout(20)
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                sock.sendall(request + b"x-big: " + b"a" * size + b"\r\n\r\n{}")
            answer = read_answer(sock)
        finally:
            sock.close()
    assert status_of(answer) == 431, answer[:300]
    assert memory.growth_mb < 50


def test_too_many_headers_get_431(server: SquallServer) -> None:
    with bystander(server.url, "/steady"):
        response = httpx.get(server.url + "/steady", headers={f"x-h{i}": "v" for i in range(200)}, timeout=20)
    assert response.status_code == 431


def test_headers_within_the_limits_still_pass(server: SquallServer) -> None:
    response = httpx.post(server.url + "/echo", content=b"{}", timeout=20,
                          headers={"x-big": "a" * 32000, **{f"x-h{i}": "v" for i in range(50)}})
    assert response.status_code == 200 and response.text == "2"


def test_a_slowloris_head_is_closed_with_408(server: SquallServer) -> None:
    with bystander(server.url, "/steady"):
        sock = connect(server)
        try:
            sock.sendall(b"GET /steady HTTP/1.1\r\nHost: x\r\n")
            answer = trickle_until_answered(sock, interval=0.3, tries=HEADER_TIMEOUT * 30)  # up to 9 timeouts
        finally:
            sock.close()
    assert status_of(answer) == 408, answer[:300]


def test_a_stalled_body_is_closed(server: SquallServer) -> None:
    with bystander(server.url, "/steady"):
        sock = connect(server)
        try:
            sock.sendall(head("POST", "/echo", {"content-length": "100"}) + b"{")
            sock.settimeout(HEADER_TIMEOUT * 10)
            try:
                closed = sock.recv(65536) == b""
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                closed = False
        finally:
            sock.close()
    assert closed, "a body stalled for 10 times the idle timeout still held its connection"


def test_half_open_connections_of_one_client_do_not_lock_others_out(server: SquallServer) -> None:
    """1100 idle connections from 127.0.0.2: over the 1024 open files the server started with."""
    sockets: list[socket.socket] = []
    try:
        with bystander(server.url, "/steady"):
            for _ in range(1100):
                try:
                    sockets.append(connect(server, source="127.0.0.2"))
                except OSError:
                    break
            time.sleep(1)
            refused = sum(1 for sock in sockets[-50:] if status_of(read_answer(sock, timeout=2)) == 503)
            assert httpx.get(server.url + "/steady", timeout=10).status_code == 200
    finally:
        for sock in sockets:
            sock.close()
    assert len(sockets) == 1100
    assert refused == 50, f"only {refused} of the last 50 connections past the per-client cap got 503"


# ---------------------------------------------------------------- loopback's share, route bodies

TIGHT = {"SQUALL_MAX_CONNECTIONS": "300", "SQUALL_MAX_CONNECTIONS_PER_CLIENT": "50",
         "SQUALL_MAX_CONNECTIONS_LOOPBACK": "100", "SQUALL_HEADER_TIMEOUT": "120",
         "SQUALL_ROUTE_BODY_BUDGET_MB": "64"}
"""Small caps, so that the attacks below fill them with few sockets: 300 connections, 100 of
them for loopback, 50 per other address; 64 MB of route bodies at once, 16 MB per client."""


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("tight"), PROJECT, environ=TIGHT) as node:
        yield node


def hold(server: SquallServer, count: int, source: str) -> list[socket.socket]:
    """`count` idle connections from `source` (fewer if the machine refuses more)."""
    sockets = []
    for _ in range(count):
        try:
            sockets.append(connect(server, source=source))
        except OSError:
            break
    return sockets


def refused(sockets: list[socket.socket]) -> int:
    """How many of `sockets` the server answered 503 (it answers a refused one at once)."""
    return sum(1 for sock in sockets if status_of(read_answer(sock, timeout=2)) == 503)


def from_address(source: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=10)


def test_strangers_filling_their_connections_leave_loopback_its_share(tight: SquallServer) -> None:
    """Seven addresses open 50 connections each, 350 in all, over the node's 300: they get the
    200 that loopback does not keep, and the bystander (on loopback, as the node's own
    instances) keeps being served."""
    sockets: list[socket.socket] = []
    try:
        with bystander(tight.url, "/steady"):
            for address in range(2, 9):
                sockets += hold(tight, 50, f"127.0.0.{address}")
            assert len(sockets) == 350
            assert refused(sockets[200:]) == 150
    finally:
        for sock in sockets:
            sock.close()


def test_loopback_filling_its_connections_leaves_strangers_their_share(tight: SquallServer) -> None:
    """Instances (on loopback) open 320 connections, over the node's 300: loopback gets its 100
    and a client elsewhere is still served. (The bystander would be on loopback too, which this
    attack fills on purpose: the client from 127.0.0.2 plays its part.)"""
    sockets = hold(tight, 320, "127.0.0.1")
    try:
        assert len(sockets) == 320
        assert refused(sockets[100:]) == 220
        with from_address("127.0.0.2") as client:
            for _ in range(5):
                assert client.get(tight.url + "/steady").status_code == 200
    finally:
        for sock in sockets:
            sock.close()
    with from_address("127.0.0.1") as client:
        assert client.get(tight.url + "/steady").status_code == 200


def test_slow_route_bodies_of_many_clients_stay_within_the_node_s_budget(tight: SquallServer) -> None:
    """Eight clients post eight 6 MB bodies each to an open route and hold the last byte back:
    384 MB sent. The node reads at most its 64 MB budget of route bodies at once (16 MB per
    client), answers the rest 503 with Retry-After, and its memory stays bounded."""
    request = head("POST", "/echo", {"content-length": str(6 * MB)})
    body = b"x" * (6 * MB - 1)
    sockets: list[socket.socket] = []
    assert tight.process is not None
    try:
        with bystander(tight.url, "/steady"), PeakMemory(tight.process.pid) as memory:
            for address in range(2, 10):
                for _ in range(8):
                    sock = connect(tight, source=f"127.0.0.{address}")
                    sockets.append(sock)
                    sock.sendall(request)
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        sock.sendall(body)
            answers = [read_answer(sock, timeout=2) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    busy = [answer for answer in answers if status_of(answer) == 503]
    assert len(busy) >= 64 - 10, [answer[:100] for answer in answers if status_of(answer) != 503]
    assert b"retry-after: 1" in busy[0].lower()
    assert memory.growth_mb < 64 + 60, f"the server grew by {memory.growth_mb:.0f} MB"
    wait_until(lambda: httpx.post(tight.url + "/echo", content=b"x" * MB, timeout=20).text == str(MB))


# ---------------------------------------------------------------- item 14: bad input is a 4xx


def test_a_non_ascii_access_key_is_a_4xx_on_the_aws_doors(server: SquallServer) -> None:
    now = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()).encode()
    authorization = (f"AWS4-HMAC-SHA256 Credential=adm\u00efn/{now[:8].decode()}/us-east-1/lambda/aws4_request, "
                     "SignedHeaders=host;x-amz-date, Signature=00").encode("latin-1")
    for path in ("/_squall/aws/lambda/2015-03-31/functions/echo/invocations", "/_squall/aws/dynamodb/"):
        response = httpx.post(server.url + path, content=b"{}", timeout=10,
                              headers=[(b"authorization", authorization), (b"x-amz-date", now)])
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert "Credential" in response.text or "security token" in response.text


def test_a_leaked_function_key_pair_without_its_session_token_is_refused(server: SquallServer) -> None:
    key, secret, token = json.loads(server.cli("invoke", "leak", "--json", check=True).stdout)["payload"]
    for stolen in ({}, {"aws_session_token": "guessed"}, {"aws_session_token": token[:-8] + "AAAAAAA="}):
        client = boto3.client("dynamodb", endpoint_url=f"{server.url}/_squall/aws/dynamodb", region_name="us-east-1",
                              aws_access_key_id=key, aws_secret_access_key=secret,
                              config=Config(retries={"max_attempts": 0}), **stolen)
        with pytest.raises(ClientError) as refused:
            client.list_tables()
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_huge_or_malformed_client_context_is_refused_before_the_function_runs(server: SquallServer) -> None:
    client = lambda_client(server)
    for context in ("A" * 10_000, base64.b64encode(b"{" * 2000).decode(), "%%%"):
        with pytest.raises(ClientError) as refused:
            client.invoke(FunctionName="echo", Payload=b"{}", ClientContext=context)  # type: ignore[attr-defined]
        assert refused.value.response["Error"]["Code"] == "InvalidRequestContentException"


# ---------------------------------------------------------------- item 15: route auth and platform variables


def test_route_auth_naming_a_platform_variable_is_refused_at_deploy(server: SquallServer, tmp_path: Path) -> None:
    project = write_project(tmp_path / "open", {
        "squall.yaml": """
            name: open
            functions:
              door:
                handler: app.h
                triggers:
                  - http: "GET /region-keyed"
                    auth: {type: api_key, secret_env: AWS_REGION}
        """,
        "app.py": "def h(event, context):\n    return {'statusCode': 200, 'body': 'opened'}\n",
    })
    result = server.cli("deploy", str(project))
    assert result.returncode != 0
    assert "squall.yaml:7" in result.stderr and "functions.door.triggers[0].auth.secret_env" in result.stderr
    assert "AWS_REGION" in result.stderr and "platform" in result.stderr
    response = httpx.get(server.url + "/region-keyed", headers={"x-api-key": "us-east-1"}, timeout=10)
    assert response.status_code == 404
