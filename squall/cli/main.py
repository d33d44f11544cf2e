"""The `squall` command group, its global options and its error handling.

A SquallError raised by any command is printed as `error: <message>` on stderr and
ends the process with the error's `exit_code` (1: the operation failed, 2: bad
usage or bad input); click's own usage errors exit with 2.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any

import click

from squall import __version__
from squall.cli.aliases import alias, rollback
from squall.cli.buckets import bucket
from squall.cli.dlq import dlq
from squall.cli.events import list_queues, list_topics, publish, schedules, send, trigger
from squall.cli.functions import invoke, list_functions, list_instances, recycle
from squall.cli.logs import logs
from squall.cli.options import Settings, accept_stage
from squall.cli.output import print_error
from squall.cli.project import deploy, init
from squall.cli.secrets import secret
from squall.cli.servers import dev, server
from squall.cli.stages import promote, stages
from squall.cli.tables import table
from squall.cli.versions import diff, versions
from squall.exceptions import SquallError
from squall.settings import STAGE, TOKEN, URL


class SquallGroup(click.Group):
    """A click group that turns SquallError into `error: ...` and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SquallError as exc:
            print_error(str(exc))
            ctx.exit(exc.exit_code)


@click.group(cls=SquallGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="squall",
                      message="%(prog)s %(version)s")
@click.option("--server", metavar="URL", envvar=URL.name, show_envvar=True,
              help=f"URL of the squall server (default: {URL.default}).")
@click.option("--token", metavar="TOKEN", envvar=TOKEN.name, show_envvar=True,
              help="Admin token of the server.")
@click.option("--stage", metavar="NAME", envvar=STAGE.name, show_envvar=True,
              help="The stage commands work on (default: the server's root stage).")
@click.pass_context
def cli(ctx: click.Context, server: str | None, token: str | None, stage: str | None) -> None:
    """squall: run AWS Lambda-style functions on your own machines.

    Start with `squall init DIR`, run it locally with `squall dev DIR`, deploy it
    to a server with `squall deploy DIR`.
    """
    base = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    ctx.obj = replace(base, server=server or base.server, token=token or base.token, stage=stage or base.stage)


STAGED_COMMANDS = (deploy, invoke, list_functions, list_instances, recycle, logs, dlq, publish, list_topics,
                   schedules, send, list_queues, bucket, trigger, table, secret, alias, rollback, versions, diff)
"""The commands that work on one stage: each takes `--stage NAME` too."""
for command in STAGED_COMMANDS:
    accept_stage(command)
for command in (init, dev, server, *STAGED_COMMANDS, stages, promote):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="squall")
    except BrokenPipeError:
        # The reader went away (`squall logs fn | head`): leave quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
