"""squall.sdk inside functions: publish, send and bucket objects, with the function's own
credential, limited to its project's resources."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support import RECORDER_CLIENT, Recorder, serving, wait_until, write_project

pytestmark = pytest.mark.e2e



def project(recorder: Recorder) -> dict[str, str]:
    return {
        "squall.yaml": f"""
            name: shop
            topics: {{orders: {{}}}}
            queues: {{work: {{}}}}
            buckets: {{files: {{}}}}
            functions:
              api:
                handler: app.api
                topics: [orders]
                queues: [work]
                buckets: [files]
              on_order:
                handler: app.on_order
                env: {{RECORDER: "{recorder.url}"}}
                triggers: [{{topic: orders}}]
              worker:
                handler: app.worker
                env: {{RECORDER: "{recorder.url}"}}
                triggers: [{{queue: work}}]
        """,
        "app.py": RECORDER_CLIENT + """
from squall import sdk

def api(event, context):
    action = event["action"]
    if action == "publish":
        return sdk.publish("orders", "order 1", attributes={"kind": "new"})
    if action == "send":
        return sdk.send("work", "job 1")
    if action == "files":
        files = sdk.bucket("files")
        files.put("a/1.txt", "one", "text/plain")
        files.put("a/2.txt", b"two")
        listed = [item["key"] for item in files.list(prefix="a/")]
        content = files.get("a/1.txt").decode()
        files.delete("a/2.txt")
        return {"listed": listed, "content": content, "after": [i["key"] for i in files.list()]}
    if action == "foreign":
        try:
            sdk.publish("elsewhere", "x")
        except sdk.SdkError as exc:
            return {"status": exc.status, "kind": exc.kind, "message": exc.message}
    if action == "missing":
        try:
            sdk.bucket("files").get("nope")
        except sdk.SdkError as exc:
            return {"status": exc.status}

def on_order(event, context):
    post({"topic": event["Records"][0]["Sns"]["Message"]})

def worker(event, context):
    post({"queue": event["Records"][0]["body"]})
""",
    }


OTHER = {
    "squall.yaml": "name: other\ntopics: {elsewhere: {}}\nfunctions:\n  noop:\n    handler: app.noop\n",
    "app.py": "def noop(event, context):\n    return None\n",
}


def invoke(node, action: str):  # type: ignore[no-untyped-def]
    result = node.cli("invoke", "api", "--data", json.dumps({"action": action}))
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_functions_publish_send_and_use_the_buckets_they_are_granted(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(recorder)) as node:
        node.cli("deploy", str(write_project(tmp_path / "other", OTHER)), check=True)

        assert invoke(node, "publish")
        assert invoke(node, "send")
        files = invoke(node, "files")
        foreign = invoke(node, "foreign")
        missing = invoke(node, "missing")

        wait_until(lambda: sorted(map(json.dumps, recorder.json())) == sorted(
            [json.dumps({"topic": "order 1"}), json.dumps({"queue": "job 1"})]), timeout=15)
        assert files == {"listed": ["a/1.txt", "a/2.txt"], "content": "one", "after": ["a/1.txt"]}
        assert foreign["status"] == 403 and foreign["kind"] == "AccessDenied"
        assert "list it under the function's topics" in foreign["message"]
        assert missing == {"status": 404}


def test_the_sdk_endpoints_refuse_callers_without_a_function_credential(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(recorder)) as node:
        with node.api() as api:  # the admin token is not a function credential
            admin = api.post("/_squall/sdk/topics/orders/publish", json={"message": "x"})
            forged = api.post("/_squall/sdk/topics/orders/publish", json={"message": "x"},
                              headers={"authorization": "Bearer api.0000"})

        assert admin.status_code == 401 and forged.status_code == 401
        assert recorder.bodies == []


def test_the_sdk_reuses_its_connection_and_survives_the_node_closing_it_while_idle(tmp_path: Path) -> None:
    """The node closes a kept-alive connection idle for 5 s (uvicorn's default); the
    instance, frozen meanwhile, finds it closed on its next call and opens a new one."""
    project = {
        "squall.yaml": "name: keep\ntopics: {news: {}}\nfunctions:\n  pub:\n    handler: app.pub\n    topics: [news]\n",
        "app.py": """
from squall import sdk

def pub(event, context):
    ids = [sdk.publish("news", str(n)) for n in range(3)]
    connection = sdk._connection.conn
    return {"ids": ids, "local_port": connection.sock.getsockname()[1] if connection and connection.sock else None}
""",
    }
    with serving(tmp_path, project) as node:
        first = json.loads(node.cli("invoke", "pub", "--json", check=True).stdout)["payload"]
        time.sleep(6)
        second = json.loads(node.cli("invoke", "pub", "--json", check=True).stdout)["payload"]

    assert len(set(first["ids"] + second["ids"])) == 6
    assert first["local_port"] is not None and second["local_port"] != first["local_port"]
