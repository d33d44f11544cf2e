"""Schedule triggers end to end: rate and cron schedules fire with EventBridge's event,
`input`, overlap, `squall schedules [run]`, alarms, and a restart that neither doubles
nor loses fire times."""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path

import pytest

from tests.support import RECORDER_CLIENT, Recorder, SquallServer, serving, wait_until, write_project

pytestmark = pytest.mark.e2e



def project(recorder: Recorder, triggers: str, body: str = "    post({'at': time.time(), 'event': event})\n",
            extra: str = "") -> dict[str, str]:
    return {
        "squall.yaml": f"""
            name: cron
            {extra}
            functions:
              tick:
                handler: app.handler
                env: {{RECORDER: "{recorder.url}"}}
                triggers:
{triggers}
        """,
        "app.py": RECORDER_CLIENT + "\n\ndef handler(event, context):\n" + body,
    }


def test_a_rate_schedule_fires_every_second_with_the_scheduled_event(tmp_path: Path) -> None:
    triggers = '                  - schedule: "rate(1 second)"\n                    name: heartbeat\n'
    with Recorder() as recorder, serving(tmp_path, project(recorder, triggers)) as node:
        runs = wait_until(lambda: len(recorder.json()) >= 3 and recorder.json(), timeout=15)

        event = runs[0]["event"]
        assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
        assert event["resources"][0].endswith(":rule/heartbeat")
        times = [run["at"] for run in runs[:3]]
        assert all(0.5 < later - earlier < 1.5 for earlier, later in zip(times, times[1:]))
        [listed] = json.loads(node.cli("schedules", "--json", check=True).stdout)
        assert (listed["name"], listed["function"], listed["expression"]) == ("heartbeat", "tick", "rate(1 second)")
        assert listed["next_fire"] > listed["last_fire"]
        table = node.cli("schedules", check=True).stdout
        assert "heartbeat" in table and "rate(1 second)" in table


def test_input_replaces_the_event_and_run_fires_at_once(tmp_path: Path) -> None:
    triggers = ('                  - schedule: "cron(0 3 * * ? *)"\n                    name: nightly\n'
                '                    timezone: Europe/Berlin\n                    input: {archive: true}\n')
    with Recorder() as recorder, serving(tmp_path, project(recorder, triggers)) as node:
        [listed] = json.loads(node.cli("schedules", "--json", check=True).stdout)
        next_local = time.localtime(listed["next_fire"])
        assert listed["timezone"] == "Europe/Berlin" and listed["last_fire"] is None
        assert next_local.tm_min == 0 and listed["next_fire"] > time.time()

        queued = json.loads(node.cli("schedules", "run", "nightly", "--json", check=True).stdout)

        [run] = wait_until(lambda: recorder.json())
        assert run["event"] == {"archive": True}
        assert node.wait_logs("tick", queued["requestId"])
        assert node.cli("schedules", "run", "nope").returncode == 1


def test_overlap_skip_does_not_start_a_run_while_one_is_going(tmp_path: Path) -> None:
    triggers = '                  - schedule: "rate(1 second)"\n                    name: slow\n'
    body = "    post({'start': time.time()})\n    time.sleep(2.5)\n"
    with Recorder() as recorder, serving(tmp_path, project(recorder, triggers, body)) as node:
        time.sleep(5.5)
        starts = [run["start"] for run in recorder.json()]

        assert 1 <= len(starts) <= 3
        assert all(later - earlier >= 2.4 for earlier, later in zip(starts, starts[1:]))
        statuses = json.loads(node.cli("schedules", "--json", check=True).stdout)[0]
        assert statuses["last_status"] in ("skipped (overlap)", "queued", "succeeded")


def test_overlap_queue_runs_each_fire_after_the_previous_run(tmp_path: Path) -> None:
    triggers = '                  - schedule: "rate(1 second)"\n                    name: slow\n                    overlap: queue\n'
    body = "    post({'start': time.time()})\n    time.sleep(1.5)\n    post({'end': time.time()})\n"
    with Recorder() as recorder, serving(tmp_path, project(recorder, triggers, body)):
        time.sleep(6)
        marks = recorder.json()

    starts = [m["start"] for m in marks if "start" in m]
    ends = [m["end"] for m in marks if "end" in m]
    assert len(starts) >= 3
    assert all(start >= end - 0.05 for start, end in zip(starts[1:], ends))  # never two at once


def test_overlap_replace_stops_the_run_going_and_starts_the_new_one(tmp_path: Path) -> None:
    triggers = '                  - schedule: "rate(1 second)"\n                    name: fresh\n                    overlap: replace\n'
    body = "    post({'start': time.time()})\n    time.sleep(3)\n    post({'end': time.time()})\n"
    with Recorder() as recorder, serving(tmp_path, project(recorder, triggers, body)) as node:
        time.sleep(5)
        marks = recorder.json()
        dead = json.loads(node.cli("dlq", "ls", "tick", "--json").stdout)

    starts = [m["start"] for m in marks if "start" in m]
    assert len(starts) >= 4  # one a second, each replacing the one before
    assert all(0.5 < later - earlier < 1.6 for earlier, later in zip(starts, starts[1:]))
    assert not [m for m in marks if "end" in m]  # no run lived its 3 s
    assert dead == []  # stopped on purpose: not retried, not a dead letter


def test_an_alarm_goes_to_its_topic_when_a_schedule_keeps_failing(tmp_path: Path) -> None:
    with Recorder() as recorder, Recorder() as pager:
        triggers = ('                  - schedule: "rate(1 second)"\n                    name: probe\n'
                    '                    alarm_after: 2s\n                    alarm_topic: alarms\n')
        extra = f'topics:\n              alarms:\n                subscriptions: [{{url: "{pager.url}"}}]'
        files = project(recorder, triggers, "    raise RuntimeError('endpoint down')\n", extra)
        with serving(tmp_path, files, environ={"SQUALL_RETRY_BASE_SECONDS": "0.05"}) as node:
            [alarm] = wait_until(lambda: pager.json(), timeout=20)
            time.sleep(1.5)

            message = json.loads(alarm["Message"])
            assert (message["schedule"], message["function"]) == ("probe", "tick")
            assert "has not succeeded" in alarm["Subject"]
            assert len(pager.bodies) == 1  # raised once until the schedule succeeds again
            assert json.loads(node.cli("schedules", "--json").stdout)[0]["alarm_raised"] is not None


def fire_time(event: dict) -> float:  # type: ignore[type-arg]
    return float(calendar.timegm(time.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")))


def test_a_restarted_node_neither_doubles_nor_replays_fire_times(tmp_path: Path) -> None:
    triggers = '                  - schedule: "rate(1 second)"\n                    name: beat\n'
    with Recorder() as recorder:
        node = SquallServer(tmp_path / "data").start()
        try:
            node.cli("deploy", str(write_project(tmp_path / "p", project(recorder, triggers))), check=True)
            wait_until(lambda: len(recorder.json()) >= 2)
            node.stop()
            stopped_at = time.time()
            time.sleep(2.5)  # fire times pass while the node is down
            restarted_at = time.time()
            node.start()
            wait_until(lambda: any(run["at"] > stopped_at + 2.5 for run in recorder.json()), timeout=15)
            time.sleep(1.5)
        finally:
            node.stop()
    fired = sorted(run["event"]["time"] for run in recorder.json())
    assert len(fired) == len(set(fired))  # no fire time ran twice
    missed = {run["event"]["time"] for run in recorder.json()
              if stopped_at + 0.5 < fire_time(run["event"]) < restarted_at - 0.5}
    assert len(missed) <= 1  # the fire times passed while down run once at most, not one run each
