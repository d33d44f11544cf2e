"""The base models of squall.yaml: `Section`, which every mapping of the manifest is, and
`TriggerSection`, which every kind of trigger is; and `Declared`, what a project declares, which
the checks of names that refer to it are handed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Collection

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, model_validator

from squall.manifest.errors import Loc, fail, show, unknown_key_message
from squall.manifest.values import check_alias_name


class Section(BaseModel):
    """A mapping of squall.yaml: frozen; unknown and missing keys are reported by name.

    `internal_keys` are fields squall fills in (not listed as allowed in messages);
    subclasses fill defaults that depend on other keys in `prepare`. A required field's
    description ends the message saying it is missing (`is required: the function to call`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    internal_keys: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def yaml_keys(cls) -> list[str]:
        """The keys a user may write in this section, in field order."""
        return [name for name in cls.model_fields if name not in cls.internal_keys]

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        return data

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ValueError(f"must be a mapping with the keys {', '.join(cls.yaml_keys())}, "
                             f"got {show(data)}")
        for key in data:
            if key not in cls.model_fields:
                raise fail(unknown_key_message(key, cls.yaml_keys()), str(key))
        data = cls.prepare(data, info)
        for name, field_info in cls.model_fields.items():
            if field_info.is_required() and name not in data:
                raise fail(f"is required: {field_info.description or 'give a value'}", name)
        return data


@dataclass
class Declared:
    """The topics, queues, buckets and functions a project declares, by name; and the names its
    triggers claim for themselves (a schedule's name, a queue's one consumer), each with the
    first place that claimed it."""

    topics: Collection[str]
    queues: Collection[str]
    buckets: Collection[str]
    functions: Collection[str]
    claims: dict[tuple[str, str], Loc] = field(default_factory=dict)

    def claim(self, what: str, name: str, here: Loc) -> Loc:
        """The first place that claimed `name` as a `what`: `here` when none did before."""
        return self.claims.setdefault((what, name), here)


TriggerAlias = Annotated[str | None, BeforeValidator(check_alias_name),
                         Field(exclude_if=lambda value: value is None,
                               description="the alias of the function the trigger reaches (default: live)")]
"""A trigger's `alias`: left out of the configuration (and so of the version hash) when not given."""


class TriggerSection(Section):
    """A list item of a function's `triggers:`, keyed by its `kind` (`- queue: jobs`).

    Each kind is one model in a module of its own; squall.manifest.triggers lists them all.
    """

    kind: ClassVar[str]
    """The key that names the kind in YAML, and the model's field holding its main value."""

    def check_references(self, declared: Declared, here: Loc) -> None:
        """Raise `fail()` below `here` (the trigger's place) at the first name the trigger gives
        that `declared` lacks, or that another trigger has already claimed. Nothing by default."""

