"""Queues (squall/store/queues.py) in SQL, shared by both backends."""

from __future__ import annotations

import secrets
import time
from typing import Any, Sequence

import orjson

from squall.store.notices import queue_topic
from squall.store.queues import FIFO_DEDUPLICATION_WINDOW, NewMessage, QueueMessage
from squall.store.sql import Dialect, SqlBackend

MESSAGE_COLUMNS = ("id, queue, body, attributes, group_id, deduplication_id, sequence, sent_at, receive_count, "
                   "first_received_at, receipt")


def queue_schema(dialect: Dialect) -> tuple[str, ...]:
    real, sequence = dialect.real, dialect.sequence
    return (
        f"""CREATE TABLE queue_messages (
            sequence {sequence}, id TEXT NOT NULL UNIQUE, queue TEXT NOT NULL, body TEXT NOT NULL,
            attributes TEXT NOT NULL, group_id TEXT, deduplication_id TEXT, sent_at {real} NOT NULL,
            visible_at {real} NOT NULL, receive_count INTEGER NOT NULL, first_received_at {real},
            receipt TEXT)""",
        "CREATE INDEX queue_messages_visible ON queue_messages (queue, visible_at, sequence)",
        "CREATE INDEX queue_messages_group ON queue_messages (queue, group_id, visible_at)",
        "CREATE INDEX queue_messages_receipt ON queue_messages (receipt)",
        f"""CREATE TABLE queue_deduplication (
            queue TEXT NOT NULL, deduplication_id TEXT NOT NULL, message_id TEXT NOT NULL,
            sent_at {real} NOT NULL, PRIMARY KEY (queue, deduplication_id))""",
    )


def message_of(row: Sequence[Any]) -> QueueMessage:
    (message_id, queue, body, attributes, group_id, dedup_id, sequence, sent_at, receive_count,
     first_received_at, receipt) = row
    return QueueMessage(message_id, queue, body, orjson.loads(attributes), group_id, dedup_id, int(sequence),
                        sent_at, receive_count, first_received_at, receipt or "")


