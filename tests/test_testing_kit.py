"""Tests of squall.testing, the kit users test their projects with: its event factories and
context (no node), a project on a real node in this process (e2e), and users' projects
testing themselves under pytester, with the plugin loaded as pytest loads it (e2e)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest

from squall.client import ApiError
from squall.testing import (
    Project,
    http_event,
    invoke_event,
    lambda_context,
    s3_event,
    scheduled_event,
    sns_event,
    sqs_event,
    start_project,
)
from squall.testing.clock import seconds_of
from tests.support import write_project

pytest_plugins = ["pytester"]

# ------------------------------------------------------------------ factories, no node


def test_importing_the_kit_and_its_plugin_starts_nothing() -> None:
    script = ("import json, sys, threading, squall.testing, squall.testing.plugin; "
              "print(json.dumps({'threads': threading.active_count(), 'loaded': sorted(m for m in sys.modules "
              "if m.split('.')[0] == 'uvicorn' or m.startswith(('squall.server', 'squall.node', 'squall.runtime')))}))")
    found = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                      check=True).stdout)
    assert found == {"threads": 1, "loaded": []}


def test_http_event_routes_its_path_query_body_and_cookies() -> None:
    event = http_event("POST", "/items/7?tag=a", route="POST /items/{id}", query={"tag": ["b"], "q": "x y"},
                       json={"n": 1}, cookies={"session": "s1"}, headers={"X-Trace": "t"}, request_id="r-1",
                       now=1_800_000_000.5)
    assert (event["routeKey"], event["rawPath"], event["pathParameters"]) == ("POST /items/{id}", "/items/7", {"id": "7"})
    assert event["rawQueryString"] == "tag=a&tag=b&q=x+y"
    assert event["queryStringParameters"] == {"tag": "a,b", "q": "x y"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"n":1}', False)
    assert event["headers"] == {"x-trace": "t", "content-type": "application/json"}
    assert event["cookies"] == ["session=s1"]
    context = event["requestContext"]
    assert (context["requestId"], context["timeEpoch"], context["http"]["method"]) == ("r-1", 1_800_000_000_500, "POST")
    assert http_event("PUT", "/blob", body=b"\xff\x00", headers={"content-type": "image/png"})["isBase64Encoded"]
    with pytest.raises(ValueError, match="does not take GET /other"):
        http_event("GET", "/other", route="GET /items/{id}")


def test_the_aws_shaped_events_carry_the_nodes_region_and_account() -> None:
    at = datetime(2026, 3, 9, 3, 0, tzinfo=UTC)
    scheduled = scheduled_event("nightly", time=at, event_id="e-1")
    assert scheduled == {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events",
                         "account": "000000000000", "time": "2026-03-09T03:00:00Z", "region": "us-east-1",
                         "resources": ["arn:aws:events:us-east-1:000000000000:rule/nightly"], "detail": {}}
    [sns] = sns_event("v2 is out", topic="deploys", attributes={"env": "prod"}, timestamp=at)["Records"]
    assert sns["Sns"]["TopicArn"] == "arn:aws:sns:us-east-1:000000000000:deploys"
    assert sns["Sns"]["MessageAttributes"] == {"env": {"Type": "String", "Value": "prod"}}
    assert sns["Sns"]["Timestamp"] == "2026-03-09T03:00:00.000Z" and sns["Sns"]["Subject"] is None
    first, second = sqs_event("a", "b", queue="jobs.fifo", group_id="g")["Records"]
    assert (first["body"], second["body"], second["attributes"]["SequenceNumber"]) == ("a", "b", "2")
    assert first["attributes"]["MessageGroupId"] == "g" and first["eventSourceARN"].endswith(":jobs.fifo")
    [s3] = s3_event("uploads", "logs/my file.log", content=b"hello")["Records"]
    assert s3["s3"]["object"] | {"sequencer": ""} == {"key": "logs/my+file.log", "size": 5, "sequencer": "",
                                                       "eTag": "5d41402abc4b2a76b9719d911017c592"}
    [removed] = s3_event("uploads", "a", event="s3:ObjectRemoved:Delete")["Records"]
    assert removed["eventName"] == "ObjectRemoved:Delete" and "size" not in removed["s3"]["object"]
    assert invoke_event() == {} and invoke_event({"n": (1, 2)}) == {"n": [1, 2]}


def test_lambda_context_counts_down_on_its_clock() -> None:
    now = [1_000.0]
    context = lambda_context("hello", version=3, memory=512, timeout=10, clock=lambda: now[0])
    assert (context.function_name, context.function_version, context.memory_limit_in_mb) == ("hello", "3", "512")
    assert context.invoked_function_arn == "arn:aws:lambda:us-east-1:000000000000:function:hello"
    assert context.log_group_name == "/aws/lambda/hello" and "[3]" in context.log_stream_name
    assert context.get_remaining_time_in_millis() == 10_000
    now[0] += 9.5
    assert context.get_remaining_time_in_millis() == 500


def test_clock_spans() -> None:
    assert [seconds_of(span) for span in ("1d", "1h30m", "45s", 90, timedelta(minutes=2))] == [
        86400, 5400, 45, 90, 120]
    for bad in ("tomorrow", -1, timedelta(seconds=-1), True):
        with pytest.raises(ValueError):
            seconds_of(bad)


# ------------------------------------------------------------------ a project on an in-process node

KIT_PROJECT = {
    "squall.yaml": """
        name: kit
        topics:
          news: {}
        queues:
          jobs: {}
        buckets:
          uploads: {}
        functions:
          echo:
            handler: app.echo
            env: {GREETING: hello}
            secrets: [TOKEN]
            triggers:
              - http: "GET /items/{id}"
              - http: "POST /echo"
          listen:
            handler: app.listen
            triggers:
              - topic: news
              - queue: jobs
              - bucket: uploads
          flaky:
            handler: app.fail
            retries: 1
          tick:
            handler: app.tick
            triggers:
              - schedule: "cron(30 2 * * ? *)"
                name: nightly
                timezone: Europe/Berlin
              - schedule: "rate(12 hours)"
                name: twice-daily
                input: {from: twice-daily}
    """,
    "app.py": """
        import json, os

        def echo(event, context):
            return {"event": event, "env": [os.environ.get("GREETING"), os.environ.get("TOKEN")],
                    "context": [context.function_name, context.function_version, context.memory_limit_in_mb,
                                context.invoked_function_arn, context.log_group_name]}

        def listen(event, context):
            for record in event["Records"]:
                print("got", record.get("eventSource") or record.get("EventSource"))

        def fail(event, context):
            raise RuntimeError("no luck")

        def tick(event, context):
            print("tick", json.dumps(event))
            return event
    """,
}


@pytest.fixture(scope="module")
def kit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("kit") / "kit", KIT_PROJECT)


@pytest.fixture(scope="module")
def kit(kit_folder: Path) -> Iterator[Project]:
    with start_project(kit_folder, env={"GREETING": "hi"}, secrets={"TOKEN": "s3cret"}) as project:
        yield project


@pytest.mark.e2e
def test_a_route_delivers_the_event_http_event_builds(kit: Project) -> None:
    answered = kit.get("/items/7", params={"x": "1"}).json()["event"]
    context = answered["requestContext"]
    assert answered == http_event("GET", "/items/7?x=1", route="GET /items/{id}", headers=answered["headers"],
                                  request_id=context["requestId"], now=context["timeEpoch"] / 1000)
    posted = kit.post("/echo", content=b'{"n": 1}', headers={"content-type": "application/json",
                                                             "cookie": "session=s1"}).json()["event"]
    context = posted["requestContext"]
    assert posted == http_event("POST", "/echo", body='{"n": 1}', headers=posted["headers"],
                                cookies={"session": "s1"}, request_id=context["requestId"],
                                now=context["timeEpoch"] / 1000)


@pytest.mark.e2e
def test_invoke_gives_the_result_or_the_error_and_the_context_is_lambda_context(kit: Project) -> None:
    result = kit.invoke("echo", {"n": 1})
    assert result.ok and result.error is None and result.payload["event"] == {"n": 1}
    expected = lambda_context("echo")  # an unqualified call: version $LATEST
    assert result.payload["context"] == [expected.function_name, expected.function_version,
                                         expected.memory_limit_in_mb, expected.invoked_function_arn,
                                         expected.log_group_name]
    failed = kit.invoke("flaky")
    assert not failed.ok and failed.error is not None
    assert (failed.error.type, failed.error.message) == ("RuntimeError", "no luck")
    assert "no luck" in kit.log_text("flaky", request_id=failed.request_id)


@pytest.mark.e2e
def test_env_overrides_squall_yaml_and_secrets_are_set(kit: Project, kit_folder: Path) -> None:
    assert kit.invoke("echo").payload["env"] == ["hi", "s3cret"]
    assert "GREETING: hello" in (kit_folder / "squall.yaml").read_text()


@pytest.mark.e2e
def test_invoke_async_waits_until_it_succeeded_or_is_a_dead_letter(kit: Project) -> None:
    done = kit.invoke_async("echo", {"n": 2})
    assert (done.ok, done.status, done.attempts) == (True, "succeeded", 1)
    dead = kit.invoke_async("flaky")
    assert (dead.ok, dead.status, dead.attempts) == (False, "dead", 2)
    assert dead.error is not None and "no luck" in dead.error
    assert dead.request_id in [letter.request_id for letter in kit.dead_letters("flaky")]


@pytest.mark.e2e
def test_publish_send_and_put_object_reach_their_subscriber_once_settled(kit: Project) -> None:
    kit.publish("news", "hello", attributes={"env": "test"})
    kit.send("jobs", "job 1")
    assert kit.put_object("uploads", "a.log", "some log")["size"] == 8
    kit.settle()
    assert sorted(line.message.split()[1] for line in kit.logs("listen") if line.message.startswith("got")) == [
        "aws:s3", "aws:sns", "aws:sqs"]
    assert kit.get_object("uploads", "a.log") == b"some log"


@pytest.mark.e2e
def test_the_clock_fires_each_schedule_at_its_times_with_the_schedulers_event(
        squall_project: Callable[..., Project], kit_folder: Path) -> None:
    start = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    project = squall_project(kit_folder, now=start)
    gap_end = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:30 in Berlin is skipped that night: 03:00 CEST
    assert project.clock.next_fires() == {"tick/nightly": gap_end, "tick/twice-daily": start}

    fires = project.clock.advance("1d")

    assert [(fire.schedule, fire.time) for fire in fires] == [
        ("twice-daily", start), ("twice-daily", start + timedelta(hours=12)), ("nightly", gap_end),
        ("twice-daily", start + timedelta(hours=24))]
    assert all(fire.ok and fire.payload == fire.event for fire in fires)
    assert fires[0].event == {"from": "twice-daily"}
    assert fires[2].event == scheduled_event("nightly", time=gap_end, event_id=fires[2].request_id)
    assert f'"time": "{gap_end:%Y-%m-%dT%H:%M:%SZ}"' in project.log_text("tick", request_id=fires[2].request_id)
    assert project.clock.now == start + timedelta(days=1) and project.clock.fires == fires
    assert [fire.time for fire in project.clock.advance("1d") if fire.schedule == "nightly"] == [
        datetime(2026, 3, 30, 0, 30, tzinfo=UTC)]  # 02:30 CEST
    with pytest.raises(ValueError, match="only moves forward"):
        project.clock.advance_to(start)


def running() -> tuple[set[int], set[int | None], int]:
    """The pids of this process's zygotes and instances, the idents of its threads, its umask."""
    processes = {child.pid for child in psutil.Process().children(recursive=True)
                 if "squall.runtime" in " ".join(child.cmdline())}
    umask = os.umask(0o077)
    os.umask(umask)
    return processes, {thread.ident for thread in threading.enumerate()}, umask


