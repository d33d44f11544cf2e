"""Every kind of trigger, in one place: the list item of a function's `triggers:`.

A trigger is a mapping keyed by its kind: `- http: "GET /status"`, `- queue: jobs`. Each kind is
a model in a module of its own (squall.manifest.http, .schedule, .topic, .queue, .bucket), a
`TriggerSection` whose `kind` names it. `Trigger` below is the union of them; `TRIGGER_KINDS`
and `TriggerField` (the pydantic annotation that picks the model by the kind's key) are built
from it. Adding a kind is one module with its model, and its model added to `Trigger`.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Mapping, Union, get_args

from pydantic import BaseModel, Discriminator, Tag

from squall.manifest.bucket import BucketTrigger
from squall.manifest.errors import TRIGGER_KIND_ERROR, did_you_mean, show
from squall.manifest.http import HttpTrigger
from squall.manifest.queue import QueueTrigger
from squall.manifest.schedule import ScheduleTrigger
from squall.manifest.sections import TriggerSection
from squall.manifest.topic import TopicTrigger

Trigger = HttpTrigger | ScheduleTrigger | TopicTrigger | QueueTrigger | BucketTrigger
"""Any trigger model: one per kind, in the order messages list the kinds."""

TRIGGER_KINDS: Mapping[str, type[TriggerSection]] = MappingProxyType(
    {model.kind: model for model in get_args(Trigger)})
"""Trigger kind (the key that names it in YAML) -> its model."""


def trigger_kind(value: Any) -> str | None:
    """The kind of a trigger mapping (its one key naming a kind) or model; None if unclear."""
    if isinstance(value, BaseModel):
        return next((kind for kind, model in TRIGGER_KINDS.items() if isinstance(value, model)), None)
    if isinstance(value, dict):
        kinds = [key for key in value if key in TRIGGER_KINDS]
        return kinds[0] if len(kinds) == 1 else None
    return None


def trigger_kind_message(value: Any) -> str:
    """Why `trigger_kind(value)` found no kind."""
    if not isinstance(value, dict):
        return ('must be a mapping keyed by the trigger kind (http), e.g. http: "GET /status"; the '
                f"kinds are {', '.join(TRIGGER_KINDS)}; got {show(value)}")
    found = [key for key in value if key in TRIGGER_KINDS]
    if found:
        return f"names several trigger kinds ({', '.join(found)}); give each its own list item"
    first = next(iter(value), "")
    close = did_you_mean(first, TRIGGER_KINDS)
    kinds = ", ".join(kind + (close if close and f'"{kind}"' in close else "") for kind in TRIGGER_KINDS)
    return f"has no trigger kind: expected one of the keys {kinds}, got {show(value)}"


if TYPE_CHECKING:
    TriggerField = Trigger
else:
    TriggerField = Annotated[
        Union[tuple(Annotated[model, Tag(kind)] for kind, model in TRIGGER_KINDS.items())],
        Discriminator(trigger_kind, custom_error_type=TRIGGER_KIND_ERROR,
                      custom_error_message="cannot tell the trigger kind")]
    """A list item of `triggers:`, validated by the model its kind names."""


def name_schedules(function: Any, triggers: Any) -> Any:
    """`triggers` (as given to FunctionSpec) with each unnamed schedule named `<function>-<n>`."""
    if not isinstance(triggers, list) or not isinstance(function, str):
        return triggers
    named, count = [], 0
    for item in triggers:
        if trigger_kind(item) == "schedule":
            default = f"{function}-{count}"
            count += 1
            if isinstance(item, ScheduleTrigger) and item.name is None:
                item = item.model_copy(update={"name": default})
            elif isinstance(item, dict) and item.get("name") is None:
                item = {**item, "name": default}
        named.append(item)
    return named
