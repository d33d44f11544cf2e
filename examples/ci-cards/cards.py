"""CI build notifications -> tracker cards: the Lambda handler of the ci-cards project.

A Jenkins-style CI server POSTs `{"name": job, "build": {"number", "status", "full_url"}}` after
every build. Per job, the DynamoDB table (env TABLE, default ci_jobs) keeps the last state, the
last build handled and the id of the open card. Cards live on a Trello-like tracker: base URL in
env TRACKER_URL, token in TRACKER_TOKEN, board named by TRACKER_BOARD (default "CI"), cards
created in its "to do" list. README.md has the transition table.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr
from tracker_client import archive, call_tracker, list_id

logger = logging.getLogger()
logger.setLevel(logging.INFO)

SUCCESS, FAILURE = "success", "failure"
STATE_OF_STATUS = {"SUCCESS": SUCCESS, "FAILURE": FAILURE, "UNSTABLE": FAILURE}
TODO_LIST = "to do"
NOTIFICATION_SHAPE = '{"name": job, "build": {"number": N, "status": "SUCCESS", "full_url": url}}'

jobs_table = boto3.resource("dynamodb").Table(os.environ.get("TABLE", "ci_jobs"))


class BadNotification(ValueError):
    """The request is not a build notification; the message says what is wrong."""


@dataclass(frozen=True)
class Build:
    job: str
    number: int
    status: str
    url: str

    @property
    def state(self) -> str | None:
        """success, failure, or None for a status that says nothing about the job's health."""
        return STATE_OF_STATUS.get(self.status)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        build = parse_notification(event)
    except BadNotification as exc:
        return respond(400, {"message": f"{exc}; expected {NOTIFICATION_SHAPE}"})
    outcome = handle_build(build)
    logger.info("job %s build %s %s: %s", build.job, build.number, build.status, outcome)
    return respond(200, {"job": build.job, "build": build.number, "status": build.status, **outcome})


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def parse_notification(event: dict[str, Any]) -> Build:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    try:
        data = json.loads(body)
    except ValueError:
        raise BadNotification("the body is not JSON") from None
    build = data.get("build") if isinstance(data, dict) else None
    if not isinstance(build, dict):
        raise BadNotification('the body has no "build" object')
    job, number, status = data.get("name"), build.get("number"), build.get("status")
    url = build.get("full_url", "")
    if not isinstance(job, str) or not job:
        raise BadNotification('"name" (the job) must be a non-empty string')
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise BadNotification('"build.number" must be a whole number')
    if not isinstance(status, str) or not status:
        raise BadNotification('"build.status" must be a non-empty string')
    if not isinstance(url, str):
        raise BadNotification('"build.full_url" must be a string')
    return Build(job, number, status.upper(), url)


def handle_build(build: Build) -> dict[str, Any]:
    """Apply one finished build to its job's state; returns what was done."""
    if build.state is None:
        return {"action": "ignored", "reason": f"status {build.status} does not change the job's state"}
    item = jobs_table.get_item(Key={"job": build.job}).get("Item", {})
    last_build = int(item.get("last_build", -1))
    if build.number <= last_build:
        return {"action": "ignored", "reason": f"build {last_build} or a later one was already handled"}
    action, card_id = act(item.get("last_state", SUCCESS), build.state, item.get("card_id"), build)
    remember(build, open_card_id=None if action == "archived" else card_id)
    return {"state": build.state, "action": action, "card": card_id}


def act(previous: str, now: str, card_id: str | None, build: Build) -> tuple[str, str | None]:
    """Apply the transition table: (what was done, the card it was done to)."""
    if now == FAILURE:
        if previous == FAILURE and card_id:
            comment(card_id, f"Build #{build.number} failed too: {build.url}")
            return "commented", card_id
        return "created", create_card(build)
    if previous == FAILURE and card_id:
        comment(card_id, f"Build #{build.number} passed: {build.url}. Archiving this card.")
        archive(card_id)
        return "archived", card_id
    return "nothing", None


def remember(build: Build, open_card_id: str | None) -> None:
    """Store the job's new state, unless a newer build of the job was stored meanwhile."""
    item = {"job": build.job, "last_state": build.state, "last_build": build.number}
    if open_card_id:
        item["card_id"] = open_card_id
    try:
        jobs_table.put_item(Item=item, ConditionExpression=(
            Attr("last_build").not_exists() | Attr("last_build").lt(build.number)))
    except jobs_table.meta.client.exceptions.ConditionalCheckFailedException:
        logger.warning("job %s: a build newer than %s was stored first; keeping it", build.job,
                       build.number)


def create_card(build: Build) -> str:
    card = call_tracker("POST", "/cards", {
        "list_id": list_id(TODO_LIST),
        "title": f"{build.job}: build #{build.number} failed",
        "description": f"Build #{build.number} of {build.job} failed: {build.url}",
    })
    return str(card["id"])


def comment(card_id: str, text: str) -> None:
    call_tracker("POST", f"/cards/{card_id}/comments", {"text": text})
