"""Table operations per second: PutItem, GetItem and a Query of 100 items, through boto3
against squall's DynamoDB endpoint and against moto's DynamoDB server mode (the usual local
stand-in), measured in the same run, and through squall.sdk.tables from inside a function.

    python bench/tables.py [--ops 2000] [--clients 1,4] [--store sqlite|postgres]

boto3 clients run in threads of this process (one client each); the SDK rows run the same
loop inside a deployed function, where squall.sdk talks to its node. Needs `moto[server]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from async_throughput import drop_database, postgres_database  # noqa: E402
from loadgen import LoadSummary  # noqa: E402
from stats import percentile  # noqa: E402
from wrk import request_script, run_wrk, wrk_available  # noqa: E402

from tests.support import SquallServer, free_port, wait_until, write_project  # noqa: E402

TABLE = "bench"
PROJECT = {
    "squall.yaml": """
        name: tables-bench
        tables:
          bench: {key: {name: id, type: S}, sort_key: {name: seq, type: N}}
        functions:
          sdk_bench:
            handler: app.handler
            timeout: 300
            tables: [bench]
    """,
    "app.py": """
import time
from squall.sdk import tables

def handler(event, context):
    table, ops, timings = tables.table("bench"), event["ops"], {}
    started = time.perf_counter()
    for n in range(ops):
        table.put({"id": f"sdk-{n % 500}", "seq": n, "body": "x" * 100})
    timings["PutItem"] = time.perf_counter() - started
    started = time.perf_counter()
    for n in range(ops):
        table.get({"id": f"sdk-{n % 500}", "seq": n})
    timings["GetItem"] = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(event["queries"]):
        assert len(table.query("query", limit=100).items) == 100
    timings["Query 100"] = time.perf_counter() - started
    return timings
""",
}
KEY_SCHEMA = {"KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
              "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"},
                                       {"AttributeName": "seq", "AttributeType": "N"}]}


def client(endpoint: str, key: str, secret: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 0}))


def prepare(endpoint: str, key: str, secret: str, create: bool) -> None:
    dynamodb = client(endpoint, key, secret)
    if create:
        dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST", **KEY_SCHEMA)
    for n in range(0, 100, 25):
        dynamodb.batch_write_item(RequestItems={TABLE: [
            {"PutRequest": {"Item": {"id": {"S": "query"}, "seq": {"N": str(i)}, "body": {"S": "x" * 100}}}}
            for i in range(n, n + 25)]})


def operations(dynamodb: Any, worker: int) -> dict[str, Callable[[int], Any]]:
    return {
        "PutItem": lambda n: dynamodb.put_item(TableName=TABLE, Item={
            "id": {"S": f"w{worker}-{n % 500}"}, "seq": {"N": str(n)}, "body": {"S": "x" * 100}}),
        "GetItem": lambda n: dynamodb.get_item(TableName=TABLE, Key={
            "id": {"S": f"w{worker}-{n % 500}"}, "seq": {"N": str(n)}}),
        "Query 100": lambda n: dynamodb.query(TableName=TABLE, KeyConditionExpression="id = :id",
                                              ExpressionAttributeValues={":id": {"S": "query"}}, Limit=100),
    }


def measure(endpoint: str, key: str, secret: str, operation: str, ops: int, clients: int) -> tuple[float, list[float]]:
    """(ops per second, latencies in ms) of `operation` from `clients` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = ops // clients

    def work(worker: int) -> None:
        run = operations(client(endpoint, key, secret), worker)[operation]
        run(0)  # warm the client
        mine = []
        for n in range(per_client):
            started = time.perf_counter()
            run(n)
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per_client * clients / (time.perf_counter() - started), latencies


def signed_request(endpoint: str, key: str, secret: str, operation: str) -> tuple[str, dict[str, str], str]:
    """(path, headers, body) of one SigV4-signed request, replayable for the signature's 15 minutes."""
    bodies = {
        "PutItem": {"TableName": TABLE, "Item": {"id": {"S": "replay"}, "seq": {"N": "1"}, "body": {"S": "x" * 100}}},
        "GetItem": {"TableName": TABLE, "Key": {"id": {"S": "query"}, "seq": {"N": "1"}}},
        "Query 100": {"TableName": TABLE, "KeyConditionExpression": "id = :id",
                      "ExpressionAttributeValues": {":id": {"S": "query"}}, "Limit": 100},
    }
    target = operation.split()[0] if operation != "Query 100" else "Query"
    body = json.dumps(bodies[operation])
    request = AWSRequest(method="POST", url=endpoint.rstrip("/") + "/", data=body,
                         headers={"X-Amz-Target": f"DynamoDB_20120810.{target}",
                                  "Content-Type": "application/x-amz-json-1.0"})
    SigV4Auth(Credentials(key, secret), "dynamodb", "us-east-1").add_auth(request)
    return urlsplit(request.url).path, {k: str(v) for k, v in request.headers.items()}, body


