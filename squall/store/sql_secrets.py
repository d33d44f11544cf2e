"""Secrets (squall/store/secrets.py) in SQL, shared by both backends."""

from __future__ import annotations

from squall.store.notices import SECRETS
from squall.store.secrets import SecretInfo
from squall.store.sql import Dialect, SqlBackend


def secret_schema(dialect: Dialect) -> tuple[str, ...]:
    return (f"""CREATE TABLE secrets (
        name TEXT PRIMARY KEY, ciphertext {dialect.blob} NOT NULL,
        created_at {dialect.real} NOT NULL, updated_at {dialect.real} NOT NULL)""",)


class SqlSecrets(SqlBackend):
    """The SecretStore methods (squall/store/secrets.py) over a SQL backend."""

    def put_secret(self, name: str, ciphertext: bytes, *, now: float) -> None:
        with self._write() as conn:
            conn.execute(self._sql(
                "INSERT INTO secrets (name, ciphertext, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET ciphertext = excluded.ciphertext, "
                "updated_at = excluded.updated_at"), (name, ciphertext, now, now))
            self._notice(conn, SECRETS)

    def list_secrets(self) -> list[SecretInfo]:
        rows = self._query("SELECT name, created_at, updated_at FROM secrets ORDER BY name")
        return [SecretInfo(str(name), float(created), float(updated)) for name, created, updated in rows]

    def get_secrets(self, names: list[str]) -> dict[str, bytes]:
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        rows = self._query(self._sql(f"SELECT name, ciphertext FROM secrets WHERE name IN ({marks})"), list(names))
        return {str(name): bytes(ciphertext) for name, ciphertext in rows}

    def delete_secret(self, name: str) -> bool:
        with self._write() as conn:
            deleted = int(conn.execute(self._sql("DELETE FROM secrets WHERE name = ?"), (name,)).rowcount) > 0
            if deleted:
                self._notice(conn, SECRETS)
            return deleted
