"""Topic fan-out (squall/events/topics.py) through the event engine, against a real SQLite
store, a ManualClock and a FakeHost: one event per accepting subscriber (functions and HTTP
endpoints), chosen by their filter policies, stored together and run once each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from squall.events.engine import EventEngine
from squall.events.topics import HTTP_ATTEMPTS, HTTP_DELIVERY, HTTP_MAX_AGE
from squall.exceptions import NotFound, PayloadTooLarge
from squall.store.events import Event, EventStatus
from tests.event_host import FakeHost, complete, make_host, run, run_for, settle

FUNCTIONS: dict[str, dict[str, Any]] = {
    "everything": {},
    "prod": {"filter_policy": {"env": ["prod"]}},
    "big": {"filter_policy": {"size": [{"numeric": [">", 2]}]}},
    "orders": {"filter_policy_scope": "MessageBody", "filter_policy": {"order": {"total": [{"numeric": [">", 100]}]}}},
    "staged": {"alias": "stable"},
}


def subscribed(tmp_path: Path) -> FakeHost:
    """Functions subscribed to `deploys` (as FUNCTIONS says), one to another topic, and two
    HTTP endpoints."""
    host = make_host(tmp_path)
    host.declare("topic", "deploys", subscriptions=[
        {"url": "https://hooks.example.com/prod", "filter_policy": {"env": ["prod"]}},
        {"url": "https://hooks.example.com/all", "raw_message_delivery": True},
    ])
    host.declare("topic", "other")
    for name, trigger in FUNCTIONS.items():
        host.deploy(name, triggers=[{"topic": "deploys", **trigger}])
    host.deploy("elsewhere", triggers=[{"topic": "other"}])
    return host


def queued(host: FakeHost, function: str) -> list[Event]:
    return host.store.list_events(function, EventStatus.QUEUED)


def sns(event: Event) -> dict[str, Any]:
    """The SNS record of a function subscriber's event."""
    [record] = json.loads(event.payload)["Records"]
    return dict(record)


def test_a_publish_stores_one_event_per_subscriber_whose_filter_policy_accepts_it(tmp_path: Path) -> None:
    host = subscribed(tmp_path)
    clock = host.clock
    published: list[str] = []
    first_at = clock.time() + 1.5

    async def scenario() -> None:
        engine = EventEngine(host, clock)  # not started: what is submitted stays queued in the store
        clock.advance(1.5)
        published.append(await engine.publish("deploys", "v1 to staging", subject="deploy",
                                               attributes={"env": "staging", "size": 3}))
        clock.advance(1)
        published.append(await engine.publish("deploys", json.dumps({"order": {"total": 250}})))
        await engine.topics.close()

    run(scenario)
    by_attributes, by_body = published
    accepted = {name: [sns(event)["Sns"]["MessageId"] for event in queued(host, name)]
                for name in [*FUNCTIONS, "elsewhere"]}
    accepted["staged"] = [sns(event)["Sns"]["MessageId"] for event in queued(host, "staged:stable")]
    assert accepted == {"everything": [by_attributes, by_body], "prod": [], "big": [by_attributes],
                        "orders": [by_body], "staged": [by_attributes, by_body], "elsewhere": []}

    first = queued(host, "everything")[0]
    record = sns(first)
    assert record["Sns"]["Message"] == "v1 to staging" and record["Sns"]["Subject"] == "deploy"
    assert record["Sns"]["Timestamp"] == "2026-01-01T00:00:01.500Z"  # the clock's time
    assert record["Sns"]["MessageAttributes"] == {"env": {"Type": "String", "Value": "staging"},
                                                  "size": {"Type": "Number", "Value": "3"}}
    assert (first.source, first.created_at, first.max_attempts) == ("topic:deploys", first_at, 3)
    assert (first.run_at, first.expires_at) == (first_at, first_at + 6 * 3600)  # due now; max_event_age 6 h
    arns = {sns(queued(host, name)[0])["EventSubscriptionArn"] for name in ("everything", "big")}
    assert len(arns) == 2  # each subscriber has its own subscription

    deliveries = queued(host, HTTP_DELIVERY)
    assert [json.loads(event.payload)["url"] for event in deliveries] == ["https://hooks.example.com/all"] * 2
    delivery = json.loads(deliveries[0].payload)
    assert delivery["body"] == "v1 to staging"  # raw_message_delivery
    assert delivery["headers"]["x-amz-sns-message-id"] == by_attributes
    assert (deliveries[0].max_attempts, deliveries[0].expires_at) == (HTTP_ATTEMPTS, first_at + HTTP_MAX_AGE)


def test_each_accepting_function_runs_once_with_its_own_request_id_and_the_same_message_id(
        tmp_path: Path) -> None:
    host = subscribed(tmp_path)
    host.declare("topic", "deploys")  # no HTTP endpoints: nothing here reaches the network
    clock = host.clock

    async def scenario() -> str:
        engine = EventEngine(host, clock)
        await engine.start()
        message_id = await engine.publish("deploys", "v2", attributes={"env": "prod", "size": 1})
        await settle()
        assert {call.function for call in host.calls} == {"everything", "prod", "staged"}
        assert all(call.at == clock.time() for call in host.calls)  # run at once, on this node
        await run_for(clock, 1)
        await complete(clock, engine.stop())
        return message_id

    message_id = run(scenario)
    assert sorted(call.function for call in host.calls) == ["everything", "prod", "staged"]
    assert {call.event["Records"][0]["Sns"]["MessageId"] for call in host.calls} == {message_id}
    assert len({call.request_id for call in host.calls}) == 3
    assert host.store.count_events() == {status: 0 for status in EventStatus}  # all succeeded


def test_a_message_no_subscriber_accepts_is_stored_nowhere(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.declare("topic", "deploys", subscriptions=[{"url": "https://hooks.example.com/prod",
                                                      "filter_policy": {"env": ["prod"]}}])
    host.deploy("prod", triggers=[{"topic": "deploys", "filter_policy": {"env": ["prod"]}}])

    async def scenario() -> str:
        engine = EventEngine(host, host.clock)
        message_id = await engine.publish("deploys", "v3", attributes={"env": "dev"})
        with pytest.raises(NotFound):
            await engine.publish("nowhere", "v3")
        with pytest.raises(PayloadTooLarge):
            await engine.publish("deploys", "x" * (256 * 1024 + 1), attributes={"env": "prod"})
        await engine.topics.close()
        return message_id

    assert run(scenario)
    assert host.store.count_events() == {status: 0 for status in EventStatus}
