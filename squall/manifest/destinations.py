"""What happens after a function is invoked asynchronously: its `retries`, `max_event_age` and
destinations (`on_success`, `on_failure`), as a function declares them in squall.yaml.

A destination names exactly one topic, queue or function of the project, as Lambda's
destinations do; the names are checked against the project's by `check_destination`.
"""

from __future__ import annotations

from typing import Annotated, Any, Iterable

from pydantic import BeforeValidator, SerializerFunctionWrapHandler, ValidationInfo, model_serializer

from squall.manifest.errors import Loc, fail, undeclared_message
from squall.manifest.resources import check_queue_name, check_topic_name
from squall.manifest.sections import Declared, Section
from squall.manifest.values import check_function_name

DEFAULT_RETRIES = 2
DEFAULT_MAX_EVENT_AGE = 21600
MAX_RETRIES = 10
"""Lambda allows 0 to 2 retries of an async invocation; squall allows up to 10."""


class Destination(Section):
    """`on_success` / `on_failure`: exactly one of `{topic: NAME}`, `{queue: NAME}`,
    `{function: NAME}`; dumped as that one key."""

    topic: Annotated[str | None, BeforeValidator(check_topic_name)] = None
    queue: Annotated[str | None, BeforeValidator(check_queue_name)] = None
    function: Annotated[str | None, BeforeValidator(check_function_name)] = None

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        if not data:
            raise fail("must name one destination: {topic: NAME}, {queue: NAME} or {function: NAME}")
        if len(data) > 1:
            raise fail(f"names several destinations ({', '.join(map(str, data))}); give exactly one",
                       str(list(data)[1]))
        return data

    @model_serializer(mode="wrap")
    def _only_the_target(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}

    @property
    def kind(self) -> str:
        """`topic`, `queue` or `function`."""
        return next(key for key in ("topic", "queue", "function") if getattr(self, key) is not None)

    @property
    def target(self) -> str:
        return str(getattr(self, self.kind))


def check_destination(destination: Destination | None, declared: Declared, here: Loc) -> None:
    """Raise `fail()` below `here` when `destination` names something the project does not declare."""
    if destination is None:
        return
    sections: dict[str, Iterable[str]] = {"topic": declared.topics, "queue": declared.queues,
                                          "function": declared.functions}
    names = sections[destination.kind]
    if destination.target not in names:
        section = destination.kind + "s"
        raise fail(undeclared_message(destination.kind, section, destination.target, names),
                   *here, destination.kind)