def nothing_left(before: tuple[set[int], set[int | None], int]) -> bool:
    processes, threads, umask = running()
    return processes <= before[0] and threads <= before[1] and umask == before[2]


@pytest.mark.e2e
def test_stopping_ends_the_node_its_processes_and_its_folder_even_after_a_failure(
        kit_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"SQUALL_URL": "http://127.0.0.1:9", "SQUALL_TOKEN": "wrong", "SQUALL_STAGE": "other"}.items():
        monkeypatch.setenv(name, value)  # the CLI's settings: the kit's client ignores them
    before = running()
    with pytest.raises(AssertionError, match="a test failed"), start_project(kit_folder) as project:
        url, data_dir = project.url, project.data_dir
        assert data_dir.is_dir() and running()[0] > before[0]
        raise AssertionError("a test failed")
    assert not data_dir.parent.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_squall/health")
    assert nothing_left(before)
    project.stop()  # again: nothing to do


@pytest.mark.e2e
def test_a_project_whose_deploy_fails_says_why_and_leaves_nothing_running(tmp_path: Path) -> None:
    folder = write_project(tmp_path / "broken", BROKEN_PROJECT)
    before = running()
    with pytest.raises(ApiError, match="no_such_module"):
        start_project(folder)
    assert nothing_left(before)


