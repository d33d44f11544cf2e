"""Tables from function code: DynamoDB's model, with plain Python values in and out.

    from squall.sdk import tables

    builds = tables.table("builds")        # tables: {builds: {key: project, sort_key: {name: n, type: N}}}
    builds.put({"project": "web", "n": 1, "status": "queued"}, condition="attribute_not_exists(n)")
    builds.get({"project": "web", "n": 1})                      # the item, or None
    builds.update({"project": "web", "n": 1}, "SET #s = :s ADD tries :one",
                  names={"#s": "status"}, values={":s": "ok", ":one": 1})   # the new item
    builds.delete({"project": "web", "n": 1}, condition="#s <> :s", names={"#s": "status"},
                  values={":s": "running"})
    page = builds.query("web", gte=10, limit=20, forward=False)   # one page, newest first
    page.items, page.next                  # next: pass it as start= to get the following page
    for item in builds.query_all("web", begins_with=..., filter="size(log) > :n", values={":n": 0}):
        ...                                # every page, fetched as the loop goes
    builds.scan(limit=100), builds.scan_all(filter=...)
    builds.batch_get([{"project": "web", "n": 1}, {"project": "web", "n": 2}])   # found items
    builds.batch_write(put=[item, ...], delete=[key, ...])
    tables.transact_write([tables.Put("builds", item, condition="attribute_not_exists(n)"),
                           tables.Update("counters", {"name": "builds"}, "ADD total :one", values={":one": 1})])

Values convert as in boto3's resource layer (squall.sdk.table_values): str, numbers, bytes,
bool, None, list, dict and sets in; numbers come back as `decimal.Decimal`, sets as `set`.
Expressions are DynamoDB's (condition, update, filter); `names` maps `#placeholders` to
attribute names and `values` maps `:placeholders` to plain values (the `#` and `:` may be
left out: `values={"one": 1}` is `:one`). Query's sort key conditions are keyword
arguments (eq, lt, lte, gt, gte, between=(low, high), begins_with); at most one.

A Table asks DescribeTable once, when it first needs the key's attribute names (query,
batch_get). A function reaches only the tables its manifest grants it (`tables: [builds]`
under the function); others answer SdkError `AccessDeniedException` (403).

Errors: a false condition raises ConditionFailed, a cancelled transaction
TransactionCanceled (with `reasons`, one per action), everything else SdkError carrying the
server's type (`ValidationException`, `ResourceNotFoundException`, ...) and message.
Misuse found before sending (an unsupported value type, two sort conditions) raises
TypeError or ValueError. Batch calls resend what DynamoDB calls unprocessed with backoff
and raise SdkError `UnprocessedItems` if some are still left.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from squall.sdk import SdkError, _json, _quote
from squall.sdk.table_values import from_typed, from_typed_item, to_typed, to_typed_item

__all__ = ["Check", "ConditionFailed", "Delete", "Page", "Put", "Table", "TransactionCanceled", "Update",
           "list_tables", "table", "transact_write"]

Call = Callable[[str, dict[str, Any]], dict[str, Any]]
"""How a request travels: (operation, DynamoDB JSON request) -> DynamoDB JSON response."""

BATCH_GET_SIZE = 100
BATCH_WRITE_SIZE = 25
RETURN_VALUES = ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW")
_SORT_OPERATORS = {"eq": "=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class ConditionFailed(SdkError):
    """A condition expression was false (ConditionalCheckFailedException); nothing was written."""


class TransactionCanceled(SdkError):
    """A transaction wrote nothing; `reasons` has one code per action (None: that one was fine),
    e.g. ["ConditionalCheckFailed", None]."""

    @property
    def reasons(self) -> list[str | None]:
        listed = self.details.get("CancellationReasons")
        if isinstance(listed, list):
            codes = [r.get("Code") if isinstance(r, dict) else None for r in listed]
        else:
            found = re.search(r"\[([^\]]*)\]", self.message)
            codes = [c.strip() for c in found.group(1).split(",")] if found else []
        return [None if code in (None, "None", "") else str(code) for code in codes]


def sdk_call(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """Send one operation to `/_squall/sdk/tables/{operation}` with the function's credential."""
    return _json("POST", f"/tables/{_quote(operation)}", request)


