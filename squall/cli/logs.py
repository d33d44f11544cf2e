"""`squall logs`: print (or follow) a function's log lines."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json_line, print_log_line

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str, now: float) -> float:
    """A unix time from `30s`, `10m`, `2h`, `1d`, `1w` (before `now`) or an ISO-8601 time.

    An ISO time without an offset is taken as UTC, like the times `squall logs`
    prints. Raises ValueError with a readable message otherwise.
    """
    match = _DURATION.match(value)
    if match:
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration such as 30s, 10m, 2h, 1d "
                         "nor an ISO-8601 time such as 2026-11-23T09:40:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class SinceType(click.ParamType):
    """A click parameter type that turns `--since` into a unix time."""

    name = "DURATION|TIME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_since(str(value), time.time())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command()
@click.argument("name")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until Ctrl-C.")
@click.option("--since", type=SinceType(),
              help="Only lines from the last 30s, 10m, 2h, 1d ... or after an ISO-8601 "
                   "time (UTC unless it has an offset).")
@click.option("--request-id", metavar="ID", help="Only the lines of this invocation.")
@json_option
@click.pass_context
def logs(ctx: click.Context, name: str, follow: bool, since: float | None,
         request_id: str | None, as_json: bool) -> None:
    """Print the log lines of function NAME, oldest first.

    Each line reads `time  request-id  LEVEL  message`; with --json each line is
    one JSON object (JSON Lines), also with --follow.
    """
    client = client_from(ctx)
    print_line = print_json_line if as_json else print_log_line
    if follow:
        lines = client.follow_logs(name, since=since, request_id=request_id)
    else:
        lines = client.iter_logs(name, since=since, request_id=request_id)
    try:
        for line in lines:
            print_line(line)
    except KeyboardInterrupt:
        ctx.exit(0)
