"""Archive stale cards: the scheduled Lambda handler of the ci-cards project.

Once a day (squall.yaml: `cron(0 3 * * ? *)`) it archives the cards that have sat in the "done"
list of the board TRACKER_BOARD (default "CI") for more than STALE_DAYS days (default 14). A card's
time in the list counts from its `moved_at`, or from its `created_at` when it has never moved.
Cards of other lists, of other boards, and cards already archived are never touched. The tracker is
the same as cards.py's: base URL in env TRACKER_URL, token in TRACKER_TOKEN.

The age is measured at the run's time, the `time` of EventBridge's Scheduled Event, so a retried
run decides as the first attempt did; an event without one (a schedule's `input`) uses the clock.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker_client import archive, call_tracker, list_id

logger = logging.getLogger()
logger.setLevel(logging.INFO)

DONE_LIST = "done"
DEFAULT_STALE_DAYS = "14"


def handler(event: Any, context: Any) -> dict[str, Any]:
    days = stale_days()
    cutoff = run_time(event) - timedelta(days=days)
    done_id = list_id(DONE_LIST)
    cards = call_tracker("GET", f"/lists/{done_id}/cards")
    stale = [str(card["id"]) for card in cards if is_stale(card, done_id, cutoff)]
    for card_id in stale:
        archive(card_id)
    logger.info("archived %d card(s) in %r for over %d days (since before %s): %s", len(stale), DONE_LIST,
                days, cutoff.isoformat(timespec="seconds"), ", ".join(stale) or "none")
    return {"archived": len(stale), "cards": stale, "kept": len(cards) - len(stale),
            "cutoff": cutoff.isoformat(timespec="seconds")}


def stale_days() -> int:
    text = os.environ.get("STALE_DAYS") or DEFAULT_STALE_DAYS
    try:
        days = int(text)
    except ValueError:
        days = -1
    if days < 0:
        raise ValueError(f"STALE_DAYS must be a whole number of days, 0 or more; got {text!r}")
    return days


def run_time(event: Any) -> datetime:
    """When this run is: the Scheduled Event's `time`, else now."""
    stamp = event.get("time") if isinstance(event, dict) else None
    if not isinstance(stamp, str):
        return datetime.now(UTC)
    return parse_time(stamp)


def parse_time(stamp: str) -> datetime:
    """An ISO-8601 time ("2026-03-09T02:00:00Z", "...+00:00"); one without an offset is UTC."""
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def last_moved(card: dict[str, Any]) -> datetime | None:
    """When the card came into its list: `moved_at`, else `created_at`; None when neither reads."""
    stamp = card.get("moved_at") or card.get("created_at")
    try:
        return parse_time(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


def is_stale(card: dict[str, Any], done_id: str, cutoff: datetime) -> bool:
    if card.get("archived") or str(card.get("list_id", done_id)) != done_id:
        return False
    moved = last_moved(card)
    if moved is None:
        logger.warning("card %s has no readable moved_at or created_at; keeping it", card.get("id"))
        return False
    return moved < cutoff
