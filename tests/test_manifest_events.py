"""Unit tests of the event side of squall.yaml: topics, queues and buckets, async settings and
destinations, durations, and the schedule, topic, queue and bucket triggers."""

from __future__ import annotations

import json
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from squall.exceptions import ManifestError
from squall.manifest import (BucketSpec, BucketTrigger, Destination, FunctionSpec, HttpTrigger, Manifest,
                             QueueSpec, QueueTrigger, ScheduleTrigger, Subscription, TopicSpec, TopicTrigger,
                             parse_manifest)
from squall.manifest.sections import Section
from squall.manifest.triggers import TRIGGER_KINDS, trigger_kind
from squall.manifest.values import format_duration, parse_duration

DOCS = Path(__file__).resolve().parent.parent / "docs"


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def parse(text: str) -> Manifest:
    return parse_manifest(yaml_text(text))


def error_of(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse(text)
    return caught.value


def assert_error(text: str, field: str, line: int, fragment: str) -> ManifestError:
    """The error is at `field` on `line`, rendered `squall.yaml:LINE: FIELD: ...`."""
    error = error_of(text)
    assert str(error).startswith(f"squall.yaml:{line}: {field}: "), str(error)
    assert fragment in error.message, str(error)
    return error


def one_trigger(item: str, resources: str = "", function: str = "") -> str:
    """A manifest whose function `f` has one trigger: `item`'s first line is line 6, its next
    lines 7, 8, ...; `function` adds keys to `f` after its triggers; `resources` follows at the
    top level."""
    first, *rest = yaml_text(item).splitlines()
    lines = ["name: demo", "functions:", "  f:", "    handler: app.handler", "    triggers:",
             f"      - {first}", *(f"        {line}" for line in rest)]
    lines += [f"    {line}" for line in yaml_text(function).splitlines()]
    return "\n".join(lines) + "\n" + yaml_text(resources)


def one_function(body: str, resources: str = "") -> str:
    """A manifest with function `f` whose `body` starts on line 5, then `resources` as written
    (more functions when indented by 2)."""
    head = "name: demo\nfunctions:\n  f:\n    handler: app.handler\n"
    return head + textwrap.indent(yaml_text(body), "    ") + resources


def first_trigger(text: str) -> Any:
    return parse(text).functions["f"].triggers[0]


TOPICS = "topics:\n  deploys:\n  alerts: {}\n"
QUEUES = "queues:\n  jobs:\n  orders.fifo:\n"
BUCKETS = "buckets:\n  uploads:\n"


# ------------------------------------------------------------------ resources: valid


def test_sections_default_to_empty() -> None:
    manifest = parse(one_function(""))
    assert (manifest.topics, manifest.queues, manifest.buckets) == ({}, {}, {})
    assert manifest.resources() == {"topics": {}, "queues": {}, "buckets": {}, "tables": {}}


@pytest.mark.parametrize("text", ["topics:\n", "topics: {}\n", "topics: null\n"])
def test_empty_sections_are_empty(text: str) -> None:
    assert parse(one_function("", text)).topics == {}


def test_null_or_empty_resources_take_the_defaults() -> None:
    manifest = parse(one_function("", "topics: {deploys: {}, alerts: }\nqueues: {jobs: }\n"
                                      "buckets: {uploads: {}, logs.example: }\n"))
    assert manifest.topics == {"deploys": TopicSpec(), "alerts": TopicSpec()}
    assert manifest.queues == {"jobs": QueueSpec()}
    assert manifest.buckets == {"uploads": BucketSpec(), "logs.example": BucketSpec()}


def test_resources_are_normalized_json() -> None:
    manifest = parse(one_function("", yaml_text("""\
    topics:
      deploys:
        subscriptions:
          - url: https://hooks.example.com/deploys
            filter_policy: '{"environment": ["prod"]}'
          - url: http://127.0.0.1:9000/x
            filter_policy: {detail: {size: [{numeric: [">", 10]}]}}
            filter_policy_scope: MessageBody
            raw_message_delivery: true
    queues:
      jobs:
        visibility_timeout: 2m
        max_receive_count: 3
        dead_letter_queue: jobs-dead
        retention: 1d
        delay: 90
      jobs-dead:
      orders.fifo:
        content_based_deduplication: true
    buckets:
      uploads:
    """)))
    resources = manifest.resources()
    assert json.loads(json.dumps(resources)) == resources
    assert resources == {
        "topics": {"deploys": {"subscriptions": [
            {"url": "https://hooks.example.com/deploys", "filter_policy": {"environment": ["prod"]},
             "filter_policy_scope": "MessageAttributes", "raw_message_delivery": False},
            {"url": "http://127.0.0.1:9000/x",
             "filter_policy": {"detail": {"size": [{"numeric": [">", 10]}]}},
             "filter_policy_scope": "MessageBody", "raw_message_delivery": True},
        ]}},
        "queues": {
            "jobs": {"visibility_timeout": 120, "max_receive_count": 3, "dead_letter_queue": "jobs-dead",
                     "retention": 86400, "delay": 90, "fifo": False, "content_based_deduplication": False},
            "jobs-dead": {"visibility_timeout": 30, "max_receive_count": 5, "dead_letter_queue": None,
                          "retention": 345600, "delay": 0, "fifo": False,
                          "content_based_deduplication": False},
            "orders.fifo": {"visibility_timeout": 30, "max_receive_count": 5, "dead_letter_queue": None,
                            "retention": 345600, "delay": 0, "fifo": True,
                            "content_based_deduplication": True},
        },
        "buckets": {"uploads": {}},
        "tables": {},
    }


def test_fifo_may_be_written_when_it_agrees_with_the_name() -> None:
    manifest = parse(one_function("", "queues:\n  a.fifo: {fifo: true}\n  b: {fifo: false}\n"))
    assert (manifest.queues["a.fifo"].fifo, manifest.queues["b"].fifo) == (True, False)


def test_fifo_queue_may_have_a_fifo_dead_letter_queue() -> None:
    manifest = parse(one_function("", "queues:\n  a.fifo: {dead_letter_queue: b.fifo}\n  b.fifo:\n"))
    assert manifest.queues["a.fifo"].dead_letter_queue == "b.fifo"


@pytest.mark.parametrize("name", ["a", "A-b_9", "x" * 80])
def test_valid_topic_and_queue_names(name: str) -> None:
    manifest = parse(one_function("", f"topics: {{{name}: }}\nqueues: {{{name}: }}\n"))
    assert (list(manifest.topics), list(manifest.queues)) == ([name], [name])


@pytest.mark.parametrize("name", ["abc", "my.bucket-1", "a" * 63, "1ab"])
def test_valid_bucket_names(name: str) -> None:
    assert list(parse(one_function("", f"buckets: {{{name}: }}\n")).buckets) == [name]


# ------------------------------------------------------------------ resources: errors


@pytest.mark.parametrize("name", ["a.b", "x" * 81, "a b", "é", "deploys.fifo"])
def test_invalid_topic_name(name: str) -> None:
    assert_error(one_function("", f"topics:\n  {json.dumps(name)}:\n"), f"topics.{name}", 6,
                 "a topic name must hold only letters, digits, - and _ (1 to 80 characters")


@pytest.mark.parametrize("name", ["a.b", "x" * 81, "x" * 76 + ".fifo", ".fifo", "a.fifo.fifo", "a b"])
def test_invalid_queue_name(name: str) -> None:
    assert_error(one_function("", f"queues:\n  {json.dumps(name)}:\n"), f"queues.{name}", 6,
                 "a queue name must hold only letters, digits, - and _, plus .fifo")


@pytest.mark.parametrize("name", ["Uploads", "ab", "a" * 64, "a..b", "192.168.1.1", "-ab", "ab-",
                                  "a_b", ".ab"])
def test_invalid_bucket_name(name: str) -> None:
    assert_error(one_function("", f"buckets:\n  {json.dumps(name)}:\n"), f"buckets.{name}", 6,
                 "a bucket name must be 3 to 63 lowercase letters")


@pytest.mark.parametrize("section", ["topics", "queues", "buckets"])
def test_sections_must_be_mappings(section: str) -> None:
    assert_error(one_function("", f"{section}: [a, b]\n"), section, 5,
                 f"must be a mapping of {section[:-1]} names to their settings")


def test_unknown_topic_key() -> None:
    assert_error(one_function("", "topics:\n  deploys:\n    subscription: []\n"),
                 "topics.deploys.subscription", 7,
                 'unknown key "subscription" (did you mean "subscriptions"?); allowed keys: subscriptions')


def test_subscriptions_must_be_a_list() -> None:
    assert_error(one_function("", "topics:\n  t:\n    subscriptions: {url: http://x}\n"),
                 "topics.t.subscriptions", 7, "must be a list of subscriptions")


@pytest.mark.parametrize("url", ["ftp://x.example", "example.com/hook", "https://", "http://a b", "5"])
def test_subscription_url_must_be_http(url: str) -> None:
    text = one_function("", f"topics:\n  t:\n    subscriptions:\n      - url: {json.dumps(url)}\n")
    assert_error(text, "topics.t.subscriptions[0].url", 8, "must be an http:// or https:// URL")


@pytest.mark.parametrize("item, field, line, fragment", [
    ("- {raw_message_delivery: true}", "topics.t.subscriptions[0].url", 8, "is required"),
    ("- url: http://x\n  raw_delivery: true", "topics.t.subscriptions[0].raw_delivery", 9,
     'did you mean "raw_message_delivery"?'),
    ("- url: http://x\n  raw_message_delivery: yes please", "topics.t.subscriptions[0].raw_message_delivery",
     9, 'must be true or false, got "yes please"'),
    ("- url: http://x\n  filter_policy: {a: b}", "topics.t.subscriptions[0].filter_policy", 9,
     'filter policy at "a": expected a non-empty list of values'),
    ("- url: http://x\n  filter_policy_scope: body", "topics.t.subscriptions[0].filter_policy_scope", 9,
     "must be one of MessageAttributes, MessageBody"),
])
def test_invalid_subscription(item: str, field: str, line: int, fragment: str) -> None:
    text = one_function("", "topics:\n  t:\n    subscriptions:\n" + textwrap.indent(item, "      ") + "\n")
    assert_error(text, field, line, fragment)


def test_fifo_true_needs_the_suffix() -> None:
    assert_error(one_function("", "queues:\n  jobs:\n    fifo: true\n"), "queues.jobs.fifo", 7,
                 'a FIFO queue\'s name must end in .fifo: rename the queue "jobs.fifo"')


def test_fifo_false_contradicts_the_suffix() -> None:
    assert_error(one_function("", "queues:\n  jobs.fifo:\n    fifo: false\n"), "queues.jobs.fifo.fifo", 7,
                 "a queue whose name ends in .fifo is FIFO")


def test_fifo_must_be_a_boolean() -> None:
    assert_error(one_function("", "queues:\n  jobs:\n    fifo: maybe\n"), "queues.jobs.fifo", 7,
                 "must be true or false")


def test_content_based_deduplication_is_for_fifo_queues() -> None:
    assert_error(one_function("", "queues:\n  jobs:\n    content_based_deduplication: true\n"),
                 "queues.jobs.content_based_deduplication", 7, "is only for FIFO queues")


@pytest.mark.parametrize("key, value, fragment", [
    ("visibility_timeout", "13h", "must be from 0s to 12h (0 to 43200 seconds); got \"13h\""),
    ("visibility_timeout", "-1", "must be from 0s to 12h"),
    ("retention", "59", "must be from 1m to 14d (60 to 1209600 seconds); got 59"),
    ("retention", "15d", "must be from 1m to 14d"),
    ("delay", "16m", "must be from 0s to 15m (0 to 900 seconds)"),
    ("delay", "soon", "must be a duration such as 30s, 5m or 1h, or a number of seconds; got \"soon\""),
    ("max_receive_count", "0", "must be a whole number of receives from 1 to 1000, got 0"),
    ("max_receive_count", "1001", "from 1 to 1000"),
    ("max_receive_count", "2.5", "from 1 to 1000"),
    ("dead_letter_queue", "'a b'", "a queue name must hold only"),
    ("visibilty_timeout", "1", 'unknown key "visibilty_timeout" (did you mean "visibility_timeout"?)'),
])
def test_invalid_queue_settings(key: str, value: str, fragment: str) -> None:
    text = one_function("", f"queues:\n  jobs:\n    {key}: {value}\n  dlq:\n")
    assert_error(text, f"queues.jobs.{key}", 7, fragment)


def test_dead_letter_queue_must_be_declared() -> None:
    assert_error(one_function("", "queues:\n  jobs:\n    dead_letter_queue: job-dead\n  jobs-dead:\n"),
                 "queues.jobs.dead_letter_queue", 7,
                 'queue "job-dead" is not declared under queues (did you mean "jobs-dead"?); '
                 "declared: jobs, jobs-dead")


def test_dead_letter_queue_must_not_be_the_queue_itself() -> None:
    assert_error(one_function("", "queues:\n  jobs:\n    dead_letter_queue: jobs\n"),
                 "queues.jobs.dead_letter_queue", 7, "a queue cannot be its own dead-letter queue")


def test_fifo_queue_needs_a_fifo_dead_letter_queue() -> None:
    assert_error(one_function("", "queues:\n  a.fifo:\n    dead_letter_queue: dlq\n  dlq:\n"),
                 "queues.a.fifo.dead_letter_queue", 7,
                 '"dlq" is a standard queue: the dead-letter queue of a FIFO queue must be FIFO too')


def test_standard_queue_needs_a_standard_dead_letter_queue() -> None:
    assert_error(one_function("", "queues:\n  dlq.fifo:\n  a:\n    dead_letter_queue: dlq.fifo\n"),
                 "queues.a.dead_letter_queue", 8,
                 '"dlq.fifo" is a FIFO queue: the dead-letter queue of a standard queue must be standard')


# ------------------------------------------------------------------ durations


@pytest.mark.parametrize("value, seconds", [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("1h30m", 5400), ("1d2h3m4s", 93784),
    (" 10m ", 600), (90, 90), (90.5, 90.5), (120.0, 120), (0, 0),
])
def test_parse_duration(value: Any, seconds: float) -> None:
    parsed = parse_duration(value)
    assert parsed == seconds
    assert isinstance(parsed, int) == float(seconds).is_integer()


@pytest.mark.parametrize("value", ["5 minutes", "1m1h", "", "5", "1.5h", "-5s", "5M", "1h 30m", "1hh",
                                   True, None, [1], float("nan"), float("inf")])
def test_invalid_durations(value: Any) -> None:
    with pytest.raises(ValueError,
                       match="must be a duration such as 30s, 5m or 1h, or a number of seconds; got"):
        parse_duration(value)


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45, "45s"), (5400, "1h30m"), (21600, "6h"),
                                           (1209600, "14d"), (90061, "1d1h1m1s")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


