"""End to end: HTTP routes on a real server, Lambda's HTTP API 2.0 contract, errors, limits, auth."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Iterator

import httpx
import pytest

from tests.support import SquallServer, serving

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: probe
        functions:
          echo:
            handler: app.echo
            memory: 128
            env: {STATUS_KEY: "k-123", GH_SECRET: "s3cret"}
            triggers:
              - http: "ANY /echo/{proxy+}"
              - http: "GET /items/{id}"
              - http: "GET /status"
                auth: {type: api_key, header: X-Api-Key, secret_env: STATUS_KEY}
              - http: "POST /github"
                auth: {type: hmac, preset: github, secret_env: GH_SECRET}
          respond:
            handler: app.respond
            triggers: [{http: "POST /respond"}]
          fail:
            handler: app.fail
            triggers: [{http: "GET /fail"}]
          slow:
            handler: app.slow
            timeout: 1
            triggers: [{http: "GET /slow"}]
    """,
    "app.py": """
        import json, os, time

        def host_pid():  # os.getpid() is 1: each instance is pid 1 of its own PID namespace
            for line in open("/proc/self/cgroup"):
                _, controllers, path = line.strip().split(":", 2)
                if "pids" in controllers.split(","):
                    return int(path.rsplit("/", 1)[-1])

        def echo(event, context):
            return {"event": event, "pid": host_pid(), "ppid": os.getppid(),
                    "context": {"aws_request_id": context.aws_request_id,
                                "function_name": context.function_name,
                                "function_version": context.function_version,
                                "invoked_function_arn": context.invoked_function_arn,
                                "memory_limit_in_mb": context.memory_limit_in_mb,
                                "log_group_name": context.log_group_name,
                                "log_stream_name": context.log_stream_name,
                                "remaining": context.get_remaining_time_in_millis()}}

        def respond(event, context):
            return json.loads(event["body"])

        def fail(event, context):
            print("about to fail")
            raise ValueError("bad thing happened")

        def slow(event, context):
            print("going to sleep")
            time.sleep(30)
    """,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("http"), PROJECT) as node:
        yield node


