"""Tables end to end: function code using squall.sdk.tables on the tables its manifest grants
it, and `squall table ...` on the same server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import SquallServer, serving

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: ci
        tables:
          builds:
            key: project
            sort_key: {name: n, type: N}
          logs:
            key: day
            sort_key: at
          counters:
            key: name
        functions:
          api:
            handler: app.api
            tables: [builds, logs, counters]
          stranger:
            handler: app.stranger
    """,
    "app.py": """
import base64
from decimal import Decimal

from squall import sdk
from squall.sdk import tables


def plain(value):
    '''Values as JSON can return them, with their Python type named where it matters.'''
    if isinstance(value, Decimal):
        return {"Decimal": str(value)}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, set):
        return {"set": sorted(plain(v) if not isinstance(v, (str, Decimal)) else str(v) for v in value)}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def failure(call):
    try:
        call()
    except tables.ConditionFailed as exc:
        return {"condition_failed": exc.kind}
    except tables.TransactionCanceled as exc:
        return {"cancelled": exc.reasons}
    except sdk.SdkError as exc:
        return {"status": exc.status, "kind": exc.kind, "message": exc.message}
    return "no error"


def crud():
    builds = tables.table("builds")
    item = {"project": "web", "n": 1, "status": "queued", "tags": {"b", "a"}, "raw": b"\\x00\\x01",
            "score": Decimal("1.50"), "ratio": 0.1, "meta": {"list": [1, None, True, "x"]}}
    first = builds.put(item, condition="attribute_not_exists(n)", return_old=True)
    again = failure(lambda: builds.put(item, condition="attribute_not_exists(n)"))
    got = builds.get({"project": "web", "n": 1}, consistent=True)
    updated = builds.update({"project": "web", "n": 1}, "SET #s = :s ADD tries :one",
                            names={"s": "status"}, values={"s": "done", ":one": 1})
    guarded = failure(lambda: builds.delete({"project": "web", "n": 1}, condition="#s = :s",
                                            names={"#s": "status"}, values={":s": "running"}))
    deleted = builds.delete({"project": "web", "n": 1}, return_old=True)
    return plain({"first": first, "again": again, "got": got, "types": sorted({type(v).__name__ for v in got.values()}),
                  "updated": {k: updated[k] for k in ("status", "tries")}, "guarded": guarded,
                  "deleted": deleted["status"], "gone": builds.get({"project": "web", "n": 1})})


def query():
    builds, logs = tables.table("builds"), tables.table("logs")
    builds.batch_write(put=[{"project": "web", "n": n, "odd": n % 2 == 1} for n in range(1, 31)]
                       + [{"project": "api", "n": n} for n in range(1, 6)])
    logs.batch_write(put=[{"day": "d1", "at": at} for at in ("09:00", "09:30", "10:00", "11:15")])
    numbers = lambda items: [int(i["n"]) for i in items]
    newest = builds.query("web", limit=3, forward=False)
    after = builds.query("web", limit=3, forward=False, start=newest.next)
    return {
        "gte": numbers(builds.query("web", gte=28)),
        "gt": numbers(builds.query("web", gt=28)),
        "lt": numbers(builds.query("web", lt=3)),
        "lte": numbers(builds.query("web", lte=3)),
        "eq": numbers(builds.query("web", eq=7)),
        "between": numbers(builds.query("web", between=(10, 12))),
        "begins_with": [i["at"] for i in logs.query("d1", begins_with="09:")],
        "newest": numbers(newest), "next": plain(newest.next), "after": numbers(after),
        "all": len(list(builds.query_all("web"))),
        "filtered": numbers(builds.query_all("web", lte=6, filter="odd = :yes", values={"yes": True})),
        "scan": len(list(builds.scan_all())),
        "scan_page": len(builds.scan(limit=4)),
        "scan_filtered": sorted(numbers(builds.scan_all(filter="project = :p", values={"p": "api"}))),
        "batch_get": numbers(builds.batch_get([{"project": "web", "n": 9}, {"project": "web", "n": 99},
                                               {"project": "api", "n": 2}])),
    }


def many():
    builds = tables.table("builds")
    builds.batch_write(put=[{"project": "bulk", "n": n} for n in range(260)])
    got = builds.batch_get([{"project": "bulk", "n": n} for n in range(0, 260, 2)])
    builds.batch_write(delete=[{"project": "bulk", "n": n} for n in range(0, 260, 2)])
    return {"got": len(got), "ordered": [int(i["n"]) for i in got] == list(range(0, 260, 2)),
            "left": len(list(builds.query_all("bulk")))}


def transact():
    put = tables.Put("builds", {"project": "tx", "n": 1}, condition="attribute_not_exists(n)")
    count = tables.Update("counters", {"name": "builds"}, "ADD total :one", values={"one": 1})
    tables.transact_write([put, count])
    cancelled = failure(lambda: tables.transact_write([
        tables.Update("counters", {"name": "builds"}, "ADD total :one", values={"one": 1}),
        tables.Put("builds", {"project": "tx", "n": 1}, condition="attribute_not_exists(n)"),
    ]))
    return {"cancelled": cancelled, "total": int(tables.table("counters").get({"name": "builds"})["total"])}


def errors():
    return {
        "missing_table": failure(lambda: tables.table("nope").get({"id": "x"})),
        "bad_expression": failure(lambda: tables.table("builds").update({"project": "web", "n": 1}, "SET = 1")),
        "wrong_key_type": failure(lambda: tables.table("builds").get({"project": "web", "n": "one"})),
    }


def api(event, context):
    return {"crud": crud, "query": query, "many": many, "transact": transact, "errors": errors}[event["action"]]()


def stranger(event, context):
    return failure(lambda: tables.table("builds").get({"project": "web", "n": 1}))
""",
}


