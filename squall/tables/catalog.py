"""Table definitions: key schema and TTL attribute of each table, how an item's key becomes the
store's ItemKey, and the TableDescription DynamoDB shows for it.

A definition comes from a resource of kind "table" (declared in squall.yaml, or made by
CreateTable); its config is TableSpec's dump: `{"key": {"name", "type"}, "sort_key": ... | None,
"ttl": name | None}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from squall.store.resources import Resource
from squall.store.tables import ItemKey
from squall.tables.errors import ValidationError
from squall.tables.values import AttributeValue, Item, parse_number, sort_key_bytes, type_of

_INVALID = "One or more parameter values were invalid: "


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class TableDefinition:
    name: str
    key: KeyAttribute
    sort_key: KeyAttribute | None
    ttl: str | None
    project: str
    """The project that declares it; "" for a table made through the API."""

    @classmethod
    def of(cls, resource: Resource) -> TableDefinition:
        config = resource.config
        sort = config.get("sort_key")
        return cls(resource.name, KeyAttribute(**config["key"]), KeyAttribute(**sort) if sort else None,
                   config.get("ttl"), resource.project)

    def config(self) -> dict[str, Any]:
        sort = None if self.sort_key is None else {"name": self.sort_key.name, "type": self.sort_key.type}
        return {"key": {"name": self.key.name, "type": self.key.type}, "sort_key": sort, "ttl": self.ttl}

    @property
    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        return (self.key,) if self.sort_key is None else (self.key, self.sort_key)

    def key_names(self) -> tuple[str, ...]:
        return tuple(attribute.name for attribute in self.key_attributes)

    # -- keys ---------------------------------------------------------------
    def item_key(self, item: Mapping[str, AttributeValue]) -> ItemKey:
        """The store key of an item (or of a Key map), checking the key attributes' presence and types."""
        parts = [self._key_part(attribute, item.get(attribute.name), "item") for attribute in self.key_attributes]
        return (self.name, parts[0], parts[1] if len(parts) > 1 else b"")

    def exact_key(self, key: Mapping[str, AttributeValue]) -> ItemKey:
        """The store key of a request's `Key`, which must hold the key attributes and nothing else."""
        if not isinstance(key, Mapping) or set(key) != set(self.key_names()):
            raise ValidationError("The provided key element does not match the schema")
        parts = [self._key_part(attribute, key[attribute.name], "key") for attribute in self.key_attributes]
        return (self.name, parts[0], parts[1] if len(parts) > 1 else b"")

    def _key_part(self, attribute: KeyAttribute, value: AttributeValue | None, where: str) -> bytes:
        if value is None:
            raise ValidationError(f"{_INVALID}Missing the key {attribute.name} in the {where}")
        if not isinstance(value, dict) or len(value) != 1 or type_of(value) != attribute.type:
            got = type_of(value) if isinstance(value, dict) and len(value) == 1 else "invalid"
            if where == "key":
                raise ValidationError("The provided key element does not match the schema")
            raise ValidationError(f"{_INVALID}Type mismatch for key {attribute.name} expected: "
                                  f"{attribute.type} actual: {got}")
        if attribute.type in ("S", "B") and value[attribute.type] == "":
            raise ValidationError(f"{_INVALID}The AttributeValue for a key attribute cannot contain an empty "
                                  f"{'string' if attribute.type == 'S' else 'binary'} value. Key: {attribute.name}")
        return sort_key_bytes(value)

    def key_of(self, item: Item) -> Item:
        """The key attributes of a stored item (a LastEvaluatedKey)."""
        return {name: item[name] for name in self.key_names()}

    # -- TTL ------------------------------------------------------------------
    def expiry(self, item: Item) -> float | None:
        """When the item expires: its TTL attribute, if that is a number (epoch seconds)."""
        if self.ttl is None:
            return None
        value = item.get(self.ttl)
        if not value or "N" not in value:
            return None
        number = parse_number(value["N"])
        return float(number) if number > Decimal(0) else None

    def expiry_of_json(self, data: bytes) -> float | None:
        return self.expiry(orjson.loads(data))

    # -- what DynamoDB shows ------------------------------------------------
    def description(self, *, region: str, account: str, item_count: int = 0,
                    status: str = "ACTIVE") -> dict[str, Any]:
        key_schema = [{"AttributeName": self.key.name, "KeyType": "HASH"}]
        definitions = [{"AttributeName": self.key.name, "AttributeType": self.key.type}]
        if self.sort_key is not None:
            key_schema.append({"AttributeName": self.sort_key.name, "KeyType": "RANGE"})
            definitions.append({"AttributeName": self.sort_key.name, "AttributeType": self.sort_key.type})
        return {
            "TableName": self.name, "TableStatus": status, "KeySchema": key_schema,
            "AttributeDefinitions": definitions, "CreationDateTime": 0, "ItemCount": item_count,
            "TableSizeBytes": 0, "TableArn": f"arn:aws:dynamodb:{region}:{account}:table/{self.name}",
            "TableId": self.name, "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
            "ProvisionedThroughput": {"NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0,
                                      "WriteCapacityUnits": 0},
        }


def definition_from_request(request: Mapping[str, Any]) -> TableDefinition:
    """The definition a CreateTable request asks for (KeySchema + AttributeDefinitions)."""
    name = request.get("TableName")
    schema, definitions = request.get("KeySchema"), request.get("AttributeDefinitions")
    if not isinstance(schema, list) or not 1 <= len(schema) <= 2:
        raise ValidationError("1 validation error detected: Value null at 'keySchema' failed to satisfy "
                              "constraint: Member must not be null")
    if not isinstance(definitions, list):
        raise ValidationError("1 validation error detected: Value null at 'attributeDefinitions' failed to "
                              "satisfy constraint: Member must not be null")
    if request.get("GlobalSecondaryIndexes") or request.get("LocalSecondaryIndexes"):
        raise ValidationError("Secondary indexes are not supported by squall's tables")
    types = {d.get("AttributeName"): d.get("AttributeType") for d in definitions if isinstance(d, dict)}
    roles = {s.get("KeyType"): s.get("AttributeName") for s in schema if isinstance(s, dict)}
    if "HASH" not in roles or len(roles) != len(schema) or set(roles) - {"HASH", "RANGE"}:
        raise ValidationError("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    if set(types) != set(roles.values()):
        raise ValidationError(f"{_INVALID}Number of attributes in KeySchema does not exactly match number of "
                              "attributes defined in AttributeDefinitions")
    for attribute, kind in types.items():
        if kind not in ("S", "N", "B"):
            raise ValidationError(f"{_INVALID}Invalid AttributeType {kind} for {attribute}: use S, N or B")
    key = KeyAttribute(str(roles["HASH"]), str(types[roles["HASH"]]))
    sort = KeyAttribute(str(roles["RANGE"]), str(types[roles["RANGE"]])) if "RANGE" in roles else None
    return TableDefinition(str(name), key, sort, None, "")
