"""Tests of the ci-cards example: the stand-in tracker's API, the webhook handler's transitions
and the stale-card archiver against it (called directly with squall.testing's events), and both
end to end on a real squall node (squall.testing's `squall_project`: signed webhooks, the table
read back; the daily schedule fired by moving the schedules' clock a day).

The example's modules are loaded by path: examples/hello has an `app.py` and a test of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from squall.testing import Project, http_event, lambda_context, scheduled_event

EXAMPLE = Path(__file__).resolve().parent
TRACKER_TOKEN = "tracker-test-token"
WEBHOOK_SECRET = "ci-webhook-test-secret"
JOB = "api-tests"


def load_example_module(name: str) -> ModuleType:
    """A module of the example, importing its siblings as it does in an instance (its folder on the path)."""
    if str(EXAMPLE) not in sys.path:
        sys.path.append(str(EXAMPLE))
    spec = importlib.util.spec_from_file_location(f"ci_cards_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tracker_module = load_example_module("tracker")


@pytest.fixture
def tracker() -> Iterator[Any]:
    tracker = tracker_module.Tracker(token=TRACKER_TOKEN).start()
    tracker.add_board("CI")
    yield tracker
    tracker.stop()


def tracker_client(tracker: Any, token: str = TRACKER_TOKEN) -> httpx.Client:
    return httpx.Client(base_url=tracker.url, headers={"authorization": f"Bearer {token}"}, timeout=10)


def seed_card(tracker: Any, list_name: str, moved: datetime, *, created: datetime | None = None,
              board: str = "CI", archived: bool = False) -> str:
    """A card in `board`'s list `list_name` since `moved` (created then too, unless `created` says).
    The tracker stamps the times itself, so they are set afterwards, as if the card were that old."""
    with tracker_client(tracker) as client:
        card = client.post("/cards", json={"list_id": tracker.list_named(board, list_name).id,
                                           "title": f"{list_name} since {moved:%Y-%m-%d}"}).json()
        if archived:
            assert client.put(f"/cards/{card['id']}", json={"archived": True}).status_code == 200
    stored = tracker.cards[card["id"]]
    stored.moved_at = moved.isoformat(timespec="milliseconds")
    stored.created_at = (created or moved).isoformat(timespec="milliseconds")
    return str(card["id"])


def tracker_writes(tracker: Any) -> list[tuple[str, str]]:
    return [(method, path) for method, path in tracker.requests if method != "GET"]


def build_notification(number: int, status: str, job: str = JOB) -> dict[str, Any]:
    return {"name": job, "build": {"number": number, "status": status,
                                   "full_url": f"https://ci.example.com/job/{job}/{number}/"}}


# ------------------------------------------------------------------ the stand-in tracker


def test_tracker_refuses_requests_without_its_bearer_token(tracker: Any) -> None:
    assert httpx.get(f"{tracker.url}/boards").status_code == 401
    with tracker_client(tracker, token="wrong") as client:
        assert client.get("/boards").status_code == 401


def test_tracker_creates_comments_and_archives_cards(tracker: Any) -> None:
    todo = tracker.list_named("CI", "to do")
    with tracker_client(tracker) as client:
        card = client.post("/cards", json={"list_id": todo.id, "title": "red", "description": "d"}).json()
        assert client.post(f"/cards/{card['id']}/comments", json={"text": "still red"}).status_code == 201
        assert [card["id"]] == [listed["id"] for listed in client.get(f"/lists/{todo.id}/cards").json()]

        archived = client.put(f"/cards/{card['id']}", json={"archived": True}).json()

        assert archived["archived"] is True
        assert client.get(f"/lists/{todo.id}/cards").json() == []
        assert [c["text"] for c in client.get(f"/cards/{card['id']}/comments").json()] == ["still red"]
        assert client.post("/cards", json={"list_id": todo.id}).status_code == 400
        assert client.put(f"/cards/{card['id']}", json={"closed": True}).status_code == 400
        assert client.get("/cards/c999").status_code == 404


def test_tracker_moving_a_card_stamps_moved_at(tracker: Any) -> None:
    todo, done = tracker.list_named("CI", "to do"), tracker.list_named("CI", "done")
    with tracker_client(tracker) as client:
        card = client.post("/cards", json={"list_id": todo.id, "title": "t"}).json()
        moved = client.put(f"/cards/{card['id']}", json={"list_id": done.id}).json()
    assert moved["list_id"] == done.id and moved["moved_at"] >= card["created_at"]
    assert tracker.cards[card["id"]].list_id == done.id


# ------------------------------------------------------------------ the handler, without squall


@pytest.fixture
def cards(tracker: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """cards.py with its tracker settings pointing at the stand-in (its table is never reached)."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TRACKER_URL", tracker.url)
    monkeypatch.setenv("TRACKER_TOKEN", TRACKER_TOKEN)
    return load_example_module("cards")


