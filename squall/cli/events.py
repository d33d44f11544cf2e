"""`squall publish`, `squall topics`, `squall send`, `squall queues` and `squall schedules
[run NAME]`: topics, queues and schedule triggers from the command line."""

from __future__ import annotations

import time

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table, relative_time


def parse_attribute(text: str) -> tuple[str, str | dict[str, str]]:
    """`name=value` (a String attribute) or `name:Number=42` / `name:String.Array=[...]`."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r} is not name=value", param_hint="'--attr'")
    if ":" in name:
        name, kind = name.split(":", 1)
        return name, {"Type": kind, "Value": value}
    return name, value


@click.command()
@click.argument("topic")
@click.argument("message")
@click.option("--subject", help="The message's subject (SNS Subject).")
@click.option("--attr", "attrs", multiple=True, metavar="NAME[:TYPE]=VALUE",
              help="A message attribute (repeatable); TYPE is String (default), Number or String.Array.")
@json_option
@click.pass_context
def publish(ctx: click.Context, topic: str, message: str, subject: str | None, attrs: tuple[str, ...],
            as_json: bool) -> None:
    """Publish MESSAGE to TOPIC: every subscriber whose filter policy accepts it gets it."""
    attributes = dict(parse_attribute(a) for a in attrs)
    result = client_from(ctx).publish(topic, message, subject=subject, attributes=attributes or None)
    print_json(result) if as_json else print_message(f"published {result['messageId']}")


@click.command("topics")
@json_option
@click.pass_context
def list_topics(ctx: click.Context, as_json: bool) -> None:
    """List topics with their function and HTTP subscribers."""
    topics = client_from(ctx).list_topics()
    if as_json:
        print_json(topics)
        return
    print_table(("TOPIC", "PROJECT", "FUNCTIONS", "HTTP ENDPOINTS"),
                ((t["name"], t["project"], ", ".join(t["functions"]), ", ".join(t["urls"])) for t in topics))


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def schedules(ctx: click.Context, as_json: bool) -> None:
    """List schedule triggers: last run, its result and the next run."""
    if ctx.invoked_subcommand is not None:
        return
    found = client_from(ctx).list_schedules()
    if as_json:
        print_json(found)
        return
    now = time.time()

    def when(ts: float | None) -> str:
        return relative_time(ts, now) if ts else "-"

    print_table(("SCHEDULE", "FUNCTION", "EXPRESSION", "TIME ZONE", "LAST RUN", "RESULT", "NEXT RUN"),
                ((s["name"], s["function"], s["expression"], s["timezone"], when(s["last_fire"]),
                  s["last_status"] or "-", when(s["next_fire"]) if s["enabled"] else "disabled") for s in found))


@schedules.command("run")
@click.argument("name")
@json_option
@click.pass_context
def run_schedule(ctx: click.Context, name: str, as_json: bool) -> None:
    """Fire schedule NAME (or FUNCTION/NAME) once, now, with its usual event."""
    result = client_from(ctx).run_schedule(name)
    print_json(result) if as_json else print_message(f"queued {result['requestId']}")


@click.command()
@click.argument("queue")
@click.argument("body")
@click.option("--group", "group_id", metavar="ID", help="Message group id (FIFO queues).")
@click.option("--dedup", "deduplication_id", metavar="ID", help="Deduplication id (FIFO queues).")
@click.option("--delay", type=click.FloatRange(0, 900), help="Seconds before the message can be received.")
@click.option("--attr", "attrs", multiple=True, metavar="NAME[:TYPE]=VALUE",
              help="A message attribute (repeatable); TYPE is String (default) or Number.")
@json_option
@click.pass_context
def send(ctx: click.Context, queue: str, body: str, group_id: str | None, deduplication_id: str | None,
         delay: float | None, attrs: tuple[str, ...], as_json: bool) -> None:
    """Send a message with BODY to QUEUE."""
    attributes = {}
    for text in attrs:
        name, value = parse_attribute(text)
        attributes[name] = ({"DataType": value["Type"], "StringValue": value["Value"]}
                            if isinstance(value, dict) else value)
    result = client_from(ctx).send_message(queue, body, attributes=attributes or None, group_id=group_id,
                                           deduplication_id=deduplication_id, delay=delay)
    print_json(result) if as_json else print_message(f"sent {result['messageId']}")


@click.command("queues")
@json_option
@click.pass_context
def list_queues(ctx: click.Context, as_json: bool) -> None:
    """List queues: messages visible, in flight and delayed, and their consumers."""
    queues = client_from(ctx).list_queues()
    if as_json:
        print_json(queues)
        return
    print_table(("QUEUE", "PROJECT", "FIFO", "VISIBLE", "IN FLIGHT", "DELAYED", "CONSUMERS"),
                ((q["name"], q["project"], "yes" if q["fifo"] else "no", str(q["visible"]), str(q["in_flight"]),
                  str(q["delayed"]), ", ".join(q["consumers"])) for q in queues))


@click.command()
@click.argument("function")
@click.option("--schedule", "kind", flag_value="schedule", help="The event of its schedule trigger.")
@click.option("--topic", "kind", flag_value="topic", help="An SNS event from a topic (--message).")
@click.option("--queue", "kind", flag_value="queue", help="An SQS event (one record per --message).")
@click.option("--bucket", "kind", flag_value="bucket", help="An S3 event (--key, --event).")
@click.option("--name", metavar="NAME", help="Which topic, queue, bucket or schedule (default: its first trigger).")
@click.option("--message", "messages", multiple=True, help="Message text (repeat for several queue records).")
@click.option("--subject", help="Topic message subject.")
@click.option("--attr", "attrs", multiple=True, metavar="NAME[:TYPE]=VALUE", help="A message attribute.")
@click.option("--key", help="Object key of a bucket event.")
@click.option("--event", "event_name", default="ObjectCreated:Put", show_default=True,
              help="Bucket event: ObjectCreated:Put, ObjectCreated:Copy or ObjectRemoved:Delete.")
@click.option("--show-event", is_flag=True, help="Print the event that was sent too.")
@json_option
@click.pass_context
def trigger(ctx: click.Context, function: str, kind: str | None, name: str | None, messages: tuple[str, ...],
            subject: str | None, attrs: tuple[str, ...], key: str | None, event_name: str, show_event: bool,
            as_json: bool) -> None:
    """Invoke FUNCTION now with the event one of its triggers would deliver.

    Builds the exact event (EventBridge, SNS, SQS or S3 shape) and invokes once,
    synchronously; nothing is published, sent or stored. Exits with 1 when the
    function raised.
    """
    if kind is None:
        raise click.UsageError("choose one of --schedule, --topic, --queue or --bucket")
    request: dict[str, object] = {"kind": kind, "name": name, "subject": subject, "key": key,
                                  "event": event_name, "attributes": dict(parse_attribute(a) for a in attrs) or None}
    if messages:
        request["message"] = messages[0]
        request["messages"] = list(messages)
    result = client_from(ctx).trigger(function, request)
    if as_json:
        print_json(result)
    else:
        if show_event:
            print_json(result["event"])
        print_json(result["payload"])
    if not result.get("ok"):
        ctx.exit(1)
