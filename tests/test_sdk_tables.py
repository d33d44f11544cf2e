"""squall.sdk.tables without a server: the DynamoDB requests each call sends, how responses
and errors come back, batching and pagination. Requests travel through an injected `call`."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from squall.sdk import SdkError, tables
from squall.sdk.tables import ConditionFailed, Table, TransactionCanceled

Response = dict[str, Any] | SdkError | Callable[[dict[str, Any]], dict[str, Any]]

DESCRIPTION = {"Table": {
    "TableName": "builds",
    "KeySchema": [{"AttributeName": "n", "KeyType": "RANGE"}, {"AttributeName": "project", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "project", "AttributeType": "S"},
                             {"AttributeName": "n", "AttributeType": "N"}],
}}


class FakeCall:
    """Answers each operation from `answers` (a response, an error to raise, or a function of the
    request; a list answers successive calls) and records what was sent."""

    def __init__(self, **answers: Response | list[Response]) -> None:
        self.answers = {"DescribeTable": DESCRIPTION, **answers}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((operation, request))
        answer = self.answers.get(operation, {})
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, SdkError):
            raise answer
        return answer(request) if callable(answer) else answer

    def requests(self, operation: str) -> list[dict[str, Any]]:
        return [request for op, request in self.sent if op == operation]


def builds(call: FakeCall) -> Table:
    table = tables.table("builds", call=call)
    table.retry_delays = (0, 0)
    return table


def test_get_sends_a_typed_key_and_returns_plain_values_or_none() -> None:
    call = FakeCall(GetItem=[{"Item": {"project": {"S": "web"}, "n": {"N": "1"}, "ok": {"BOOL": True}}}, {}])
    table = builds(call)

    assert table.get({"project": "web", "n": 1}, consistent=True) == {"project": "web", "n": Decimal(1), "ok": True}
    assert table.get({"project": "web", "n": 2}) is None
    assert call.requests("GetItem")[0] == {"TableName": "builds", "Key": {"project": {"S": "web"}, "n": {"N": "1"}},
                                           "ConsistentRead": True}


def test_put_with_a_condition_adds_placeholder_prefixes_and_types_values() -> None:
    call = FakeCall(PutItem={"Attributes": {"project": {"S": "web"}, "n": {"N": "1"}}})
    old = builds(call).put({"project": "web", "n": 1, "tags": {"a"}}, condition="#s <> :s AND tries < :max",
                           names={"s": "status"}, values={":s": "running", "max": 3}, return_old=True)

    assert old == {"project": "web", "n": Decimal(1)}
    assert call.requests("PutItem") == [{
        "TableName": "builds", "ReturnValues": "ALL_OLD",
        "Item": {"project": {"S": "web"}, "n": {"N": "1"}, "tags": {"SS": ["a"]}},
        "ConditionExpression": "#s <> :s AND tries < :max",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "running"}, ":max": {"N": "3"}},
    }]


def test_a_false_condition_raises_condition_failed() -> None:
    call = FakeCall(PutItem=SdkError(400, "ConditionalCheckFailedException", "The conditional request failed"))
    with pytest.raises(ConditionFailed) as failed:
        builds(call).put({"project": "web", "n": 1}, condition="attribute_not_exists(n)")
    assert isinstance(failed.value, SdkError) and failed.value.status == 400
    assert str(failed.value) == "ConditionalCheckFailedException: The conditional request failed"


def test_other_errors_stay_sdk_errors_with_the_servers_type() -> None:
    call = FakeCall(DeleteItem=SdkError(403, "AccessDenied", "function f may not use table builds"))
    with pytest.raises(SdkError) as failed:
        builds(call).delete({"project": "web", "n": 1})
    assert type(failed.value) is SdkError and failed.value.kind == "AccessDenied"


def test_update_returns_the_new_item_and_checks_returns() -> None:
    call = FakeCall(UpdateItem=[{"Attributes": {"tries": {"N": "2"}}}, {}])
    table = builds(call)
    assert table.update({"project": "web", "n": 1}, "ADD tries :one", values={"one": 1}) == {"tries": Decimal(2)}
    assert table.update({"project": "web", "n": 1}, "REMOVE log", returns="NONE") == {}
    assert call.requests("UpdateItem")[0]["ReturnValues"] == "ALL_NEW"
    assert "ExpressionAttributeValues" not in call.requests("UpdateItem")[1]
    with pytest.raises(ValueError, match="returns must be one of"):
        table.update({"project": "web"}, "REMOVE x", returns="ALL")


def test_delete_returns_the_old_item_only_when_asked() -> None:
    call = FakeCall(DeleteItem={"Attributes": {"project": {"S": "web"}}})
    assert builds(call).delete({"project": "web", "n": 1}) is None
    assert builds(call).delete({"project": "web", "n": 1}, return_old=True) == {"project": "web"}
    assert [r["ReturnValues"] for r in call.requests("DeleteItem")] == ["NONE", "ALL_OLD"]


@pytest.mark.parametrize(("condition", "expression", "values"), [
    ({}, "#sq_pk = :sq_pk", {}),
    ({"eq": 3}, "#sq_pk = :sq_pk AND #sq_sk = :sq_sk", {":sq_sk": {"N": "3"}}),
    ({"lt": 3}, "#sq_pk = :sq_pk AND #sq_sk < :sq_sk", {":sq_sk": {"N": "3"}}),
    ({"lte": 3}, "#sq_pk = :sq_pk AND #sq_sk <= :sq_sk", {":sq_sk": {"N": "3"}}),
    ({"gt": 3}, "#sq_pk = :sq_pk AND #sq_sk > :sq_sk", {":sq_sk": {"N": "3"}}),
    ({"gte": 3}, "#sq_pk = :sq_pk AND #sq_sk >= :sq_sk", {":sq_sk": {"N": "3"}}),
    ({"between": (1, 9)}, "#sq_pk = :sq_pk AND #sq_sk BETWEEN :sq_lo AND :sq_hi",
     {":sq_lo": {"N": "1"}, ":sq_hi": {"N": "9"}}),
    ({"begins_with": "2024-"}, "#sq_pk = :sq_pk AND begins_with(#sq_sk, :sq_sk)", {":sq_sk": {"S": "2024-"}}),
])
def test_query_builds_the_key_condition_from_the_tables_key_names(
        condition: dict[str, Any], expression: str, values: dict[str, Any]) -> None:
    call = FakeCall(Query={"Items": [{"project": {"S": "web"}, "n": {"N": "1"}}], "Count": 1, "ScannedCount": 1})
    page = builds(call).query("web", **condition)

    assert page.items == [{"project": "web", "n": Decimal(1)}] and page.next is None and len(page) == 1
    request = call.requests("Query")[0]
    assert request["KeyConditionExpression"] == expression
    names = {"#sq_pk": "project", **({"#sq_sk": "n"} if condition else {})}
    assert request["ExpressionAttributeNames"] == names
    assert request["ExpressionAttributeValues"] == {":sq_pk": {"S": "web"}, **values}
    assert request["ScanIndexForward"] is True and "Limit" not in request


def test_query_asks_describe_table_once_per_table_object() -> None:
    call = FakeCall(Query={"Items": []})
    table = builds(call)
    table.query("web")
    table.query("api", gt=1)
    assert len(call.requests("DescribeTable")) == 1
    assert table.key_schema == [("project", "S"), ("n", "N")]


def test_query_pages_with_limit_order_start_and_filter() -> None:
    call = FakeCall(Query={"Items": [], "Count": 0, "ScannedCount": 2,
                           "LastEvaluatedKey": {"project": {"S": "web"}, "n": {"N": "8"}}})
    page = builds(call).query("web", limit=2, forward=False, start={"project": "web", "n": 9},
                              filter="#st = :st", names={"#st": "status"}, values={":st": "ok"})

    assert page.items == [] and page.next == {"project": "web", "n": Decimal(8)} and page.scanned == 2
    request = call.requests("Query")[0]
    assert request["Limit"] == 2 and request["ScanIndexForward"] is False
    assert request["ExclusiveStartKey"] == {"project": {"S": "web"}, "n": {"N": "9"}}
    assert request["FilterExpression"] == "#st = :st"
    assert request["ExpressionAttributeNames"] == {"#st": "status", "#sq_pk": "project"}
    assert request["ExpressionAttributeValues"] == {":st": {"S": "ok"}, ":sq_pk": {"S": "web"}}


def test_query_all_follows_every_page() -> None:
    pages: list[Response] = [
        {"Items": [{"n": {"N": "1"}}], "LastEvaluatedKey": {"project": {"S": "web"}, "n": {"N": "1"}}},
        {"Items": [], "LastEvaluatedKey": {"project": {"S": "web"}, "n": {"N": "2"}}},
        {"Items": [{"n": {"N": "3"}}]},
    ]
    call = FakeCall(Query=pages)
    assert [item["n"] for item in builds(call).query_all("web", gte=1)] == [1, 3]
    starts = [r.get("ExclusiveStartKey") for r in call.requests("Query")]
    assert starts == [None, {"project": {"S": "web"}, "n": {"N": "1"}}, {"project": {"S": "web"}, "n": {"N": "2"}}]


def test_query_misuse_is_refused_before_sending() -> None:
    call = FakeCall()
    table = builds(call)
    with pytest.raises(ValueError, match="at most one sort key condition"):
        table.query("web", gt=1, lt=5)
    with pytest.raises(ValueError, match="between takes"):
        table.query("web", between="ab")
    with pytest.raises(ValueError, match="limit"):
        table.query("web", limit=0)
    with pytest.raises(ValueError, match="squall's own"):
        table.query("web", filter="#sq_pk = :x", names={"#sq_pk": "x"}, values={":x": 1})
    single = tables.table("users", call=FakeCall(DescribeTable={"Table": {
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]}}))
    with pytest.raises(ValueError, match="has no sort key"):
        single.query("a", begins_with="x")
    assert call.requests("Query") == []


def test_scan_and_scan_all() -> None:
    call = FakeCall(Scan=[{"Items": [{"n": {"N": "1"}}], "LastEvaluatedKey": {"project": {"S": "a"}, "n": {"N": "1"}}},
                          {"Items": [{"n": {"N": "2"}}]}])
    assert [i["n"] for i in builds(call).scan_all(filter="n > :z", values={"z": 0})] == [1, 2]
    first = call.requests("Scan")[0]
    assert first == {"TableName": "builds", "ConsistentRead": False, "FilterExpression": "n > :z",
                     "ExpressionAttributeValues": {":z": {"N": "0"}}}
    assert call.requests("DescribeTable") == []


def test_batch_get_chunks_by_100_resends_unprocessed_keys_and_keeps_the_callers_order() -> None:
    def answer(request: dict[str, Any]) -> dict[str, Any]:
        keys = request["RequestItems"]["builds"]["Keys"]
        done, left = keys[: len(keys) // 2 or 1], keys[len(keys) // 2 or 1:]
        response: dict[str, Any] = {"Responses": {"builds": [{**k, "seen": {"BOOL": True}} for k in done
                                                             if k["n"]["N"] != "7"]}}
        if left:
            response["UnprocessedKeys"] = {"builds": {"Keys": left}}
        return response

    call = FakeCall(BatchGetItem=answer)
    keys = [{"project": "web", "n": n} for n in range(150, 0, -1)]
    table = builds(call)
    table.retry_delays = (0,) * 10
    found = table.batch_get(keys, consistent=True)

    assert [item["n"] for item in found] == [n for n in range(150, 0, -1) if n != 7]
    sizes = [len(r["RequestItems"]["builds"]["Keys"]) for r in call.requests("BatchGetItem")]
    assert sizes[0] == 100 and max(sizes) == 100 and sum(sizes) > 150
    assert call.requests("BatchGetItem")[0]["RequestItems"]["builds"]["ConsistentRead"] is True


def test_batch_write_chunks_by_25_and_gives_up_on_items_that_stay_unprocessed() -> None:
    call = FakeCall(BatchWriteItem=lambda request: {})
    builds(call).batch_write(put=[{"project": "web", "n": n} for n in range(30)], delete=[{"project": "x", "n": 1}])
    chunks = [r["RequestItems"]["builds"] for r in call.requests("BatchWriteItem")]
    assert [len(c) for c in chunks] == [25, 6]
    assert chunks[0][0] == {"PutRequest": {"Item": {"project": {"S": "web"}, "n": {"N": "0"}}}}
    assert chunks[1][-1] == {"DeleteRequest": {"Key": {"project": {"S": "x"}, "n": {"N": "1"}}}}

    stuck = FakeCall(BatchWriteItem=lambda request: {"UnprocessedItems": request["RequestItems"]})
    with pytest.raises(SdkError) as failed:
        builds(stuck).batch_write(put=[{"project": "web", "n": 1}])
    assert failed.value.kind == "UnprocessedItems" and "1 requests" in failed.value.message
    assert len(stuck.requests("BatchWriteItem")) == 3


def test_transact_write_sends_every_action_and_reports_cancellation_reasons() -> None:
    reasons = [{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}]
    call = FakeCall(TransactWriteItems=[{}, SdkError(400, "TransactionCanceledException",
                                                     "Transaction cancelled, please refer cancellation reasons "
                                                     "for specific reasons [None, ConditionalCheckFailed]",
                                                     {"CancellationReasons": reasons})])
    actions = [
        tables.Put("builds", {"project": "web", "n": 1}, condition="attribute_not_exists(n)"),
        tables.Update("counters", {"name": "builds"}, "ADD total :one", values={"one": 1}),
        tables.Delete("builds", {"project": "web", "n": 0}),
        tables.Check("builds", {"project": "web", "n": 2}, condition="attribute_exists(n)"),
    ]
    tables.transact_write(actions, token="t-1", call=call)
    assert call.requests("TransactWriteItems")[0] == {"ClientRequestToken": "t-1", "TransactItems": [
        {"Put": {"TableName": "builds", "Item": {"project": {"S": "web"}, "n": {"N": "1"}},
                 "ConditionExpression": "attribute_not_exists(n)"}},
        {"Update": {"TableName": "counters", "Key": {"name": {"S": "builds"}}, "UpdateExpression": "ADD total :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Delete": {"TableName": "builds", "Key": {"project": {"S": "web"}, "n": {"N": "0"}}}},
        {"ConditionCheck": {"TableName": "builds", "Key": {"project": {"S": "web"}, "n": {"N": "2"}},
                            "ConditionExpression": "attribute_exists(n)"}},
    ]}

    with pytest.raises(TransactionCanceled) as cancelled:
        tables.transact_write(actions[:2], call=call)
    assert cancelled.value.reasons == [None, "ConditionalCheckFailed"]


def test_cancellation_reasons_are_read_from_the_message_when_not_listed() -> None:
    error = TransactionCanceled(400, "TransactionCanceledException",
                                "Transaction cancelled, please refer cancellation reasons for specific reasons "
                                "[ConditionalCheckFailed, None]")
    assert error.reasons == ["ConditionalCheckFailed", None]


def test_a_check_needs_a_condition() -> None:
    with pytest.raises(ValueError, match="condition"):
        tables.Check("builds", {"project": "web"})


def test_list_tables_follows_pages() -> None:
    call = FakeCall(ListTables=[{"TableNames": ["a", "b"], "LastEvaluatedTableName": "b"}, {"TableNames": ["c"]}])
    assert tables.list_tables(call=call) == ["a", "b", "c"]
    assert call.requests("ListTables") == [{}, {"ExclusiveStartTableName": "b"}]

