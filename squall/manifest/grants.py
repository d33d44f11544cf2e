"""What a function may use, as its own keys in squall.yaml say, and the checks of those lists.

    functions:
      ci_webhook:
        handler: cards.handler
        tables: [ci_jobs]
        topics: [deploys]
        queues: [jobs]
        buckets: [uploads]
        secrets: [TRACKER_TOKEN]

Tables, topics, queues and buckets must be declared in the same squall.yaml; secrets are
names set with `squall secret set` (they are checked when an instance starts). A function's
scoped credential (squall/credentials.py) allows exactly these and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from squall.manifest.errors import did_you_mean, fail, show
from squall.manifest.values import is_env_name

GRANT_KINDS = {"tables": "table", "topics": "topic", "queues": "queue", "buckets": "bucket"}
"""A function's grant key -> the kind of declared resource it names (secrets are not declared)."""


def check_grant_list(value: Any) -> list[str]:
    """A list of names (null is empty); a single name is a list of one."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"must be a list of names, e.g. [builds], got {show(value)}")
    duplicates = sorted({item for item in value if value.count(item) > 1})
    if duplicates:
        raise ValueError(f"lists {show(duplicates[0])} twice")
    return list(value)


def check_secret_names(value: Any) -> list[str]:
    names = check_grant_list(value)
    for index, name in enumerate(names):
        if not is_env_name(name):
            raise fail(f"{show(name)} is not a secret name: a secret is injected as the environment "
                       "variable of the same name, so use letters, digits and _, not starting with a digit",
                       index)
    return names


class Grants(Protocol):
    """What check_grants reads of a function: the names it lists under each grant key."""

    @property
    def tables(self) -> list[str]: ...
    @property
    def topics(self) -> list[str]: ...
    @property
    def queues(self) -> list[str]: ...
    @property
    def buckets(self) -> list[str]: ...


def check_grants(functions: Mapping[str, Grants], declared: Mapping[str, Iterable[str]]) -> None:
    """Raise `fail()` at the first granted table, topic, queue or bucket the project does not declare;
    `declared` maps each of GRANT_KINDS' keys to the names the project declares there."""
    for name, spec in functions.items():
        for section, names in declared.items():
            for index, granted in enumerate(getattr(spec, section)):
                if granted not in names:
                    listed = list(names)
                    known = (f"declared: {', '.join(listed)}" if listed
                             else f"the project declares no {section}")
                    raise fail(f"{GRANT_KINDS[section]} {show(granted)} is not declared under {section} "
                               f"in this squall.yaml{did_you_mean(granted, listed)}; {known}",
                               "functions", name, section, index)