def capacity(endpoint: str, key: str, secret: str, operation: str, clients: int, seconds: float,
             folder: Path) -> LoadSummary:
    """Requests/s the server answers with `clients` connections replaying one signed request (wrk)."""
    path, headers, body = signed_request(endpoint, key, secret, operation)
    script = request_script(str(folder / "request.lua"), "POST", headers, body)
    summary = run_wrk(int(urlsplit(endpoint).port or 80), path, clients, seconds, script)
    if summary.errors:
        raise RuntimeError(f"{summary.errors} requests failed against {endpoint}")
    return summary


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/moto-api/").status_code < 500, timeout=30)
    return process, url


def sdk_rows(server: SquallServer, ops: int, queries: int) -> dict[str, float]:
    result = server.cli("invoke", "sdk_bench", "--data", json.dumps({"ops": ops, "queries": queries}), "--json",
                        check=True)
    timings = json.loads(result.stdout)["payload"]
    return {name: (queries if name.startswith("Query") else ops) / seconds for name, seconds in timings.items()}


def capacity_table(targets: dict[str, tuple[str, str, str]], clients: int, seconds: float, folder: Path) -> Table:
    table = Table(title=f"server capacity: wrk replaying one signed request, {clients} connections")
    for column in ("operation", "server", "req/s", "p50 ms", "p99 ms", "vs moto"):
        table.add_column(column, justify="left" if column in ("operation", "server") else "right")
    for operation in ("PutItem", "GetItem", "Query 100"):
        rates: dict[str, float] = {}
        for name, (endpoint, key, secret) in reversed(list(targets.items())):
            summary = capacity(endpoint, key, secret, operation, clients, seconds, folder)
            rates[name] = summary.rps
            table.add_row(operation, name, f"{summary.rps:,.0f}", f"{summary.p50:.2f}", f"{summary.p99:.2f}",
                          f"{summary.rps / rates['moto']:.1f}x")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--clients", default="1,4")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--capacity-clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    console = Console()
    database = postgres_database() if args.store == "postgres" else None
    with tempfile.TemporaryDirectory() as tmp:
        server = SquallServer(Path(tmp) / "data", store=database[0] if database else None).start()
        moto, moto_url = start_moto()
        try:
            server.cli("deploy", str(write_project(Path(tmp) / "project", PROJECT)), check=True)
            targets = {"squall": (f"{server.url}/_squall/aws/dynamodb", "admin", server.token),
                       "moto": (moto_url, "testing", "testing")}
            for name, (endpoint, key, secret) in targets.items():
                prepare(endpoint, key, secret, create=name == "moto")
            table = Table(title=f"table operations ({args.store} store for squall)")
            for column in ("operation", "path", "clients", "ops/s", "p50 ms", "p99 ms", "vs moto"):
                table.add_column(column, justify="left" if column in ("operation", "path") else "right")
            for operation in ("PutItem", "GetItem", "Query 100"):
                for clients in (int(c) for c in args.clients.split(",")):
                    count = args.queries if operation.startswith("Query") else args.ops
                    rates = {}
                    for name, (endpoint, key, secret) in reversed(list(targets.items())):
                        rate, latencies = measure(endpoint, key, secret, operation, count, clients)
                        rates[name] = rate
                        table.add_row(operation, f"boto3 -> {name}", str(clients), f"{rate:,.0f}",
                                      f"{percentile(latencies, 50):.2f}", f"{percentile(latencies, 99):.2f}",
                                      f"{rate / rates['moto']:.1f}x")
            prepare_sdk = server.cli("invoke", "sdk_bench", "--data", json.dumps({"ops": 10, "queries": 1}))
            if prepare_sdk.returncode == 0:
                for operation, rate in sdk_rows(server, args.ops, args.queries).items():
                    table.add_row(operation, "squall.sdk in a function", "1", f"{rate:,.0f}", "", "", "")
            console.print(table)
            if wrk_available():
                console.print(capacity_table(targets, args.capacity_clients, args.seconds, Path(tmp)))
        finally:
            moto.terminate()
            server.stop()
            if database:
                drop_database(database[1])


if __name__ == "__main__":
    main()
