"""Aliases, their history and version pruning (squall/store/releases.py) in SQL, shared by
the SQLite and PostgreSQL backends. A deploy points `live` inside its own transaction
(`_point_live`); every alias change sends the `deploy` notice, so other nodes switch too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from squall.exceptions import BadInput, NotFound
from squall.releases import LIVE_ALIAS
from squall.store.notices import DEPLOY
from squall.store.releases import (
    Alias,
    AliasMove,
    decode_weights,
    encode_weights,
)
from squall.store.sql import Dialect, SqlBackend, json_value

ALIAS_TABLES = (
    """CREATE TABLE aliases (
        function TEXT NOT NULL, name TEXT NOT NULL, weights TEXT NOT NULL, updated_at {real} NOT NULL,
        PRIMARY KEY (function, name))""",
    """CREATE TABLE alias_moves (
        id {sequence}, function TEXT NOT NULL, name TEXT NOT NULL, weights TEXT NOT NULL,
        moved_at {real} NOT NULL, reason TEXT NOT NULL)""",
    "CREATE INDEX alias_moves_alias ON alias_moves (function, name, id)",
    "ALTER TABLE versions ADD COLUMN provenance TEXT NOT NULL DEFAULT '{{}}'",
)


def release_schema(dialect: Dialect) -> tuple[str, ...]:
    """The migration step adding aliases, their moves and each version's provenance."""
    return tuple(statement.format(real=dialect.real, sequence=dialect.sequence) for statement in ALIAS_TABLES)


class SqlReleases(SqlBackend):
    """The ReleaseStore methods (squall/store/releases.py) over a SQL backend, and the alias
    moves that `commit_deploy` makes in its transaction."""

    def list_aliases(self, function: str | None = None) -> list[Alias]:
        where, params = ("WHERE function = ?", (function,)) if function is not None else ("", ())
        rows = self._query(self._sql(f"SELECT function, name, weights, updated_at FROM aliases {where} "
                                     "ORDER BY function, name"), params)
        return [Alias(f, n, decode_weights(w), at) for f, n, w, at in rows]

    def set_alias(self, function: str, name: str, weights: Mapping[int, int], *, reason: str,
                  now: float) -> Alias:
        with self._write() as conn:
            if conn.execute(self._sql("SELECT 1 FROM functions WHERE name = ?"), (function,)).fetchone() is None:
                raise NotFound(f"Function not found: {function}")
            numbers = sorted(weights)
            marks = ", ".join("?" * len(numbers))
            found = {row[0] for row in conn.execute(
                self._sql(f"SELECT number FROM versions WHERE function = ? AND number IN ({marks})"),
                (function, *numbers)).fetchall()}
            missing = [n for n in numbers if n not in found]
            if missing:
                raise BadInput(f"function {function} has no version {', '.join(map(str, missing))}"
                               f" (see `squall versions {function}`)")
            self._move_alias(conn, function, name, weights, reason, now)
            self._notice(conn, DEPLOY)
        return Alias(function, name, dict(weights), now)

    def _move_alias(self, conn: Any, function: str, name: str, weights: Mapping[int, int], reason: str,
                    now: float) -> None:
        encoded = encode_weights(weights)
        conn.execute(self._sql("INSERT INTO aliases (function, name, weights, updated_at) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (function, name) DO UPDATE SET weights = excluded.weights, "
                               "updated_at = excluded.updated_at"), (function, name, encoded, now))
        conn.execute(self._sql("INSERT INTO alias_moves (function, name, weights, moved_at, reason) "
                               "VALUES (?, ?, ?, ?, ?)"), (function, name, encoded, now, reason))

    def _point_live(self, conn: Any, function: str, number: int, now: float) -> None:
        """Inside a deploy's transaction: unqualified calls of `function` now reach `number`."""
        self._move_alias(conn, function, LIVE_ALIAS, {number: 100}, "deploy", now)

    def _forget_aliases(self, conn: Any, function: str) -> None:
        """Inside a deploy's transaction: `function` is removed, and so are its aliases."""
        conn.execute(self._sql("DELETE FROM aliases WHERE function = ?"), (function,))
        conn.execute(self._sql("DELETE FROM alias_moves WHERE function = ?"), (function,))

    def delete_alias(self, function: str, name: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute(self._sql("DELETE FROM aliases WHERE function = ? AND name = ?"),
                                  (function, name))
            conn.execute(self._sql("DELETE FROM alias_moves WHERE function = ? AND name = ?"), (function, name))
            if cursor.rowcount:
                self._notice(conn, DEPLOY)
            return bool(cursor.rowcount)

    def alias_moves(self, function: str, name: str, *, limit: int = 20) -> list[AliasMove]:
        rows = self._query(self._sql("SELECT weights, moved_at, reason FROM alias_moves "
                                     "WHERE function = ? AND name = ? ORDER BY id DESC LIMIT ?"),
                           (function, name, limit))
        return [AliasMove(function, name, decode_weights(w), at, reason) for w, at, reason in rows]

    def prune_versions(self, function: str, *, keep: int) -> list[int]:
        with self._write() as conn:
            numbers = [row[0] for row in conn.execute(
                self._sql("SELECT number FROM versions WHERE function = ? ORDER BY number DESC"),
                (function,)).fetchall()]
            pinned: set[int] = set()
            for (weights,) in conn.execute(self._sql("SELECT weights FROM aliases WHERE function = ?"),
                                           (function,)).fetchall():
                pinned.update(decode_weights(weights))
            doomed = [n for n in numbers[max(keep, 1):] if n not in pinned]
            self._run_many(conn, "DELETE FROM versions WHERE function = ? AND number = ?",
                           [(function, n) for n in doomed])
        return sorted(doomed)

    def code_in_use(self) -> set[str]:
        used: set[str] = set()
        for code_path, config in self._query("SELECT code_path, config FROM versions"):
            used.add(code_path)
            deps = json_value(config).get("deps")
            if deps:
                used.add(f"deps/{deps}")
        return used

