"""Permissions: a function reaches exactly the tables, topics, queues and buckets its own keys
in squall.yaml list, with plain boto3 and with squall.sdk; everything else is denied."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from squall import credentials
from tests.support import SquallServer, serving

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: perms
        tables:
          granted: {key: id}
          private: {key: id}
        topics:
          news: {}
          secret-news: {}
        queues:
          jobs: {}
          other-jobs: {}
        buckets:
          uploads: {}
          vault: {}
        functions:
          worker:
            handler: app.handler
            tables: [granted]
            topics: [news]
            queues: [jobs]
            buckets: [uploads]
          nothing:
            handler: app.handler
    """,
    "app.py": """
import os
import boto3
from botocore.exceptions import ClientError
from squall import sdk

def attempt(action):
    try:
        action()
        return "ok"
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    except sdk.SdkError as exc:
        return f"{exc.status} {exc.kind}"

def handler(event, context):
    dynamodb = boto3.resource("dynamodb")
    return {
        "put_granted": attempt(lambda: dynamodb.Table("granted").put_item(Item={"id": "from-" + context.function_name})),
        "put_private": attempt(lambda: dynamodb.Table("private").put_item(Item={"id": "x"})),
        "list_tables": dynamodb.meta.client.list_tables()["TableNames"],
        "create_table": attempt(lambda: dynamodb.meta.client.create_table(
            TableName="mine", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])),
        "publish_news": attempt(lambda: sdk.publish("news", "hi")),
        "publish_secret": attempt(lambda: sdk.publish("secret-news", "hi")),
        "send_jobs": attempt(lambda: sdk.send("jobs", "{}")),
        "send_other": attempt(lambda: sdk.send("other-jobs", "{}")),
        "put_uploads": attempt(lambda: sdk.bucket("uploads").put("a.txt", b"a")),
        "put_vault": attempt(lambda: sdk.bucket("vault").put("a.txt", b"a")),
        "access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
        "credential": [os.environ.get(name) for name in (
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")],
        "env_keys": sorted(k for k in os.environ if k.startswith(("AWS_", "SQUALL_"))),
        "env_values": list(os.environ.values()),
    }
""",
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("perms"), PROJECT) as server:
        yield server


def invoke(node: SquallServer, function: str) -> dict[str, Any]:
    result = node.cli("invoke", function, "--json", check=True)
    answer = json.loads(result.stdout)
    assert answer["ok"], answer
    return dict(answer["payload"])


def test_a_function_reaches_exactly_what_it_is_granted(node: SquallServer) -> None:
    outcome = invoke(node, "worker")

    assert outcome["put_granted"] == "ok"
    assert outcome["put_private"] == "AccessDeniedException"
    assert outcome["list_tables"] == ["granted"]
    assert outcome["create_table"] == "AccessDeniedException"
    assert outcome["publish_news"] == "ok" and outcome["publish_secret"] == "403 AccessDenied"
    assert outcome["send_jobs"] == "ok" and outcome["send_other"] == "403 AccessDenied"
    assert outcome["put_uploads"] == "ok" and outcome["put_vault"] == "403 AccessDenied"


def test_a_function_without_grants_is_denied_everything(node: SquallServer) -> None:
    outcome = invoke(node, "nothing")

    assert outcome["put_granted"] == "AccessDeniedException"
    assert outcome["list_tables"] == []
    assert {outcome[k] for k in ("publish_news", "send_jobs", "put_uploads")} == {"403 AccessDenied"}


def test_the_write_that_was_allowed_landed_and_the_denied_one_did_not(node: SquallServer) -> None:
    invoke(node, "worker")
    admin = boto3.resource("dynamodb", endpoint_url=f"{node.url}/_squall/aws/dynamodb", region_name="us-east-1",
                           aws_access_key_id="admin", aws_secret_access_key=node.token,
                           config=Config(retries={"max_attempts": 0}))
    assert admin.Table("granted").get_item(Key={"id": "from-worker"})["Item"] == {"id": "from-worker"}
    assert admin.Table("private").scan()["Items"] == []


def test_the_instance_has_its_own_credential_and_never_the_admin_token(node: SquallServer) -> None:
    outcome = invoke(node, "worker")

    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB",
            "SQUALL_FUNCTION_TOKEN"} <= set(outcome["env_keys"])
    assert node.token not in outcome["env_values"]
    assert all(node.token not in value for value in outcome["env_values"])


def dynamodb_client(node: SquallServer, key_id: str, secret: str, token: str | None = None) -> Any:
    return boto3.client("dynamodb", endpoint_url=f"{node.url}/_squall/aws/dynamodb", region_name="us-east-1",
                        aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token,
                        config=Config(retries={"max_attempts": 0}))


def test_a_function_key_pair_is_refused_without_its_session_token(node: SquallServer) -> None:
    key_id, secret, token = invoke(node, "worker")["credential"]

    assert dynamodb_client(node, key_id, secret, token).list_tables()["TableNames"] is not None
    for missing_or_wrong in (None, token[:-4] + "AAA="):
        with pytest.raises(ClientError) as exc:
            dynamodb_client(node, key_id, secret, missing_or_wrong).list_tables()
        assert exc.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_function_key_id_with_a_guessed_secret_or_past_expiry_is_refused(node: SquallServer) -> None:
    key_id = invoke(node, "worker")["access_key_id"]
    expired = credentials.issue(b"any-key", "worker", now=time.time() - 2 * credentials.CREDENTIAL_LIFETIME)

    for client in (dynamodb_client(node, key_id, "guessed"),
                   dynamodb_client(node, expired.access_key_id, expired.secret_access_key)):
        with pytest.raises(ClientError) as exc:
            client.list_tables()
        assert exc.value.response["Error"]["Code"] in ("InvalidSignatureException", "UnrecognizedClientException")


def test_instances_get_fresh_credentials_before_the_old_ones_expire(tmp_path: Path) -> None:
    with serving(tmp_path, PROJECT, environ={"SQUALL_CREDENTIAL_REFRESH_SECONDS": "1"}) as node:
        first = invoke(node, "worker")
        time.sleep(2.5)
        second = invoke(node, "worker")

    assert first["access_key_id"] != second["access_key_id"]
    assert first["put_granted"] == second["put_granted"] == "ok"