# ------------------------------------------------------------------ async settings


def test_async_defaults_as_lambda_and_left_out_of_config() -> None:
    spec = parse(one_function("")).functions["f"]
    assert (spec.retries, spec.max_event_age, spec.on_success, spec.on_failure) == (2, 21600, None, None)
    config = spec.config()
    assert not {"retries", "max_event_age", "on_success", "on_failure"} & set(config)


def test_writing_the_defaults_changes_no_config() -> None:
    plain = parse(one_function("")).functions["f"].config()
    written = parse(one_function("retries: 2\nmax_event_age: 6h\non_success:\non_failure: null\n"))
    assert written.functions["f"].config() == plain


def test_async_settings_and_destinations() -> None:
    manifest = parse(one_function("""\
    retries: 10
    max_event_age: 1h30m
    on_success: {function: g}
    on_failure: {queue: failed}
    """, "  g:\n    handler: app.g\n    on_failure: {topic: alerts}\n" + TOPICS + "queues: {failed: }\n"))
    spec = manifest.functions["f"]
    assert (spec.retries, spec.max_event_age) == (10, 5400)
    assert spec.on_success is not None and spec.on_failure is not None
    assert (spec.on_success.kind, spec.on_success.target) == ("function", "g")
    assert (spec.on_failure.kind, spec.on_failure.target) == ("queue", "failed")
    config = spec.config()
    assert (config["retries"], config["max_event_age"]) == (10, 5400)
    assert (config["on_success"], config["on_failure"]) == ({"function": "g"}, {"queue": "failed"})
    assert list(config)[-5:] == ["retries", "max_event_age", "on_success", "on_failure", "triggers"]
    assert manifest.functions["g"].config()["on_failure"] == {"topic": "alerts"}