@pytest.mark.parametrize("body, problem", [
    ("{not json", "the body is not JSON"),
    ('["a list"]', 'no "build" object'),
    (json.dumps({"build": {"number": 1, "status": "SUCCESS"}}), '"name"'),
    (json.dumps({"name": JOB, "build": {"number": "7", "status": "SUCCESS"}}), '"build.number"'),
    (json.dumps({"name": JOB, "build": {"number": 7}}), '"build.status"'),
])
def test_a_body_that_is_not_a_build_notification_gets_400(cards: ModuleType, body: str, problem: str) -> None:
    response = cards.handler(http_event("POST", "/ci/webhook", body=body), lambda_context("ci_webhook"))
    assert response["statusCode"] == 400
    assert problem in json.loads(response["body"])["message"]


def test_statuses_map_to_states(cards: ModuleType) -> None:
    states = {status: cards.Build(JOB, 1, status, "").state
              for status in ("SUCCESS", "FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT")}
    assert states == {"SUCCESS": "success", "FAILURE": "failure", "UNSTABLE": "failure",
                      "ABORTED": None, "NOT_BUILT": None}


def test_transitions_drive_the_tracker(cards: ModuleType, tracker: Any) -> None:
    def build(number: int, status: str) -> Any:
        return cards.Build(JOB, number, status, f"https://ci.example.com/{number}")

    assert cards.act("success", "success", None, build(1, "SUCCESS")) == ("nothing", None)
    action, card_id = cards.act("success", "failure", None, build(2, "FAILURE"))
    assert action == "created" and tracker.cards[card_id].list_id == tracker.list_named("CI", "to do").id
    assert cards.act("failure", "failure", card_id, build(3, "FAILURE")) == ("commented", card_id)
    assert cards.act("failure", "success", card_id, build(4, "SUCCESS")) == ("archived", card_id)

    assert tracker.cards[card_id].archived is True
    assert [c.text for c in tracker.comments_on(card_id)] == [
        "Build #3 failed too: https://ci.example.com/3",
        "Build #4 passed: https://ci.example.com/4. Archiving this card."]


# ------------------------------------------------------------------ the archiver, without squall

DAY = timedelta(days=1)
RUN_TIME = datetime(2026, 3, 9, 3, 0, tzinfo=UTC)


