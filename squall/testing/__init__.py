"""squall.testing: test a squall project's functions the way squall runs them.

* pytest fixtures (squall/testing/plugin.py, loaded by pytest through its entry point):
  `squall`, the project around the test file deployed on a real node of its own, and
  `squall_project(path, env=..., secrets=..., now=...)` for any project;
* `start_project(path)`, the same outside a fixture (a `with` block stops it);
* `Project`: routes (`get`, `post`, ...), `invoke`, `invoke_async`, `trigger`, `publish`,
  `send`, `put_object`, `settle`, `logs`, `table`, and `clock.advance("1d")` for schedules;
* event factories and a Lambda context for calling a handler directly, built by the
  platform's own converters: `http_event`, `scheduled_event`, `sns_event`, `sqs_event`,
  `s3_event`, `invoke_event`, `lambda_context`.

Nothing here starts anything, or imports the server, until it is used. The guide is
docs/testing.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from squall.testing.clock import ScheduleClock
    from squall.testing.events import (
        http_event,
        invoke_event,
        lambda_context,
        s3_event,
        scheduled_event,
        sns_event,
        sqs_event,
    )
    from squall.testing.project import Project, start_project
    from squall.testing.results import AsyncInvocation, Fire, FunctionError, Invocation, LogLine

_HOMES = {
    "http_event": "events", "invoke_event": "events", "lambda_context": "events", "s3_event": "events",
    "scheduled_event": "events", "sns_event": "events", "sqs_event": "events",
    "Project": "project", "start_project": "project", "ScheduleClock": "clock",
    "AsyncInvocation": "results", "Fire": "results", "FunctionError": "results", "Invocation": "results",
    "LogLine": "results",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'squall.testing' has no attribute {name!r}")
    return getattr(import_module(f"squall.testing.{home}"), name)
