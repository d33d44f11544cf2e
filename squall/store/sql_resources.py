"""Project resources (squall/store/resources.py) in SQL, shared by both backends; they are
replaced inside `commit_deploy`'s transaction."""

from __future__ import annotations

from typing import Any, Mapping

import orjson

from squall.exceptions import Conflict
from squall.store.notices import RESOURCES
from squall.store.resources import RESOURCE_KINDS, Resource
from squall.store.sql import SqlBackend

RESOURCE_TABLE = """CREATE TABLE resources (
    kind TEXT NOT NULL, name TEXT NOT NULL, project TEXT NOT NULL, config TEXT NOT NULL,
    PRIMARY KEY (kind, name))"""

ProjectResources = Mapping[str, Mapping[str, Any]]
"""`{"topics": {name: config}, "queues": {...}, "buckets": {...}}`, as Manifest.resources()."""


def resource_schema() -> tuple[str, ...]:
    return (RESOURCE_TABLE, "CREATE INDEX resources_project ON resources (project)")


class SqlResources(SqlBackend):
    """The ResourceStore methods (squall/store/resources.py) over a SQL backend, and the
    replacement of a project's resources that `commit_deploy` makes in its transaction."""

    def list_resources(self, kind: str | None = None) -> list[Resource]:
        where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        rows = self._query(self._sql(f"SELECT kind, name, project, config FROM resources {where} "
                                     "ORDER BY kind, name"), params)
        return [Resource(k, n, p, orjson.loads(c)) for k, n, p, c in rows]

    def put_resource(self, resource: Resource, *, create: bool) -> None:
        config = orjson.dumps(resource.config).decode()
        with self._write() as conn:
            owner = conn.execute(self._sql("SELECT project FROM resources WHERE kind = ? AND name = ?"),
                                 (resource.kind, resource.name)).fetchone()
            if create and owner is not None:
                raise Conflict(f'{resource.kind} "{resource.name}" already exists')
            if not create and (owner is None or owner[0] != resource.project):
                raise Conflict(f'{resource.kind} "{resource.name}" does not exist or changed project')
            conn.execute(self._sql("DELETE FROM resources WHERE kind = ? AND name = ?"), (resource.kind, resource.name))
            conn.execute(self._sql("INSERT INTO resources (kind, name, project, config) VALUES (?, ?, ?, ?)"),
                         (resource.kind, resource.name, resource.project, config))
            self._notice(conn, RESOURCES)

    def delete_resource(self, kind: str, name: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute(self._sql("DELETE FROM resources WHERE kind = ? AND name = ?"), (kind, name))
            if cursor.rowcount:
                self._notice(conn, RESOURCES)
            return bool(cursor.rowcount)

    def _replace_resources(self, conn: Any, project: str, resources: ProjectResources) -> None:
        """Inside a deploy's transaction: `project` now declares exactly `resources`.
        Raises Conflict when a name belongs to another project."""
        rows = []
        for kind in RESOURCE_KINDS:
            for name, config in (resources.get(f"{kind}s") or {}).items():
                owner = conn.execute(self._sql("SELECT project FROM resources WHERE kind = ? AND name = ?"),
                                     (kind, name)).fetchone()
                if owner is not None and owner[0] != project:
                    raise Conflict(f'{kind} "{name}" belongs to project "{owner[0]}"' if owner[0] else
                                   f'{kind} "{name}" was made through the API: delete it there first or '
                                   'choose another name')
                rows.append((kind, name, project, orjson.dumps(config).decode()))
        conn.execute(self._sql("DELETE FROM resources WHERE project = ?"), (project,))
        self._run_many(conn, "INSERT INTO resources (kind, name, project, config) VALUES (?, ?, ?, ?)", rows)