def invoke(node: SquallServer, function: str, action: str = "") -> Any:
    result = node.cli("invoke", function, "--data", json.dumps({"action": action}))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serving(tmp_path_factory.mktemp("tables"), PROJECT) as server:
        yield server


def test_functions_put_get_update_and_delete_items_with_conditions(node: SquallServer) -> None:
    result = invoke(node, "api", "crud")

    assert result["first"] is None and result["again"] == {"condition_failed": "ConditionalCheckFailedException"}
    assert result["got"] == {
        "project": "web", "n": {"Decimal": "1"}, "status": "queued", "tags": {"set": ["a", "b"]},
        "raw": {"bytes": "AAE="}, "score": {"Decimal": "1.5"}, "ratio": {"Decimal": "0.1"},
        "meta": {"list": [{"Decimal": "1"}, None, True, "x"]},
    }
    assert result["types"] == ["Decimal", "bytes", "dict", "set", "str"]
    assert result["updated"] == {"status": "done", "tries": {"Decimal": "1"}}
    assert result["guarded"] == {"condition_failed": "ConditionalCheckFailedException"}
    assert result["deleted"] == "done" and result["gone"] is None


def test_functions_query_scan_and_batch(node: SquallServer) -> None:
    result = invoke(node, "api", "query")

    assert result["gte"] == [28, 29, 30] and result["gt"] == [29, 30]
    assert result["lt"] == [1, 2] and result["lte"] == [1, 2, 3] and result["eq"] == [7]
    assert result["between"] == [10, 11, 12]
    assert result["begins_with"] == ["09:00", "09:30"]
    assert result["newest"] == [30, 29, 28] and result["after"] == [27, 26, 25]
    assert result["next"] == {"project": "web", "n": {"Decimal": "28"}}
    assert result["all"] == 30 and result["filtered"] == [1, 3, 5]
    assert result["scan"] >= 35 and result["scan_page"] == 4 and result["scan_filtered"] == [1, 2, 3, 4, 5]
    assert result["batch_get"] == [9, 2]


def test_batches_larger_than_dynamodbs_limits_are_split(node: SquallServer) -> None:
    assert invoke(node, "api", "many") == {"got": 130, "ordered": True, "left": 130}


def test_transactions_apply_all_or_nothing(node: SquallServer) -> None:
    result = invoke(node, "api", "transact")
    assert result == {"cancelled": {"cancelled": [None, "ConditionalCheckFailed"]}, "total": 1}


def test_errors_carry_the_servers_type_and_message(node: SquallServer) -> None:
    result = invoke(node, "api", "errors")
    for name in ("missing_table", "bad_expression", "wrong_key_type"):
        assert result[name]["status"] in (400, 403), result
        assert result[name]["message"], result
    assert result["bad_expression"]["kind"] == "ValidationException"
    assert result["wrong_key_type"]["kind"] == "ValidationException"


def test_a_function_without_the_grant_gets_access_denied(node: SquallServer) -> None:
    result = invoke(node, "stranger")
    assert result["status"] == 403 and "AccessDenied" in result["kind"]
    assert "builds" in result["message"] and "tables" in result["message"]


# -- the CLI --------------------------------------------------------------------------


def table(node: SquallServer, *args: str, input: str | None = None) -> Any:
    result = node.cli("table", *args, input=input)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout) if "--json" in args else result.stdout


