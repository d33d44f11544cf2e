"""A function of squall.yaml: one entry of `functions:`, keyed by its name.

Its settings say what to call (`handler`, `code`, `runtime`, the lifecycle hooks), with which
limits (`timeout`, `memory`, `ephemeral_storage`, `network`, `concurrency`, ...), what it gets
(`env`) and may use (its grants), what happens after an asynchronous invocation (its
destinations), and what invokes it (`triggers`). `FunctionSpec.config()` is everything that
defines a version of the function.
"""

from __future__ import annotations

import keyword
import posixpath
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from squall.manifest.destinations import DEFAULT_MAX_EVENT_AGE, DEFAULT_RETRIES, MAX_RETRIES, Destination
from squall.manifest.errors import fail, show
from squall.manifest.grants import check_grant_list, check_secret_names
from squall.manifest.sections import Section
from squall.manifest.triggers import TriggerField, name_schedules
from squall.manifest.values import (check_env, check_function_name, duration, is_number, optional, seconds,
                                    whole_number)

DEFAULT_RUNTIME = "python3.11"
MAX_TIMEOUT = 900
MIN_MEMORY, MAX_MEMORY = 64, 10240
NETWORK_MODES = ("default", "none")

_RUNTIME = re.compile(r"python3\.\d+")


# ------------------------------------------------------------------ field checks


def _is_identifier(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def _check_handler(value: Any) -> str:
    if isinstance(value, str):
        module, dot, attribute = value.rpartition(".")
        if dot and all(_is_identifier(part) for part in [*module.split("."), attribute]):
            return value
    raise ValueError("must be module.function made of Python identifiers (e.g. app.handler or "
                     f"pkg.api.handler), got {show(value)}")


def _check_code(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\\" in value:
        raise ValueError('must be a folder relative to the manifest, with "/" between names '
                         f"(e.g. . or src/api), got {show(value)}")
    if value.startswith("/") or re.match(r"[A-Za-z]:", value):
        raise ValueError(f"must be relative to the manifest's folder, not absolute, got {show(value)}")
    normal = posixpath.normpath(value)
    if normal == ".." or normal.startswith("../"):
        raise ValueError(f"must stay inside the project folder, got {show(value)}")
    return normal


def _check_runtime(value: Any) -> str:
    if isinstance(value, str) and _RUNTIME.fullmatch(value):
        return value
    raise ValueError('must be a Python runtime such as "python3.11" or "python3.12" (only '
                     f"python3.x runtimes are supported), got {show(value)}")


def _check_timeout(value: Any) -> float:
    if is_number(value) and 0 < value <= MAX_TIMEOUT:
        return float(value)
    raise ValueError(f"must be a number of seconds above 0 and at most {MAX_TIMEOUT} (as on AWS "
                     f"Lambda), got {show(value)}")


def _check_memory(value: Any) -> int:
    if is_number(value) and isinstance(value, int) and MIN_MEMORY <= value <= MAX_MEMORY:
        return value
    raise ValueError(f"must be a whole number of MB from {MIN_MEMORY} to {MAX_MEMORY} (as on AWS "
                     f"Lambda), got {show(value)}")


def _check_network(value: Any) -> str:
    if value in NETWORK_MODES:
        return str(value)
    raise ValueError(f"must be one of {', '.join(NETWORK_MODES)}, got {show(value)}")


def _check_triggers(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise ValueError('must be a list of triggers, each item like - http: "GET /status", '
                     f"got {show(value)}")


# ------------------------------------------------------------------ model


def _empty(value: list[str]) -> bool:
    return not value


class FunctionSpec(Section):
    """One function: its key under `functions:` is its `name`."""

    internal_keys = frozenset({"name"})

    name: Annotated[str, BeforeValidator(check_function_name),
                    Field(description="the function's name")]
    handler: Annotated[str, BeforeValidator(_check_handler),
                       Field(description="the function to call, as module.function (e.g. app.handler)")]
    code: Annotated[str, BeforeValidator(_check_code)] = "."
    runtime: Annotated[str, BeforeValidator(_check_runtime)] = DEFAULT_RUNTIME
    timeout: Annotated[float, BeforeValidator(_check_timeout)] = 30.0
    memory: Annotated[int, BeforeValidator(_check_memory)] = 256
    env: Annotated[dict[str, str], BeforeValidator(check_env)] = Field(default_factory=dict)
    ephemeral_storage: Annotated[int, BeforeValidator(whole_number(64, 10240, "MB"))] = 512
    network: Annotated[str, BeforeValidator(_check_network)] = "default"
    concurrency: Annotated[int, BeforeValidator(whole_number(1, 1000, "instances"))] = 100
    min_instances: Annotated[int, BeforeValidator(whole_number(0, 1000, "instances"))] = 0
    idle_timeout: Annotated[float, BeforeValidator(seconds(86400))] = 300.0
    initializer: Annotated[str | None, BeforeValidator(optional(_check_handler))] = None
    init_timeout: Annotated[float, BeforeValidator(seconds(MAX_TIMEOUT))] = 10.0
    shutdown: Annotated[str | None, BeforeValidator(optional(_check_handler))] = None
    # The async settings are left out of dumps at their defaults: a function that does not
    # use them keeps the configuration (and so the version hash) it had before they existed.
    retries: Annotated[int, BeforeValidator(whole_number(0, MAX_RETRIES, "retries")),
                       Field(exclude_if=lambda value: value == DEFAULT_RETRIES)] = DEFAULT_RETRIES
    max_event_age: Annotated[int | float, BeforeValidator(duration(60, DEFAULT_MAX_EVENT_AGE)),
                             Field(exclude_if=lambda value: value == DEFAULT_MAX_EVENT_AGE)
                             ] = DEFAULT_MAX_EVENT_AGE
    on_success: Annotated[Destination | None, Field(exclude_if=lambda value: value is None)] = None
    on_failure: Annotated[Destination | None, Field(exclude_if=lambda value: value is None)] = None
    triggers: Annotated[list[TriggerField], BeforeValidator(_check_triggers)] = Field(
        default_factory=list)
    # What the function may use (squall.manifest.grants); left out of dumps when empty, as above.
    tables: Annotated[list[str], BeforeValidator(check_grant_list), Field(exclude_if=_empty)] = []
    topics: Annotated[list[str], BeforeValidator(check_grant_list), Field(exclude_if=_empty)] = []
    queues: Annotated[list[str], BeforeValidator(check_grant_list), Field(exclude_if=_empty)] = []
    buckets: Annotated[list[str], BeforeValidator(check_grant_list), Field(exclude_if=_empty)] = []
    secrets: Annotated[list[str], BeforeValidator(check_secret_names), Field(exclude_if=_empty)] = []

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        """Name each unnamed schedule trigger after the function (see name_schedules)."""
        if "triggers" not in data:
            return data
        return {**data, "triggers": name_schedules(data.get("name"), data["triggers"])}

    @model_validator(mode="after")
    def _check_min_instances(self) -> FunctionSpec:
        if self.min_instances > self.concurrency:
            raise fail(f"must not exceed concurrency ({self.concurrency}), got {self.min_instances}",
                       "min_instances")
        return self

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    def config(self) -> dict[str, Any]:
        """Everything that defines a version of the function, JSON-able, in field order."""
        return self.model_dump(mode="json")
