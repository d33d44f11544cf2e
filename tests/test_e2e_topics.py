"""Topics end to end: `squall publish`, function subscribers with filter policies (SNS
Records events), HTTP subscribers (SNS notification POSTs), destinations to a topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import RECORDER_CLIENT, Recorder, serving, wait_until

pytestmark = pytest.mark.e2e



def project(recorder: Recorder, endpoint: Recorder) -> dict[str, str]:
    return {
        "squall.yaml": f"""
            name: infra
            topics:
              deploys:
                subscriptions:
                  - url: "{endpoint.url}"
                    filter_policy: {{env: [prod]}}
              audit: {{}}
            functions:
              provision:
                handler: app.provision
                env: {{RECORDER: "{recorder.url}"}}
                triggers:
                  - topic: deploys
                    filter_policy: {{env: [prod, staging], size: [{{numeric: [">", 2]}}]}}
              everything:
                handler: app.everything
                env: {{RECORDER: "{recorder.url}"}}
                triggers:
                  - topic: deploys
              flaky:
                handler: app.flaky
                retries: 0
                on_failure: {{topic: audit}}
              auditor:
                handler: app.auditor
                env: {{RECORDER: "{recorder.url}"}}
                triggers:
                  - topic: audit
        """,
        "app.py": RECORDER_CLIENT + """

def provision(event, context):
    post({"who": "provision", "record": event["Records"][0]})

def everything(event, context):
    post({"who": "everything", "message": event["Records"][0]["Sns"]["Message"]})

def flaky(event, context):
    raise RuntimeError("cannot provision")

def auditor(event, context):
    post({"who": "auditor", "message": json.loads(event["Records"][0]["Sns"]["Message"])})
""",
    }


def test_function_and_http_subscribers_get_what_their_filters_accept(tmp_path: Path) -> None:
    with Recorder() as recorder, Recorder() as endpoint, serving(tmp_path, project(recorder, endpoint)) as node:
        node.cli("publish", "deploys", "v1 to prod", "--attr", "env=prod", "--attr", "size:Number=3",
                 "--subject", "deploy", check=True)
        node.cli("publish", "deploys", "v2 to dev", "--attr", "env=dev", check=True)

        wait_until(lambda: len(recorder.json()) == 3 and len(endpoint.bodies) == 1)
        seen = recorder.json()
        assert sorted(s["message"] for s in seen if s["who"] == "everything") == ["v1 to prod", "v2 to dev"]
        [provisioned] = [s["record"] for s in seen if s["who"] == "provision"]
        assert provisioned["EventSource"] == "aws:sns"
        assert provisioned["Sns"]["Message"] == "v1 to prod" and provisioned["Sns"]["Subject"] == "deploy"
        assert provisioned["Sns"]["MessageAttributes"]["size"] == {"Type": "Number", "Value": "3"}
        assert provisioned["Sns"]["TopicArn"].endswith(":deploys")
        notification = json.loads(endpoint.bodies[0])
        assert (notification["Type"], notification["Message"]) == ("Notification", "v1 to prod")


def test_a_failed_events_record_goes_to_its_destination_topic(tmp_path: Path) -> None:
    with Recorder() as recorder, Recorder() as endpoint, serving(tmp_path, project(recorder, endpoint)) as node:
        request_id = json.loads(node.cli("invoke", "flaky", "--async", "--json", check=True).stdout)["requestId"]

        [audit] = wait_until(lambda: recorder.json())
        record = audit["message"]
        assert record["requestContext"]["requestId"] == request_id
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["responseContext"]["functionError"] == "Unhandled"
        assert record["responsePayload"]["errorMessage"] == "cannot provision"


def test_publishing_bad_input_is_refused(tmp_path: Path) -> None:
    with Recorder() as recorder, Recorder() as endpoint, serving(tmp_path, project(recorder, endpoint)) as node:
        unknown = node.cli("publish", "nope", "hi")
        bad_attr = node.cli("publish", "deploys", "hi", "--attr", "novalue")
        with node.api() as api:
            too_big = api.post("/_squall/api/topics/deploys/publish", json={"message": "x" * 300_000})
            not_text = api.post("/_squall/api/topics/deploys/publish", json={"message": {"a": 1}})
        listed = json.loads(node.cli("topics", "--json", check=True).stdout)

        assert unknown.returncode == 1 and "Topic does not exist: nope" in unknown.stderr
        assert bad_attr.returncode == 2
        assert too_big.status_code == 413 and not_text.status_code == 400
        assert {t["name"]: t["functions"] for t in listed} == {"audit": ["auditor"],
                                                                "deploys": ["everything", "provision"]}
        assert recorder.bodies == [] and endpoint.bodies == []


def test_an_http_subscriber_that_keeps_failing_ends_in_the_http_dead_letters(tmp_path: Path) -> None:
    with Recorder() as recorder, Recorder(status=500) as endpoint:
        with serving(tmp_path, project(recorder, endpoint), environ={"SQUALL_RETRY_BASE_SECONDS": "0.05"}) as node:
            node.cli("publish", "deploys", "v3", "--attr", "env=prod", check=True)

            [dead] = wait_until(lambda: json.loads(node.cli("dlq", "ls", "@http", "--json").stdout), timeout=20)
            assert len(endpoint.bodies) == 4  # every attempt reached the endpoint
            assert dead["attempts"] == 4 and "answered 500" in dead["last_error"]
            assert json.loads(node.cli("dlq", "purge", "@http", "--yes", "--json", check=True).stdout)["purged"] == 1