def test_a_function_may_be_its_own_destination() -> None:
    spec = parse(one_function("on_failure: {function: f}\n")).functions["f"]
    assert spec.on_failure == Destination(function="f")


@pytest.mark.parametrize("key, value, field, fragment", [
    ("retries", "11", "functions.f.retries", "must be a whole number of retries from 0 to 10, got 11"),
    ("retries", "-1", "functions.f.retries", "from 0 to 10"),
    ("retries", "true", "functions.f.retries", "from 0 to 10, got true"),
    ("max_event_age", "59", "functions.f.max_event_age",
     "must be from 1m to 6h (60 to 21600 seconds); got 59"),
    ("max_event_age", "7h", "functions.f.max_event_age",
     'must be from 1m to 6h (60 to 21600 seconds); got "7h"'),
    ("max_event_age", "5 minutes", "functions.f.max_event_age",
     'must be a duration such as 30s, 5m or 1h, or a number of seconds; got "5 minutes"'),
    ("on_failure", "failed", "functions.f.on_failure",
     "must be a mapping with the keys topic, queue, function"),
    ("on_failure", "{}", "functions.f.on_failure",
     "must name one destination: {topic: NAME}, {queue: NAME} or {function: NAME}"),
    ("on_success", "{queu: x}", "functions.f.on_success.queu", 'unknown key "queu" (did you mean "queue"?)'),
])
def test_invalid_async_settings(key: str, value: str, field: str, fragment: str) -> None:
    assert_error(one_function(f"{key}: {value}\n"), field, 5, fragment)


