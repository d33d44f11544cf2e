"""The standing hostile suite's one assertion shape: while an attack runs, another
function (the bystander) keeps answering, and still answers after it.

    with bystander(server.url, "/steady") as watch:
        attack()
    # leaving the block asserts that every bystander call made during the attack succeeded,
    # that at least one was made (one starts as the block starts), and that one more call
    # after it succeeds

The bystander is any route that answers 200 to GET; its calls run on a thread."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import httpx


@dataclass
class Watch:
    """What the bystander saw: how many calls answered, and the first that did not."""

    answered: int = 0
    failures: list[str] = field(default_factory=list)


def call(url: str, timeout: float = 10) -> str | None:
    """One bystander call: None when it answered 200, else what went wrong."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.status_code == 200 else f"{response.status_code}: {response.text[:200]}"


@contextlib.contextmanager
def bystander(server_url: str, path: str, interval: float = 0.05) -> Iterator[Watch]:
    """Call `server_url + path` again and again while the block runs (see the module docstring)."""
    url = server_url + path
    watch = Watch()
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            started.set()
            problem = call(url)
            if problem is None:
                watch.answered += 1
            else:
                watch.failures.append(problem)
            time.sleep(interval)

    started = threading.Event()
    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield watch
    finally:
        started.wait(30)  # a block shorter than one call still has a call started within it,
        stop.set()        # and that call's answer counts: join waits for it
        thread.join(30)
    assert not watch.failures, f"the bystander {path} failed during the attack: {watch.failures[:3]}"
    assert watch.answered > 0, f"the bystander {path} answered no call made during the attack"
    problem = call(url)
    assert problem is None, f"the bystander {path} did not answer after the attack: {problem}"
