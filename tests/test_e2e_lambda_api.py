"""Lambda's Invoke API under /_squall/aws/lambda, driven by a real boto3 client."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import boto3
import botocore.exceptions
import httpx
import pytest
from botocore.config import Config

from tests.support import SquallServer, serving

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: api
        functions:
          echo:
            handler: app.echo
          broken:
            handler: app.broken
    """,
    "app.py": """
def echo(event, context):
    print("echoing", event)
    return {"got": event, "version": context.function_version}

def broken(event, context):
    raise KeyError("missing card")
""",
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("lambda-api"), PROJECT) as server:
        yield server


def lambda_client(node: SquallServer, secret: str | None = None) -> Any:
    return boto3.client("lambda", endpoint_url=f"{node.url}/_squall/aws/lambda", region_name="us-east-1",
                        aws_access_key_id="admin", aws_secret_access_key=secret or node.token,
                        config=Config(retries={"max_attempts": 0}))


def test_request_response_returns_the_result_and_the_executed_version(node: SquallServer) -> None:
    response = lambda_client(node).invoke(FunctionName="echo", Payload=json.dumps({"card": 1}))

    assert response["StatusCode"] == 200
    assert json.loads(response["Payload"].read()) == {"got": {"card": 1}, "version": "$LATEST"}
    assert response["ExecutedVersion"] == "1"
    assert "FunctionError" not in response


def test_a_failed_invocation_carries_function_error_and_the_error_object(node: SquallServer) -> None:
    response = lambda_client(node).invoke(FunctionName="broken", Payload=b"{}")

    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "KeyError" and "missing card" in error["errorMessage"]


def test_log_tail_is_the_invocations_log(node: SquallServer) -> None:
    response = lambda_client(node).invoke(FunctionName="echo", Payload=b'{"x": 2}', LogType="Tail")

    tail = base64.b64decode(response["LogResult"]).decode()
    assert tail.startswith("START RequestId: ") and "echoing {'x': 2}" in tail
    assert "END RequestId" in tail and "REPORT RequestId" in tail


def test_arns_and_qualifiers_name_the_function(node: SquallServer) -> None:
    client = lambda_client(node)
    arn = "arn:aws:lambda:us-east-1:000000000000:function:echo"

    for name, qualifier, version in ((arn, None, "$LATEST"), (arn + ":1", None, "1"),
                                     ("000000000000:function:echo", "$LATEST", "$LATEST"), ("echo", "1", "1")):
        extra = {"Qualifier": qualifier} if qualifier else {}
        response = client.invoke(FunctionName=name, Payload=b"{}", **extra)
        assert response["StatusCode"] == 200 and json.loads(response["Payload"].read())["version"] == version
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        client.invoke(FunctionName="echo", Qualifier="7", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_event_invocations_are_queued_and_dry_runs_do_nothing(node: SquallServer) -> None:
    client = lambda_client(node)

    queued = client.invoke(FunctionName="echo", InvocationType="Event", Payload=b'{"later": true}')
    dry = client.invoke(FunctionName="echo", InvocationType="DryRun", Payload=b"{}")

    assert queued["StatusCode"] == 202 and dry["StatusCode"] == 204
    request_id = queued["ResponseMetadata"]["RequestId"]
    assert any("echoing {'later': True}" in line["message"]
               for line in node.wait_logs("echo", request_id, contains="echoing"))


def test_unknown_functions_bad_payloads_and_bad_signatures_get_lambdas_errors(node: SquallServer) -> None:
    cases = [
        (lambda_client(node), {"FunctionName": "nobody", "Payload": b"{}"}, "ResourceNotFoundException", 404),
        (lambda_client(node), {"FunctionName": "echo", "Payload": b"{not json"}, "InvalidRequestContentException",
         400),
        (lambda_client(node, secret="wrong"), {"FunctionName": "echo", "Payload": b"{}"},
         "InvalidSignatureException", 403),
        (lambda_client(node), {"FunctionName": "echo", "InvocationType": "Event",
                               "Payload": b'"' + b"x" * (1024 * 1024) + b'"'}, "RequestTooLargeException", 413),
    ]
    for client, arguments, code, status in cases:
        with pytest.raises(botocore.exceptions.ClientError) as failure:
            client.invoke(**arguments)
        assert failure.value.response["Error"]["Code"] == code
        assert failure.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_unsigned_and_bearer_requests_are_refused(node: SquallServer) -> None:
    path = f"{node.url}/_squall/aws/lambda/2015-03-31/functions/echo/invocations"
    unsigned = httpx.post(path, content=b"{}")
    with node.api() as api:
        bearer = api.post(path, content=b"{}")

    assert unsigned.status_code == 403
    assert unsigned.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    assert bearer.status_code == 403 and bearer.headers["x-amzn-errortype"] == "IncompleteSignatureException"


def test_the_aws_cli_invokes_unchanged(node: SquallServer, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "admin", "AWS_SECRET_ACCESS_KEY": node.token,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    aws = Path(sys.executable).parent / "aws"

    result = subprocess.run([str(aws), "lambda", "invoke", "--endpoint-url", f"{node.url}/_squall/aws/lambda",
                             "--function-name", "echo", "--payload", '{"from": "cli"}', str(out)],
                            env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["StatusCode"] == 200
    assert json.loads(out.read_text()) == {"got": {"from": "cli"}, "version": "$LATEST"}