def test_destination_names_exactly_one_target() -> None:
    assert_error(one_function("on_failure:\n  queue: a\n  topic: b\n", "queues: {a: }\ntopics: {b: }\n"),
                 "functions.f.on_failure.topic", 7,
                 "names several destinations (queue, topic); give exactly one")


@pytest.mark.parametrize("destination, field, fragment", [
    ("{topic: alert}", "functions.f.on_failure.topic",
     'topic "alert" is not declared under topics (did you mean "alerts"?); declared: deploys, alerts'),
    ("{queue: job}", "functions.f.on_failure.queue",
     'queue "job" is not declared under queues (did you mean "jobs"?); declared: jobs, orders.fifo'),
    ("{function: gg}", "functions.f.on_failure.function",
     'function "gg" is not declared under functions (did you mean "g"?); declared: f, g'),
])
def test_destinations_must_be_declared(destination: str, field: str, fragment: str) -> None:
    text = one_function(f"on_failure: {destination}\n", "  g: {handler: app.g}\n" + TOPICS + QUEUES)
    assert_error(text, field, 5, fragment)


def test_undeclared_destination_when_nothing_is_declared() -> None:
    assert_error(one_function("on_success: {topic: t}\n"), "functions.f.on_success.topic", 5,
                 'topic "t" is not declared under topics; the manifest declares no topics')


# ------------------------------------------------------------------ trigger kinds


def test_every_kind_is_registered() -> None:
    assert list(TRIGGER_KINDS) == ["http", "schedule", "topic", "queue", "bucket"]
    assert TRIGGER_KINDS["schedule"] is ScheduleTrigger
    assert trigger_kind({"queue": "jobs", "batch_size": 3}) == "queue"
    assert trigger_kind(BucketTrigger(bucket="uploads")) == "bucket"
    assert trigger_kind({"topic": "t", "queue": "q"}) is None


def test_unknown_kind_suggests_one_of_the_new_kinds() -> None:
    assert_error(one_trigger('schedul: "rate(1 hour)"'), "functions.f.triggers[0]", 6,
                 'expected one of the keys http, schedule (did you mean "schedule"?), topic, queue, bucket')


def test_two_kinds_in_one_item() -> None:
    assert_error(one_trigger("topic: deploys\nqueue: jobs", TOPICS + QUEUES), "functions.f.triggers[0]", 6,
                 "names several trigger kinds (topic, queue)")


def test_not_a_mapping_lists_every_kind() -> None:
    assert_error(one_trigger('"rate(1 hour)"'), "functions.f.triggers[0]", 6,
                 "the kinds are http, schedule, topic, queue, bucket")


