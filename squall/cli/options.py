"""Options shared by several commands, and the client built from the global options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import click
import httpx

from squall.client import SquallClient

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Settings:
    """The group's global options, kept on the click context as `ctx.obj`."""

    server: str | None = None
    token: str | None = None
    stage: str | None = None
    transport: httpx.BaseTransport | None = None
    """Replaces the network when set (tests pass `httpx.MockTransport` via `obj=`)."""

    def client(self) -> SquallClient:
        return SquallClient(self.server, self.token, transport=self.transport, stage=self.stage)


def client_from(ctx: click.Context) -> SquallClient:
    """The client for this invocation, closed when the command ends."""
    settings = ctx.find_object(Settings) or Settings()
    return ctx.with_resource(settings.client())


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print machine-readable JSON instead of text.")(func)


def _set_stage(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        ctx.obj = replace(ctx.find_object(Settings) or Settings(), stage=value)


def stage_option() -> click.Option:
    return click.Option(["--stage"], metavar="NAME", expose_value=False, callback=_set_stage,
                        help="The stage to work on (default: SQUALL_STAGE, else the server's root).")


def accept_stage(command: click.Command) -> None:
    """Give `command` (and, for a group, each of its commands) a `--stage NAME` option, so that
    `squall invoke fn --stage staging` works as `squall --stage staging invoke fn` does."""
    command.params.append(stage_option())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_stage(sub)
