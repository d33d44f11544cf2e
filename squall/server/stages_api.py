"""The platform API for stages (`/_squall/api/stages`, admin token, on the root node):

    GET  /stages                 {"stages": [{"name", "host", "path_prefix", "env", "functions"}]},
                                 `default` (the root) first
    PUT  /stages/{name}          body {"host"} or {"path_prefix"} (default /NAME), and "env":
                                 creates the stage or changes its settings -> the stage as above
    POST /stages/{name}/promote  body {"from": "staging"}: deploy exactly the versions the
                                 source stage's functions run (their `live` alias) to `name`

A stage's own API is the same as the root's, under `/_squall/stages/NAME/_squall/api/...`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from squall.exceptions import BadInput, Conflict
from squall.server.events_api import json_object
from squall.server.responses import json_response
from squall.server.stages import read_registry, write_registry
from squall.manifest.stages import DEFAULT_STAGE, StageSpec, check_stage_name, stage_settings

if TYPE_CHECKING:
    from squall.server.stages import StageSet


class StagesApi:
    def __init__(self, stages: StageSet) -> None:
        self.stages = stages

    def routes(self, guard: Callable[[Any], Any]) -> list[Route]:
        return [
            Route("/_squall/api/stages", guard(self.list_stages), methods=["GET"]),
            Route("/_squall/api/stages/{name}", guard(self.put_stage), methods=["PUT"]),
            Route("/_squall/api/stages/{name}/promote", guard(self.promote), methods=["POST"]),
        ]

    async def list_stages(self, request: Request) -> Response:
        await self.stages.sync()
        rows: list[dict[str, Any]] = [{"name": DEFAULT_STAGE, "host": None, "path_prefix": None, "env": [],
                 "functions": len(self.stages.root.functions)}]
        for name, stage in sorted(self.stages.stages.items()):
            rows.append({"name": name, "host": stage.settings.get("host"),
                         "path_prefix": stage.settings.get("path_prefix"),
                         "env": sorted(stage.settings.get("env") or {}), "functions": len(stage.app.node.functions)})
        return json_response({"stages": rows})

    async def put_stage(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name == DEFAULT_STAGE:
            raise BadInput(f"{DEFAULT_STAGE!r} is the server's root: it has no settings")
        try:
            check_stage_name(name)
            spec = StageSpec.model_validate(await json_object(request))
        except (ValueError, ValidationError) as exc:
            raise BadInput(f"stage {name}: {_first_error(exc)}") from None
        settings = stage_settings(name, spec)
        async with self.stages.root.deploy_lock:
            registry = await asyncio.to_thread(read_registry, self.stages.root)
            check_routing(name, settings, registry)
            created = name not in registry
            if registry.get(name) != settings:
                registry[name] = settings
                await asyncio.to_thread(write_registry, self.stages.root, registry)
        await self.stages.sync()
        return json_response({"name": name, "created": created, **settings}, 201 if created else 200)

    async def promote(self, request: Request) -> Response:
        body = await json_object(request)
        source_name, target_name = str(body.get("from") or ""), request.path_params["name"]
        source, target = self.stages.node(source_name), self.stages.node(target_name)
        if source is None:
            raise BadInput(f"no stage named {source_name!r} to promote from (see `squall stages`)")
        if target is None:
            raise BadInput(f"no stage named {target_name!r} to promote to: declare it under stages: in "
                           f"squall.yaml or deploy to it once (`squall deploy --stage {target_name}`)")
        if source is target:
            raise BadInput("a stage cannot be promoted to itself")
        from squall.node.promote import promote
        return json_response(await promote(source, target))


def check_routing(name: str, settings: dict[str, Any], registry: dict[str, dict[str, Any]]) -> None:
    """Conflict when another stage is reached the same way."""
    for other, theirs in registry.items():
        if other == name:
            continue
        for key in ("host", "path_prefix"):
            if settings.get(key) and settings[key] == theirs.get(key):
                raise Conflict(f"stage {other} already uses {key} {settings[key]}")


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)