BROKEN_PROJECT = {"squall.yaml": "name: broken\nfunctions:\n  f:\n    handler: app.handler\n",
                  "app.py": "import no_such_module\n"}


# ------------------------------------------------------------------ users' projects, under pytester

USER_PROJECT = {
    "squall.yaml": """
        name: shop
        functions:
          hello:
            handler: app.handler
            triggers:
              - http: "GET /hello"
          report:
            handler: app.report
            triggers:
              - schedule: "cron(0 6 * * ? *)"
                name: morning-report
    """,
    "app.py": """
        import json

        def handler(event, context):
            name = (event.get("queryStringParameters") or {}).get("name", "world")
            print("greeting", name)
            return {"statusCode": 200, "body": json.dumps({"message": f"hello, {name}"})}

        def report(event, context):
            return {"at": event["time"]}
    """,
    "pytest.ini": """
        [pytest]
        filterwarnings = error
    """,
}

USER_TESTS = '''
from datetime import UTC, datetime

import pytest

from squall.testing import http_event, lambda_context, scheduled_event, start_project

import app

@pytest.fixture(scope="module")
def shop():
    with start_project(".") as project:
        yield project

def test_handler_directly():
    response = app.handler(http_event("GET", "/hello", query={"name": "you"}), lambda_context("hello"))
    assert response["statusCode"] == 200

def test_route(squall):
    assert squall.get("/hello", params={"name": "you"}).json() == {"message": "hello, you"}
    assert "greeting you" in squall.log_text("hello")

def test_schedule(squall_project):
    project = squall_project(now=datetime(2026, 1, 1, tzinfo=UTC))
    [fire] = project.clock.advance("1d")
    assert fire.payload == {"at": "2026-01-01T06:00:00Z"}
    assert fire.event == scheduled_event("morning-report", time=fire.time, event_id=fire.request_id)

def test_module_scoped(shop):
    assert shop.invoke("hello").ok
'''