def test_routes_and_route_checks_only_see_http_triggers() -> None:
    manifest = parse(one_function("""\
    triggers:
      - schedule: rate(1 hour)
      - http: GET /a
      - queue: jobs
      - topic: deploys
    """, "  g:\n    handler: app.g\n    triggers:\n      - http: POST /a\n      - queue: orders.fifo\n"
         + TOPICS + QUEUES))
    routes = [(name, trigger.http) for name, trigger in manifest.routes()]
    assert routes == [("f", "GET /a"), ("g", "POST /a")]


def test_every_trigger_config_is_normalized_json() -> None:
    spec = parse(one_function("""\
    triggers:
      - http: get /a
      - schedule: " rate(1 hour) "
        input: [1, {a: null}]
        alarm_after: 2h
        alarm_topic: alerts
      - topic: deploys
        filter_policy: '{"kind": ["prod"]}'
      - queue: orders.fifo
        batch_window: 1m
      - bucket: uploads
        events: s3:ObjectRemoved:*
    """, TOPICS + QUEUES + BUCKETS)).functions["f"]
    config = spec.config()
    assert json.loads(json.dumps(config)) == config
    assert config["triggers"] == [
        {"http": "GET /a", "auth": None},
        {"schedule": "rate(1 hour)", "name": "f-0", "timezone": "UTC", "input": [1, {"a": None}],
         "overlap": "skip", "catch_up": False, "alarm_after": 7200, "alarm_topic": "alerts", "enabled": True},
        {"topic": "deploys", "filter_policy": {"kind": ["prod"]}, "filter_policy_scope": "MessageAttributes"},
        {"queue": "orders.fifo", "batch_size": 10, "batch_window": 60, "report_batch_item_failures": True,
         "enabled": True},
        {"bucket": "uploads", "events": ["ObjectRemoved:*"], "prefix": "", "suffix": ""},
    ]


def test_manifest_round_trips_through_model_dump() -> None:
    manifest = parse(one_function("""\
    on_failure: {queue: jobs}
    max_event_age: 10m
    triggers:
      - schedule: "0 3 * * *"
      - topic: deploys
        filter_policy: {a: [1]}
      - queue: jobs
      - bucket: uploads
    """, TOPICS + QUEUES + BUCKETS))
    again = Manifest.model_validate(manifest.model_dump())
    assert (again.functions, again.topics, again.queues, again.buckets) == (
        manifest.functions, manifest.topics, manifest.queues, manifest.buckets)


# ------------------------------------------------------------------ schedule


def test_schedule_defaults() -> None:
    trigger = first_trigger(one_trigger('schedule: "rate(5 minutes)"'))
    assert trigger == ScheduleTrigger(schedule="rate(5 minutes)", name="f-0", timezone="UTC", input=None,
                                      overlap="skip", catch_up=False, alarm_after=None, alarm_topic=None,
                                      enabled=True)


def test_schedule_with_every_key() -> None:
    trigger = first_trigger(one_trigger("""\
    schedule: "cron(0 3 * * ? *)"
    name: nightly-report
    timezone: Europe/Paris
    input: {report: daily, sizes: [1, 2.5], ok: true}
    overlap: replace
    catch_up: true
    alarm_after: 1d
    alarm_topic: alerts
    enabled: false
    """, TOPICS))
    assert (trigger.schedule, trigger.name, trigger.timezone, trigger.overlap) == (
        "cron(0 3 * * ? *)", "nightly-report", "Europe/Paris", "replace")
    assert trigger.input == {"report": "daily", "sizes": [1, 2.5], "ok": True}
    assert (trigger.catch_up, trigger.alarm_after, trigger.alarm_topic, trigger.enabled) == (
        True, 86400, "alerts", False)


@pytest.mark.parametrize("expression", ["rate(1 minute)", "rate(30 seconds)", "cron(0/15 * * * ? *)",
                                        "0 3 * * *", "*/5 * * * 1-5"])
def test_schedule_expressions_are_accepted(expression: str) -> None:
    assert first_trigger(one_trigger(f"schedule: {json.dumps(expression)}")).schedule == expression


@pytest.mark.parametrize("value, stored", [
    ('"hello"', "hello"), ("42", 42), ("1.5", 1.5), ("[a, b]", ["a", "b"]), ("false", False),
    ("{nested: {deep: [1, null]}}", {"nested": {"deep": [1, None]}}),
])
def test_schedule_input_may_be_any_json(value: str, stored: Any) -> None:
    trigger = first_trigger(one_trigger(f'schedule: "rate(1 hour)"\ninput: {value}'))
    assert json.dumps(trigger.input) == json.dumps(stored)


def test_schedule_input_aliases_are_plain_json() -> None:
    trigger = first_trigger(one_trigger('schedule: "rate(1 hour)"\ninput: {a: &x [1], b: *x}'))
    assert trigger.input == {"a": [1], "b": [1]}
    assert trigger.input["a"] is not trigger.input["b"]


def test_unnamed_schedules_are_numbered_among_the_functions_schedules() -> None:
    manifest = parse(one_function("""\
    triggers:
      - http: GET /x
      - schedule: rate(1 hour)
      - schedule: rate(2 hours)
        name: two-hours
      - schedule: rate(3 hours)
    """, "  g:\n    handler: app.g\n    triggers:\n      - schedule: rate(1 day)\n"))
    assert [(function, name, trigger.schedule) for function, name, trigger in manifest.schedules()] == [
        ("f", "f-0", "rate(1 hour)"), ("f", "two-hours", "rate(2 hours)"), ("f", "f-2", "rate(3 hours)"),
        ("g", "g-0", "rate(1 day)")]


