"""The table service: DynamoDB's operations over the store, in DynamoDB's JSON request and
response shapes, for one caller at a time.

`TableService.call(operation, request, caller)` is what every door uses: the DynamoDB
endpoint (boto3), the SDK and the platform API. A `Caller` is the admin or a function, which
may only touch the tables its manifest grants it; errors are TableError subclasses carrying
DynamoDB's error codes and messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from squall.store.tables import ItemKey, KeyRange, StoredItem, TableStore
from squall.tables.catalog import TableDefinition, definition_from_request
from squall.tables.errors import (
    AccessDenied,
    ConditionalCheckFailed,
    ResourceNotFound,
    TableError,
    TransactionCanceled,
    ValidationError,
)
from squall.tables.evaluate import apply_update, evaluate, project
from squall.tables.expressions import (
    Condition,
    Path,
    Placeholders,
    UpdateExpression,
    parse_condition,
    parse_projection,
    parse_update,
)
from squall.tables.key_conditions import SortCondition, parse_key_condition
from squall.manifest.tables import check_table_name
from squall.tables.values import Item, canonical, sort_key_bytes, type_of

MAX_ITEM_BYTES = 400 * 1024
MAX_PAGE_BYTES = 1024 * 1024
MAX_BATCH_GET = 100
MAX_BATCH_WRITE = 25
MAX_TRANSACT = 100
READ_CHUNK = 256
ADMIN_ONLY = frozenset({"CreateTable", "DeleteTable", "UpdateTimeToLive"})


@dataclass(frozen=True)
class Caller:
    """Who calls: the admin (`function` None) or a function with the tables it is granted."""

    function: str | None = None
    tables: frozenset[str] = frozenset()

    def check(self, operation: str, table: str) -> None:
        if self.function is None:
            return
        if operation in ADMIN_ONLY or table not in self.tables:
            raise AccessDenied(f"User: function/{self.function} is not authorized to perform: dynamodb:{operation} "
                               f"on resource: table/{table} (list it under the function's tables: in squall.yaml)")


ADMIN = Caller()


class Catalog(Protocol):
    """Where table definitions live (the node's resources, the store)."""

    def get(self, name: str) -> TableDefinition | None: ...
    def names(self) -> list[str]: ...
    def create(self, definition: TableDefinition) -> None: ...
    def delete(self, definition: TableDefinition) -> None: ...
    def set_ttl(self, definition: TableDefinition, attribute: str | None) -> TableDefinition: ...


@dataclass
class _Request:
    """One request's parameters, read with DynamoDB's errors for missing ones."""

    data: Mapping[str, Any]

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def required(self, name: str) -> Any:
        value = self.data.get(name)
        if value is None:
            raise ValidationError(f"1 validation error detected: Value null at '{name[0].lower()}{name[1:]}' "
                                  "failed to satisfy constraint: Member must not be null")
        return value

    def placeholders(self) -> Placeholders:
        names = self.get("ExpressionAttributeNames") or {}
        values = self.get("ExpressionAttributeValues") or {}
        if not isinstance(names, dict) or not isinstance(values, dict):
            raise ValidationError("ExpressionAttributeNames and ExpressionAttributeValues must be maps")
        return Placeholders(dict(names), dict(values))


def _encode(item: Item) -> bytes:
    data = orjson.dumps(item)
    if len(data) > MAX_ITEM_BYTES:
        raise ValidationError("Item size has exceeded the maximum allowed size")
    return data


def _decode(stored: StoredItem) -> Item:
    return dict(orjson.loads(stored.item))


def _clean_item(item: Any) -> Item:
    if not isinstance(item, dict):
        raise ValidationError("One or more parameter values were invalid: Item must be a map")
    return {str(name): canonical(value) for name, value in item.items()}


def _condition(text: str | None, placeholders: Placeholders) -> Condition | None:
    return None if text is None else parse_condition(text, placeholders)


def _check(condition: Condition | None, item: Item | None) -> None:
    if condition is not None and not evaluate(condition, item or {}):
        raise ConditionalCheckFailed()


def _projection(request: _Request, placeholders: Placeholders) -> tuple[Path, ...] | None:
    text = request.get("ProjectionExpression")
    if request.get("AttributesToGet") is not None:
        raise ValidationError("AttributesToGet is a legacy parameter: use ProjectionExpression")
    return None if text is None else parse_projection(text, placeholders)


def _legacy(request: _Request) -> None:
    for name in ("Expected", "AttributeUpdates", "KeyConditions", "QueryFilter", "ScanFilter",
                 "ConditionalOperator"):
        if request.get(name) is not None:
            raise ValidationError(f"{name} is a legacy parameter squall does not support: use the expression "
                                  "parameters (ConditionExpression, UpdateExpression, KeyConditionExpression, "
                                  "FilterExpression)")


def _return_values(request: _Request, allowed: tuple[str, ...]) -> str:
    value = request.get("ReturnValues", "NONE")
    if value not in allowed:
        raise ValidationError(f"1 validation error detected: Value '{value}' at 'returnValues' failed to satisfy "
                              f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]")
    return str(value)


def _updated_names(update: UpdateExpression) -> set[str]:
    paths = [p for p, _ in update.set] + list(update.remove) + [p for p, _ in update.add]
    paths += [p for p, _ in update.delete]
    return {str(path.elements[0]) for path in paths}


def _successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with `prefix`."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None


def key_range(sort: SortCondition | None, definition: TableDefinition, forward: bool,
              start: bytes | None) -> KeyRange:
    if sort is None:
        return KeyRange(forward=forward, start=start)
    assert definition.sort_key is not None
    for value in sort.values:
        if type_of(value) != definition.sort_key.type:
            raise ValidationError("One or more parameter values were invalid: Condition parameter type does not "
                                  "match schema type")
    bounds = [sort_key_bytes(value) for value in sort.values]
    ranges = {
        "=": lambda: KeyRange(bounds[0], True, bounds[0], True),
        "<": lambda: KeyRange(high=bounds[0], high_inclusive=False),
        "<=": lambda: KeyRange(high=bounds[0]),
        ">": lambda: KeyRange(low=bounds[0], low_inclusive=False),
        ">=": lambda: KeyRange(low=bounds[0]),
        "BETWEEN": lambda: KeyRange(bounds[0], True, bounds[1], True),
        "begins_with": lambda: KeyRange(bounds[0], True, _successor(bounds[0]), False),
    }
    chosen = ranges[sort.op]()
    return KeyRange(chosen.low, chosen.low_inclusive, chosen.high, chosen.high_inclusive, forward, start)


class TableService:
    def __init__(self, store: TableStore, catalog: Catalog, *, region: str = "us-east-1",
                 account: str = "000000000000", clock: Callable[[], float] = time.time) -> None:
        self.store, self.catalog = store, catalog
        self.region, self.account, self.clock = region, account, clock
        self._operations: dict[str, Callable[[_Request, Caller], dict[str, Any]]] = {
            "CreateTable": self.create_table, "DescribeTable": self.describe_table,
            "ListTables": self.list_tables, "DeleteTable": self.delete_table,
            "UpdateTimeToLive": self.update_time_to_live, "DescribeTimeToLive": self.describe_time_to_live,
            "PutItem": self.put_item, "GetItem": self.get_item, "DeleteItem": self.delete_item,
            "UpdateItem": self.update_item, "Query": self.query, "Scan": self.scan,
            "BatchGetItem": self.batch_get_item, "BatchWriteItem": self.batch_write_item,
            "TransactWriteItems": self.transact_write_items,
        }

    @property
    def operations(self) -> list[str]:
        return sorted(self._operations)

    def call(self, operation: str, request: Mapping[str, Any], caller: Caller = ADMIN) -> dict[str, Any]:
        """Run one DynamoDB operation; raises TableError with DynamoDB's code and message."""
        run = self._operations.get(operation)
        if run is None:
            raise TableError(f"Operation {operation} is not supported by squall's tables; supported: "
                             f"{', '.join(self.operations)}")
        if not isinstance(request, Mapping):
            raise ValidationError("The request body must be a JSON object")
        return run(_Request(request), caller)

    # -- tables -----------------------------------------------------------------
    def table(self, request: _Request, operation: str, caller: Caller, name: Any = None) -> TableDefinition:
        table = request.required("TableName") if name is None else name
        if not isinstance(table, str):
            raise ValidationError("TableName must be a string")
        caller.check(operation, table)
        definition = self.catalog.get(table)
        if definition is None:
            raise ResourceNotFound(f"Requested resource not found: Table: {table} not found")
        return definition

    def describe(self, definition: TableDefinition, status: str = "ACTIVE") -> dict[str, Any]:
        count = self.store.count_items(definition.name, now=self.clock()) if status == "ACTIVE" else 0
        return definition.description(region=self.region, account=self.account, item_count=count, status=status)

    def create_table(self, request: _Request, caller: Caller) -> dict[str, Any]:
        name = request.required("TableName")
        caller.check("CreateTable", str(name))
        try:
            check_table_name(name)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        definition = definition_from_request(request.data)
        self.catalog.create(definition)
        return {"TableDescription": self.describe(definition)}

    def describe_table(self, request: _Request, caller: Caller) -> dict[str, Any]:
        return {"Table": self.describe(self.table(request, "DescribeTable", caller))}

    def list_tables(self, request: _Request, caller: Caller) -> dict[str, Any]:
        names = [n for n in self.catalog.names() if caller.function is None or n in caller.tables]
        start, limit = request.get("ExclusiveStartTableName"), int(request.get("Limit") or 100)
        if not 1 <= limit <= 100:
            raise ValidationError("Limit must be between 1 and 100")
        names = [n for n in names if start is None or n > start]
        page = names[:limit]
        return {"TableNames": page, **({"LastEvaluatedTableName": page[-1]} if len(names) > limit else {})}

    def delete_table(self, request: _Request, caller: Caller) -> dict[str, Any]:
        definition = self.table(request, "DeleteTable", caller)
        self.catalog.delete(definition)
        self.store.delete_table_items(definition.name)
        return {"TableDescription": self.describe(definition, "DELETING")}

    def update_time_to_live(self, request: _Request, caller: Caller) -> dict[str, Any]:
        definition = self.table(request, "UpdateTimeToLive", caller)
        spec = request.required("TimeToLiveSpecification")
        enabled, attribute = spec.get("Enabled"), spec.get("AttributeName")
        if not isinstance(enabled, bool) or not isinstance(attribute, str) or not attribute:
            raise ValidationError("TimeToLiveSpecification needs Enabled (true or false) and AttributeName")
        if enabled and definition.ttl is not None:
            raise ValidationError("TimeToLive is active on a different AttributeName: current AttributeName is "
                                  f"{definition.ttl}" if definition.ttl != attribute else
                                  "TimeToLive is already enabled")
        if not enabled and definition.ttl != attribute:
            raise ValidationError("TimeToLive is already disabled" if definition.ttl is None else
                                  f"TimeToLive is active on a different AttributeName: {definition.ttl}")
        changed = self.catalog.set_ttl(definition, attribute if enabled else None)
        self.store.reset_expiry(changed.name, changed.expiry_of_json)
        return {"TimeToLiveSpecification": {"Enabled": enabled, "AttributeName": attribute}}

    def describe_time_to_live(self, request: _Request, caller: Caller) -> dict[str, Any]:
        definition = self.table(request, "DescribeTimeToLive", caller)
        if definition.ttl is None:
            return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
        return {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": definition.ttl}}

    # -- single items -------------------------------------------------------------
    def _stored(self, definition: TableDefinition, key: ItemKey, item: Item) -> StoredItem:
        return StoredItem(key, _encode(item), definition.expiry(item))

    def put_item(self, request: _Request, caller: Caller) -> dict[str, Any]:
        _legacy(request)
        definition = self.table(request, "PutItem", caller)
        item = _clean_item(request.required("Item"))
        key = definition.item_key(item)
        placeholders = request.placeholders()
        condition = _condition(request.get("ConditionExpression"), placeholders)
        placeholders.ensure_all_used()
        returns = _return_values(request, ("NONE", "ALL_OLD"))
        if condition is None and returns == "NONE":  # nothing to read first
            self.store.write_items({key: self._stored(definition, key, item)})
            return {}
        old: list[Item | None] = [None]

        def put(current: Mapping[ItemKey, StoredItem | None]) -> dict[ItemKey, StoredItem | None]:
            found = current[key]
            old[0] = _decode(found) if found else None
            _check(condition, old[0])
            return {key: self._stored(definition, key, item)}

        self.store.change_items([key], put, now=self.clock())
        return {"Attributes": old[0]} if returns == "ALL_OLD" and old[0] else {}

    def get_item(self, request: _Request, caller: Caller) -> dict[str, Any]:
        definition = self.table(request, "GetItem", caller)
        key = definition.exact_key(request.required("Key"))
        placeholders = request.placeholders()
        paths = _projection(request, placeholders)
        placeholders.ensure_all_used()
        found = self.store.get_items([key], now=self.clock()).get(key)
        if found is None:
            return {}
        item = _decode(found)
        return {"Item": project(item, paths) if paths is not None else item}

    def delete_item(self, request: _Request, caller: Caller) -> dict[str, Any]:
        _legacy(request)
        definition = self.table(request, "DeleteItem", caller)
        key = definition.exact_key(request.required("Key"))
        placeholders = request.placeholders()
        condition = _condition(request.get("ConditionExpression"), placeholders)
        placeholders.ensure_all_used()
        returns = _return_values(request, ("NONE", "ALL_OLD"))
        old: list[Item | None] = [None]

        def delete(current: Mapping[ItemKey, StoredItem | None]) -> dict[ItemKey, StoredItem | None]:
            found = current[key]
            old[0] = _decode(found) if found else None
            _check(condition, old[0])
            return {key: None} if found else {}

        self.store.change_items([key], delete, now=self.clock())
        return {"Attributes": old[0]} if returns == "ALL_OLD" and old[0] else {}

    def _update(self, definition: TableDefinition, request: _Request) -> tuple[
            ItemKey, Item, Condition | None, UpdateExpression | None]:
        raw_key = request.required("Key")
        key = definition.exact_key(raw_key)
        placeholders = request.placeholders()
        text = request.get("UpdateExpression")
        update = None if text is None else parse_update(text, placeholders)
        condition = _condition(request.get("ConditionExpression"), placeholders)
        placeholders.ensure_all_used()
        if update is not None:
            for name in _updated_names(update) & set(definition.key_names()):
                raise ValidationError("One or more parameter values were invalid: Cannot update attribute "
                                      f"{name}. This attribute is part of the key")
        return key, {name: canonical(value) for name, value in raw_key.items()}, condition, update

    def update_item(self, request: _Request, caller: Caller) -> dict[str, Any]:
        _legacy(request)
        definition = self.table(request, "UpdateItem", caller)
        key, key_item, condition, update = self._update(definition, request)
        returns = _return_values(request, ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"))
        result: list[Item | None] = [None, None]

        def change(current: Mapping[ItemKey, StoredItem | None]) -> dict[ItemKey, StoredItem | None]:
            found = current[key]
            old = _decode(found) if found else None
            _check(condition, old)
            new = apply_update(update, old or key_item) if update is not None else dict(old or key_item)
            result[:] = [old, new]
            return {key: self._stored(definition, key, new)}

        self.store.change_items([key], change, now=self.clock())
        old, new = result
        return _update_result(returns, old, new, update)

    # -- reads of many ------------------------------------------------------------
    def query(self, request: _Request, caller: Caller) -> dict[str, Any]:
        _legacy(request)
        definition = self.table(request, "Query", caller)
        placeholders = request.placeholders()
        condition = parse_key_condition(request.required("KeyConditionExpression"), placeholders,
                                        definition.key.name, definition.sort_key.name if definition.sort_key else None)
        if type_of(condition.partition_value) != definition.key.type:
            raise ValidationError("One or more parameter values were invalid: Condition parameter type does not "
                                  "match schema type")
        partition = sort_key_bytes(condition.partition_value)
        start = self._start_key(definition, request.get("ExclusiveStartKey"))
        if start is not None and start[1] != partition:
            raise ValidationError("The provided starting key is invalid: The provided key element does not match "
                                  "the schema")
        forward = request.get("ScanIndexForward", True)
        sort = key_range(condition.sort, definition, bool(forward), start[2] if start else None)
        now = self.clock()

        def read(after: StoredItem | None, count: int) -> list[StoredItem]:
            chunk_range = sort if after is None else KeyRange(sort.low, sort.low_inclusive, sort.high,
                                                              sort.high_inclusive, sort.forward, after.key[2])
            return self.store.query_items(definition.name, partition, chunk_range, limit=count, now=now)

        return self._page(definition, request, placeholders, read)

    def scan(self, request: _Request, caller: Caller) -> dict[str, Any]:
        _legacy(request)
        definition = self.table(request, "Scan", caller)
        placeholders = request.placeholders()
        segment, segments = request.get("Segment"), request.get("TotalSegments")
        if (segment is None) != (segments is None):
            raise ValidationError("The TotalSegments parameter is required but was not present in the request "
                                  "when Segment parameter is present" if segments is None else
                                  "The Segment parameter is required but was not present in the request when "
                                  "parameter TotalSegments is present")
        segment, segments = int(segment or 0), int(segments or 1)
        if not 1 <= segments <= 1_000_000 or not 0 <= segment < segments:
            raise ValidationError(f"The Segment parameter is zero-based and must be less than parameter "
                                  f"TotalSegments: Segment: {segment} is not less than TotalSegments: {segments}")
        start = self._start_key(definition, request.get("ExclusiveStartKey"))
        now = self.clock()

        def read(after: StoredItem | None, count: int) -> list[StoredItem]:
            position = after.key if after is not None else start
            return self.store.scan_items(definition.name, after=(position[1], position[2]) if position else None,
                                         limit=count, segment=segment, segments=segments, now=now)

        return self._page(definition, request, placeholders, read)

    def _start_key(self, definition: TableDefinition, start: Any) -> ItemKey | None:
        if start is None:
            return None
        try:
            return definition.exact_key(start)
        except ValidationError:
            raise ValidationError("The provided starting key is invalid: The provided key element does not match "
                                  "the schema") from None

    def _page(self, definition: TableDefinition, request: _Request, placeholders: Placeholders,
              read: Callable[[StoredItem | None, int], list[StoredItem]]) -> dict[str, Any]:
        """Read items until Limit or 1 MB, filter, project: Query's and Scan's answer."""
        limit = request.get("Limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValidationError("1 validation error detected: Value at 'limit' failed to satisfy constraint: "
                                  "Member must have value greater than or equal to 1")
        select = request.get("Select", "ALL_ATTRIBUTES")
        filter_text = request.get("FilterExpression")
        condition = None if filter_text is None else parse_condition(filter_text, placeholders, "FilterExpression")
        paths = _projection(request, placeholders)
        placeholders.ensure_all_used()
        if select not in ("ALL_ATTRIBUTES", "COUNT", "SPECIFIC_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"):
            raise ValidationError(f"1 validation error detected: Value '{select}' at 'select' failed to satisfy "
                                  "constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, "
                                  "ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]")
        scanned, matched, size, last = 0, [], 0, None
        more = True
        while more:
            want = READ_CHUNK if limit is None else min(READ_CHUNK, limit - scanned)
            rows = read(last, want)
            more = len(rows) == want
            for row in rows:
                scanned, size, last = scanned + 1, size + len(row.item), row
                item = _decode(row)
                if condition is None or evaluate(condition, item):
                    matched.append(item)
                if (limit is not None and scanned >= limit) or size >= MAX_PAGE_BYTES:
                    more = False
                    break
            else:
                more = more and (limit is None or scanned < limit)
        response: dict[str, Any] = {"Count": len(matched), "ScannedCount": scanned}
        if select != "COUNT":
            response["Items"] = [project(item, paths) for item in matched] if paths is not None else matched
        if last is not None and ((limit is not None and scanned >= limit) or size >= MAX_PAGE_BYTES):
            response["LastEvaluatedKey"] = definition.key_of(_decode(last))
        return response

    # -- batches and transactions ---------------------------------------------------
    def batch_get_item(self, request: _Request, caller: Caller) -> dict[str, Any]:
        wanted = request.required("RequestItems")
        if not isinstance(wanted, dict) or not wanted:
            raise ValidationError("RequestItems must hold at least one table")
        total = sum(len(spec.get("Keys") or []) for spec in wanted.values())
        if total > MAX_BATCH_GET:
            raise ValidationError("Too many items requested for the BatchGetItem call")
        responses: dict[str, list[Item]] = {}
        now = self.clock()
        for table, spec in wanted.items():
            definition = self.table(request, "BatchGetItem", caller, table)
            keys = [definition.exact_key(key) for key in spec.get("Keys") or []]
            if len(set(keys)) != len(keys):
                raise ValidationError("Provided list of item keys contains duplicates")
            sub = _Request(spec)
            placeholders = sub.placeholders()
            paths = _projection(sub, placeholders)
            placeholders.ensure_all_used()
            found = self.store.get_items(keys, now=now)
            items = [_decode(found[key]) for key in keys if key in found]
            responses[table] = [project(item, paths) for item in items] if paths is not None else items
        return {"Responses": responses, "UnprocessedKeys": {}}

    def batch_write_item(self, request: _Request, caller: Caller) -> dict[str, Any]:
        wanted = request.required("RequestItems")
        if not isinstance(wanted, dict) or not wanted:
            raise ValidationError("RequestItems must hold at least one table")
        writes: dict[ItemKey, StoredItem | None] = {}
        for table, operations in wanted.items():
            definition = self.table(request, "BatchWriteItem", caller, table)
            for operation in operations:
                key, stored = self._batch_write(definition, operation)
                if key in writes:
                    raise ValidationError("Provided list of item keys contains duplicates")
                writes[key] = stored
        if len(writes) > MAX_BATCH_WRITE:
            raise ValidationError("Too many items requested for the BatchWriteItem call")
        self.store.write_items(writes)
        return {"UnprocessedItems": {}}

    def _batch_write(self, definition: TableDefinition, operation: Any) -> tuple[ItemKey, StoredItem | None]:
        if not isinstance(operation, dict) or len(operation) != 1:
            raise ValidationError("Each write request must have exactly one of PutRequest and DeleteRequest")
        if "PutRequest" in operation:
            item = _clean_item(operation["PutRequest"].get("Item"))
            key = definition.item_key(item)
            return key, self._stored(definition, key, item)
        if "DeleteRequest" in operation:
            return definition.exact_key(operation["DeleteRequest"].get("Key")), None
        raise ValidationError("Each write request must have exactly one of PutRequest and DeleteRequest")

    def transact_write_items(self, request: _Request, caller: Caller) -> dict[str, Any]:
        actions = request.required("TransactItems")
        if not isinstance(actions, list) or not 1 <= len(actions) <= MAX_TRANSACT:
            raise ValidationError(f"TransactItems must hold 1 to {MAX_TRANSACT} actions")
        planned = [self._transact_action(action, caller) for action in actions]
        keys = [step.key for step in planned]
        if len(set(keys)) != len(keys):
            raise ValidationError("Transaction request cannot include multiple operations on one item")

        def change(current: Mapping[ItemKey, StoredItem | None]) -> dict[ItemKey, StoredItem | None]:
            reasons: list[dict[str, str]] = []
            writes: dict[ItemKey, StoredItem | None] = {}
            for step in planned:
                found = current[step.key]
                old = _decode(found) if found else None
                if step.condition is not None and not evaluate(step.condition, old or {}):
                    reasons.append({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"})
                    continue
                reasons.append({"Code": "None"})
                writes.update(step.writes(old))
            if any(reason["Code"] != "None" for reason in reasons):
                raise TransactionCanceled(reasons)
            return writes

        self.store.change_items(keys, change, now=self.clock())
        return {}

    def _transact_action(self, action: Any, caller: Caller) -> _Step:
        if not isinstance(action, dict) or len(action) != 1:
            raise ValidationError("Each TransactItems entry must have exactly one of ConditionCheck, Put, Delete "
                                  "and Update")
        kind, body = next(iter(action.items()))
        sub = _Request(body if isinstance(body, dict) else {})
        operation = {"ConditionCheck": "ConditionCheckItem", "Put": "PutItem", "Delete": "DeleteItem",
                     "Update": "UpdateItem"}.get(kind)
        if operation is None:
            raise ValidationError(f"Unknown TransactItems action {kind}: use ConditionCheck, Put, Delete or Update")
        definition = self.table(sub, operation, caller)
        if kind == "Update":
            key, key_item, condition, update = self._update(definition, sub)

            def updated(old: Item | None) -> dict[ItemKey, StoredItem | None]:
                new = apply_update(update, old or key_item) if update is not None else dict(old or key_item)
                return {key: self._stored(definition, key, new)}
            return _Step(key, condition, updated)
        placeholders = sub.placeholders()
        if kind == "Put":
            item = _clean_item(sub.required("Item"))
            key = definition.item_key(item)
            stored = self._stored(definition, key, item)
            writes: Callable[[Item | None], dict[ItemKey, StoredItem | None]] = lambda old: {key: stored}
        else:
            key = definition.exact_key(sub.required("Key"))
            writes = (lambda old: {}) if kind == "ConditionCheck" else (lambda old: {key: None} if old else {})
        text = sub.required("ConditionExpression") if kind == "ConditionCheck" else sub.get("ConditionExpression")
        condition = _condition(text, placeholders)
        placeholders.ensure_all_used()
        return _Step(key, condition, writes)


@dataclass(frozen=True)
class _Step:
    """One action of a transaction: its item, its condition and what it writes given the old item."""

    key: ItemKey
    condition: Condition | None
    writes: Callable[[Item | None], dict[ItemKey, StoredItem | None]]


def _update_result(returns: str, old: Item | None, new: Item | None,
                   update: UpdateExpression | None) -> dict[str, Any]:
    if returns == "NONE" or new is None:
        return {}
    if returns == "ALL_NEW":
        return {"Attributes": new}
    if returns == "ALL_OLD":
        return {"Attributes": old} if old else {}
    names = _updated_names(update) if update is not None else set()
    source = (old or {}) if returns == "UPDATED_OLD" else new
    attributes = {name: value for name, value in source.items() if name in names}
    return {"Attributes": attributes} if attributes else {}
