"""`squall table ...` without a server: plain JSON in and out with exact numbers, the requests
sent to `/_squall/api/tables/{Operation}`, exit codes. The network is an httpx.MockTransport."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import orjson
from click.testing import CliRunner, Result

from squall.cli.main import cli
from squall.cli.options import Settings
from squall.cli.tables import jsonable, parse_json

DESCRIBE = {"Table": {"TableName": "builds",
                      "KeySchema": [{"AttributeName": "project", "KeyType": "HASH"},
                                    {"AttributeName": "n", "KeyType": "RANGE"}],
                      "AttributeDefinitions": [{"AttributeName": "project", "AttributeType": "S"},
                                               {"AttributeName": "n", "AttributeType": "N"}],
                      "ItemCount": 2}}


class FakeServer:
    """Answers table operations from `answers` (a list answers successive calls) and records
    the requests."""

    def __init__(self, **answers: Any) -> None:
        self.answers = {"DescribeTable": DESCRIBE, **answers}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        prefix = "/_squall/api/tables/"
        assert request.url.path.startswith(prefix)
        operation = request.url.path.removeprefix(prefix)
        self.sent.append((operation, json.loads(request.content)))
        answer = self.answers.get(operation, {})
        if isinstance(answer, list):
            answer = answer.pop(0)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def requests(self, operation: str) -> list[dict[str, Any]]:
        return [body for op, body in self.sent if op == operation]

    def run(self, *args: str, input: str | None = None) -> Result:
        settings = Settings(transport=httpx.MockTransport(self))
        return CliRunner().invoke(cli, ["table", *args], obj=settings, input=input,
                                  env={"SQUALL_URL": None, "SQUALL_TOKEN": None})


def error(kind: str, message: str, status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"error": {"type": kind, "message": message}})


def test_json_numbers_are_read_exactly_and_printed_with_their_digits() -> None:
    value = parse_json('{"big": 123456789012345678901234567890, "f": 0.1, "e": 1e-7}', "'ITEM_JSON'")
    assert value == {"big": 123456789012345678901234567890, "f": Decimal("0.1"), "e": Decimal("1E-7")}
    printed = orjson.dumps(jsonable({"n": Decimal("123456789012345678901234567890.5"), "b": b"hi",
                                     "s": {Decimal(2), Decimal(1)}, "l": [Decimal("-0.5")]}))
    assert printed == b'{"n":123456789012345678901234567890.5,"b":"aGk=","s":[1,2],"l":[-0.5]}'


def test_put_sends_a_typed_item_and_says_whether_it_replaced_one() -> None:
    server = FakeServer(PutItem={})
    result = server.run("put", "builds", '{"project": "web", "n": 1, "f": 0.25, "tags": ["a"]}',
                        "--condition", "attribute_not_exists(n)")
    assert result.exit_code == 0 and "stored the item in builds" in result.stdout
    assert server.requests("PutItem") == [{
        "TableName": "builds", "ReturnValues": "ALL_OLD", "ConditionExpression": "attribute_not_exists(n)",
        "Item": {"project": {"S": "web"}, "n": {"N": "1"}, "f": {"N": "0.25"}, "tags": {"L": [{"S": "a"}]}},
    }]


def test_a_false_condition_exits_1_and_bad_input_exits_2() -> None:
    failed = FakeServer(PutItem=error("ConditionalCheckFailedException", "The conditional request failed"))
    result = failed.run("put", "builds", '{"project": "web", "n": 1}', "--condition", "attribute_not_exists(n)")
    assert result.exit_code == 1 and "nothing was written" in result.stderr

    invalid = FakeServer(PutItem=error("ValidationException", "Invalid ConditionExpression: Syntax error"))
    result = invalid.run("put", "builds", '{"project": "web", "n": 1}', "--condition", "n = =")
    assert result.exit_code == 2 and "Syntax error" in result.stderr

    unknown = FakeServer(Scan=error("ResourceNotFoundException", "Requested resource not found"))
    result = unknown.run("scan", "nope")
    assert result.exit_code == 1 and "squall table ls" in result.stderr

    for args in (["put", "builds", "[1]"], ["put", "builds", "{"], ["get", "builds", '{"n": NaN}'],
                 ["put", "builds", '{"n": {"X": 1}}', "--typed"]):
        result = FakeServer().run(*args)
        assert result.exit_code == 2, (args, result.output)


def test_get_prints_the_item_or_exits_1() -> None:
    server = FakeServer(GetItem={"Item": {"project": {"S": "web"}, "n": {"N": "1"}, "raw": {"B": "aGk="}}})
    result = server.run("get", "builds", '{"project": "web", "n": 1}', "--json")
    assert json.loads(result.stdout) == {"project": "web", "n": 1, "raw": "aGk="}
    typed = server.run("get", "builds", '{"project": {"S": "web"}, "n": {"N": "1"}}', "--typed")
    assert json.loads(typed.stdout)["raw"] == {"B": "aGk="}
    assert server.requests("GetItem")[1]["Key"] == {"project": {"S": "web"}, "n": {"N": "1"}}

    missing = FakeServer(GetItem={}).run("get", "builds", '{"project": "web", "n": 2}')
    assert missing.exit_code == 1 and "no item in builds" in missing.stderr


def test_query_reads_key_values_by_type_and_follows_pages_up_to_the_limit() -> None:
    server = FakeServer(Query=[
        {"Items": [{"project": {"S": "web"}, "n": {"N": "9"}}],
         "LastEvaluatedKey": {"project": {"S": "web"}, "n": {"N": "9"}}},
        {"Items": [{"project": {"S": "web"}, "n": {"N": "8"}, "note": {"S": "[bold]x"}}],
         "LastEvaluatedKey": {"project": {"S": "web"}, "n": {"N": "8"}}},
    ])
    result = server.run("query", "builds", "web", "--lte", "9", "--reverse", "--limit", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["project", "n", "note"] and "[bold]x" in lines[2]
    assert """2 items (more: add --start '{"project":"web","n":8}')""" in result.stdout
    first, second = server.requests("Query")
    assert first["ExpressionAttributeValues"] == {":sq_pk": {"S": "web"}, ":sq_sk": {"N": "9"}}
    assert first["Limit"] == 2 and first["ScanIndexForward"] is False and second["Limit"] == 1
    assert second["ExclusiveStartKey"] == {"project": {"S": "web"}, "n": {"N": "9"}}

    bad = FakeServer().run("query", "builds", "web", "--gt", "nine")
    assert bad.exit_code == 2 and "is a number" in bad.stderr


def test_ls_describes_each_table() -> None:
    server = FakeServer(ListTables={"TableNames": ["builds"]})
    listed = json.loads(server.run("ls", "--json").stdout)
    assert listed == [{"name": "builds", "key": {"name": "project", "type": "S"},
                       "sort_key": {"name": "n", "type": "N"}, "items": 2}]