def test_schedules_built_in_python_are_named_too() -> None:
    spec = FunctionSpec(name="job", handler="app.run",
                        triggers=[HttpTrigger(http="GET /x"), ScheduleTrigger(schedule="rate(1 hour)")])
    trigger = spec.triggers[1]
    assert isinstance(trigger, ScheduleTrigger) and trigger.name == "job-0"


@pytest.mark.parametrize("item, field, line, fragment", [
    ('schedule: "rate(5 minute)"', "schedule", 6, "write rate(5 minutes); the unit is plural"),
    ('schedule: "0 3 * * ? *"', "schedule", 6, "a 6-field cron is AWS syntax; write it as cron(0 3 * * ? *)"),
    ('schedule: "every day"', "schedule", 6, "unknown schedule expression"),
    ("schedule: 5", "schedule", 6, 'must be a schedule expression such as "rate(5 minutes)"'),
    ('schedule: "rate(1 hour)"\ntimezone: Europe/Pari', "timezone", 7,
     'unknown time zone "Europe/Pari"; did you mean "Europe/Paris"?'),
    ('schedule: "rate(1 hour)"\ntimezone: 1', "timezone", 7, "must be an IANA time zone"),
    ('schedule: "rate(1 hour)"\noverlap: wait', "overlap", 7,
     'must be one of skip, queue, replace, got "wait"'),
    ('schedule: "rate(1 hour)"\noverlap: skipp', "overlap", 7, 'did you mean "skip"?'),
    ('schedule: "rate(1 hour)"\ncatch_up: "no"', "catch_up", 7, 'must be true or false, got "no"'),
    ('schedule: "rate(1 hour)"\nenabled: 1', "enabled", 7, "must be true or false, got 1"),
    ('schedule: "rate(1 hour)"\nname: "my job"', "name", 7, "a schedule name must hold only letters"),
    ('schedule: "rate(1 hour)"\ninput: 2024-01-01', "input", 7, "must be plain JSON"),
    ('schedule: "rate(1 hour)"\ninput: .nan', "input", 7, "is not a JSON number"),
    ('schedule: "rate(1 hour)"\ninput: &x [*x]', "input", 7, "it contains itself"),
    ('schedule: "rate(1 hour)"\nalarm_after: 5 minutes\nalarm_topic: alerts', "alarm_after", 7,
     'must be a duration such as 30s, 5m or 1h, or a number of seconds; got "5 minutes"'),
    ('schedule: "rate(1 hour)"\nalarm_after: 0\nalarm_topic: alerts', "alarm_after", 7,
     "must be from 1s to 31d"),
    ('schedule: "rate(1 hour)"\nalarm_after: 1h', "alarm_after", 7,
     "needs alarm_topic: the topic (declared under topics) that gets the alarm"),
    ('schedule: "rate(1 hour)"\nalarm_topic: alerts', "alarm_topic", 7, "is only used with alarm_after"),
    ('schedule: "rate(1 hour)"\nalarm_after: 1h\nalarm_topic: alert', "alarm_topic", 8,
     'topic "alert" is not declared under topics (did you mean "alerts"?)'),
    ('schedule: "rate(1 hour)"\ntimezon: UTC', "timezon", 7,
     'unknown key "timezon" (did you mean "timezone"?); allowed keys: schedule, name, timezone, input, '
     "overlap, catch_up, alarm_after, alarm_topic, enabled"),
])
def test_invalid_schedule(item: str, field: str, line: int, fragment: str) -> None:
    assert_error(one_trigger(item, TOPICS), f"functions.f.triggers[0].{field}", line, fragment)


def test_schedule_input_is_at_most_256_kb() -> None:
    big = json.dumps("x" * (256 * 1024))
    assert_error(one_trigger(f'schedule: "rate(1 hour)"\ninput: {big}'), "functions.f.triggers[0].input", 7,
                 "is too large")


def test_duplicate_schedule_names_name_the_first() -> None:
    assert_error("""\
    functions:
      f:
        handler: app.f
        triggers:
          - schedule: rate(1 hour)
            name: nightly
      g:
        handler: app.g
        triggers:
          - schedule: rate(1 day)
            name: nightly
    """, "functions.g.triggers[0].name", 11,
        'duplicate schedule name "nightly": it is already used at functions.f.triggers[0]; schedule names '
        "are unique in a project (an unnamed schedule is named <function>-<n>) (line 6)")


def test_a_written_name_may_collide_with_a_default_name() -> None:
    assert_error("""\
    functions:
      f:
        handler: app.f
        triggers:
          - schedule: rate(1 hour)
      g:
        handler: app.g
        triggers:
          - schedule: rate(1 day)
            name: f-0
    """, "functions.g.triggers[0].name", 10, "(line 5)")


# ------------------------------------------------------------------ topic trigger


def test_topic_trigger_defaults() -> None:
    assert first_trigger(one_trigger("topic: deploys", TOPICS)) == TopicTrigger(
        topic="deploys", filter_policy=None, filter_policy_scope="MessageAttributes")


