"""The queues part of the Store contract: messages sent to a project's queues, received
by consumers under a visibility timeout, deleted when handled, and moved to a dead-letter
queue after too many receives (Amazon SQS's model).

A received message is invisible until `visible_at`; deleting or changing its visibility
needs the receipt handle of the receive that got it, so a consumer whose timeout ran out
(and whose message another consumer received since) cannot delete it. In a FIFO queue a
message is received only while no earlier message of its group is in flight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

FIFO_DEDUPLICATION_WINDOW = 300.0
"""SQS's deduplication interval for FIFO queues: five minutes."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    id: str
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)
    """SendMessage-shaped: `{name: {"DataType", "StringValue" | "BinaryValue"}}`."""
    group_id: str | None = None
    deduplication_id: str | None = None
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class QueueMessage:
    id: str
    queue: str
    body: str
    attributes: dict[str, Any]
    group_id: str | None
    deduplication_id: str | None
    sequence: int
    sent_at: float
    receive_count: int
    first_received_at: float | None
    receipt: str
    """The receipt handle of the receive that returned this message."""


class QueueStore:
    def send_messages(self, queue: str, messages: Sequence[NewMessage], *, now: float) -> list[str]:
        """Store `messages` in one transaction, in order; their ids. A message whose
        `deduplication_id` was sent to `queue` within the FIFO deduplication window (even
        if that message was deleted since) is not stored again: the earlier message's id is
        returned."""
        raise NotImplementedError

    def receive_messages(self, queue: str, *, limit: int, now: float, visibility_timeout: float,
                         fifo: bool) -> list[QueueMessage]:
        """Atomically take up to `limit` visible messages of `queue`, oldest first, making
        them invisible until now + visibility_timeout, counting a receive and giving each a
        new receipt handle. With `fifo`, messages of a group with a message in flight are
        passed over. Concurrent receivers never get the same message."""
        raise NotImplementedError

    def delete_messages(self, queue: str, receipts: Sequence[str]) -> int:
        """Delete the messages whose current receipt handle is in `receipts`; how many."""
        raise NotImplementedError

    def change_visibility(self, queue: str, receipts: Sequence[str], *, visible_at: float) -> int:
        """Make the messages with these current receipt handles visible at `visible_at`."""
        raise NotImplementedError

    def move_messages(self, queue: str, receipts: Sequence[str], target: str, *, now: float) -> int:
        """Move received messages to the queue `target` (a dead-letter queue), visible at
        once, their receive count reset; how many."""
        raise NotImplementedError

    def queue_counts(self, queue: str, *, now: float) -> dict[str, int]:
        """`{"visible": n, "in_flight": n, "delayed": n}` for `queue`."""
        raise NotImplementedError

    def next_visible(self, queue: str) -> float | None:
        """The earliest `visible_at` of a message of `queue`, or None when it is empty."""
        raise NotImplementedError

    def expire_messages(self, queue: str, *, sent_before: float) -> int:
        """Delete the messages of `queue` sent before `sent_before` (its retention), and
        the deduplication ids older than the deduplication window; how many messages."""
        raise NotImplementedError
