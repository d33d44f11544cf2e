"""The polls a node keeps besides store notices (squall/events/wakeups.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from squall.events.wakeups import NoticeRouter, Polls
from squall.settings import Settings


def polls(environ: dict[str, str], *, notices_reach_other_nodes: bool) -> Polls:
    return Polls.from_settings(Settings.from_environ(environ), notices_reach_other_nodes=notices_reach_other_nodes)


def test_the_polls_are_long_safety_nets_only_where_notices_reach_other_nodes() -> None:
    assert polls({}, notices_reach_other_nodes=True) == Polls(events=30.0, queues=30.0, store=30.0)
    assert polls({}, notices_reach_other_nodes=False) == Polls(events=5.0, queues=1.0, store=2.0)


def test_each_poll_has_an_environment_variable_kept_within_bounds() -> None:
    environ = {"SQUALL_EVENT_POLL_SECONDS": "60", "SQUALL_QUEUE_POLL_SECONDS": "0",
               "SQUALL_STORE_POLL_SECONDS": "1e9"}

    assert polls(environ, notices_reach_other_nodes=False) == Polls(events=60.0, queues=0.05, store=3600.0)
    assert polls({"SQUALL_QUEUE_POLL_SECONDS": ""}, notices_reach_other_nodes=True).queues == 30.0


class Waiter:
    """Stands for the dispatcher, the queues or the node: records what it was asked to do."""

    def __init__(self, name: str, calls: list[tuple[str, ...]]) -> None:
        self.name, self.calls = name, calls

    def __getattr__(self, method: str) -> Callable[..., None]:
        return lambda *args: self.calls.append((f"{self.name}.{method}", *args))


@pytest.mark.parametrize(("topic", "woken"), [
    ("events", [("engine.wake_events",)]),
    ("queue:jobs", [("engine.wake_queue", "jobs")]),
    ("queue:a:b", [("engine.wake_queue", "a:b")]),
    ("deploy", [("engine.store_changed",)]),
    ("secrets", [("engine.store_changed",)]),
    ("resources", [("engine.store_changed",)]),
    ("*", [("engine.wake_events",), ("engine.wake_queues",), ("engine.store_changed",)]),
    ("from-a-newer-version", []),
])
def test_each_notice_wakes_what_waits_for_it(topic: str, woken: list[tuple[str, ...]]) -> None:
    calls: list[tuple[str, ...]] = []
    NoticeRouter(None, Waiter("engine", calls)).route(topic)  # type: ignore[arg-type]

    assert calls == woken
