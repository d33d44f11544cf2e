"""The context and the per-call environment as Lambda's runtime gives them: function_version
and the ARN by qualifier, identity and client_context objects, _X_AMZN_TRACE_ID."""

from __future__ import annotations

import base64
import json
import re
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
        name: ctx
        functions:
          probe:
            handler: app.probe
            triggers: [{http: "GET /probe"}]
          ready:
            handler: app.probe
            min_instances: 1
    """,
    "app.py": """
import os

def probe(event, context):
    client = context.client_context
    return {
        "version": context.function_version, "arn": context.invoked_function_arn,
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_context": None if client is None else {
            "custom": client.custom, "env": client.env,
            "app_title": client.client.app_title if client.client else None},
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "environ": {name: os.environ.get(name) for name in (
            "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL_DYNAMODB")},
    }
""",
}
TRACE = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("lambda-context"), PROJECT) as server:
        yield server


def invoke(node: SquallServer, function: str = "probe", **options: Any) -> dict[str, Any]:
    client = boto3.client("lambda", endpoint_url=f"{node.url}/_squall/aws/lambda", region_name="us-east-1",
                          aws_access_key_id="admin", aws_secret_access_key=node.token,
                          config=Config(retries={"max_attempts": 0}))
    response = client.invoke(FunctionName=function, Payload=b"{}", **options)
    assert "FunctionError" not in response
    return dict(json.loads(response["Payload"].read()))


def test_an_unqualified_call_runs_latest_and_a_qualified_one_names_its_version(node: SquallServer) -> None:
    unqualified, qualified = invoke(node), invoke(node, Qualifier="1")

    assert unqualified["version"] == "$LATEST" and unqualified["arn"].endswith(":function:probe")
    assert qualified["version"] == "1" and qualified["arn"].endswith(":function:probe:1")


def test_identity_is_always_an_object_and_client_context_comes_from_the_caller(node: SquallServer) -> None:
    plain = invoke(node)
    assert plain["identity"] == [None, None] and plain["client_context"] is None

    sent = {"custom": {"tenant": "acme"}, "env": {"locale": "fr"}, "client": {"app_title": "Cards"}}
    got = invoke(node, ClientContext=base64.b64encode(json.dumps(sent).encode()).decode())
    assert got["client_context"] == {"custom": {"tenant": "acme"}, "env": {"locale": "fr"}, "app_title": "Cards"}


def test_a_client_context_that_is_not_base64_json_is_refused(node: SquallServer) -> None:
    for bad in ("not base64!", base64.b64encode(b"[1, 2]").decode(), base64.b64encode(b"{").decode()):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            invoke(node, ClientContext=bad)
        assert refused.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_every_call_has_a_trace_id_and_a_route_carries_the_callers_on(node: SquallServer) -> None:
    first, second = invoke(node)["trace"], invoke(node)["trace"]
    assert TRACE.fullmatch(first) and TRACE.fullmatch(second) and first != second

    incoming = "Root=1-5e1b4151-5ac6c58f5b5dbd6a5e4f8ed6;Parent=53995c3f42cd8ad8;Sampled=1"
    routed = httpx.get(f"{node.url}/probe", headers={"x-amzn-trace-id": incoming}).json()
    assert routed["trace"] == incoming and routed["version"] == "$LATEST"
    forged = httpx.get(f"{node.url}/probe", headers={"x-amzn-trace-id": "Root=nonsense"}).json()
    assert TRACE.fullmatch(forged["trace"])


def test_instances_say_how_they_started_and_where_squalls_aws_endpoints_are(node: SquallServer) -> None:
    on_demand, provisioned = invoke(node)["environ"], invoke(node, "ready")["environ"]

    assert on_demand["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert provisioned["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"  # kept ready: min_instances
    assert on_demand["AWS_ENDPOINT_URL_LAMBDA"] == f"{node.url}/_squall/aws/lambda"
    assert on_demand["AWS_ENDPOINT_URL_DYNAMODB"] == f"{node.url}/_squall/aws/dynamodb"