class SqlQueues(SqlBackend):
    """The QueueStore methods (squall/store/queues.py) over a SQL backend; a receive passes over
    the messages another receive holds where the dialect has `skip_locked`."""

    def send_messages(self, queue: str, messages: Sequence[NewMessage], *, now: float) -> list[str]:
        ids, stored = [m.id for m in messages], 0
        with self._write() as conn:
            for index, message in enumerate(messages):
                if message.deduplication_id is not None:
                    earlier = self._earlier_message(conn, queue, message.deduplication_id,
                                                    now - FIFO_DEDUPLICATION_WINDOW, message.id, now)
                    if earlier is not None:
                        ids[index] = earlier
                        continue
                conn.execute(self._sql(
                    "INSERT INTO queue_messages (id, queue, body, attributes, group_id, deduplication_id, sent_at, "
                    "visible_at, receive_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)"),
                    (message.id, queue, message.body, orjson.dumps(message.attributes).decode(), message.group_id,
                     message.deduplication_id, now, now + message.delay))
                stored += 1
            if stored:
                self._notice(conn, queue_topic(queue))
        return ids

    def _earlier_message(self, conn: Any, queue: str, dedup_id: str, since: float, message_id: str,
                         now: float) -> str | None:
        """The id of the message sent with `dedup_id` since `since` (deleted or not); else
        None, with `message_id` recorded as the one holding it from `now`."""
        row = conn.execute(self._sql("SELECT message_id, sent_at FROM queue_deduplication WHERE queue = ? "
                                     "AND deduplication_id = ?"), (queue, dedup_id)).fetchone()
        if row is not None and row[1] >= since:
            return str(row[0])
        conn.execute(self._sql("INSERT INTO queue_deduplication (queue, deduplication_id, message_id, sent_at) "
                               "VALUES (?, ?, ?, ?) ON CONFLICT (queue, deduplication_id) DO UPDATE SET "
                               "message_id = excluded.message_id, sent_at = excluded.sent_at"),
                     (queue, dedup_id, message_id, now))
        return None

    def receive_messages(self, queue: str, *, limit: int, now: float, visibility_timeout: float,
                         fifo: bool) -> list[QueueMessage]:
        blocked = (" AND (m.group_id IS NULL OR NOT EXISTS (SELECT 1 FROM queue_messages o WHERE o.queue = m.queue "
                   "AND o.group_id = m.group_id AND o.receive_count > 0 AND o.visible_at > ?))") if fifo else ""
        receipt = secrets.token_urlsafe(24)
        sql = (f"UPDATE queue_messages SET visible_at = ?, receive_count = receive_count + 1, receipt = "
               f"? || ':' || id, first_received_at = coalesce(first_received_at, ?) WHERE sequence IN ("
               f"SELECT m.sequence FROM queue_messages m WHERE m.queue = ? AND m.visible_at <= ?{blocked} "
               f"ORDER BY m.sequence LIMIT ?{self.dialect.skip_locked}) RETURNING {MESSAGE_COLUMNS}")
        params: list[Any] = [now + visibility_timeout, receipt, now, queue, now]
        if fifo:
            params.append(now)
        with self._write() as conn:
            rows = conn.execute(self._sql(sql), (*params, limit)).fetchall()
        return sorted((message_of(row) for row in rows), key=lambda m: m.sequence)

    def delete_messages(self, queue: str, receipts: Sequence[str]) -> int:
        with self._write() as conn:
            return sum(int(conn.execute(self._sql("DELETE FROM queue_messages WHERE queue = ? AND receipt = ?"),
                                        (queue, receipt)).rowcount) for receipt in receipts)

    def change_visibility(self, queue: str, receipts: Sequence[str], *, visible_at: float) -> int:
        with self._write() as conn:
            changed = sum(int(conn.execute(self._sql("UPDATE queue_messages SET visible_at = ? WHERE queue = ? "
                                                     "AND receipt = ?"), (visible_at, queue, receipt)).rowcount)
                          for receipt in receipts)
            if changed:  # e.g. handed back by a throttled consumer: another node's may take them
                self._notice(conn, queue_topic(queue))
            return changed

    def move_messages(self, queue: str, receipts: Sequence[str], target: str, *, now: float) -> int:
        with self._write() as conn:
            moved = sum(int(conn.execute(self._sql(
                "UPDATE queue_messages SET queue = ?, visible_at = ?, receive_count = 0, receipt = NULL, "
                "first_received_at = NULL, deduplication_id = NULL WHERE queue = ? AND receipt = ?"),
                (target, now, queue, receipt)).rowcount) for receipt in receipts)
            if moved:
                self._notice(conn, queue_topic(target))
            return moved

    def queue_counts(self, queue: str, *, now: float) -> dict[str, int]:
        rows = self._query(self._sql(
            "SELECT sum(CASE WHEN visible_at <= ? THEN 1 ELSE 0 END), "
            "sum(CASE WHEN visible_at > ? AND receive_count > 0 THEN 1 ELSE 0 END), "
            "sum(CASE WHEN visible_at > ? AND receive_count = 0 THEN 1 ELSE 0 END) "
            "FROM queue_messages WHERE queue = ?"), (now, now, now, queue))
        visible, in_flight, delayed = rows[0] if rows else (0, 0, 0)
        return {"visible": int(visible or 0), "in_flight": int(in_flight or 0), "delayed": int(delayed or 0)}

    def next_visible(self, queue: str) -> float | None:
        rows = self._query(self._sql("SELECT min(visible_at) FROM queue_messages WHERE queue = ?"), (queue,))
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def expire_messages(self, queue: str, *, sent_before: float) -> int:
        with self._write() as conn:
            conn.execute(self._sql("DELETE FROM queue_deduplication WHERE queue = ? AND sent_at < ?"),
                         (queue, time.time() - FIFO_DEDUPLICATION_WINDOW))
            return int(conn.execute(self._sql("DELETE FROM queue_messages WHERE queue = ? AND sent_at < ?"),
                                    (queue, sent_before)).rowcount)
