"""Aliases, weighted routing and rollback end to end: the CLI moves them, and HTTP routes,
qualified CLI invokes and boto3's Qualifier reach the versions they point at."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import boto3
import httpx
import pytest
from botocore.config import Config

from tests.support import SquallServer, page_site, wait_until, write_project

pytestmark = pytest.mark.e2e


def project(version: str) -> dict[str, str]:
    # the instance's version number (context.function_version says $LATEST for unqualified calls)
    return page_site(f"'{version} ' + os.environ['AWS_LAMBDA_FUNCTION_VERSION']", imports="import os\n",
                     triggers=('- http: "GET /page"', '- http: "GET /stable"\n  alias: stable'))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    """A server with versions 1, 2 and 3 of `page` deployed (bodies `vN N`)."""
    root = tmp_path_factory.mktemp("aliases")
    server = SquallServer(root / "data").start()
    try:
        for n in (1, 2, 3):
            server.cli("deploy", str(write_project(root / f"v{n}", project(f"v{n}"))), check=True)
        yield server
    finally:
        server.stop()


def aliases(node: SquallServer) -> dict[str, dict[str, int]]:
    listed = json.loads(node.cli("alias", "ls", "page", "--json", check=True).stdout)
    return {a["name"]: a["weights"] for a in listed}


def invoke_body(node: SquallServer, target: str) -> str:
    result = node.cli("invoke", target, check=True)
    return str(json.loads(result.stdout)["body"])


def lambda_client(node: SquallServer) -> Any:
    return boto3.client("lambda", endpoint_url=f"{node.url}/_squall/aws/lambda", region_name="us-east-1",
                        aws_access_key_id="admin", aws_secret_access_key=node.token,
                        config=Config(retries={"max_attempts": 0}))


def test_unqualified_calls_reach_live_which_each_deploy_moves(node: SquallServer) -> None:
    assert aliases(node)["live"] == {"3": 100}
    response = httpx.get(f"{node.url}/page")
    assert (response.text, response.headers["x-squall-version"]) == ("v3 3", "3")
    assert invoke_body(node, "page") == "v3 3"


def test_a_route_to_an_alias_that_is_not_set_says_so(node: SquallServer) -> None:
    node.cli("alias", "rm", "page", "stable")  # whatever an earlier test left
    response = httpx.get(f"{node.url}/stable")
    assert response.status_code == 503
    assert "stable" in response.json()["message"]


def test_alias_set_reaches_its_version_by_route_cli_and_boto3(node: SquallServer) -> None:
    node.cli("alias", "set", "page", "stable", "2", check=True)

    response = httpx.get(f"{node.url}/stable")
    assert (response.text, response.headers["x-squall-version"]) == ("v2 2", "2")
    assert invoke_body(node, "page:stable") == "v2 2"
    assert invoke_body(node, "page:1") == "v1 1"  # a version no alias points at
    client = lambda_client(node)
    for qualifier, body in (("stable", "v2 2"), ("1", "v1 1"), ("$LATEST", "v3 3")):
        answer = client.invoke(FunctionName="page", Qualifier=qualifier, Payload=b"{}")
        assert json.loads(answer["Payload"].read())["body"] == body
        assert answer["ExecutedVersion"] == body[-1]
    answer = client.invoke(FunctionName="page:stable", Payload=b"{}")
    assert json.loads(answer["Payload"].read())["body"] == "v2 2"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="page", Qualifier="nosuch", Payload=b"{}")


def test_weights_split_calls_and_each_answer_names_its_version_in_header_and_logs(node: SquallServer) -> None:
    result = node.cli("alias", "set", "page", "stable", "--weights", "1=50,3=50", "--json", check=True)
    assert json.loads(result.stdout)["weights"] == {"1": 50, "3": 50}

    seen: Counter[str] = Counter()
    with httpx.Client(base_url=node.url) as client:
        answers = [client.get("/stable") for _ in range(200)]
    for answer in answers:
        version = answer.headers["x-squall-version"]
        assert answer.text == f"v{version} {version}"
        seen[version] += 1
    assert set(seen) == {"1", "3"} and min(seen.values()) > 40  # 100 +- 7 each, by the binomial

    last = answers[-1]
    lines = node.wait_logs("page", last.headers["apigw-requestid"])
    assert {line["version"] for line in lines} == {int(last.headers["x-squall-version"])}
    assert any(f"Version: {last.headers['x-squall-version']}" in line["message"] for line in lines)


def test_rollback_moves_live_back_at_once_and_further_back_when_repeated(node: SquallServer) -> None:
    node.cli("alias", "set", "page", "live", "3", check=True)
    started = time.monotonic()
    result = node.cli("rollback", "page", "--json", check=True)
    assert json.loads(result.stdout) == {"function": "page", "alias": "live", "from": {"3": 100}, "to": {"2": 100}}
    assert httpx.get(f"{node.url}/page").text == "v2 2"  # served when the command returns
    assert time.monotonic() - started < 5  # a CLI start and one API call, nothing rebuilt

    node.cli("rollback", "page", check=True)
    assert httpx.get(f"{node.url}/page").text == "v1 1"
    node.cli("rollback", "page", "--to", "3", check=True)
    assert httpx.get(f"{node.url}/page").text == "v3 3"
    assert aliases(node)["live"] == {"3": 100}


def test_rollback_of_a_canary_goes_back_to_the_version_it_split_from(node: SquallServer) -> None:
    node.cli("alias", "set", "page", "stable", "2", check=True)
    node.cli("alias", "set", "page", "stable", "--weights", "2=90,3=10", check=True)
    result = node.cli("rollback", "page", "--alias", "stable", "--json", check=True)
    assert json.loads(result.stdout)["to"] == {"2": 100}
    assert {httpx.get(f"{node.url}/stable").text for _ in range(30)} == {"v2 2"}


@pytest.mark.parametrize(("args", "message"), [
    (("alias", "set", "page", "stable", "99"), "no version 99"),
    (("alias", "set", "page", "stable", "--weights", "1=50,2=40"), "sum to 90"),
    (("alias", "set", "page", "stable", "--weights", "1=x"), "VERSION=PERCENT"),
    (("alias", "set", "page", "7up!", "1"), "alias name"),
    (("alias", "set", "page", "stable"), "VERSION or --weights"),
    (("alias", "rm", "page", "live"), "cannot be removed"),
    (("rollback", "page", "--to", "42"), "no version 42"),
])
def test_bad_alias_input_exits_2_and_changes_nothing(node: SquallServer, args: tuple[str, ...], message: str) -> None:
    before = aliases(node)
    result = node.cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert aliases(node) == before


def test_the_server_checks_weights_too(node: SquallServer) -> None:
    before = aliases(node)
    with node.api() as api:
        response = api.put("/_squall/api/functions/page/aliases/stable", json={"weights": {"1": 60, "2": 60}})
    assert response.status_code == 400
    assert "sum to 120" in response.json()["error"]["message"]
    assert aliases(node) == before


def test_aliases_of_an_unknown_function_are_not_found(node: SquallServer) -> None:
    result = node.cli("alias", "set", "nosuch", "prod", "1")
    assert result.returncode == 1
    assert "Function not found: nosuch" in result.stderr


def test_an_alias_move_through_one_node_reaches_another_at_once(tmp_path: Path, fresh_postgres_url: str) -> None:
    slow = {"SQUALL_STORE_POLL_SECONDS": "60", "SQUALL_EVENT_POLL_SECONDS": "60", "SQUALL_QUEUE_POLL_SECONDS": "60"}
    a = SquallServer(tmp_path / "data", store=fresh_postgres_url, environ=slow).start()
    b = SquallServer(tmp_path / "data", store=fresh_postgres_url, environ=slow).start()
    try:
        for n in (1, 2):
            a.cli("deploy", str(write_project(tmp_path / f"v{n}", project(f"v{n}"))), check=True)
        wait_until(lambda: httpx.get(f"{b.url}/page").text == "v2 2", timeout=5)
        a.cli("rollback", "page", check=True)
        wait_until(lambda: httpx.get(f"{b.url}/page").text == "v1 1", timeout=1.5, interval=0.02)
        a.cli("alias", "set", "page", "stable", "2", check=True)
        wait_until(lambda: httpx.get(f"{b.url}/stable").text == "v2 2", timeout=1.5, interval=0.02)
    finally:
        a.stop()
        b.stop()


def test_a_deploy_after_a_rollback_serves_what_it_deploys(tmp_path: Path) -> None:
    server = SquallServer(tmp_path / "data").start()
    try:
        for n in (1, 2):
            server.cli("deploy", str(write_project(tmp_path / f"v{n}", project(f"v{n}"))), check=True)
        server.cli("rollback", "page", check=True)
        assert httpx.get(f"{server.url}/page").text == "v1 1"

        # The rolled-back code again: not "unchanged" (live runs v1), a new version that serves.
        result = server.cli("deploy", str(tmp_path / "v2"), "--json", check=True)
        assert json.loads(result.stdout)["functions"][0]["version"] == 3
        assert httpx.get(f"{server.url}/page").text == "v2 3"
        # Deploying what live runs changes nothing.
        again = server.cli("deploy", str(tmp_path / "v2"), "--json", check=True)
        assert not json.loads(again.stdout)["changed"]
    finally:
        server.stop()


def events_project(version: str) -> dict[str, str]:
    return {
        "squall.yaml": """
            name: ev
            topics: {news: {}}
            queues: {jobs: {}}
            functions:
              work:
                handler: app.work
                retries: 0
                triggers:
                  - topic: news
                    alias: stable
                  - queue: jobs
                    alias: stable
        """,
        "app.py": f"def work(event, context):\n"
                  f"    if event.get('fail'):\n        raise ValueError('asked to fail')\n"
                  f"    print('ran {version}')\n    return '{version}'\n",
    }


def test_events_reach_the_alias_their_trigger_or_call_names(tmp_path: Path) -> None:
    server = SquallServer(tmp_path / "data").start()
    try:
        for n in (1, 2):
            server.cli("deploy", str(write_project(tmp_path / f"v{n}", events_project(f"v{n}"))), check=True)
        server.cli("alias", "set", "work", "stable", "1", check=True)

        def ran(version: int, since: float) -> bool:
            return any(line["message"] == f"ran v{version}" and line["version"] == version
                       for line in server.logs("work", since=since))

        started = time.time()
        server.cli("publish", "news", "hello", check=True)
        wait_until(lambda: ran(1, started), timeout=10)
        started = time.time()
        server.cli("send", "jobs", "{}", check=True)
        wait_until(lambda: ran(1, started), timeout=10)
        assert not ran(2, started)

        queued = json.loads(server.cli("invoke", "work:stable", "--async", "--json", check=True).stdout)
        lines = server.wait_logs("work", queued["requestId"])
        assert {line["version"] for line in lines} == {1}
        plain = json.loads(server.cli("invoke", "work", "--async", "--json", check=True).stdout)
        assert {line["version"] for line in server.wait_logs("work", plain["requestId"])} == {2}

        client = lambda_client(server)
        answer = client.invoke(FunctionName="work", Qualifier="1", InvocationType="Event", Payload=b"{}")
        assert {line["version"] for line in server.wait_logs("work", answer["ResponseMetadata"]["RequestId"])} == {1}

        failed = json.loads(server.cli("invoke", "work:1", "--async", "--data", '{"fail": true}', "--json",
                                       check=True).stdout)
        dead = wait_until(lambda: json.loads(server.cli("dlq", "ls", "work", "--json", check=True).stdout))
        assert [d["id"] for d in dead] == [failed["requestId"]]
        server.cli("dlq", "purge", "work", "--yes", check=True)
        assert json.loads(server.cli("dlq", "ls", "work", "--json", check=True).stdout) == []

        unknown = server.cli("invoke", "work:nosuch", "--async")
        assert unknown.returncode == 1 and "no alias nosuch" in unknown.stderr
    finally:
        server.stop()
