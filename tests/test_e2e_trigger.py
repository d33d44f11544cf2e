"""`squall trigger` under `squall dev`: every trigger kind fired by hand with its real
event shape, synchronously, with nothing published, sent or stored."""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.support import SquallServer, write_project

pytestmark = pytest.mark.e2e

PROJECT = {
    "squall.yaml": """
        name: local
        topics: {deploys: {}}
        queues: {jobs: {}, "orders.fifo": {content_based_deduplication: true}}
        buckets: {uploads: {}}
        functions:
          nightly:
            handler: app.echo
            triggers:
              - schedule: "cron(0 3 * * ? *)"
                name: archive
          on_deploy:
            handler: app.echo
            triggers: [{topic: deploys}]
          worker:
            handler: app.echo
            triggers: [{queue: jobs}]
          ordered:
            handler: app.echo
            triggers: [{queue: orders.fifo}]
          scan:
            handler: app.scan
            triggers: [{bucket: uploads, prefix: logs/}]
    """,
    "app.py": """
def echo(event, context):
    return event

def scan(event, context):
    raise ValueError("cannot read " + event["Records"][0]["s3"]["object"]["key"])
""",
}


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SquallServer]:
    root = tmp_path_factory.mktemp("trigger")
    node = SquallServer(root / "data", command="dev", project=write_project(root / "project", PROJECT)).start()
    try:
        yield node
    finally:
        node.stop()


def fire(dev: SquallServer, *args: str) -> dict:  # type: ignore[type-arg]
    result = dev.cli("trigger", *args, "--json")
    assert result.returncode in (0, 1), result.stderr
    return dict(json.loads(result.stdout))


def test_a_schedule_trigger_gets_the_scheduled_event(dev: SquallServer) -> None:
    result = fire(dev, "nightly", "--schedule")

    assert result["ok"] and result["payload"]["detail-type"] == "Scheduled Event"
    assert result["payload"]["resources"][0].endswith(":rule/archive")


def test_topic_and_queue_triggers_get_sns_and_sqs_records(dev: SquallServer) -> None:
    sns = fire(dev, "on_deploy", "--topic", "--message", "v2", "--attr", "env=prod")["payload"]["Records"][0]
    sqs = fire(dev, "worker", "--queue", "--message", "a", "--message", "b")["payload"]["Records"]
    fifo = fire(dev, "ordered", "--queue", "--message", "x")["payload"]["Records"][0]

    assert sns["Sns"]["Message"] == "v2" and sns["Sns"]["MessageAttributes"]["env"]["Value"] == "prod"
    assert sns["Sns"]["TopicArn"].endswith(":deploys")
    assert [r["body"] for r in sqs] == ["a", "b"] and sqs[0]["eventSourceARN"].endswith(":jobs")
    assert fifo["attributes"]["MessageGroupId"] == "local"


def test_a_bucket_trigger_gets_an_s3_record_and_failures_exit_1(dev: SquallServer) -> None:
    result = dev.cli("trigger", "scan", "--bucket", "--key", "logs/a.gz", "--show-event")

    assert result.returncode == 1
    assert "cannot read logs/a.gz" in result.stdout and '"ObjectCreated:Put"' in result.stdout


def test_bad_trigger_requests_exit_with_usage_errors(dev: SquallServer) -> None:
    no_kind = dev.cli("trigger", "worker")
    no_schedule = dev.cli("trigger", "worker", "--schedule")
    no_message = dev.cli("trigger", "worker", "--queue")

    assert no_kind.returncode == 2
    assert no_schedule.returncode == 2 and "has no schedule trigger" in no_schedule.stderr
    assert no_message.returncode == 2 and "message is required" in no_message.stderr
