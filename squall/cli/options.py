"""Options shared by several commands, and the client built from the global options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
    transport: httpx.BaseTransport | None = None
    """Replaces the network when set (tests pass `httpx.MockTransport` via `obj=`)."""

    def client(self) -> SquallClient:
        return SquallClient(self.server, self.token, transport=self.transport)


def client_from(ctx: click.Context) -> SquallClient:
    """The client for this invocation, closed when the command ends."""
    settings = ctx.find_object(Settings) or Settings()
    return ctx.with_resource(settings.client())


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print machine-readable JSON instead of text.")(func)