@pytest.fixture
def archiver(tracker: Any, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """archiver.py pointing at the stand-in tracker, with the default STALE_DAYS."""
    monkeypatch.setenv("TRACKER_URL", tracker.url)
    monkeypatch.setenv("TRACKER_TOKEN", TRACKER_TOKEN)
    monkeypatch.delenv("STALE_DAYS", raising=False)
    return load_example_module("archiver")


SCHEDULE = "archive-stale-cards"


def test_archiver_archives_only_the_cards_done_for_over_14_days(archiver: ModuleType, tracker: Any) -> None:
    tracker.add_board("Ops")
    stale = seed_card(tracker, "done", RUN_TIME - 20 * DAY, created=RUN_TIME - 25 * DAY)
    just_over = seed_card(tracker, "done", RUN_TIME - 14 * DAY - timedelta(seconds=1))
    seed_card(tracker, "done", RUN_TIME - 14 * DAY)                        # exactly 14 days: kept
    seed_card(tracker, "done", RUN_TIME - 3 * DAY, created=RUN_TIME - 30 * DAY)  # old, but done lately
    seed_card(tracker, "to do", RUN_TIME - 30 * DAY)
    seed_card(tracker, "doing", RUN_TIME - 30 * DAY)
    already = seed_card(tracker, "done", RUN_TIME - 40 * DAY, archived=True)
    seed_card(tracker, "done", RUN_TIME - 30 * DAY, board="Ops")
    tracker.requests.clear()

    result = archiver.handler(scheduled_event(SCHEDULE, time=RUN_TIME), lambda_context("archive_stale"))

    assert result == {"archived": 2, "cards": [stale, just_over], "kept": 2,
                      "cutoff": "2026-02-23T03:00:00+00:00"}
    assert {card.id for card in tracker.cards.values() if card.archived} == {stale, just_over, already}
    assert tracker_writes(tracker) == [("PUT", f"/cards/{stale}"), ("PUT", f"/cards/{just_over}")]


def test_archiver_reads_stale_days_from_env_and_the_clock_without_a_scheduled_time(
        archiver: ModuleType, tracker: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    three_days = seed_card(tracker, "done", now - 3 * DAY)
    an_hour = seed_card(tracker, "done", now - timedelta(hours=1))

    assert archiver.handler({"from": "a schedule's input"}, None)["cards"] == []
    monkeypatch.setenv("STALE_DAYS", "2")
    assert archiver.handler({}, None)["cards"] == [three_days]
    monkeypatch.setenv("STALE_DAYS", "0")
    assert archiver.handler({}, None)["cards"] == [an_hour]


@pytest.mark.parametrize("value", ["two", "-1", "1.5"])
def test_archiver_refuses_a_bad_stale_days_before_calling_the_tracker(
        archiver: ModuleType, tracker: Any, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STALE_DAYS", value)
    with pytest.raises(ValueError, match="STALE_DAYS must be a whole number"):
        archiver.handler(scheduled_event(SCHEDULE, time=RUN_TIME), lambda_context("archive_stale"))
    assert tracker.requests == []


def test_archiver_dates_a_card_by_moved_at_else_created_at(archiver: ModuleType) -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert archiver.last_moved({"moved_at": "2026-01-02T03:04:05Z", "created_at": "2025-01-01T00:00:00Z"}) == moment
    assert archiver.last_moved({"moved_at": None, "created_at": "2026-01-02T04:04:05+01:00"}) == moment
    assert archiver.last_moved({"created_at": "2026-01-02T03:04:05"}) == moment
    assert archiver.last_moved({"moved_at": "last week"}) is None
    assert archiver.last_moved({}) is None
    undated = {"id": "c9", "list_id": "l3", "moved_at": "last week"}
    assert archiver.is_stale(undated, "l3", RUN_TIME) is False
    assert archiver.is_stale({"id": "c8", "list_id": "l1", "moved_at": "2020-01-01T00:00:00Z"}, "l3",
                             RUN_TIME) is False


# ------------------------------------------------------------------ end to end, on squall


@pytest.fixture
def project(tracker: Any, squall_project: Callable[..., Project]) -> Project:
    """The example on a squall node of its own: TRACKER_URL pointing at the stand-in tracker,
    its secrets set, and the schedules' clock at the midnight before RUN_TIME."""
    return squall_project(env={"TRACKER_URL": tracker.url},
                          secrets={"TRACKER_TOKEN": TRACKER_TOKEN, "CI_WEBHOOK_SECRET": WEBHOOK_SECRET},
                          now=RUN_TIME - timedelta(hours=3))


def signed_post(project: Project, body: bytes, secret: str = WEBHOOK_SECRET) -> httpx.Response:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return project.post("/ci/webhook", content=body,
                        headers={"content-type": "application/json", "x-signature-256": signature})


def notify(project: Project, number: int, status: str) -> dict[str, Any]:
    response = signed_post(project, json.dumps(build_notification(number, status)).encode())
    assert response.status_code == 200, response.text
    return dict(response.json())


def job_item(project: Project, job: str = JOB) -> dict[str, Any]:
    return dict(project.table("ci_jobs").get({"job": job}) or {})


@pytest.mark.e2e
def test_build_notifications_drive_the_card_lifecycle(project: Project, tracker: Any) -> None:
    assert notify(project, 1, "SUCCESS")["action"] == "nothing"
    assert tracker.cards == {}
    assert job_item(project) == {"job": JOB, "last_state": "success", "last_build": 1}

    created = notify(project, 2, "FAILURE")
    card = tracker.cards[created["card"]]
    assert created["action"] == "created"
    assert (card.title, card.list_id) == (f"{JOB}: build #2 failed", tracker.list_named("CI", "to do").id)
    assert f"https://ci.example.com/job/{JOB}/2/" in card.description
    assert job_item(project) == {"job": JOB, "last_state": "failure", "last_build": 2, "card_id": card.id}

    forged = signed_post(project, json.dumps(build_notification(3, "SUCCESS")).encode(), secret="guess")
    assert forged.status_code == 403
    assert job_item(project)["last_build"] == 2 and not card.archived and tracker.comments == []

    assert notify(project, 3, "UNSTABLE") == {"job": JOB, "build": 3, "status": "UNSTABLE",
                                              "state": "failure", "action": "commented", "card": card.id}
    assert [c.text for c in tracker.comments_on(card.id)] == [
        f"Build #3 failed too: https://ci.example.com/job/{JOB}/3/"]

    assert notify(project, 4, "SUCCESS")["action"] == "archived"
    assert card.archived is True and len(tracker.cards) == 1
    assert tracker.comments_on(card.id)[-1].text.startswith("Build #4 passed")
    assert job_item(project) == {"job": JOB, "last_state": "success", "last_build": 4}


@pytest.mark.e2e
def test_repeated_aborted_and_malformed_notifications_change_nothing(project: Project, tracker: Any) -> None:
    assert notify(project, 5, "FAILURE")["action"] == "created"
    before = job_item(project)

    assert notify(project, 5, "FAILURE")["action"] == "ignored"
    assert notify(project, 4, "SUCCESS")["action"] == "ignored"
    assert notify(project, 6, "ABORTED")["action"] == "ignored"
    malformed = signed_post(project, b'{"name": "api-tests"}')
    unsigned = project.post("/ci/webhook", content=b"{}")

    assert malformed.status_code == 400 and '"build"' in malformed.json()["message"]
    assert unsigned.status_code == 401
    assert job_item(project) == before and len(tracker.cards) == 1 and tracker.comments == []


@pytest.mark.e2e
def test_the_daily_schedule_archives_the_cards_done_for_over_14_days(project: Project, tracker: Any) -> None:
    stale = seed_card(tracker, "done", RUN_TIME - 20 * DAY)
    others = [seed_card(tracker, "done", RUN_TIME - 3 * DAY), seed_card(tracker, "to do", RUN_TIME - 30 * DAY),
              seed_card(tracker, "done", RUN_TIME - 30 * DAY, archived=True)]
    before = {card_id: asdict(tracker.cards[card_id]) for card_id in others}
    tracker.requests.clear()
    assert project.clock.next_fires() == {f"archive_stale/{SCHEDULE}": RUN_TIME}

    [fire] = project.clock.advance("1d")

    assert (fire.schedule, fire.function, fire.time) == (SCHEDULE, "archive_stale", RUN_TIME)
    assert fire.event == scheduled_event(SCHEDULE, time=RUN_TIME, event_id=fire.request_id)
    logs = project.log_text("archive_stale", request_id=fire.request_id)
    assert fire.ok and fire.payload["cards"] == [stale], logs
    assert tracker.cards[stale].archived is True
    assert {card_id: asdict(tracker.cards[card_id]) for card_id in others} == before
    assert tracker_writes(tracker) == [("PUT", f"/cards/{stale}")]
    assert "archived 1 card(s) in 'done' for over 14 days" in logs and stale in logs

    [next_day] = project.clock.advance("1d")
    assert next_day.time == RUN_TIME + DAY and next_day.ok
    assert (next_day.payload["archived"], next_day.payload["cards"]) == (0, [])
    assert tracker_writes(tracker) == [("PUT", f"/cards/{stale}")]
