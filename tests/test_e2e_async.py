"""Asynchronous invocations end to end: `squall invoke --async`, retries, dead letters,
idempotency keys, and nothing lost when the server is killed (issue: events)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import RECORDER_CLIENT, Recorder, SquallServer, serving, wait_until, write_project

pytestmark = pytest.mark.e2e

FAST_RETRIES = {"SQUALL_RETRY_BASE_SECONDS": "0.05"}



def project(recorder: Recorder, handler_body: str, extra: str = "") -> dict[str, str]:
    return {
        "squall.yaml": f"""
            name: jobs
            functions:
              work:
                handler: app.handler
                env: {{RECORDER: "{recorder.url}"}}
                {extra}
        """,
        "app.py": RECORDER_CLIENT + "\n\ndef handler(event, context):\n" + handler_body,
    }


def test_async_invoke_answers_with_a_request_id_and_runs_the_event(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(
            recorder, "    post({'id': context.aws_request_id, 'event': event})\n    return 'done'\n")) as node:
        queued = node.cli("invoke", "work", "--async", "--data", '{"card": 7}', "--json", check=True)

        request_id = json.loads(queued.stdout)["requestId"]
        seen = wait_until(lambda: recorder.json())
        assert seen == [{"id": request_id, "event": {"card": 7}}]
        assert any("END RequestId" in line["message"] for line in node.wait_logs("work", request_id))
        with node.api() as api:
            assert api.get(f"/_squall/api/events/{request_id}").status_code == 404  # done and gone


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_an_accepted_event_is_already_running_on_its_node_when_answered(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    store = request.getfixturevalue("fresh_postgres_url") if backend == "postgres" else None
    slow = "    time.sleep(1.5)\n    post({'id': context.aws_request_id})\n"
    with Recorder() as recorder, serving(tmp_path, project(recorder, slow), store=store) as node:
        with node.api() as api:
            answer = api.post("/_squall/api/functions/work/events", json={})
            request_id = answer.json()["requestId"]
            stored = api.get(f"/_squall/api/events/{request_id}").json()

        assert (answer.status_code, stored["status"], stored["attempts"]) == (202, "running", 1)
        # Stored already leased, in the accepting transaction: its lease starts when it was stored (a
        # claim afterwards would have started it later).
        assert stored["run_at"] == pytest.approx(stored["created_at"] + 960, abs=1e-6)
        assert wait_until(lambda: recorder.json()) == [{"id": request_id}]


def test_a_failing_event_is_retried_then_parked_and_can_be_redriven(tmp_path: Path) -> None:
    failing = ("    post({'attempt': context.aws_request_id})\n"
               "    if os.path.exists('/tmp/never'): return 'ok'\n"
               "    raise RuntimeError('downstream is down')\n")
    with Recorder() as recorder, serving(tmp_path, project(recorder, failing), environ=FAST_RETRIES) as node:
        request_id = json.loads(node.cli("invoke", "work", "--async", "--json", check=True).stdout)["requestId"]

        dead = wait_until(lambda: json.loads(node.cli("dlq", "ls", "work", "--json", check=True).stdout))
        assert [e["id"] for e in dead] == [request_id]
        assert (dead[0]["attempts"], dead[0]["dead_reason"]) == (3, "RetriesExhausted")
        assert "downstream is down" in dead[0]["last_error"]
        assert len(recorder.json()) == 3  # the first attempt and two retries

        shown = node.cli("dlq", "show", "work", request_id)
        assert shown.returncode == 0 and "RetriesExhausted" in shown.stdout and "downstream" in shown.stdout
        table = node.cli("dlq", "ls", "work")
        assert request_id in table.stdout and "RetriesExhausted" in table.stdout

        write_project(tmp_path / "project", project(recorder, "    post({'fixed': context.aws_request_id})\n"))
        node.cli("deploy", str(tmp_path / "project"), check=True)
        redriven = node.cli("dlq", "redrive", "work", request_id, "--json", check=True)
        assert json.loads(redriven.stdout) == {"function": "work", "redriven": 1}
        wait_until(lambda: {"fixed": request_id} in recorder.json())
        assert json.loads(node.cli("dlq", "ls", "work", "--json", check=True).stdout) == []


def test_dead_letters_are_purged(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(recorder, "    raise ValueError('no')\n"),
                                         environ=FAST_RETRIES) as node:
        ids = [json.loads(node.cli("invoke", "work", "--async", "--json", check=True).stdout)["requestId"]
               for _ in range(3)]
        wait_until(lambda: len(json.loads(node.cli("dlq", "ls", "work", "--json").stdout)) == 3)

        assert "purged 1" in node.cli("dlq", "purge", "work", ids[0], check=True).stdout
        assert "purged 2" in node.cli("dlq", "purge", "work", "--yes", check=True).stdout
        assert json.loads(node.cli("dlq", "ls", "work", "--json").stdout) == []


def test_an_idempotency_key_runs_the_event_once(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(
            recorder, "    post({'id': context.aws_request_id})\n")) as node:
        first, again = (json.loads(node.cli("invoke", "work", "--async", "--idempotency-key", "build-42",
                                            "--json", check=True).stdout)["requestId"] for _ in range(2))
        other = json.loads(node.cli("invoke", "work", "--async", "--idempotency-key", "build-43", "--json",
                                    check=True).stdout)["requestId"]

        assert first == again != other
        wait_until(lambda: len(recorder.json()) == 2)
        assert sorted(seen["id"] for seen in recorder.json()) == sorted([first, other])


def test_bad_async_requests_are_refused_and_store_nothing(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(recorder, "    post('ran')\n")) as node:
        with node.api() as api:
            too_big = api.post("/_squall/api/functions/work/events", content=b'"' + b"x" * (1024 * 1024) + b'"')
            not_json = api.post("/_squall/api/functions/work/events", content=b"{nope")
            unknown = api.post("/_squall/api/functions/nobody/events", content=b"{}")
        bad_cli = node.cli("invoke", "work", "--async", "--data", "{nope")

        assert too_big.status_code == 413 and "1048576" in too_big.json()["error"]["message"]
        assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
        assert unknown.status_code == 404
        assert bad_cli.returncode == 2
        assert json.loads(node.cli("dlq", "ls", "work", "--json").stdout) == []
        assert recorder.json() == []


@pytest.mark.serial  # the kill must land while the work still runs: slower under other tests' load
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_killed_server_loses_no_event(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> None:
    store = request.getfixturevalue("fresh_postgres_url") if backend == "postgres" else None
    slow = "    import time\n    time.sleep(0.05)\n    post({'n': event['n']})\n"
    with Recorder() as recorder:
        node = SquallServer(tmp_path / "data", store=store, environ=FAST_RETRIES).start()
        try:
            files = project(recorder, slow, "concurrency: 10")  # about 5 s of work in all
            node.cli("deploy", str(write_project(tmp_path / "project", files)), check=True)
            with node.api() as api:
                for n in range(1000):
                    assert api.post("/_squall/api/functions/work/events", json={"n": n}).status_code == 202
            wait_until(lambda: len(recorder.bodies) > 0)
            assert node.process is not None
            node.process.kill()  # SIGKILL: no chance to finish anything
            node.process.wait()
            ran_before = {body["n"] for body in recorder.json()}

            node.start()
            wait_until(lambda: {body["n"] for body in recorder.json()} == set(range(1000)), timeout=120)
        finally:
            node.stop()
    assert len(ran_before) < 1000  # the kill did interrupt the work


def test_a_second_node_on_the_same_store_serves_what_the_first_deployed(
        tmp_path: Path, fresh_postgres_url: str) -> None:
    with Recorder() as recorder:
        first = SquallServer(tmp_path / "data", store=fresh_postgres_url,
                             environ={"SQUALL_NODE_ID": "first"}).start()
        second = SquallServer(tmp_path / "data", store=fresh_postgres_url,
                              environ={"SQUALL_NODE_ID": "second"}).start()
        try:
            files = project(recorder, "    post({'id': context.aws_request_id})\n    return 'ran'\n")
            first.cli("deploy", str(write_project(tmp_path / "project", files)), check=True)

            result = wait_until(lambda: (r := second.cli("invoke", "work")).returncode == 0 and r, timeout=15)
            assert json.loads(result.stdout) == "ran"
        finally:
            second.stop()
            first.stop()