@pytest.fixture
def http(server: SquallServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_get_event_is_http_api_v2(http: httpx.Client) -> None:
    response = http.get("/items/4%202?a=1&a=2&b=x%20y", headers=[("X-Multi", "one"), ("X-Multi", "two"),
                                                               ("Cookie", "c1=v1; c2=v2")])
    assert response.status_code == 200
    event = response.json()["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/4%202"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["pathParameters"] == {"id": "4 2"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["headers"]["x-multi"] == "one,two"
    assert "cookie" not in event["headers"]
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["http"] == {"method": "GET", "path": "/items/4 2", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": response.request.headers["user-agent"]}
    assert context["routeKey"] == "GET /items/{id}" and context["stage"] == "$default"
    assert context["requestId"] == response.headers["apigw-requestid"]
    assert {"accountId", "apiId", "domainName", "time", "timeEpoch"} <= set(context)


def test_context_has_lambda_attributes(http: httpx.Client) -> None:
    body = http.get("/items/1").json()
    context = body["context"]
    assert context["function_name"] == "echo"
    assert context["function_version"] == "$LATEST"  # an unqualified call, as API Gateway makes one
    assert context["memory_limit_in_mb"] == "128"
    assert context["invoked_function_arn"].endswith(":function:echo")
    assert context["log_group_name"] == "/aws/lambda/echo"
    assert context["log_stream_name"]
    assert 0 < context["remaining"] <= 30_000
    assert context["aws_request_id"] == body["event"]["requestContext"]["requestId"]


def test_binary_body_is_base64_and_greedy_path(http: httpx.Client) -> None:
    payload = bytes(range(256))
    response = http.post("/echo/upload/file.bin", content=payload,
                         headers={"content-type": "application/octet-stream"})
    event = response.json()["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
    assert event["pathParameters"] == {"proxy": "upload/file.bin"}
    text = http.put("/echo/x", json={"a": 1}).json()["event"]
    assert text["isBase64Encoded"] is False and text["body"] == '{"a":1}'


def test_response_mapping(http: httpx.Client) -> None:
    result = {"statusCode": 201, "headers": {"x-one": "1", "content-type": "text/plain"},
              "multiValueHeaders": {"x-many": ["a", "b"]}, "cookies": ["s=1; Path=/", "t=2"],
              "body": "created"}
    response = http.post("/respond", json=result)
    assert response.status_code == 201
    assert response.text == "created"
    assert response.headers["x-one"] == "1"
    assert response.headers.get_list("x-many") == ["a", "b"]
    assert response.headers.get_list("set-cookie") == ["s=1; Path=/", "t=2"]
    binary = http.post("/respond", json={"statusCode": 200, "isBase64Encoded": True,
                                         "body": base64.b64encode(b"\x00\xff").decode()})
    assert binary.content == b"\x00\xff"
    plain = http.post("/respond", json=[1, "two", {"three": 3}])
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/json"
    assert plain.json() == [1, "two", {"three": 3}]
    malformed = http.post("/respond", json={"statusCode": "not a number"})
    assert malformed.status_code == 502


def test_unknown_path_and_wrong_method(http: httpx.Client) -> None:
    missing = http.get("/nowhere")
    assert missing.status_code == 404 and missing.json() == {"message": "Not Found"}
    wrong = http.delete("/items/1")
    assert wrong.status_code == 405
    assert wrong.json() == {"message": "Method Not Allowed"}
    assert "GET" in wrong.headers["allow"]


def test_exception_gives_502_and_full_error_in_logs(http: httpx.Client, server: SquallServer) -> None:
    response = http.get("/fail")
    assert response.status_code == 502
    assert response.json() == {"message": "Internal Server Error"}
    lines = server.wait_logs("fail", response.headers["apigw-requestid"])
    text = "\n".join(line["message"] for line in lines)
    assert "about to fail" in text
    assert "ValueError: bad thing happened" in text
    assert 'raise ValueError("bad thing happened")' in text
    assert any(line["level"] == "ERROR" for line in lines)


def test_timeout_is_enforced(http: httpx.Client, server: SquallServer) -> None:
    response = http.get("/slow")
    assert response.status_code == 502
    lines = server.wait_logs("slow", response.headers["apigw-requestid"])
    text = "\n".join(line["message"] for line in lines)
    assert "Task timed out after 1.00 seconds" in text
    assert "going to sleep" in text
    assert http.get("/items/1").status_code == 200


def test_request_body_over_6mb_is_413(http: httpx.Client) -> None:
    response = http.post("/respond", content=b"x" * (6 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert "6 MB" in response.json()["message"]


def test_response_over_6mb_is_413(http: httpx.Client) -> None:
    big = {"statusCode": 200, "body": "y" * (6 * 1024 * 1024)}
    response = http.post("/respond", json=big)
    assert response.status_code == 413
    assert "6 MB" in response.json()["message"]


def test_api_key_route(http: httpx.Client, server: SquallServer) -> None:
    before = len(server.logs("echo"))
    missing = http.get("/status")
    wrong = http.get("/status", headers={"x-api-key": "nope"})
    assert missing.status_code == 401 and "x-api-key" in missing.json()["message"]
    assert wrong.status_code == 403
    assert len(server.logs("echo")) == before, "the function must not run on a refused request"
    assert http.get("/status", headers={"X-Api-Key": "k-123"}).status_code == 200


def test_github_signature_route(http: httpx.Client) -> None:
    body = b'{"action": "opened"}'
    signature = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    ok = http.post("/github", content=body, headers={"x-hub-signature-256": signature})
    assert ok.status_code == 200
    assert ok.json()["event"]["body"] == body.decode()
    bad = http.post("/github", content=body + b" ", headers={"x-hub-signature-256": signature})
    assert bad.status_code == 403
    assert http.post("/github", content=body).status_code == 401


def test_warm_instance_is_reused_in_its_own_process(http: httpx.Client, server: SquallServer) -> None:
    first = http.get("/items/1").json()
    second = http.get("/items/2").json()
    assert server.process is not None
    assert first["pid"] == second["pid"]
    assert first["pid"] != server.process.pid


def test_platform_api_needs_the_admin_token(http: httpx.Client) -> None:
    assert http.get("/_squall/api/functions").status_code == 401
    wrong = http.get("/_squall/api/functions", headers={"authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "Unauthorized"
    assert http.get("/_squall/health").json()["status"] == "ok"
