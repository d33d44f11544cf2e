"""`squall dlq ls|show|redrive|purge NAME`: a function's dead letters, the asynchronous
invocations that failed every attempt or grew too old."""

from __future__ import annotations

import time
from datetime import datetime

import click
import orjson

from squall.cli.functions import describe_function_error
from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table, relative_time


@click.group()
def dlq() -> None:
    """Dead letters of asynchronous invocations: list, show, run again, delete."""


@dlq.command("ls")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Show at most this many.")
@json_option
@click.pass_context
def list_dead(ctx: click.Context, name: str, limit: int, as_json: bool) -> None:
    """List the dead letters of function NAME, oldest first."""
    events = client_from(ctx).dead_letters(name, limit)
    if as_json:
        print_json(events)
        return
    if not events:
        print_message(f"no dead letters for {name}")
        return
    now = time.time()
    print_table(("REQUEST ID", "DIED", "REASON", "ATTEMPTS", "ERROR"),
                ((e["id"], relative_time(e["finished_at"] or e["created_at"], now), e["dead_reason"] or "",
                  str(e["attempts"]), error_summary(e["last_error"])) for e in events))


@dlq.command("show")
@click.argument("name")
@click.argument("request_id")
@json_option
@click.pass_context
def show_dead(ctx: click.Context, name: str, request_id: str, as_json: bool) -> None:
    """Show one dead letter of NAME: its payload, attempts and last error."""
    event = client_from(ctx).get_event(request_id)
    if event.get("function") != name:
        raise click.BadParameter(f"{request_id} is an event of {event.get('function')}, not of {name}",
                                 param_hint="REQUEST_ID")
    if as_json:
        print_json(event)
        return
    for key in ("id", "function", "status", "dead_reason", "attempts", "source"):
        print_message(f"{key:12} {event.get(key)}")
    print_message(f"{'created':12} {datetime.fromtimestamp(event['created_at']).isoformat(timespec='seconds')}")
    print_message("payload:")
    print_json(event.get("payload", event.get("payload_base64")))
    print_message("last error:")
    print_message(event.get("last_error") or "")


@dlq.command("redrive")
@click.argument("name")
@click.argument("request_ids", nargs=-1)
@json_option
@click.pass_context
def redrive(ctx: click.Context, name: str, request_ids: tuple[str, ...], as_json: bool) -> None:
    """Queue dead letters of NAME again (the REQUEST_IDS given, or all), with fresh attempts."""
    moved = client_from(ctx).redrive(name, list(request_ids) or None)
    print_json({"function": name, "redriven": moved}) if as_json else print_message(f"redriven {moved}")


@dlq.command("purge")
@click.argument("name")
@click.argument("request_ids", nargs=-1)
@click.option("--yes", is_flag=True, help="Do not ask before deleting every dead letter.")
@json_option
@click.pass_context
def purge(ctx: click.Context, name: str, request_ids: tuple[str, ...], yes: bool, as_json: bool) -> None:
    """Delete dead letters of NAME (the REQUEST_IDS given, or all)."""
    if not request_ids and not yes:
        click.confirm(f"delete every dead letter of {name}?", abort=True)
    purged = client_from(ctx).purge(name, list(request_ids) or None)
    print_json({"function": name, "purged": purged}) if as_json else print_message(f"purged {purged}")


def error_summary(error: str | None, width: int = 80) -> str:
    """`ErrorType: message` of a stored Lambda error object, on one line, cut at `width`."""
    try:
        text = describe_function_error(orjson.loads(error or "null"))
    except orjson.JSONDecodeError:
        text = error or ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1] + "…"
