"""Commands on deployed functions: `squall invoke`, `squall ls`, `squall instances`, `squall recycle`."""

from __future__ import annotations

import time
from typing import IO, Any

import click
import orjson

from squall.cli.options import client_from, json_option
from squall.cli.output import print_error, print_json, print_message, print_table, relative_time


@click.command()
@click.argument("name")
@click.option("--data", "-d", metavar="JSON", help="The event, as a JSON text.")
@click.option("--event", "-e", "event_file", type=click.File("rb"), metavar="FILE",
              help="Read the event from FILE ('-' reads stdin).")
@click.option("--async", "run_async", is_flag=True,
              help="Queue the invocation and print its request id (202) instead of waiting.")
@click.option("--idempotency-key", metavar="KEY",
              help="With --async: a repeat with the same KEY within 24 h returns the first request id.")
@json_option
@click.pass_context
def invoke(ctx: click.Context, name: str, data: str | None, event_file: IO[bytes] | None,
           run_async: bool, idempotency_key: str | None, as_json: bool) -> None:
    """Invoke function NAME and print what it returned.

    The event is --data, or the content of --event FILE, or {} when neither is
    given. Exits with 1 when the function raised (its error object is printed).
    With --async the event is stored, then run (and retried) in the background;
    the request id is printed as soon as it is stored.
    """
    event = read_event(data, event_file)
    if idempotency_key and not run_async:
        raise click.UsageError("--idempotency-key needs --async")
    if run_async:
        queued = client_from(ctx).invoke_async(name, event, idempotency_key=idempotency_key)
        if as_json:
            print_json(queued)
        else:
            print_message(f"queued {queued['requestId']}")
        return
    envelope = client_from(ctx).invoke(name, event)
    payload = envelope.get("payload")
    print_json(envelope if as_json else payload)
    if not envelope.get("ok", False):
        print_error(describe_function_error(payload))
        ctx.exit(1)


def read_event(data: str | None, event_file: IO[bytes] | None) -> bytes:
    """The event's JSON bytes from --data or --event; bad JSON is a usage error (exit 2)."""
    if data is not None and event_file is not None:
        raise click.UsageError("give the event with --data or with --event, not both")
    if data is not None:
        return check_json(data.encode(), "'--data'")
    if event_file is not None:
        return check_json(event_file.read(), "'--event'")
    return b"{}"


def check_json(raw: bytes, param_hint: str) -> bytes:
    """`raw` unchanged if it is valid JSON; else click.BadParameter saying where it fails."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=param_hint) from exc
    return raw


def describe_function_error(payload: Any) -> str:
    """`<errorType>: <errorMessage>` from Lambda's error object."""
    if isinstance(payload, dict):
        kind = payload.get("errorType") or "Error"
        message = payload.get("errorMessage") or ""
        return f"{kind}: {message}" if message else str(kind)
    return "the function failed"


@click.command(name="ls")
@json_option
@click.pass_context
def list_functions(ctx: click.Context, as_json: bool) -> None:
    """List the deployed functions with their latest version and routes."""
    functions = client_from(ctx).list_functions()
    if as_json:
        print_json(functions)
        return
    if not functions:
        print_message("No functions deployed yet; deploy a project with `squall deploy`.")
        return
    now = time.time()
    print_table(["NAME", "VERSION", "RUNTIME", "MEMORY", "TIMEOUT", "ROUTES", "UPDATED"],
                [function_row(fn, now) for fn in functions])


def function_row(fn: dict[str, Any], now: float) -> tuple[str, ...]:
    """One row of `squall ls`."""
    updated = fn.get("updated_at")
    return (
        str(fn.get("name", "?")),
        str(fn.get("version", "-")),
        str(fn.get("runtime") or "-"),
        f"{fn['memory']} MB" if fn.get("memory") is not None else "-",
        f"{fn['timeout']}s" if fn.get("timeout") is not None else "-",
        "\n".join(fn.get("routes") or []) or "-",
        relative_time(float(updated), now) if updated is not None else "-",
    )


@click.command(name="instances")
@click.argument("name", required=False)
@json_option
@click.pass_context
def list_instances(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """List the live instances (of function NAME, or of all): state, age, invocations, memory."""
    answer = client_from(ctx).list_instances(name)
    if as_json:
        print_json(answer)
        return
    instances = answer.get("instances", [])
    if not instances:
        print_message("No live instances." if name is None else f"No live instances of {name}.")
        return
    now = time.time()
    print_table(["FUNCTION", "VERSION", "PID", "STATE", "AGE", "INVOCATIONS", "MEMORY", "INIT"],
                [instance_row(i, now) for i in instances])


def instance_row(instance: dict[str, Any], now: float) -> tuple[str, ...]:
    """One row of `squall instances`."""
    memory, init = instance.get("memory_mb"), instance.get("init_ms")
    return (
        str(instance.get("function", "?")), str(instance.get("version", "-")), str(instance.get("pid", "-")),
        str(instance.get("state", "-")), relative_time(float(instance.get("started_at", now)), now),
        str(instance.get("invocations", 0)), f"{memory} MB" if memory is not None else "-",
        f"{init:.1f} ms" if init is not None else "-",
    )


@click.command()
@click.argument("name")
@json_option
@click.pass_context
def recycle(ctx: click.Context, name: str, as_json: bool) -> None:
    """Stop the idle instances of function NAME (their shutdown hooks run).

    Busy instances finish their call first. The next call starts a fresh
    instance (a cold start); min_instances are started again.
    """
    answer = client_from(ctx).recycle(name)
    if as_json:
        print_json(answer)
        return
    print_message(f"Stopped {answer.get('stopped', 0)} idle instance(s) of {name}.")
