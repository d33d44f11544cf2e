"""The DynamoDB-compatible endpoint under /_squall/aws/dynamodb, driven by boto3's client and
resource as a Lambda user's code drives DynamoDB."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import SquallServer, serving

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: state
        tables:
          builds:
            key: project
          events:
            key: {name: stream, type: S}
            sort_key: {name: seq, type: N}
            ttl: expires
        functions:
          noop:
            handler: app.handler
            tables: [builds]
    """,
    "app.py": "def handler(event, context):\n    return {}\n",
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    with serving(tmp_path_factory.mktemp("dynamodb"), PROJECT) as server:
        yield server


def session_args(node: SquallServer, secret: str | None = None) -> dict[str, Any]:
    return {"endpoint_url": f"{node.url}/_squall/aws/dynamodb", "region_name": "us-east-1",
            "aws_access_key_id": "admin", "aws_secret_access_key": secret or node.token,
            "config": Config(retries={"max_attempts": 0})}


@pytest.fixture(scope="module")
def client(node: SquallServer) -> Any:
    return boto3.client("dynamodb", **session_args(node))


@pytest.fixture(scope="module")
def resource(node: SquallServer) -> Any:
    return boto3.resource("dynamodb", **session_args(node))


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_declared_tables_are_listed_and_described(client: Any) -> None:
    assert {"builds", "events"} <= set(client.list_tables()["TableNames"])
    table = client.describe_table(TableName="events")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "stream", "KeyType": "HASH"},
                                  {"AttributeName": "seq", "KeyType": "RANGE"}]
    assert table["TableStatus"] == "ACTIVE"
    assert client.describe_time_to_live(TableName="events")["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}


def test_put_get_delete_round_trip_every_type(resource: Any) -> None:
    builds = resource.Table("builds")
    item = {"project": "web", "n": Decimal("12.50"), "ok": True, "none": None, "tags": {"a", "b"},
            "sizes": {Decimal(1), Decimal(2)}, "blob": b"\x00\xff", "nested": {"list": [1, "two", {"x": False}]}}
    builds.put_item(Item=item)

    got = builds.get_item(Key={"project": "web"})["Item"]
    assert got["n"] == Decimal("12.5") and got["tags"] == {"a", "b"} and got["sizes"] == {1, 2}
    assert got["blob"].value == b"\x00\xff" and got["nested"] == {"list": [1, "two", {"x": False}]}
    assert got["none"] is None and got["ok"] is True

    old = builds.delete_item(Key={"project": "web"}, ReturnValues="ALL_OLD")["Attributes"]
    assert old["project"] == "web"
    assert "Item" not in builds.get_item(Key={"project": "web"})


def test_conditional_put_raises_the_same_exception_as_dynamodb(resource: Any, client: Any) -> None:
    builds = resource.Table("builds")
    builds.put_item(Item={"project": "cond", "state": "ok"}, ConditionExpression="attribute_not_exists(project)")
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        builds.put_item(Item={"project": "cond", "state": "bad"}, ConditionExpression=Attr("project").not_exists())
    assert builds.get_item(Key={"project": "cond"})["Item"]["state"] == "ok"


def test_update_item_set_arithmetic_if_not_exists_list_append_remove_add_delete(resource: Any) -> None:
    builds = resource.Table("builds")
    builds.put_item(Item={"project": "upd", "count": 1, "log": ["a"], "gone": "x", "tags": {"t1", "t2"}})
    answer = builds.update_item(
        Key={"project": "upd"},
        UpdateExpression="SET #c = #c + :one, first = if_not_exists(first, :now), log = list_append(log, :more) "
                         "REMOVE gone ADD visits :one DELETE tags :t1",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":one": 1, ":now": "monday", ":more": ["b"], ":t1": {"t1"}},
        ReturnValues="ALL_NEW")["Attributes"]
    assert answer == {"project": "upd", "count": 2, "first": "monday", "log": ["a", "b"], "visits": 1,
                      "tags": {"t2"}}
    updated = builds.update_item(Key={"project": "upd"}, UpdateExpression="SET #c = #c - :one",
                                 ExpressionAttributeNames={"#c": "count"}, ExpressionAttributeValues={":one": 1},
                                 ReturnValues="UPDATED_OLD")["Attributes"]
    assert updated == {"count": 2}


