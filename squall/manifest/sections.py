"""The strict base model of every mapping of squall.yaml.

A section is frozen, refuses unknown keys by name (suggesting the closest allowed one) and
says what a missing required key is for (its field's description). Subclasses fill in
defaults that depend on other keys in `prepare`, and list the fields squall fills in itself
(not written by users) in `internal_keys`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from squall.manifest.errors import fail, show, unknown_key_message


class Section(BaseModel):
    """A mapping of squall.yaml: frozen; unknown and missing keys are reported by name.

    `internal_keys` are fields squall fills in (not listed as allowed in messages);
    subclasses fill defaults that depend on other keys in `prepare`.
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
        for name, field in cls.model_fields.items():
            if field.is_required() and name not in data:
                raise fail(f"is required: {field.description or 'give a value'}", name)
        return data
