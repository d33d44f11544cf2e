"""`squall bucket put|get|ls|rm`: objects in a project's buckets."""

from __future__ import annotations

import mimetypes
import os
import stat
import time
from typing import IO

import click

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table, relative_time


@click.group()
def bucket() -> None:
    """Objects in buckets: put, get, list, remove."""


@bucket.command("put")
@click.argument("bucket_name", metavar="BUCKET")
@click.argument("key")
@click.argument("source", type=click.File("rb"))
@click.option("--content-type", metavar="TYPE", help="Media type (default: guessed from KEY).")
@json_option
@click.pass_context
def put(ctx: click.Context, bucket_name: str, key: str, source: IO[bytes], content_type: str | None,
        as_json: bool) -> None:
    """Store SOURCE (a file, or - for stdin) as KEY in BUCKET."""
    kind = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
    result = client_from(ctx).put_object(bucket_name, key, streamable(source), kind)
    print_json(result) if as_json else print_message(f"stored {key} ({result['size']} bytes)")


def streamable(source: IO[bytes]) -> bytes | IO[bytes]:
    """A regular file is streamed (its size is known); a pipe is read first."""
    try:
        if stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            return source
    except (OSError, ValueError):
        pass
    return source.read()


@bucket.command("get")
@click.argument("bucket_name", metavar="BUCKET")
@click.argument("key")
@click.option("--output", "-o", type=click.File("wb"), default="-", show_default=True,
              help="Where to write the content.")
@click.pass_context
def get(ctx: click.Context, bucket_name: str, key: str, output: IO[bytes]) -> None:
    """Write the content of KEY in BUCKET to stdout (or --output FILE)."""
    content = client_from(ctx).get_object(bucket_name, key)
    output.write(content)
    output.flush()


@bucket.command("ls")
@click.argument("bucket_name", metavar="BUCKET", required=False)
@click.option("--prefix", default="", help="Only keys that start with this.")
@json_option
@click.pass_context
def list_objects(ctx: click.Context, bucket_name: str | None, prefix: str, as_json: bool) -> None:
    """List the objects of BUCKET (every page), or the buckets when no BUCKET is given."""
    client = client_from(ctx)
    if bucket_name is None:
        buckets = client.list_buckets()
        if as_json:
            print_json(buckets)
        else:
            print_table(("BUCKET", "PROJECT", "OBJECTS", "BYTES"),
                        ((b["name"], b["project"], str(b["objects"]), f"{b['bytes']:,}") for b in buckets))
        return
    objects = list(client.iter_objects(bucket_name, prefix=prefix))
    if as_json:
        print_json(objects)
        return
    now = time.time()
    print_table(("KEY", "SIZE", "MODIFIED", "TYPE"),
                ((o["key"], f"{o['size']:,}", relative_time(o["modified_at"], now), o["content_type"])
                 for o in objects))


@bucket.command("rm")
@click.argument("bucket_name", metavar="BUCKET")
@click.argument("keys", nargs=-1, required=True)
@click.pass_context
def remove(ctx: click.Context, bucket_name: str, keys: tuple[str, ...]) -> None:
    """Delete KEYS from BUCKET."""
    client = client_from(ctx)
    for key in keys:
        client.delete_object(bucket_name, key)
    print_message(f"removed {len(keys)}")
