"""The schedules (squall/store/schedules.py) in SQL, shared by the SQLite and PostgreSQL
backends (the leader lock, `try_lead`, is each backend's own)."""

from __future__ import annotations

from typing import Any, Sequence

import orjson

from squall.store.notices import EVENTS
from squall.store.sql import Dialect, SqlBackend
from squall.store.schedules import ScheduleFire, ScheduleState
from squall.store.sql_events import INSERT_EVENT, event_row

SCHEDULE_TABLE = """CREATE TABLE schedules (
    key TEXT PRIMARY KEY, function TEXT NOT NULL, name TEXT NOT NULL, expression TEXT NOT NULL,
    timezone TEXT NOT NULL, anchor {real} NOT NULL, next_fire {real}, config TEXT NOT NULL,
    last_fire {real}, last_status TEXT, last_request_id TEXT, last_success {real}, alarm_raised {real})"""
SCHEDULE_COLUMNS = ("key, function, name, expression, timezone, anchor, next_fire, config, last_fire, "
                    "last_status, last_request_id, last_success, alarm_raised")


def schedule_schema(dialect: Dialect) -> tuple[str, ...]:
    return (SCHEDULE_TABLE.format(real=dialect.real),)


def schedule_of(row: Sequence[Any]) -> ScheduleState:
    (key, function, name, expression, timezone, anchor, next_fire, config, last_fire, last_status,
     last_request_id, last_success, alarm_raised) = row
    return ScheduleState(key, function, name, expression, timezone, anchor, next_fire, orjson.loads(config),
                         last_fire, last_status, last_request_id, last_success, alarm_raised)


class SqlSchedules(SqlBackend):
    """The ScheduleStore methods (squall/store/schedules.py) over a SQL backend, but `try_lead`."""

    def list_schedules(self) -> list[ScheduleState]:
        return [schedule_of(row) for row in self._query(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY key")]

    def save_schedules(self, schedules: Sequence[ScheduleState], removed: Sequence[str]) -> None:
        rows = [(s.key, s.function, s.name, s.expression, s.timezone, s.anchor, s.next_fire,
                 orjson.dumps(s.config).decode()) for s in schedules]
        with self._write() as conn:
            self._run_many(conn, "INSERT INTO schedules (key, function, name, expression, timezone, anchor, "
                                 "next_fire, config) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE "
                                 "SET function = excluded.function, name = excluded.name, "
                                 "expression = excluded.expression, timezone = excluded.timezone, "
                                 "anchor = excluded.anchor, next_fire = excluded.next_fire, "
                                 "config = excluded.config", rows)
            self._run_many(conn, "DELETE FROM schedules WHERE key = ?", [(key,) for key in removed])

    def fire_schedules(self, fires: Sequence[ScheduleFire], *, now: float) -> list[str]:
        applied: list[str] = []
        stored = False
        with self._write() as conn:
            for fire in fires:
                cursor = conn.execute(self._sql(
                    "UPDATE schedules SET next_fire = ?, last_fire = ?, last_status = ?, "
                    "last_request_id = coalesce(?, last_request_id) WHERE key = ? AND next_fire = ?"),
                    (fire.next_fire, fire.fired, fire.status, fire.event.id if fire.event else None,
                     fire.key, fire.fired))
                if cursor.rowcount != 1:
                    continue
                applied.append(fire.key)
                if fire.event is not None:
                    conn.execute(self._sql(INSERT_EVENT), event_row(fire.event, now))
                    stored = True
            if stored:
                self._notice(conn, EVENTS)
        return applied

    def record_schedule_result(self, key: str, *, ok: bool, at: float) -> None:
        sql = ("UPDATE schedules SET last_status = ?, "
               "last_success = CASE WHEN ? THEN ? ELSE last_success END, "
               "alarm_raised = CASE WHEN ? THEN NULL ELSE alarm_raised END "
               "WHERE key = ?")
        with self._write() as conn:
            conn.execute(self._sql(sql), ("succeeded" if ok else "failed", ok, at, ok, key))

    def mark_schedule_alarm(self, key: str, at: float) -> None:
        with self._write() as conn:
            conn.execute(self._sql("UPDATE schedules SET alarm_raised = ? WHERE key = ?"), (at, key))
