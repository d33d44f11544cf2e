"""Nodes sharing one PostgreSQL store wake each other with store notices (LISTEN/NOTIFY)
instead of waiting for their polls: every test sets the polls to a minute, so only a
notice can make the other node act within the few seconds allowed."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from squall.store.events import NewEvent
from squall.store.postgres import PostgresStore
from tests.support import RECORDER_CLIENT, Recorder, SquallServer, page_site, wait_until, write_project

pytestmark = pytest.mark.e2e

SLOW_POLLS = {"SQUALL_EVENT_POLL_SECONDS": "60", "SQUALL_QUEUE_POLL_SECONDS": "60",
              "SQUALL_STORE_POLL_SECONDS": "60"}
AT_ONCE = 1.5
"""Seconds within which the other node must act (its polls would take 60)."""


def node(data_dir: Path, store: str, name: str) -> SquallServer:
    return SquallServer(data_dir, store=store, environ={"SQUALL_NODE_ID": name, **SLOW_POLLS})


def worker_project(recorder: Recorder) -> dict[str, str]:
    """`worker` consumes the queue `jobs` and `work` runs events; each posts when it started
    and the `t0` its input carries."""
    return {
        "squall.yaml": f"""
            name: cluster
            queues:
              jobs: {{}}
            functions:
              worker:
                handler: app.consume
                env: {{RECORDER: "{recorder.url}"}}
                triggers:
                  - queue: jobs
              work:
                handler: app.work
                env: {{RECORDER: "{recorder.url}"}}
        """,
        "app.py": RECORDER_CLIENT + """

def consume(event, context):
    for record in event["Records"]:
        post({"t0": json.loads(record["body"])["t0"], "started": time.time()})


def work(event, context):
    post({"t0": event["t0"], "started": time.time()})
""",
    }


def test_a_message_sent_through_one_node_is_consumed_on_another_at_once(
        tmp_path: Path, fresh_postgres_url: str) -> None:
    with Recorder() as recorder:
        # Data dirs of their own: the project's code is on b's disk only, so only b consumes.
        a = node(tmp_path / "a", fresh_postgres_url, "a").start()
        b = node(tmp_path / "b", fresh_postgres_url, "b").start()
        try:
            b.cli("deploy", str(write_project(tmp_path / "project", worker_project(recorder))), check=True)
            # a hears of the deploy (its notice; a's store poll is a minute): it knows the queue,
            # and has no consumer of it since it cannot run the code
            queues = wait_until(lambda: json.loads(a.cli("queues", "--json").stdout), timeout=AT_ONCE + 10)
            assert [(q["name"], q["consumers"]) for q in queues] == [("jobs", [])]
            time.sleep(1)  # b's consumer has looked at the empty queue and sleeps (for a minute)

            for _ in range(3):
                with a.api() as api:
                    sent = time.time()
                    response = api.post("/_squall/api/queues/jobs/messages", json={"body": json.dumps({"t0": sent})})
                assert response.status_code == 200, response.text
                run = wait_until(lambda sent=sent: [r for r in recorder.json() if r["t0"] == sent], timeout=AT_ONCE)
                assert run[0]["started"] - sent < AT_ONCE
                time.sleep(0.5)
            assert len(recorder.json()) == 3
        finally:
            a.stop()
            b.stop()


def test_an_event_stored_by_another_node_runs_at_once(tmp_path: Path, fresh_postgres_url: str) -> None:
    with Recorder() as recorder:
        server = node(tmp_path / "data", fresh_postgres_url, "server").start()
        other = PostgresStore(fresh_postgres_url)  # another node's store object, as any node stores events
        try:
            server.cli("deploy", str(write_project(tmp_path / "project", worker_project(recorder))), check=True)
            time.sleep(1)  # the server's dispatcher has found nothing due and sleeps (for a minute)

            for _ in range(3):
                sent = time.time()
                other.enqueue_events([NewEvent(str(uuid.uuid4()), "work", json.dumps({"t0": sent}).encode(),
                                               "invoke", 3, sent + 3600, sent)], now=sent, idempotency_window=60)
                run = wait_until(lambda sent=sent: [r for r in recorder.json() if r["t0"] == sent], timeout=AT_ONCE)
                assert run[0]["started"] - sent < AT_ONCE
                time.sleep(0.5)
        finally:
            other.close()
            server.stop()


def test_deploys_and_secrets_through_one_node_reach_another_at_once(
        tmp_path: Path, fresh_postgres_url: str) -> None:
    def project(version: str) -> dict[str, str]:
        return page_site(f"'{version} ' + os.environ.get('GREETING', '-')", secrets="[GREETING]",
                         imports="import os\n\n")

    # One shared data dir (code and the secrets key), as a cluster on a shared volume has.
    a = node(tmp_path / "data", fresh_postgres_url, "a").start()
    b = node(tmp_path / "data", fresh_postgres_url, "b").start()
    try:
        def b_answers() -> str:
            return httpx.get(f"{b.url}/page", timeout=5).text

        a.cli("secret", "set", "GREETING", input="hi", check=True)
        for version in ("v1", "v2"):
            a.cli("deploy", str(write_project(tmp_path / version, project(version))), check=True)
            deployed = time.monotonic()
            wait_until(lambda version=version: b_answers() == f"{version} hi", timeout=AT_ONCE, interval=0.02)
            assert time.monotonic() - deployed < AT_ONCE

        a.cli("secret", "set", "GREETING", input="hello", check=True)
        changed = time.monotonic()
        wait_until(lambda: b_answers() == "v2 hello", timeout=AT_ONCE, interval=0.02)
        assert time.monotonic() - changed < AT_ONCE
    finally:
        a.stop()
        b.stop()


def test_deploying_an_unchanged_project_to_a_node_without_its_code_makes_that_node_serve_it(
        tmp_path: Path, fresh_postgres_url: str) -> None:
    """With data dirs of their own, b learns of a's deploy but cannot run it (no code on its
    disk); deploying the same project through b stores no new version and b serves it."""
    project = {"squall.yaml": "name: same\nfunctions:\n  hello:\n    handler: app.hello\n",
               "app.py": "def hello(event, context):\n    return {'from': 'hello'}\n"}
    a = node(tmp_path / "a", fresh_postgres_url, "a").start()
    b = node(tmp_path / "b", fresh_postgres_url, "b").start()
    try:
        folder = write_project(tmp_path / "project", project)
        a.cli("deploy", str(folder), check=True)
        known = json.loads(b.cli("versions", "hello", "--json", check=True).stdout)
        assert [v["number"] for v in known["versions"]] == [1]  # b knows the version...
        unserved = b.cli("invoke", "hello")  # ...but does not serve it: its code is not on b's disk
        assert unserved.returncode == 1 and "Function not found: hello" in unserved.stderr

        answer = json.loads(b.cli("deploy", str(folder), "--json", check=True).stdout)

        assert answer["changed"] is False
        assert [f["version"] for f in answer["functions"]] == [1]
        invoked = json.loads(b.cli("invoke", "hello", "--json", check=True).stdout)
        assert invoked["payload"] == {"from": "hello"} and invoked["version"] == 1
    finally:
        a.stop()
        b.stop()