@pytest.mark.parametrize("policy", ['{env: [prod], size: [{numeric: [">", 10]}]}',
                                    """'{"env": ["prod"], "size": [{"numeric": [">", 10]}]}'"""])
def test_topic_filter_policy_is_stored_as_a_mapping(policy: str) -> None:
    trigger = first_trigger(one_trigger(f"topic: deploys\nfilter_policy: {policy}", TOPICS))
    assert trigger.filter_policy == {"env": ["prod"], "size": [{"numeric": [">", 10]}]}
    assert type(trigger.filter_policy) is dict


def test_nested_policy_needs_the_body_scope() -> None:
    item = "topic: deploys\nfilter_policy: {detail: {env: [prod]}}"
    assert_error(one_trigger(item, TOPICS), "functions.f.triggers[0].filter_policy", 7,
                 'filter policy at "detail"')
    trigger = first_trigger(one_trigger(item + "\nfilter_policy_scope: MessageBody", TOPICS))
    assert trigger.filter_policy == {"detail": {"env": ["prod"]}}
    assert trigger.filter_policy_scope == "MessageBody"


@pytest.mark.parametrize("item, field, line, fragment", [
    ("topic: deploy", "topic", 6, 'topic "deploy" is not declared under topics (did you mean "deploys"?); '
     "declared: deploys, alerts"),
    ("topic: 'a.b'", "topic", 6, "a topic name must hold only letters"),
    ("topic: deploys\nfilter_policy: [a]", "filter_policy", 7, "must be a filter policy: a mapping"),
    ("topic: deploys\nfilter_policy: 'not json'", "filter_policy", 7, "filter policy is not valid JSON"),
    ("topic: deploys\nfilter_policy: '[1]'", "filter_policy", 7, "filter policy must be a JSON object"),
    ("topic: deploys\nfilter_policy: {a: [1], b: [2], c: [3], d: [4], e: [5], f: [6]}", "filter_policy", 7,
     "SNS allows at most 5"),
    ("topic: deploys\nfilter_policy: {a: [{prefx: x}]}", "filter_policy", 7, 'filter policy at "a'),
    ("topic: deploys\nfilter_policy_scope: MessageBodies", "filter_policy_scope", 7,
     'must be one of MessageAttributes, MessageBody, got "MessageBodies" (did you mean "MessageBody"?)'),
    ("topic: deploys\nfilter: {a: [1]}", "filter", 7, 'unknown key "filter"'),
])
def test_invalid_topic_trigger(item: str, field: str, line: int, fragment: str) -> None:
    assert_error(one_trigger(item, TOPICS), f"functions.f.triggers[0].{field}", line, fragment)


def test_topic_trigger_when_no_topics_are_declared() -> None:
    assert_error(one_trigger("topic: deploys"), "functions.f.triggers[0].topic", 6,
                 "the manifest declares no topics")


# ------------------------------------------------------------------ queue trigger


def test_queue_trigger_defaults_and_settings() -> None:
    assert first_trigger(one_trigger("queue: jobs", QUEUES)) == QueueTrigger(
        queue="jobs", batch_size=10, batch_window=0, report_batch_item_failures=True, enabled=True)
    trigger = first_trigger(one_trigger(
        "queue: jobs\nbatch_size: 10000\nbatch_window: 5m\nreport_batch_item_failures: false\nenabled: false",
        QUEUES))
    assert (trigger.batch_size, trigger.batch_window) == (10000, 300)
    assert (trigger.report_batch_item_failures, trigger.enabled) == (False, False)


@pytest.mark.parametrize("item, field, line, fragment", [
    ("queue: job", "queue", 6, 'queue "job" is not declared under queues (did you mean "jobs"?)'),
    ("queue: orders.fifo\nbatch_size: 11", "batch_size", 7,
     "must be at most 10 for a FIFO queue (as in SQS), got 11"),
    ("queue: jobs\nbatch_size: 0", "batch_size", 7,
     "must be a whole number of messages from 1 to 10000, got 0"),
    ("queue: jobs\nbatch_size: 10001", "batch_size", 7, "from 1 to 10000"),
    ("queue: jobs\nbatch_window: 6m", "batch_window", 7,
     'must be from 0s to 5m (0 to 300 seconds); got "6m"'),
    ("queue: jobs\nbatch_window: 5 sec", "batch_window", 7, "must be a duration such as 30s"),
    ('queue: jobs\nreport_batch_item_failures: "on"', "report_batch_item_failures", 7,
     'must be true or false, got "on"'),
    ("queue: jobs\nbatchsize: 5", "batchsize", 7, 'unknown key "batchsize" (did you mean "batch_size"?)'),
])
def test_invalid_queue_trigger(item: str, field: str, line: int, fragment: str) -> None:
    assert_error(one_trigger(item, QUEUES), f"functions.f.triggers[0].{field}", line, fragment)


def test_fifo_queue_may_take_batches_of_10() -> None:
    assert first_trigger(one_trigger("queue: orders.fifo\nbatch_size: 10", QUEUES)).batch_size == 10


