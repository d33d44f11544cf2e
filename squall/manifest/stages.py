"""Stages: separate namespaces on one server (`squall deploy --stage staging`), each with its
own functions, routes, tables, topics, queues, buckets, secrets, logs and versions.

A stage is declared (optionally) under squall.yaml's `stages:` with how requests reach it and
the environment its functions get on top of their own:

    stages:
      staging:
        path_prefix: /staging        # the default: /<name>
        env: {LOG_LEVEL: debug}
      production:
        host: api.example.com        # requests whose Host is this name

`default` is the stage of a plain `squall deploy`: the server's root, reached without prefix.
This module is the `stages:` section only; the server runs the stages in squall/server/stages.py.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from squall.manifest.errors import fail, show
from squall.manifest.sections import Section
from squall.manifest.values import check_env

DEFAULT_STAGE = "default"
STAGE_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
_HOST = re.compile(r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
_PREFIX = re.compile(r"(/[A-Za-z0-9._~-]+)+")


def check_stage_name(value: Any) -> str:
    if isinstance(value, str) and STAGE_NAME.fullmatch(value):
        return value
    raise ValueError(f"must be a stage name (lowercase letters, digits and -, starting with a letter, "
                     f"up to 31), got {show(value)}")


def _check_host(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and _HOST.fullmatch(value.lower()):
        return value.lower()
    raise ValueError(f"must be a host name such as staging.example.com (no port, no scheme), got {show(value)}")


def _check_prefix(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and _PREFIX.fullmatch(value.rstrip("/") or "/") and not value.startswith("/_squall"):
        return value.rstrip("/")
    raise ValueError(f"must be a path prefix such as /staging (not under /_squall), got {show(value)}")


class StageSpec(Section):
    """How requests reach a stage, and the environment its functions get."""

    host: Annotated[str | None, BeforeValidator(_check_host),
                    Field(description="requests with this Host header go to the stage")] = None
    path_prefix: Annotated[str | None, BeforeValidator(_check_prefix),
                           Field(description="requests under this path go to the stage, "
                                             "without it (default /NAME)")] = None
    env: Annotated[dict[str, str], BeforeValidator(check_env),
                   Field(description="variables every function of the stage gets (its own win)")] = Field(
        default_factory=dict)

    @model_validator(mode="after")
    def _one_way_in(self) -> StageSpec:
        if self.host and self.path_prefix:
            raise fail("give host or path_prefix, not both", "path_prefix")
        return self


def stage_settings(name: str, spec: StageSpec | None) -> dict[str, Any]:
    """What the server keeps of a stage: `{"host", "path_prefix", "env"}`, the prefix defaulted."""
    spec = spec or StageSpec()
    prefix = None if spec.host else (spec.path_prefix or f"/{name}")
    return {"host": spec.host, "path_prefix": prefix, "env": dict(spec.env)}


def check_stages(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of stage names to settings, got {show(value)}")
    for name in value:
        if name == DEFAULT_STAGE:
            raise fail(f"{DEFAULT_STAGE!r} is the server's root stage: it has no settings here", str(name))
        try:
            check_stage_name(name)
        except ValueError as exc:
            raise fail(str(exc), str(name)) from None
    return {name: {} if spec is None else spec for name, spec in value.items()}
