"""Queues end to end: `squall send`, batches to a consuming function as SQS Records,
partial batch failures, redelivery after the visibility timeout, the dead-letter queue,
FIFO order within a group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import RECORDER_CLIENT, Recorder, serving, wait_until

pytestmark = pytest.mark.e2e



def project(recorder: Recorder, body: str, trigger: str = "jobs", queues: str = "") -> dict[str, str]:
    return {
        "squall.yaml": f"""
            name: work
            queues:
              jobs:
                visibility_timeout: 1
                max_receive_count: 2
                dead_letter_queue: jobs-dlq
              jobs-dlq: {{}}
              orders.fifo:
                content_based_deduplication: true
                visibility_timeout: 2
{queues}
            functions:
              worker:
                handler: app.handler
                env: {{RECORDER: "{recorder.url}"}}
                triggers:
                  - queue: {trigger}
                    batch_size: 5
                    batch_window: 0.3
        """,
        "app.py": RECORDER_CLIENT + "\n\ndef handler(event, context):\n" + body,
    }


def bodies(recorder: Recorder) -> list[str]:
    return [record["body"] for batch in recorder.json() for record in batch["records"]]


def test_sent_messages_reach_the_consumer_in_batches_as_sqs_records(tmp_path: Path) -> None:
    handler = "    post({'records': event['Records']})\n"
    with Recorder() as recorder, serving(tmp_path, project(recorder, handler)) as node:
        for n in range(7):
            node.cli("send", "jobs", f"job {n}", "--attr", f"n:Number={n}", check=True)

        wait_until(lambda: len(bodies(recorder)) == 7, timeout=15)
        assert sorted(bodies(recorder)) == [f"job {n}" for n in range(7)]
        assert all(len(batch["records"]) <= 5 for batch in recorder.json())
        record = recorder.json()[0]["records"][0]
        assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":jobs")
        assert record["messageAttributes"]["n"]["dataType"] == "Number"
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        counts = {q["name"]: q for q in json.loads(node.cli("queues", "--json", check=True).stdout)}
        wait_until(lambda: json.loads(node.cli("queues", "--json").stdout)[0]["visible"] == 0)
        assert counts["jobs"]["consumers"] == ["worker"] and counts["orders.fifo"]["fifo"] is True


def test_reported_failures_come_back_and_then_go_to_the_dead_letter_queue(tmp_path: Path) -> None:
    handler = ("    post({'records': event['Records']})\n"
               "    return {'batchItemFailures': [{'itemIdentifier': r['messageId']} for r in event['Records']\n"
               "                                  if r['body'] == 'poison']}\n")
    with Recorder() as recorder, serving(tmp_path, project(recorder, handler)) as node:
        node.cli("send", "jobs", "fine", check=True)
        node.cli("send", "jobs", "poison", check=True)

        wait_until(lambda: bodies(recorder).count("poison") == 2, timeout=15)
        wait_until(lambda: {q["name"]: q["visible"] for q in json.loads(node.cli("queues", "--json").stdout)}
                   ["jobs-dlq"] == 1, timeout=15)
        assert bodies(recorder).count("fine") == 1
        receive_counts = [r["attributes"]["ApproximateReceiveCount"] for batch in recorder.json()
                          for r in batch["records"] if r["body"] == "poison"]
        assert receive_counts == ["1", "2"]


def test_a_failed_batch_is_received_again_after_the_visibility_timeout(tmp_path: Path) -> None:
    handler = ("    post({'records': event['Records']})\n"
               "    if event['Records'][0]['attributes']['ApproximateReceiveCount'] == '1':\n"
               "        raise RuntimeError('try later')\n")
    with Recorder() as recorder, serving(tmp_path, project(recorder, handler)) as node:
        node.cli("send", "jobs", "once more", check=True)

        wait_until(lambda: len(bodies(recorder)) == 2, timeout=15)
        first, second = (batch["records"][0] for batch in recorder.json())
        assert first["messageId"] == second["messageId"] and first["receiptHandle"] != second["receiptHandle"]


def test_fifo_keeps_order_within_a_group_and_drops_duplicates(tmp_path: Path) -> None:
    handler = "    post({'records': event['Records']})\n    time.sleep(0.05)\n"
    with Recorder() as recorder, serving(tmp_path, project(recorder, handler, trigger="orders.fifo")) as node:
        ids = {}
        for n in range(6):
            for group in "ab":
                sent = node.cli("send", "orders.fifo", f"{group}{n}", "--group", group, "--json", check=True)
                ids[f"{group}{n}"] = json.loads(sent.stdout)["messageId"]
        again = node.cli("send", "orders.fifo", "a0", "--group", "a", "--json", check=True)
        missing_group = node.cli("send", "orders.fifo", "x")

        wait_until(lambda: len(bodies(recorder)) == 12, timeout=20)
        seen = bodies(recorder)
        assert [b for b in seen if b.startswith("a")] == [f"a{n}" for n in range(6)]
        assert [b for b in seen if b.startswith("b")] == [f"b{n}" for n in range(6)]
        assert json.loads(again.stdout)["messageId"] == ids["a0"]  # a duplicate answers with the first's id
        assert missing_group.returncode == 2 and "needs a group id" in missing_group.stderr


def test_bad_sends_are_refused(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(recorder, "    post({'records': []})\n")) as node:
        unknown = node.cli("send", "nope", "hi")
        with node.api() as api:
            too_big = api.post("/_squall/api/queues/jobs/messages", json={"body": "x" * 300_000})
            not_text = api.post("/_squall/api/queues/jobs/messages", json={"body": 5})
            group_on_standard = api.post("/_squall/api/queues/jobs/messages", json={"body": "x", "group_id": "g"})

        assert unknown.returncode == 1 and "does not exist: nope" in unknown.stderr
        assert too_big.status_code == 413 and not_text.status_code == 400 and group_on_standard.status_code == 400
        assert recorder.bodies == []


def test_binary_attributes_reach_the_consumer_and_fifo_refuses_per_message_delays(tmp_path: Path) -> None:
    handler = "    post({'records': event['Records']})\n"
    with Recorder() as recorder, serving(tmp_path, project(recorder, handler)) as node:
        with node.api() as api:
            sent = api.post("/_squall/api/queues/jobs/messages", json={
                "body": "b", "attributes": {"blob": {"DataType": "Binary", "BinaryValue": "AAEC"}}})
            delayed = api.post("/_squall/api/queues/orders.fifo/messages",
                               json={"body": "x", "group_id": "g", "delay": 5})
            bad_type = api.post("/_squall/api/queues/jobs/messages",
                                json={"body": "b", "attributes": {"n": {"DataType": "Float", "StringValue": "1"}}})

        assert sent.status_code == 200 and delayed.status_code == 400 and bad_type.status_code == 400
        [record] = wait_until(lambda: [r for batch in recorder.json() for r in batch["records"]], timeout=15)
        assert record["messageAttributes"]["blob"]["binaryValue"] == "AAEC"
        assert record["messageAttributes"]["blob"]["dataType"] == "Binary"