def _send(call: Call, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    try:
        return call(operation, request)
    except SdkError as exc:
        if exc.kind == "ConditionalCheckFailedException":
            raise ConditionFailed(exc.status, exc.kind, exc.message, exc.details) from None
        if exc.kind == "TransactionCanceledException":
            raise TransactionCanceled(exc.status, exc.kind, exc.message, exc.details) from None
        raise


@dataclass(frozen=True)
class Page:
    """One page of a query or scan: its items and where the next page starts (None: no more)."""

    items: list[dict[str, Any]]
    next: dict[str, Any] | None = None
    scanned: int = 0
    """Items read before the filter was applied."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class Table:
    """The items of one table. `call` replaces how requests travel (the CLI sends them
    through the platform API with the admin token; by default the function's credential)."""

    retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
    """Seconds to wait before resending unprocessed batch requests, one per attempt."""

    def __init__(self, name: str, *, call: Call | None = None) -> None:
        self.name = name
        self._call = call or sdk_call
        self._description: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Table({self.name!r})"

    def describe(self) -> dict[str, Any]:
        """DescribeTable's `Table` (KeySchema, AttributeDefinitions, ItemCount, ...), asked once."""
        if self._description is None:
            self._description = dict(self._send("DescribeTable", {"TableName": self.name})["Table"])
        return self._description

    @property
    def key_schema(self) -> list[tuple[str, str]]:
        """[(partition key name, type), (sort key name, type)?], types S, N or B."""
        description = self.describe()
        types = {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])}
        ordered = sorted(description["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        return [(k["AttributeName"], types.get(k["AttributeName"], "S")) for k in ordered]

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.key_schema)

    # -- single items ----------------------------------------------------------------

    def get(self, key: Mapping[str, Any], *, consistent: bool = False) -> dict[str, Any] | None:
        """The item with `key`, or None."""
        response = self._send("GetItem", {"TableName": self.name, "Key": to_typed_item(key, "key"),
                                          "ConsistentRead": consistent})
        return from_typed_item(response["Item"]) if response.get("Item") else None

    def put(self, item: Mapping[str, Any], *, condition: str | None = None, names: Mapping[str, str] | None = None,
            values: Mapping[str, Any] | None = None, return_old: bool = False) -> dict[str, Any] | None:
        """Store `item` whole (replacing the item with its key) if `condition` holds on the
        current item; the replaced item when `return_old` (None if there was none)."""
        request = {"TableName": self.name, "Item": to_typed_item(item),
                   "ReturnValues": "ALL_OLD" if return_old else "NONE"}
        response = self._send("PutItem", _conditional(request, condition, names, values))
        return _attributes(response) if return_old else None

    def update(self, key: Mapping[str, Any], expression: str, *, condition: str | None = None,
               names: Mapping[str, str] | None = None, values: Mapping[str, Any] | None = None,
               returns: str = "ALL_NEW") -> dict[str, Any]:
        """Apply an update expression (SET, REMOVE, ADD, DELETE) to the item with `key`, creating
        it if needed; returns the attributes `returns` names ({} for NONE)."""
        if returns not in RETURN_VALUES:
            raise ValueError(f"returns must be one of {', '.join(RETURN_VALUES)}, got {returns!r}")
        request = {"TableName": self.name, "Key": to_typed_item(key, "key"), "UpdateExpression": expression,
                   "ReturnValues": returns}
        response = self._send("UpdateItem", _conditional(request, condition, names, values))
        return _attributes(response) or {}

    def delete(self, key: Mapping[str, Any], *, condition: str | None = None, names: Mapping[str, str] | None = None,
               values: Mapping[str, Any] | None = None, return_old: bool = False) -> dict[str, Any] | None:
        """Delete the item with `key` (nothing happens when there is none) if `condition` holds;
        the deleted item when `return_old`."""
        request = {"TableName": self.name, "Key": to_typed_item(key, "key"),
                   "ReturnValues": "ALL_OLD" if return_old else "NONE"}
        response = self._send("DeleteItem", _conditional(request, condition, names, values))
        return _attributes(response) if return_old else None

    # -- many items ------------------------------------------------------------------

    def query(self, partition: Any, *, eq: Any = None, lt: Any = None, lte: Any = None, gt: Any = None,
              gte: Any = None, between: Sequence[Any] | None = None, begins_with: Any = None,
              filter: str | None = None, names: Mapping[str, str] | None = None,
              values: Mapping[str, Any] | None = None, limit: int | None = None, forward: bool = True,
              start: Mapping[str, Any] | None = None, consistent: bool = False) -> Page:
        """One page of the items whose partition key is `partition`, in sort key order
        (`forward=False`: descending). `limit` caps the items read for the page (before
        `filter`, as in DynamoDB); `start` is a previous page's `next`."""
        sort = {"eq": eq, "lt": lt, "lte": lte, "gt": gt, "gte": gte, "between": between,
                "begins_with": begins_with}
        request = self._key_condition(partition, {op: v for op, v in sort.items() if v is not None}, names, values)
        request.update(TableName=self.name, ScanIndexForward=forward, ConsistentRead=consistent)
        if filter is not None:
            request["FilterExpression"] = filter
        return self._page("Query", request, limit, start)

    def query_all(self, partition: Any, *, eq: Any = None, lt: Any = None, lte: Any = None, gt: Any = None,
                  gte: Any = None, between: Sequence[Any] | None = None, begins_with: Any = None,
                  filter: str | None = None, names: Mapping[str, str] | None = None,
                  values: Mapping[str, Any] | None = None, forward: bool = True,
                  consistent: bool = False) -> Iterator[dict[str, Any]]:
        """Every item `query` would return, page after page, fetched as the loop goes."""
        start: dict[str, Any] | None = None
        while True:
            page = self.query(partition, eq=eq, lt=lt, lte=lte, gt=gt, gte=gte, between=between,
                              begins_with=begins_with, filter=filter, names=names, values=values,
                              forward=forward, start=start, consistent=consistent)
            yield from page.items
            if page.next is None:
                return
            start = page.next

    def scan(self, *, filter: str | None = None, names: Mapping[str, str] | None = None,
             values: Mapping[str, Any] | None = None, limit: int | None = None,
             start: Mapping[str, Any] | None = None, consistent: bool = False) -> Page:
        """One page of the table's items (in no particular order), `filter`ed."""
        request: dict[str, Any] = {"TableName": self.name, "ConsistentRead": consistent}
        if filter is not None:
            request["FilterExpression"] = filter
        return self._page("Scan", _with_placeholders(request, names, values), limit, start)

    def scan_all(self, *, filter: str | None = None, names: Mapping[str, str] | None = None,
                 values: Mapping[str, Any] | None = None, consistent: bool = False) -> Iterator[dict[str, Any]]:
        """Every item of the table (`filter`ed), page after page."""
        start: dict[str, Any] | None = None
        while True:
            page = self.scan(filter=filter, names=names, values=values, start=start, consistent=consistent)
            yield from page.items
            if page.next is None:
                return
            start = page.next

    def batch_get(self, keys: Iterable[Mapping[str, Any]], *, consistent: bool = False) -> list[dict[str, Any]]:
        """The items with these keys that exist, in the order of `keys` (100 per request)."""
        wanted = [to_typed_item(key, f"keys[{index}]") for index, key in enumerate(keys)]
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        names = self.key_names if wanted else ()

        def collect(response: dict[str, Any]) -> None:
            for item in response.get("Responses", {}).get(self.name, []):
                plain = from_typed_item(item)
                found[tuple(plain.get(n) for n in names)] = plain

        for chunk in _chunks(wanted, BATCH_GET_SIZE):
            self._until_processed("BatchGetItem", {"Keys": chunk, "ConsistentRead": consistent}, collect)
        # key values are str, Decimal or bytes: hashable, and 1 == Decimal("1.0")
        ordered = (tuple(from_typed(key[n]) if n in key else None for n in names) for key in wanted)
        return [found[k] for k in dict.fromkeys(ordered) if k in found]

    def batch_write(self, put: Iterable[Mapping[str, Any]] = (), delete: Iterable[Mapping[str, Any]] = ()) -> None:
        """Store the items of `put` and delete the keys of `delete`, 25 per request; not atomic,
        no conditions (use transact_write for those)."""
        writes = [{"PutRequest": {"Item": to_typed_item(item, f"put[{i}]")}} for i, item in enumerate(put)]
        writes += [{"DeleteRequest": {"Key": to_typed_item(key, f"delete[{i}]")}} for i, key in enumerate(delete)]
        for chunk in _chunks(writes, BATCH_WRITE_SIZE):
            self._until_processed("BatchWriteItem", chunk)

    # -- plumbing --------------------------------------------------------------------

    def _send(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        return _send(self._call, operation, request)

    def _until_processed(self, operation: str, requests: Any,
                         collect: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Send a batch (`requests`: this table's part of RequestItems), then what the server
        left unprocessed, with backoff; SdkError UnprocessedItems when some is still left."""
        unprocessed = "UnprocessedKeys" if operation == "BatchGetItem" else "UnprocessedItems"
        for delay in (0.0, *self.retry_delays):
            if delay:
                time.sleep(delay)
            response = self._send(operation, {"RequestItems": {self.name: requests}})
            if collect is not None:
                collect(response)
            requests = (response.get(unprocessed) or {}).get(self.name)
            if not requests:
                return
        left = len(requests["Keys"] if isinstance(requests, dict) else requests)
        raise SdkError(503, "UnprocessedItems", f"{operation} on {self.name}: {left} requests were still "
                       f"unprocessed after {len(self.retry_delays) + 1} attempts; try again later")

    def _key_condition(self, partition: Any, sort: dict[str, Any], names: Mapping[str, str] | None,
                       values: Mapping[str, Any] | None) -> dict[str, Any]:
        if len(sort) > 1:
            raise ValueError(f"query takes at most one sort key condition, got {', '.join(sort)}")
        key_names = self.key_names
        own_names, own_values = {"#sq_pk": key_names[0]}, {":sq_pk": to_typed(partition, "partition")}
        expression = "#sq_pk = :sq_pk"
        if sort:
            if len(key_names) < 2:
                raise ValueError(f"table {self.name} has no sort key: query it by partition value only")
            own_names["#sq_sk"] = key_names[1]
            op, operand = next(iter(sort.items()))
            if op == "between":
                if isinstance(operand, (str, bytes)) or not isinstance(operand, Sequence) or len(operand) != 2:
                    raise ValueError(f"between takes (low, high), got {operand!r}")
                own_values[":sq_lo"], own_values[":sq_hi"] = to_typed(operand[0], "low"), to_typed(operand[1], "high")
                expression += " AND #sq_sk BETWEEN :sq_lo AND :sq_hi"
            elif op == "begins_with":
                own_values[":sq_sk"] = to_typed(operand, "begins_with")
                expression += " AND begins_with(#sq_sk, :sq_sk)"
            else:
                own_values[":sq_sk"] = to_typed(operand, op)
                expression += f" AND #sq_sk {_SORT_OPERATORS[op]} :sq_sk"
        request = {"KeyConditionExpression": expression}
        return _with_placeholders(request, names, values, own_names, own_values)

    def _page(self, operation: str, request: dict[str, Any], limit: int | None,
              start: Mapping[str, Any] | None) -> Page:
        if limit is not None:
            if limit < 1:
                raise ValueError(f"limit must be at least 1, got {limit}")
            request["Limit"] = limit
        if start is not None:
            request["ExclusiveStartKey"] = to_typed_item(start, "start")
        response = self._send(operation, request)
        last = response.get("LastEvaluatedKey")
        return Page(items=[from_typed_item(item) for item in response.get("Items", [])],
                    next=from_typed_item(last) if last else None,
                    scanned=int(response.get("ScannedCount", response.get("Count", 0))))


def table(name: str, *, call: Call | None = None) -> Table:
    """The table `name` (nothing is sent until it is used)."""
    return Table(name, call=call)


def list_tables(*, call: Call | None = None) -> list[str]:
    """The names of the tables the caller can see, in order, every page."""
    names: list[str] = []
    request: dict[str, Any] = {}
    while True:
        response = _send(call or sdk_call, "ListTables", request)
        names += response.get("TableNames", [])
        if not response.get("LastEvaluatedTableName"):
            return names
        request = {"ExclusiveStartTableName": response["LastEvaluatedTableName"]}


# -- transactions --------------------------------------------------------------------


@dataclass(frozen=True)
class _Action:
    table: str
    condition: str | None = field(default=None, kw_only=True)
    names: Mapping[str, str] | None = field(default=None, kw_only=True)
    values: Mapping[str, Any] | None = field(default=None, kw_only=True)

    operation: ClassVar[str] = ""

    def _body(self) -> dict[str, Any]:
        raise NotImplementedError

    def request(self) -> dict[str, Any]:
        """This action as one element of TransactItems."""
        body = {"TableName": self.table, **self._body()}
        return {self.operation: _conditional(body, self.condition, self.names, self.values)}


@dataclass(frozen=True)
class Put(_Action):
    """Store `item` (if `condition` holds)."""

    item: Mapping[str, Any]
    operation: ClassVar[str] = "Put"

    def _body(self) -> dict[str, Any]:
        return {"Item": to_typed_item(self.item)}


@dataclass(frozen=True)
class Update(_Action):
    """Apply `expression` to the item with `key` (if `condition` holds)."""

    key: Mapping[str, Any]
    expression: str
    operation: ClassVar[str] = "Update"

    def _body(self) -> dict[str, Any]:
        return {"Key": to_typed_item(self.key, "key"), "UpdateExpression": self.expression}


@dataclass(frozen=True)
class Delete(_Action):
    """Delete the item with `key` (if `condition` holds)."""

    key: Mapping[str, Any]
    operation: ClassVar[str] = "Delete"

    def _body(self) -> dict[str, Any]:
        return {"Key": to_typed_item(self.key, "key")}


@dataclass(frozen=True)
class Check(_Action):
    """Write nothing, but cancel the transaction unless `condition` holds on the item with `key`."""

    key: Mapping[str, Any]
    operation: ClassVar[str] = "ConditionCheck"

    def __post_init__(self) -> None:
        if self.condition is None:
            raise ValueError("Check needs a condition")

    def _body(self) -> dict[str, Any]:
        return {"Key": to_typed_item(self.key, "key")}


def transact_write(actions: Iterable[Put | Update | Delete | Check], *, token: str | None = None,
                   call: Call | None = None) -> None:
    """Apply every action or none (up to 100, on any tables the function may use); raises
    TransactionCanceled when a condition fails. `token` makes a retry idempotent
    (ClientRequestToken)."""
    request: dict[str, Any] = {"TransactItems": [action.request() for action in actions]}
    if token is not None:
        request["ClientRequestToken"] = token
    _send(call or sdk_call, "TransactWriteItems", request)


# -- helpers -------------------------------------------------------------------------


def _conditional(request: dict[str, Any], condition: str | None, names: Mapping[str, str] | None,
                 values: Mapping[str, Any] | None) -> dict[str, Any]:
    if condition is not None:
        request["ConditionExpression"] = condition
    return _with_placeholders(request, names, values)


def _with_placeholders(request: dict[str, Any], names: Mapping[str, str] | None, values: Mapping[str, Any] | None,
                       own_names: Mapping[str, str] | None = None,
                       own_values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`request` with ExpressionAttributeNames/Values: the caller's (`#`/`:` added when left out,
    values typed) and the SDK's own."""
    typed_names = {_placeholder("#", k): str(v) for k, v in (names or {}).items()}
    typed_values = {_placeholder(":", k): to_typed(v, f"values[{k!r}]") for k, v in (values or {}).items()}
    clash = sorted(set(own_names or {}) & set(typed_names) | set(own_values or {}) & set(typed_values))
    if clash:
        raise ValueError(f"the placeholders {', '.join(clash)} are squall's own; rename yours")
    typed_names.update(own_names or {})
    typed_values.update(own_values or {})
    if typed_names:
        request["ExpressionAttributeNames"] = typed_names
    if typed_values:
        request["ExpressionAttributeValues"] = typed_values
    return request


def _placeholder(prefix: str, name: str) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"placeholder names are non-empty strings, got {name!r}")
    return name if name.startswith(prefix) else prefix + name


def _attributes(response: dict[str, Any]) -> dict[str, Any] | None:
    attributes = response.get("Attributes")
    return from_typed_item(attributes) if attributes else None


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for begin in range(0, len(items), size):
        yield items[begin:begin + size]