def test_update_of_a_key_attribute_is_a_validation_error(resource: Any) -> None:
    with pytest.raises(ClientError) as exc:
        resource.Table("builds").update_item(Key={"project": "k"}, UpdateExpression="SET project = :p",
                                             ExpressionAttributeValues={":p": "other"})
    assert error_code(exc) == "ValidationException"
    assert "part of the key" in exc.value.response["Error"]["Message"]


def test_query_key_conditions_order_pagination_filter_projection_and_count(resource: Any) -> None:
    events = resource.Table("events")
    with events.batch_writer() as batch:
        for seq in range(30):
            batch.put_item(Item={"stream": "s1", "seq": seq, "kind": "even" if seq % 2 == 0 else "odd",
                                 "body": f"event {seq}"})
        batch.put_item(Item={"stream": "s2", "seq": 1})

    between = events.query(KeyConditionExpression=Key("stream").eq("s1") & Key("seq").between(5, 9))["Items"]
    assert [int(i["seq"]) for i in between] == [5, 6, 7, 8, 9]
    newest = events.query(KeyConditionExpression=Key("stream").eq("s1") & Key("seq").gt(25), ScanIndexForward=False)
    assert [int(i["seq"]) for i in newest["Items"]] == [29, 28, 27, 26]

    pages, start = [], None
    while True:
        extra = {"ExclusiveStartKey": start} if start else {}
        page = events.query(KeyConditionExpression=Key("stream").eq("s1"), Limit=7, **extra)
        pages.append([int(i["seq"]) for i in page["Items"]])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert [seq for page in pages for seq in page] == list(range(30)) and len(pages[0]) == 7

    odd = events.query(KeyConditionExpression=Key("stream").eq("s1") & Key("seq").lt(10),
                       FilterExpression=Attr("kind").eq("odd"), ProjectionExpression="seq, #k",
                       ExpressionAttributeNames={"#k": "kind"})
    assert odd["Count"] == 5 and odd["ScannedCount"] == 10
    assert odd["Items"][0] == {"seq": 1, "kind": "odd"}
    assert events.query(KeyConditionExpression=Key("stream").eq("s1"), Select="COUNT")["Count"] == 30


