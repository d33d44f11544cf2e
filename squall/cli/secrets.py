"""`squall secret set|ls|rm`: encrypted values that functions get as environment variables
(see docs/secrets.md). No command prints a value: the server never sends one back."""

from __future__ import annotations

import sys
import time
from typing import IO

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table, print_warning, relative_time


@click.group()
def secret() -> None:
    """Secrets: encrypted values that the functions listing them get as environment variables."""


@secret.command("set")
@click.argument("name")
@click.option("--file", "-f", "source", type=click.File("rb"), metavar="PATH",
              help="Read the value from PATH instead of stdin.")
@json_option
@click.pass_context
def set_secret(ctx: click.Context, name: str, source: IO[bytes] | None, as_json: bool) -> None:
    """Create or replace secret NAME with a value read from stdin or --file.

    At a terminal the value is asked for without echo. One trailing newline (what
    `echo` and editors add) is dropped from the value; end the input with two to
    keep one. Functions get the secret as the environment variable NAME when their
    squall.yaml lists it under `secrets:`; their idle instances are restarted so
    that the next call sees the new value.
    """
    value = read_value(name, source)
    if not value:
        raise click.BadParameter("the value is empty", param_hint="the value")
    result = client_from(ctx).set_secret(name, value)
    if as_json:
        print_json(result)
        return
    users = result.get("functions") or []
    used = f"; used by {', '.join(users)}" if users else "; no function lists it yet"
    print_message(f"{'created' if result.get('created') else 'replaced'} secret {name}{used}")


def read_value(name: str, source: IO[bytes] | None) -> bytes:
    """The value from --file, a hidden prompt at a terminal, or stdin, without one trailing newline."""
    if source is not None:
        data = source.read()
    elif sys.stdin.isatty():
        data = click.prompt(f"Value of {name}", hide_input=True, err=True).encode()
    else:
        data = sys.stdin.buffer.read()
    return strip_newline(data)


def strip_newline(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    return data[:-1] if data.endswith(b"\n") else data


@secret.command("ls")
@json_option
@click.pass_context
def list_secrets(ctx: click.Context, as_json: bool) -> None:
    """List the secrets (names, never values) and the functions that list them.

    STATUS is `set`, `not set` (a function lists it, nobody set it) or
    `unreadable` (the server's secret key is not the one it was set with).
    """
    secrets = client_from(ctx).list_secrets()
    if as_json:
        print_json(secrets)
        return
    if not secrets:
        print_message("no secrets")
        return
    now = time.time()
    print_table(("NAME", "STATUS", "UPDATED", "USED BY"),
                ((s["name"], s["status"], relative_time(s["updated_at"], now) if s.get("updated_at") else "-",
                  ", ".join(s.get("functions") or []) or "-") for s in secrets))


@secret.command("rm")
@click.argument("name")
@click.pass_context
def remove_secret(ctx: click.Context, name: str) -> None:
    """Remove secret NAME. Functions that list it fail to start until it is set again."""
    result = client_from(ctx).delete_secret(name)
    print_message(f"removed secret {name}")
    users = result.get("functions") or []
    if users:
        one = len(users) == 1
        print_warning(f"{', '.join(users)} list{'s' if one else ''} {name}: {'its' if one else 'their'} calls "
                      f"fail until it is set again (squall secret set {name})")