def test_a_queue_has_one_consumer() -> None:
    assert_error("""\
    functions:
      a:
        handler: app.a
        triggers:
          - queue: jobs
      b:
        handler: app.b
        triggers:
          - http: GET /x
          - queue: jobs
    queues:
      jobs:
    """, "functions.b.triggers[1].queue", 10,
        'queue "jobs" is already consumed by function "a" at functions.a.triggers[0].queue; a queue may '
        "feed one function trigger (line 5)")


def test_one_function_cannot_consume_a_queue_twice() -> None:
    text = one_function("triggers:\n  - queue: jobs\n  - queue: jobs\n    batch_size: 1\n", QUEUES)
    assert_error(text, "functions.f.triggers[1].queue", 7, "already consumed by function \"f\"")


# ------------------------------------------------------------------ bucket trigger


def test_bucket_trigger_defaults() -> None:
    assert first_trigger(one_trigger("bucket: uploads", BUCKETS)) == BucketTrigger(
        bucket="uploads", events=["ObjectCreated:*"], prefix="", suffix="")


@pytest.mark.parametrize("events, stored", [
    ("[s3:ObjectCreated:Put, ObjectCreated:Copy]", ["ObjectCreated:Put", "ObjectCreated:Copy"]),
    ("[ObjectRemoved:*, s3:ObjectRemoved:*]", ["ObjectRemoved:*"]),
    ("ObjectRemoved:Delete", ["ObjectRemoved:Delete"]),
    ("[ObjectCreated:*, ObjectRemoved:*]", ["ObjectCreated:*", "ObjectRemoved:*"]),
])
def test_bucket_events_are_normalized(events: str, stored: list[str]) -> None:
    trigger = first_trigger(one_trigger(f"bucket: uploads\nevents: {events}\nprefix: img/\nsuffix: .jpg",
                                        BUCKETS))
    assert (trigger.events, trigger.prefix, trigger.suffix) == (stored, "img/", ".jpg")


@pytest.mark.parametrize("item, field, line, fragment", [
    ("bucket: upload", "bucket", 6,
     'bucket "upload" is not declared under buckets (did you mean "uploads"?)'),
    ("bucket: Uploads", "bucket", 6, "a bucket name must be 3 to 63 lowercase letters"),
    ("bucket: uploads\nevents: [ObjectCreated:Put, ObjectCreatd:*]", "events[1]", 7,
     'got "ObjectCreatd:*" (did you mean "ObjectCreated:*"?)'),
    ("bucket: uploads\nevents: [ObjectCreated:Post]", "events[0]", 7,
     "must be one of ObjectCreated:*, ObjectCreated:Put, ObjectCreated:Copy, ObjectRemoved:*, "
     "ObjectRemoved:Delete"),
    ("bucket: uploads\nevents: s3:ObjectDeleted", "events", 7, "must be one of ObjectCreated:*"),
    ("bucket: uploads\nevents: []", "events", 7, "must be a list of S3 event types"),
    ("bucket: uploads\nevents: {a: b}", "events", 7, "must be a list of S3 event types"),
    ("bucket: uploads\nprefix: 5", "prefix", 7, "must be a string"),
    ("bucket: uploads\nsufix: .jpg", "sufix", 7, 'unknown key "sufix" (did you mean "suffix"?)'),
])
def test_invalid_bucket_trigger(item: str, field: str, line: int, fragment: str) -> None:
    assert_error(one_trigger(item, BUCKETS), f"functions.f.triggers[0].{field}", line, fragment)


# ------------------------------------------------------------------ docs


@pytest.mark.parametrize("section", [ScheduleTrigger, TopicTrigger, QueueTrigger, BucketTrigger, Destination,
                                     TopicSpec, Subscription, QueueSpec, BucketSpec])
def test_every_event_key_is_documented(section: type[Section]) -> None:
    text = (DOCS / "manifest.md").read_text()
    missing = [key for key in section.yaml_keys() if f"`{key}`" not in text]
    assert missing == [], f"{section.__name__} keys missing from docs/manifest.md: {missing}"


def test_the_complete_example_of_the_docs_is_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (DOCS / "manifest.md").read_text(), re.DOTALL)
    example = next(block for block in blocks if block.startswith("# squall.yaml"))
    manifest = parse_manifest(example)
    assert [name for name, _, _ in manifest.schedules()] == ["report"]
    assert set(manifest.resources()["queues"]) == {"jobs", "failed"}


# ------------------------------------------------------------------ built in Python, hostile YAML


def test_queues_built_in_python_take_fifo_from_the_name() -> None:
    spec = FunctionSpec(name="f", handler="app.f")
    manifest = Manifest(name="p", functions={"f": spec}, queues={"a.fifo": QueueSpec(), "b": QueueSpec()})
    assert (manifest.queues["a.fifo"].fifo, manifest.queues["b"].fifo) == (True, False)


def test_a_huge_input_made_of_aliases_is_refused_quickly() -> None:
    value = "&l0 [" + ", ".join(["a"] * 10) + "]"
    for i in range(1, 10):
        value = f"&l{i} [{value}, " + ", ".join([f"*l{i - 1}"] * 9) + "]"
    started = time.perf_counter()
    assert_error(one_trigger(f'schedule: "rate(1 hour)"\ninput: {value}'), "functions.f.triggers[0].input", 7,
                 "is too large: at most 256 KB of JSON")
    assert time.perf_counter() - started < 1