def user_project(pytester: pytest.Pytester, tests: str) -> None:
    write_project(pytester.path, {**USER_PROJECT, "test_shop.py": tests})


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of the pytest runs under test (TMPDIR): what the kit leaves there."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


@pytest.mark.e2e
def test_a_users_project_tests_itself_with_the_plugin(pytester: pytest.Pytester, scratch: Path) -> None:
    user_project(pytester, USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=4)
    assert list(scratch.glob("squall-test-*")) == []


@pytest.mark.e2e
def test_a_failing_user_assertion_is_a_failure_and_the_node_still_stops(pytester: pytest.Pytester,
                                                                        scratch: Path) -> None:
    user_project(pytester, textwrap.dedent(f'''
        def test_wrong_expectation(squall):
            assert squall.get("/hello").status_code == 500

        def test_after_it(squall):
            assert squall.get("/hello").status_code == 200

        def test_a_project_that_does_not_deploy(squall_project, tmp_path):
            for name, text in {BROKEN_PROJECT!r}.items():
                (tmp_path / name).write_text(text)
            squall_project(tmp_path)
    '''))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=1, failed=2, errors=0)
    result.stdout.fnmatch_lines(["*assert 200 == 500*"])
    result.stdout.fnmatch_lines(["*ApiError: deploy rejected*", "*No module named *no_such_module*"])
    assert list(scratch.glob("squall-test-*")) == []


@pytest.mark.e2e
def test_the_project_squall_init_writes_passes_its_own_test_with_plain_pytest(tmp_path: Path, scratch: Path) -> None:
    subprocess.run([sys.executable, "-m", "squall.cli.main", "init", str(tmp_path / "demo")], check=True,
                   capture_output=True)
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider"],
                            cwd=tmp_path / "demo", capture_output=True, text=True, timeout=300)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "4 passed" in tested.stdout
    assert list(scratch.glob("squall-test-*")) == []


@pytest.mark.e2e
def test_pytest_lists_the_kits_fixtures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["squall -- *", "*The project the test file is in*"])
    result.stdout.fnmatch_lines(["squall_project -- *", "*deployed on*"])
