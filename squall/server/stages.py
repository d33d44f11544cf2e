"""The stages a server runs besides its root (squall/manifest/stages.py): one Node per stage, each with
its own store (a SQLite file under DATA/stages/NAME, or a PostgreSQL schema of its own), data
dir, event engine and instance pool, so that nothing of one stage is visible to another. The
pools borrow the root node's zygotes.

Which stages exist, and how requests reach them, is kept in the root store (meta `stages`), so
every node of a cluster runs the same ones: a change sends the `deploy` notice and each node
syncs after its root node has. A request reaches a stage by

* the path `/_squall/stages/NAME/...` (what the CLI's `--stage` and the stage's own instances
  use), or
* the stage's `host` (the Host header), or its `path_prefix` (stripped before routing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from squall.aws_auth import STRIPPED_PREFIX
from squall.runtime.instance import Instance, InstanceSpec
from squall.runtime.pool import InstancePool
from squall.server.app import NodeApp
from squall.node.core import Node
from squall.server.responses import error_response
from squall.manifest.stages import DEFAULT_STAGE
from squall.store import open_stage_store
from squall.store.notices import DEPLOY

REGISTRY_KEY = "stages"
STAGES_PREFIX = "/_squall/stages/"

Scope = dict[str, Any]


class BorrowedLauncher:
    """A stage pool's launcher: the root node's zygotes, which only the root closes."""

    def __init__(self, launcher: Any) -> None:
        self.launcher = launcher

    async def start(self) -> None:
        await self.launcher.start()

    async def launch(self, spec: InstanceSpec) -> Instance:
        instance: Instance = await self.launcher.launch(spec)
        return instance

    async def close(self) -> None:
        """Nothing: the root node's pool closes the zygotes."""


@dataclass
class Stage:
    name: str
    settings: dict[str, Any]
    """`{"host", "path_prefix", "env"}` as squall.manifest.stages.stage_settings makes them."""
    app: NodeApp


def read_registry(root: Node) -> dict[str, dict[str, Any]]:
    text = root.store.get_meta(REGISTRY_KEY)
    return dict(orjson.loads(text)) if text else {}


def write_registry(root: Node, stages: dict[str, dict[str, Any]]) -> None:
    root.store.set_meta(REGISTRY_KEY, orjson.dumps(stages, option=orjson.OPT_SORT_KEYS).decode())
    root.store.notify(DEPLOY)


class StageSet:
    """The stages of one server, their nodes, and the routing of requests to them."""

    def __init__(self, root: Node, token: str) -> None:
        self.root = root
        self.token = token
        self.stages: dict[str, Stage] = {}
        self._hosts: dict[str, Stage] = {}
        self._prefixes: list[tuple[str, Stage]] = []
        self._lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        await self.sync()
        self.root.after_sync.append(self.sync)

    async def stop(self) -> None:
        async with self._lock:
            for name in list(self.stages):
                await self._stop(name)
            self._index()

    async def sync(self) -> None:
        """Run exactly the registered stages, with their current settings."""
        async with self._lock:
            wanted = await asyncio.to_thread(read_registry, self.root)
            for name in [n for n in self.stages if n not in wanted]:
                await self._stop(name)
            for name, settings in wanted.items():
                stage = self.stages.get(name)
                if stage is None:
                    self.stages[name] = await self._start(name, settings)
                elif stage.settings != settings:
                    stage.settings = settings
                    stage.app.node.set_stage_env(settings.get("env") or {})
            self._index()

    async def _start(self, name: str, settings: dict[str, Any]) -> Stage:
        root = self.root.settings
        data_dir = root.data_dir / "stages" / name
        store = await asyncio.to_thread(open_stage_store, self.root.store, name, data_dir)
        from squall.node.specs import sdk_key
        node_settings = replace(root, data_dir=data_dir, server_data_dir=root.hidden_dir, api_url=f"{root.api_url}{STAGES_PREFIX}{name}" if root.api_url
                                else "", sdk_key=await asyncio.to_thread(sdk_key, store), stage=name,
                                stage_env=dict(settings.get("env") or {}))
        node = Node(node_settings, store, InstancePool(BorrowedLauncher(self.root.pool.launcher)),
                    logs_of=self.root)  # one log sweep and queue budget for the whole server
        app = NodeApp(node, self.token)
        await app.start()
        return Stage(name, settings, app)

    async def _stop(self, name: str) -> None:
        stage = self.stages.pop(name)
        await stage.app.stop()

    def _index(self) -> None:
        self._hosts = {s.settings["host"]: s for s in self.stages.values() if s.settings.get("host")}
        prefixed = [(s.settings["path_prefix"], s) for s in self.stages.values() if s.settings.get("path_prefix")]
        self._prefixes = sorted(prefixed, key=lambda pair: -len(pair[0]))

    def node(self, name: str) -> Node | None:
        """The node of stage `name` (`default` is the root)."""
        if name == DEFAULT_STAGE:
            return self.root
        stage = self.stages.get(name)
        return None if stage is None else stage.app.node

    # -- routing --------------------------------------------------------------
    def route(self, scope: Scope) -> tuple[Callable[..., Any], Scope] | None:
        """The app of the stage `scope` is for, and the scope it should see; None for the root."""
        if not self.stages and not scope["path"].startswith(STAGES_PREFIX):
            return None
        path: str = scope["path"]
        if path.startswith(STAGES_PREFIX):
            name = path[len(STAGES_PREFIX):].split("/", 1)[0]
            stage = self.stages.get(name)
            if stage is None:
                return unknown_stage(name), scope
            return stage.app, without_prefix(scope, STAGES_PREFIX + name)
        if self._hosts:
            stage = self._hosts.get(request_host(scope))
            if stage is not None:
                return stage.app, scope
        for prefix, stage in self._prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return stage.app, without_prefix(scope, prefix)
        return None


def request_host(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value.decode("latin-1").rsplit(":", 1)[0].lower()
    return ""


def without_prefix(scope: Scope, prefix: str) -> Scope:
    """`scope` for the stage's app: `prefix` (ASCII, as stage names and prefixes are) taken off
    the path and the raw path, and remembered under STRIPPED_PREFIX."""
    raw = scope.get("raw_path")
    stripped = {**scope, "path": scope["path"][len(prefix):] or "/",
                STRIPPED_PREFIX: scope.get(STRIPPED_PREFIX, "") + prefix}
    if raw:
        stripped["raw_path"] = raw[len(prefix):] or b"/"
    return stripped


def unknown_stage(name: str) -> Callable[..., Any]:
    async def app(scope: Scope, receive: Any, send: Any) -> None:
        response = error_response(404, "NotFound", f"no stage named {name!r} on this server "
                                  f"(deploy to it with `squall deploy --stage {name}`)")
        await response(scope, receive, send)
    return app
