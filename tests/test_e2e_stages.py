"""Stages end to end: one server, separate namespaces (functions, routes, tables, secrets,
env), reached by path prefix, host name or the CLI's --stage; promote moves exactly what one
stage runs to another."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support import SquallServer, wait_until, write_project

pytestmark = pytest.mark.e2e

MANIFEST = """
name: site
stages:
  staging:
    env: {MODE: rehearsal}
  production:
    host: prod.example.test
    env: {MODE: live}
tables:
  notes: {key: id}
functions:
  page:
    handler: app.page
    secrets: [GREETING]
    triggers:
      - http: "GET /page"
  note:
    handler: app.note
    tables: [notes]
    triggers:
      - http: "POST /notes/{id}"
"""

APP = """
import os, boto3

def page(event, context):
    body = "%s %s %s" % (VERSION, os.environ.get("MODE", "-"), os.environ.get("GREETING", "-"))
    return {"statusCode": 200, "body": body}

def note(event, context):
    table = boto3.resource("dynamodb").Table("notes")
    table.put_item(Item={"id": event["pathParameters"]["id"], "stage": os.environ["SQUALL_STAGE"]})
    return {"statusCode": 201, "body": "ok"}
"""


def project(root: Path, version: str) -> Path:
    return write_project(root / version, {"squall.yaml": MANIFEST, "app.py": f"VERSION = {version!r}\n" + APP})


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    """The root stage runs v1; staging runs v2 (both deployed with the CLI, which also made
    the production stage squall.yaml declares)."""
    root = tmp_path_factory.mktemp("stages")
    server = SquallServer(root / "data").start()
    try:
        server.cli("deploy", str(project(root, "v1")), check=True)
        server.cli("deploy", str(project(root, "v2")), "--stage", "staging", check=True)
        server.cli("secret", "set", "GREETING", input="root-hi", check=True)
        server.cli("secret", "set", "GREETING", "--stage", "staging", input="staging-hi", check=True)
        yield server
    finally:
        server.stop()


def test_each_stage_serves_its_own_version_env_and_secrets(node: SquallServer) -> None:
    assert httpx.get(f"{node.url}/page").text == "v1 - root-hi"
    assert httpx.get(f"{node.url}/staging/page").text == "v2 rehearsal staging-hi"
    assert httpx.get(f"{node.url}/_squall/stages/staging/page").text == "v2 rehearsal staging-hi"


def test_the_cli_reaches_a_stage_with_a_global_or_a_command_option(node: SquallServer) -> None:
    for args in (("--stage", "staging", "invoke", "page"), ("invoke", "page", "--stage", "staging")):
        result = node.cli(*args, check=True)
        assert json.loads(result.stdout)["body"] == "v2 rehearsal staging-hi"
    result = node.cli("invoke", "page", check=True)
    assert json.loads(result.stdout)["body"] == "v1 - root-hi"
    listed = json.loads(node.cli("ls", "--json", "--stage", "staging", check=True).stdout)
    assert {f["name"] for f in listed} == {"page", "note"}


def test_tables_are_separate_and_boto3_in_a_stage_reaches_its_own(node: SquallServer) -> None:
    assert httpx.post(f"{node.url}/staging/notes/a1").status_code == 201
    got = node.cli("table", "get", "notes", '{"id": "a1"}', "--stage", "staging", "--json", check=True)
    assert json.loads(got.stdout)["stage"] == "staging"
    missing = node.cli("table", "get", "notes", '{"id": "a1"}', "--json")  # the root stage's own table
    assert missing.returncode == 1 and "no item in notes" in missing.stderr


def test_stages_are_listed_with_how_requests_reach_them(node: SquallServer) -> None:
    listed = {s["name"]: s for s in json.loads(node.cli("stages", "--json", check=True).stdout)}
    assert listed["default"]["functions"] == 2
    assert listed["staging"]["path_prefix"] == "/staging" and listed["staging"]["env"] == ["MODE"]
    assert listed["production"]["host"] == "prod.example.test" and listed["production"]["path_prefix"] is None


def test_promote_deploys_exactly_what_the_source_runs(node: SquallServer) -> None:
    node.cli("secret", "set", "GREETING", "--stage", "production", input="prod-hi", check=True)
    result = node.cli("promote", "staging", "production", "--json", check=True)
    promoted = json.loads(result.stdout)
    assert {f["name"] for f in promoted["functions"]} == {"page", "note"}
    assert all(f["same_code"] for f in promoted["functions"])

    answer = httpx.get(f"{node.url}/page", headers={"host": "prod.example.test"})
    assert answer.text == "v2 live prod-hi"  # staging's code, production's env and secret
    staging = json.loads(node.cli("ls", "--json", "--stage", "staging", check=True).stdout)
    production = json.loads(node.cli("ls", "--json", "--stage", "production", check=True).stdout)
    assert {f["name"]: f["code_hash"] for f in staging} == {f["name"]: f["code_hash"] for f in production}

    again = json.loads(node.cli("promote", "staging", "production", "--json", check=True).stdout)
    assert not again["changed"]


@pytest.mark.parametrize(("args", "message", "code"), [
    (("promote", "nosuch", "staging"), "no stage named 'nosuch'", 2),
    (("promote", "staging", "staging"), "itself", 2),
    (("invoke", "page", "--stage", "nosuch"), "no stage named 'nosuch'", 1),
])
def test_bad_stage_input_is_refused(node: SquallServer, args: tuple[str, ...], message: str, code: int) -> None:
    before = node.cli("stages", "--json", check=True).stdout
    result = node.cli(*args)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr
    assert node.cli("stages", "--json", check=True).stdout == before


def test_a_bad_stage_name_or_clashing_route_is_refused(tmp_path: Path, node: SquallServer) -> None:
    result = node.cli("deploy", str(project(tmp_path, "v3")), "--stage", "Bad_Name")
    assert result.returncode == 2 and "stage name" in result.stderr
    with node.api() as api:
        clash = api.put("/_squall/api/stages/other", json={"host": "prod.example.test"})
    assert clash.status_code == 409 and "production" in clash.json()["error"]["message"]
    assert "other" not in {s["name"] for s in json.loads(node.cli("stages", "--json", check=True).stdout)}


def test_a_stage_made_through_one_node_is_served_by_another(tmp_path: Path, fresh_postgres_url: str) -> None:
    slow = {"SQUALL_STORE_POLL_SECONDS": "60", "SQUALL_EVENT_POLL_SECONDS": "60", "SQUALL_QUEUE_POLL_SECONDS": "60"}
    a = SquallServer(tmp_path / "data", store=fresh_postgres_url, environ=slow).start()
    b = SquallServer(tmp_path / "data", store=fresh_postgres_url, environ=slow).start()
    try:
        a.cli("deploy", str(project(tmp_path, "v5")), "--stage", "staging", check=True)
        a.cli("secret", "set", "GREETING", "--stage", "staging", input="pg-hi", check=True)
        wait_until(lambda: httpx.get(f"{b.url}/staging/page").text == "v5 rehearsal pg-hi", timeout=5)
        assert httpx.get(f"{b.url}/page").status_code == 404  # nothing deployed at the root
    finally:
        a.stop()
        b.stop()
