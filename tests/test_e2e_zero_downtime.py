"""No request is lost across a deploy and a rollback under load: 10 s of requests from
several keep-alive clients on loopback, a deploy of version 2 after 2 s and a rollback to
version 1 after 6 s. Every answer is a 200, and every request sent after a switch completed
(its CLI command returned) gets the version that switch put in place."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import SquallServer, page_site, write_project

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # counts the answers of a node under load: runs alone

LOAD_SECONDS = 10.0
CLIENTS = 4


@dataclass(frozen=True)
class Answer:
    sent: float
    status: int
    body: str


def load(url: str, until: float, answers: list[Answer], lock: threading.Lock) -> None:
    mine = []
    with httpx.Client(timeout=10) as client:
        while (sent := time.monotonic()) < until:
            try:
                response = client.get(url)
                mine.append(Answer(sent, response.status_code, response.text))
            except httpx.HTTPError as exc:
                mine.append(Answer(sent, 0, repr(exc)))
    with lock:
        answers.extend(mine)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_deploy_and_a_rollback_under_load_lose_no_request(tmp_path: Path, store: str,
                                                             request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("fresh_postgres_url") if store == "postgres" else None
    node = SquallServer(tmp_path / "data", store=url).start()
    try:
        node.cli("deploy", str(write_project(tmp_path / "v1", page_site("'v1'"))), check=True)
        v2 = write_project(tmp_path / "v2", page_site("'v2'"))
        answers: list[Answer] = []
        lock = threading.Lock()
        start = time.monotonic()
        workers = [threading.Thread(target=load, args=(f"{node.url}/page", start + LOAD_SECONDS, answers, lock))
                   for _ in range(CLIENTS)]
        for worker in workers:
            worker.start()
        time.sleep(2)
        node.cli("deploy", str(v2), check=True)
        deployed = time.monotonic()
        time.sleep(max(0.0, start + 6 - time.monotonic()))
        rolling_back = time.monotonic()
        node.cli("rollback", "page", check=True)
        rolled_back = time.monotonic()
        for worker in workers:
            worker.join()
    finally:
        node.stop()

    failures = [a for a in answers if a.status != 200]
    assert not failures, failures[:5]
    assert {a.body for a in answers} == {"v1", "v2"}
    assert len(answers) > 200  # the load really ran across both switches
    after_deploy = [a.body for a in answers if deployed <= a.sent < rolling_back]
    after_rollback = [a.body for a in answers if a.sent >= rolled_back]
    assert after_deploy and set(after_deploy) == {"v2"}
    assert after_rollback and set(after_rollback) == {"v1"}
    assert {a.body for a in answers if a.sent < start + 2} == {"v1"}
