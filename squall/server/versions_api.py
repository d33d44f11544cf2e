"""The platform API for a function's stored versions (`/_squall/api/...`, admin token): their
history with provenance and the aliases pointing at them, and the difference between two.

    GET /functions/{name}/versions      {"function", "project", "latest", "aliases", "versions"}:
                                        `versions` newest first, each {"number", "created_at",
                                        "code_hash", "code_path", "provenance", "aliases"}
                                        (`aliases`: alias name -> percent of its traffic);
                                        `aliases`: [{"name", "weights"}], `live` first (see
                                        squall/node/aliases.py:aliases_of)
    GET /functions/{name}/diff?a=N&b=M  {"function", "a", "b", "config", "files", "summary"}:
                                        the configuration as a unified diff of sorted-key
                                        JSON, then each file of the code that differs
                                        (added, removed, modified; binary files and files
                                        over MAX_DIFF_BYTES are said to differ, not diffed)

An unknown function or version is a 404; a missing or bad `a`/`b` a 400. A diff reads the
code from this node's disk (DATA/<code_path>).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.exceptions import BadInput, NotFound, SquallError
from squall.node.aliases import aliases_of
from squall.node.core import Node
from squall.server.responses import json_response
from squall.store.base import FunctionRecord, FunctionVersion
from squall.store.releases import Alias

MAX_DIFF_BYTES = 1_000_000
"""Files larger than this (either side) are said to differ, not diffed line by line."""


class VersionsApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def routes(self, guard: Callable[[Any], Any]) -> list[Route]:
        return [
            Route("/_squall/api/functions/{name}/versions", guard(self.list_versions), methods=["GET"]),
            Route("/_squall/api/functions/{name}/diff", guard(self.diff), methods=["GET"]),
        ]

    async def list_versions(self, request: Request) -> Response:
        return json_response(await run_in_threadpool(self.version_history, request.path_params["name"]))

    async def diff(self, request: Request) -> Response:
        name = request.path_params["name"]
        a, b = (version_number(request.query_params.get(key), key) for key in ("a", "b"))
        return json_response(await run_in_threadpool(self.version_diff, name, a, b))

    # -- reading the store and the disk (worker threads) ----------------------------
    def function(self, name: str) -> FunctionRecord:
        record = self.node.store.get_function(name)
        if record is None:
            raise NotFound(f"Function not found: {name}")
        return record

    def version_history(self, name: str) -> dict[str, Any]:
        record = self.function(name)
        aliases = aliases_of(record, self.node.store.list_aliases(name))
        versions = sorted(self.node.store.list_versions(name), key=lambda v: v.number, reverse=True)
        return {"function": name, "project": record.project, "latest": record.latest,
                "aliases": [{"name": a.name, "weights": {str(n): w for n, w in sorted(a.weights.items())}}
                            for a in aliases],
                "versions": [version_info(v, aliases) for v in versions]}

    def version(self, name: str, number: int) -> FunctionVersion:
        found = self.node.store.get_version(name, number)
        if found is None:
            raise NotFound(f"function {name} has no version {number} (see `squall versions {name}`)")
        return found

    def version_diff(self, name: str, a: int, b: int) -> dict[str, Any]:
        self.function(name)
        old, new = self.version(name, a), self.version(name, b)
        files = code_changes(self.code_folder(old), self.code_folder(new), f"v{a}", f"v{b}")
        config, added, removed = unified(config_lines(old.config), config_lines(new.config),
                                         f"v{a}/config", f"v{b}/config")
        changed = [f for f in files if f["status"] != "unchanged"]
        summary = {"files_changed": len(changed), "insertions": added + sum(f["insertions"] for f in changed),
                   "deletions": removed + sum(f["deletions"] for f in changed)}
        return {"function": name, "a": a, "b": b,
                "config": {"changed": bool(config), "diff": config, "insertions": added, "deletions": removed},
                "files": changed, "summary": summary}

    def code_folder(self, version: FunctionVersion) -> Path:
        folder = self.node.settings.data_dir / version.code_path
        if not folder.is_dir():
            raise SquallError(f"the code of {version.function} version {version.number} ({version.code_path}) "
                              "is not on this node's disk")
        return folder


def version_number(text: str | None, key: str) -> int:
    if text is None or not text.strip().isdigit() or int(text) < 1:
        raise BadInput(f"`{key}` must be a version number (1 or more), not {text!r}")
    return int(text)


def version_info(version: FunctionVersion, aliases: list[Alias]) -> dict[str, Any]:
    return {"number": version.number, "created_at": version.created_at, "code_hash": version.code_hash,
            "code_path": version.code_path, "provenance": version.provenance,
            "aliases": {a.name: a.weights[version.number] for a in aliases if version.number in a.weights}}


# -- diffs ------------------------------------------------------------------------------


def config_lines(config: dict[str, Any]) -> list[str]:
    return json.dumps(config, sort_keys=True, indent=2, ensure_ascii=False).splitlines()


def unified(old: list[str], new: list[str], old_label: str, new_label: str) -> tuple[str, int, int]:
    """`(unified diff text, lines added, lines removed)`; empty text when nothing differs."""
    lines = list(difflib.unified_diff(old, new, old_label, new_label, lineterm=""))
    body = lines[2:]
    added = sum(1 for line in body if line.startswith("+"))
    removed = sum(1 for line in body if line.startswith("-"))
    return "\n".join(lines) + ("\n" if lines else ""), added, removed


def code_files(folder: Path) -> dict[str, Path]:
    """The files of a stored code folder by relative path."""
    return {path.relative_to(folder).as_posix(): path for path in folder.rglob("*")
            if path.is_file() and not path.is_symlink()}


def code_changes(old_folder: Path, new_folder: Path, old_name: str, new_name: str) -> list[dict[str, Any]]:
    """One entry per file of either folder, sorted by path: {"path", "status" (added, removed,
    modified, unchanged), "binary", "too_large", "diff", "insertions", "deletions"}."""
    if old_folder == new_folder:
        return []
    old, new = code_files(old_folder), code_files(new_folder)
    return [file_change(rel, old.get(rel), new.get(rel), old_name, new_name) for rel in sorted(old.keys() | new.keys())]


def file_change(rel: str, old: Path | None, new: Path | None, old_name: str, new_name: str) -> dict[str, Any]:
    old_data = old.read_bytes() if old is not None else b""
    new_data = new.read_bytes() if new is not None else b""
    status = "added" if old is None else "removed" if new is None else \
        "unchanged" if old_data == new_data else "modified"
    change: dict[str, Any] = {"path": rel, "status": status, "binary": False, "too_large": False,
                              "diff": None, "insertions": 0, "deletions": 0}
    if status == "unchanged":
        return change
    if max(len(old_data), len(new_data)) > MAX_DIFF_BYTES:
        change["too_large"] = True
        return change
    old_text, new_text = as_text(old_data), as_text(new_data)
    if old_text is None or new_text is None:
        change["binary"] = True
        return change
    diff, added, removed = unified(old_text.splitlines(), new_text.splitlines(),
                                   f"{old_name}/{rel}" if old else "/dev/null", f"{new_name}/{rel}" if new else "/dev/null")
    change.update(diff=diff, insertions=added, deletions=removed)
    return change


def as_text(data: bytes) -> str | None:
    """`data` as text, or None when it looks binary (a NUL byte, not UTF-8)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
