"""The `tables:` section of squall.yaml: each table's partition key, optional sort key and
optional TTL attribute.

    tables:
      builds:
        key: project                       # a string partition key
      deploys:
        key: {name: service, type: S}
        sort_key: {name: started, type: N}
        ttl: expires_at                    # items whose expires_at (epoch seconds) has passed are gone

A key attribute is a name (a string key) or `{name, type}` with type S, N or B (also written
string, number, binary), as DynamoDB's KeySchema and AttributeDefinitions say together.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from squall.manifest.errors import show
from squall.manifest.sections import Section

KEY_TYPES = {"S": "S", "N": "N", "B": "B", "string": "S", "number": "N", "binary": "B"}
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_ATTRIBUTE_NAME = re.compile(r".{1,255}", re.DOTALL)


def check_table_name(value: Any) -> str:
    if isinstance(value, str) and _TABLE_NAME.fullmatch(value):
        return value
    raise ValueError("a table name must be 3 to 255 letters, digits, _, - and . (as in DynamoDB), "
                     f"got {show(value)}")


class KeyAttribute(Section):
    """One key attribute: its name and DynamoDB scalar type."""

    name: Annotated[str, Field(description="the attribute's name")]
    type: str = "S"

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: Any) -> dict[Any, Any]:
        name, kind = data.get("name"), data.get("type", "S")
        if not isinstance(name, str) or not _ATTRIBUTE_NAME.fullmatch(name):
            raise ValueError(f"the key attribute's name must be a string of 1 to 255 characters, got {show(name)}")
        if kind not in KEY_TYPES:
            raise ValueError(f"a key attribute's type must be S, N or B (string, number, binary), got {show(kind)}")
        return {"name": name, "type": KEY_TYPES[kind]}


def _key_attribute(value: Any) -> Any:
    """A bare name is a string key."""
    return {"name": value} if isinstance(value, str) else value


class TableSpec(Section):
    """A table of `tables:`."""

    key: Annotated[KeyAttribute, BeforeValidator(_key_attribute),
                   Field(description="the partition key attribute, e.g. key: project")]
    sort_key: Annotated[KeyAttribute | None, BeforeValidator(_key_attribute)] = None
    ttl: str | None = None

    def key_names(self) -> tuple[str, ...]:
        return (self.key.name,) if self.sort_key is None else (self.key.name, self.sort_key.name)


def check_tables(value: Any) -> dict[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping of table names to their keys, "  # noqa: TRY004 - pydantic wants it
                         f"e.g. {{builds: {{key: project}}}}, got {show(value)}")
    return value
