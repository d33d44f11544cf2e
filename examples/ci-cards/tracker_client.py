"""The tracker's API as both functions call it: JSON over HTTP to TRACKER_URL with the
TRACKER_TOKEN secret as a bearer token (stdlib only, as a Lambda function would)."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any


def call_tracker(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        os.environ["TRACKER_URL"].rstrip("/") + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": f"Bearer {os.environ['TRACKER_TOKEN']}",
                 "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def archive(card_id: str) -> None:
    call_tracker("PUT", f"/cards/{card_id}", {"archived": True})


def list_id(list_name: str) -> str:
    """The id of the list `list_name` on the board TRACKER_BOARD (default "CI")."""
    board = named(call_tracker("GET", "/boards"), os.environ.get("TRACKER_BOARD", "CI"), "board")
    return str(named(call_tracker("GET", f"/boards/{board['id']}/lists"), list_name, "list")["id"])


def named(items: list[dict[str, Any]], name: str, kind: str) -> dict[str, Any]:
    for item in items:
        if item["name"] == name:
            return item
    raise LookupError(f"the tracker has no {kind} named {name!r}")