def test_cli_lists_tables_with_their_keys(node: SquallServer) -> None:
    listed = {t["name"]: t for t in table(node, "ls", "--json")}
    assert listed["builds"]["key"] == {"name": "project", "type": "S"}
    assert listed["builds"]["sort_key"] == {"name": "n", "type": "N"}
    assert listed["counters"]["sort_key"] is None
    text = table(node, "ls")
    assert "TABLE" in text and "project (S)" in text and "n (N)" in text


def test_cli_puts_gets_queries_scans_and_deletes_with_exact_numbers(node: SquallServer) -> None:
    big = "12345678901234567890123456789012345678"
    for n in (1, 2, 3):
        item = f'{{"project": "cli", "n": {n}, "big": {big}, "f": 0.1, "ok": true, "none": null}}'
        table(node, "put", "builds", item)
    got = node.cli("table", "get", "builds", '{"project": "cli", "n": 2}', "--json")
    assert got.returncode == 0 and f'"big": {big}' in got.stdout and '"f": 0.1' in got.stdout
    assert json.loads(got.stdout) == {"project": "cli", "n": 2, "big": int(big), "f": 0.1, "ok": True, "none": None}

    typed = table(node, "get", "builds", '{"project": {"S": "cli"}, "n": {"N": "2"}}', "--typed", "--json")
    assert typed["big"] == {"N": big} and typed["ok"] == {"BOOL": True}

    query = table(node, "query", "builds", "cli", "--gte", "2", "--json")
    assert [i["n"] for i in query["items"]] == [2, 3] and query["next"] is None
    first = table(node, "query", "builds", "cli", "--reverse", "--limit", "1", "--json")
    assert [i["n"] for i in first["items"]] == [3] and first["next"] == {"project": "cli", "n": 3}
    rest = table(node, "query", "builds", "cli", "--reverse", "--start", json.dumps(first["next"]), "--json")
    assert [i["n"] for i in rest["items"]] == [2, 1]
    text = table(node, "query", "builds", "cli", "--between", "1", "2")
    assert text.splitlines()[0].split()[:2] == ["project", "n"] and "2 items" in text

    scanned = table(node, "scan", "builds", "--filter", "project = :p", "--values", '{":p": "cli"}', "--json")
    assert scanned["count"] == 3
    assert "3 items" in table(node, "scan", "builds", "--filter", "project = :p", "--values", '{"p": "cli"}')

    deleted = table(node, "delete", "builds", '{"project": "cli", "n": 1}', "--json")
    assert deleted["old"]["n"] == 1
    assert "no item" in table(node, "delete", "builds", '{"project": "cli", "n": 1}')


def test_cli_put_reads_stdin_and_typed_sets(node: SquallServer) -> None:
    table(node, "put", "builds", "-", "--typed",
          input='{"project": {"S": "stdin"}, "n": {"N": "1"}, "tags": {"SS": ["x", "y"]}}')
    assert table(node, "get", "builds", '{"project": "stdin", "n": 1}', "--json")["tags"] == ["x", "y"]


def test_cli_exit_codes(node: SquallServer) -> None:
    table(node, "put", "builds", '{"project": "codes", "n": 1}')
    condition = node.cli("table", "put", "builds", '{"project": "codes", "n": 1}',
                         "--condition", "attribute_not_exists(n)")
    assert condition.returncode == 1 and "condition" in condition.stderr

    missing_item = node.cli("table", "get", "builds", '{"project": "codes", "n": 2}')
    assert missing_item.returncode == 1 and "no item" in missing_item.stderr

    unknown = node.cli("table", "scan", "nope")
    assert unknown.returncode == 1 and "squall table ls" in unknown.stderr

    bad_json = node.cli("table", "put", "builds", '{"project": ')
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr

    bad_expression = node.cli("table", "put", "builds", '{"project": "codes", "n": 3}', "--condition", "n = =")
    assert bad_expression.returncode == 2 and "Invalid ConditionExpression" in bad_expression.stderr

    bad_number = node.cli("table", "query", "builds", "codes", "--gt", "one")
    assert bad_number.returncode == 2 and "number" in bad_number.stderr

    two_conditions = node.cli("table", "query", "builds", "codes", "--gt", "1", "--lt", "5")
    assert two_conditions.returncode == 2


def test_the_sdk_endpoint_refuses_the_admin_token(node: SquallServer) -> None:
    with node.api() as api:
        response = api.post("/_squall/sdk/tables/GetItem",
                            json={"TableName": "builds", "Key": {"project": {"S": "web"}, "n": {"N": "1"}}})
    assert response.status_code == 401