def test_begins_with_on_a_string_sort_key(client: Any) -> None:
    client.create_table(TableName="paths", KeySchema=[{"AttributeName": "b", "KeyType": "HASH"},
                                                      {"AttributeName": "p", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "b", "AttributeType": "S"},
                                              {"AttributeName": "p", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    for path in ("a/1", "a/2", "ab", "b/1"):
        client.put_item(TableName="paths", Item={"b": {"S": "x"}, "p": {"S": path}})
    found = client.query(TableName="paths", KeyConditionExpression="b = :b AND begins_with(p, :prefix)",
                         ExpressionAttributeValues={":b": {"S": "x"}, ":prefix": {"S": "a/"}})
    assert [item["p"]["S"] for item in found["Items"]] == ["a/1", "a/2"]
    client.delete_table(TableName="paths")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_table(TableName="paths")


def test_scan_segments_cover_every_item_once(resource: Any) -> None:
    table = resource.Table("builds")
    with table.batch_writer() as batch:
        for n in range(40):
            batch.put_item(Item={"project": f"scan-{n}", "n": n})
    seen: list[str] = []
    for segment in range(3):
        page = table.scan(Segment=segment, TotalSegments=3, FilterExpression=Attr("project").begins_with("scan-"))
        seen += [item["project"] for item in page["Items"]]
    assert sorted(seen) == sorted(f"scan-{n}" for n in range(40))


def test_batch_get_and_batch_write(client: Any) -> None:
    client.batch_write_item(RequestItems={"builds": [
        {"PutRequest": {"Item": {"project": {"S": "bw1"}}}}, {"PutRequest": {"Item": {"project": {"S": "bw2"}}}}]})
    got = client.batch_get_item(RequestItems={"builds": {"Keys": [{"project": {"S": "bw1"}},
                                                                  {"project": {"S": "bw2"}},
                                                                  {"project": {"S": "missing"}}]}})
    assert sorted(i["project"]["S"] for i in got["Responses"]["builds"]) == ["bw1", "bw2"]
    assert got["UnprocessedKeys"] == {}


def test_transact_write_items_is_all_or_nothing(client: Any) -> None:
    client.put_item(TableName="builds", Item={"project": {"S": "tx-a"}, "n": {"N": "1"}})
    with pytest.raises(client.exceptions.TransactionCanceledException) as exc:
        client.transact_write_items(TransactItems=[
            {"Put": {"TableName": "builds", "Item": {"project": {"S": "tx-b"}}}},
            {"ConditionCheck": {"TableName": "builds", "Key": {"project": {"S": "tx-a"}},
                                "ConditionExpression": "n = :two", "ExpressionAttributeValues": {":two": {"N": "2"}}}},
        ])
    reasons = exc.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(TableName="builds", Key={"project": {"S": "tx-b"}})

    client.transact_write_items(TransactItems=[
        {"Put": {"TableName": "builds", "Item": {"project": {"S": "tx-b"}}}},
        {"Update": {"TableName": "builds", "Key": {"project": {"S": "tx-a"}}, "UpdateExpression": "SET n = n + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
    ])
    assert client.get_item(TableName="builds", Key={"project": {"S": "tx-a"}})["Item"]["n"] == {"N": "2"}
    assert "Item" in client.get_item(TableName="builds", Key={"project": {"S": "tx-b"}})


def test_validation_errors_have_dynamodbs_codes(client: Any) -> None:
    with pytest.raises(ClientError) as exc:
        client.put_item(TableName="builds", Item={"project": {"N": "1"}})
    assert error_code(exc) == "ValidationException" and "Type mismatch" in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        client.get_item(TableName="builds", Key={"nope": {"S": "x"}})
    assert error_code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        client.query(TableName="builds", KeyConditionExpression="project = :p")
    assert error_code(exc) == "ValidationException"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_item(TableName="no-such-table", Key={"project": {"S": "x"}})


def test_expired_items_are_never_returned(resource: Any) -> None:
    events = resource.Table("events")
    events.put_item(Item={"stream": "ttl", "seq": 1, "expires": int(time.time()) - 5})
    events.put_item(Item={"stream": "ttl", "seq": 2, "expires": int(time.time()) + 3600})
    assert [int(i["seq"]) for i in events.query(KeyConditionExpression=Key("stream").eq("ttl"))["Items"]] == [2]
    assert "Item" not in events.get_item(Key={"stream": "ttl", "seq": 1})


def test_a_wrong_secret_is_refused(node: SquallServer) -> None:
    client = boto3.client("dynamodb", **session_args(node, secret="wrong"))
    with pytest.raises(ClientError) as exc:
        client.list_tables()
    assert error_code(exc) == "InvalidSignatureException"


def test_a_declared_table_cannot_be_deleted_through_the_api(client: Any) -> None:
    with pytest.raises(client.exceptions.ResourceInUseException):
        client.delete_table(TableName="builds")
    assert "builds" in client.list_tables()["TableNames"]


def test_two_nodes_on_postgresql_share_items_and_serialize_conditional_writes(
        tmp_path: Path, fresh_postgres_url: str) -> None:
    """Counters bumped through both nodes at once lose no increment; a table made through
    one node is used through the other at once."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    with serving(tmp_path / "a", PROJECT, store=fresh_postgres_url) as first:
        second = SquallServer(tmp_path / "b" / "data", store=fresh_postgres_url).start()
        try:
            clients = [boto3.client("dynamodb", **session_args(node)) for node in (first, second)]
            clients[0].create_table(TableName="made", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                                    AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
            clients[1].put_item(TableName="made", Item={"k": {"S": "seen"}})
            assert clients[0].get_item(TableName="made", Key={"k": {"S": "seen"}})["Item"] == {"k": {"S": "seen"}}

            def bump(client: Any) -> None:
                for _ in range(25):
                    client.update_item(TableName="made", Key={"k": {"S": "counter"}},
                                       UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}})

            threads = [threading.Thread(target=bump, args=(boto3.client("dynamodb", **session_args(node)),))
                       for node in (first, second, first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            counter = clients[1].get_item(TableName="made", Key={"k": {"S": "counter"}})["Item"]
            assert counter["n"] == {"N": "100"}
        finally:
            second.stop()
