"""`squall table ls|get|put|delete|query|scan`: the items of tables from the command line.

Items, keys and values are plain JSON (`{"project": "web", "n": 1}`); numbers keep every
digit both ways (a number is read as an exact decimal and printed with the digits stored).
Plain JSON has no binary values and no sets: on output binary becomes base64 text and a set
a sorted list. `--typed` reads and prints DynamoDB's typed JSON (`{"n": {"N": "1"}}`)
instead, which is exact for every type and the way to put binary values or sets.

Commands go through the platform API with the admin token and reuse squall.sdk.tables
(query conditions, pagination, value conversion). A false condition and an unknown table
exit with 1, invalid input (a bad expression, a key of the wrong type) with 2.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import click
import orjson
from rich.markup import escape

from squall.cli.options import client_from, json_option
from squall.cli.output import print_json, print_message, print_table
from squall.client import ApiError
from squall.sdk.table_values import from_typed_item, to_typed_item
from squall.sdk.tables import Page, Table, list_tables

OPERATION_FAILED = {"ConditionalCheckFailedException": "the condition is false: nothing was written",
                    "TransactionCanceledException": "",
                    "ResourceNotFoundException": "`squall table ls` lists the tables"}
"""Error types that mean the operation failed (exit 1), not the input (exit 2), with a hint."""
CELL_WIDTH = 60
F = TypeVar("F", bound=Callable[..., Any])

typed_option = click.option("--typed", is_flag=True,
                            help="Items, keys and values in DynamoDB's typed JSON ({\"N\": \"1\"}), in and out.")


def _with_options(func: F, options: list[Callable[[F], F]]) -> F:
    for option in reversed(options):
        func = option(func)
    return func


def _placeholder_options() -> list[Callable[[F], F]]:
    return [click.option("--names", metavar="JSON", help="Expression attribute names, e.g. '{\"#s\": \"status\"}'."),
            click.option("--values", metavar="JSON", help="Expression attribute values, e.g. '{\":max\": 3}'.")]


def conditional_options(condition_help: str) -> Callable[[F], F]:
    """Options of put and delete: a condition, its placeholders, --typed and --json."""
    def decorate(func: F) -> F:
        return _with_options(func, [click.option("--condition", metavar="EXPR", help=condition_help),
                                    *_placeholder_options(), typed_option, json_option])
    return decorate


def page_options(func: F) -> F:
    """Options of query and scan."""
    return _with_options(func, [
        click.option("--filter", "filter_", metavar="EXPR", help="Only items for which this expression holds."),
        *_placeholder_options(),
        click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N items (default: all)."),
        click.option("--start", metavar="KEY_JSON", help="Start after this key (printed when --limit stops early)."),
        click.option("--consistent", is_flag=True, help="Strongly consistent reads."),
        typed_option, json_option,
    ])


class TableGroup(click.Group):
    """Gives the table service's errors the CLI's exit codes and a hint."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            if exc.type in OPERATION_FAILED:
                hint = OPERATION_FAILED[exc.type]
                failed = ApiError(exc.status, exc.type, f"{exc.message} ({hint})" if hint else exc.message,
                                  exc.details)
                failed.exit_code = 1
                raise failed from None
            raise


@click.group(cls=TableGroup)
def table() -> None:
    """Items of tables: list tables, get, put, delete, query, scan."""


# -- plain JSON <-> Python values -----------------------------------------------------


def parse_json(text: str, param_hint: str, *, typed: bool = False) -> dict[str, Any]:
    """A JSON object given on the command line (`-`: read stdin) as plain Python values;
    numbers become int or Decimal, exactly. `typed`: the object is DynamoDB typed JSON."""
    if text == "-":
        text = sys.stdin.read()
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=param_hint) from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"expected a JSON object, such as '{{\"id\": \"a1\"}}', got {text}",
                                 param_hint=param_hint)
    if not typed:
        return value
    try:
        return from_typed_item(value)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(f"not DynamoDB typed JSON: {exc}", param_hint=param_hint) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a table can store")


def jsonable(value: Any) -> Any:
    """A plain Python value as orjson can print it: numbers with their exact digits,
    bytes as base64 text, sets as sorted lists."""
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value).encode())
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {name: jsonable(v) for name, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [jsonable(v) for v in sorted(value)]
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def shown(item: dict[str, Any] | None, typed: bool) -> Any:
    """How an item is printed: plain JSON, or typed JSON with --typed."""
    if item is None:
        return None
    return jsonable(to_typed_item(item)) if typed else jsonable(item)


def key_value(table_: Table, position: int, text: str, param_hint: str) -> Any:
    """A partition (0) or sort (1) key value given as text, read by the key's type."""
    schema = table_.key_schema
    if position >= len(schema):
        raise click.UsageError(f"table {table_.name} has no sort key: query it by partition value only")
    name, kind = schema[position]
    try:
        if kind == "N":
            number = Decimal(text)
            if number.is_finite():
                return number
        elif kind == "B":
            return base64.b64decode(text, validate=True)
        else:
            return text
    except (InvalidOperation, binascii.Error, ValueError):
        pass
    what = "a number" if kind == "N" else "base64 text"
    raise click.BadParameter(f"{name}, the {'sort' if position else 'partition'} key of {table_.name}, "
                             f"is {what}; got {text!r}", param_hint=param_hint)


def table_of(ctx: click.Context, name: str) -> Table:
    return Table(name, call=client_from(ctx).table_call)


# -- commands -------------------------------------------------------------------------


@table.command("ls")
@json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the tables, their keys and item counts."""
    call = client_from(ctx).table_call
    found: list[dict[str, Any]] = []
    for name in list_tables(call=call):
        described = Table(name, call=call)
        schema = described.key_schema
        found.append({"name": name, "key": {"name": schema[0][0], "type": schema[0][1]},
                      "sort_key": {"name": schema[1][0], "type": schema[1][1]} if len(schema) > 1 else None,
                      "items": described.describe().get("ItemCount")})
    if as_json:
        print_json(found)
        return

    def key(attribute: dict[str, str] | None) -> str:
        return f"{attribute['name']} ({attribute['type']})" if attribute else "-"

    print_table(("TABLE", "KEY", "SORT KEY", "ITEMS"),
                ((t["name"], key(t["key"]), key(t["sort_key"]), "-" if t["items"] is None else f"{t['items']:,}")
                 for t in found))


@table.command("get")
@click.argument("table_name", metavar="TABLE")
@click.argument("key", metavar="KEY_JSON")
@click.option("--consistent", is_flag=True, help="A strongly consistent read.")
@typed_option
@json_option
@click.pass_context
def get(ctx: click.Context, table_name: str, key: str, consistent: bool, typed: bool, as_json: bool) -> None:
    """Print one item, found by its key.

    KEY_JSON holds the key attributes, e.g. '{"project": "web"}'; exits with 1 when
    TABLE has no item with that key.
    """
    wanted = parse_json(key, "'KEY_JSON'", typed=typed)
    item = table_of(ctx, table_name).get(wanted, consistent=consistent)
    if item is None:
        raise ApiError(404, "NotFound", f"no item in {table_name} has the key {key}")
    print_json(shown(item, typed))


@table.command("put")
@click.argument("table_name", metavar="TABLE")
@click.argument("item", metavar="ITEM_JSON")
@conditional_options("Write only if this condition expression holds, e.g. 'attribute_not_exists(id)'.")
@click.pass_context
def put(ctx: click.Context, table_name: str, item: str, condition: str | None, names: str | None,
        values: str | None, typed: bool, as_json: bool) -> None:
    """Store an item, replacing the one with its key.

    ITEM_JSON is the whole item, e.g. '{"project": "web", "stars": 3}' (- reads it
    from stdin). With --condition, nothing is written (exit 1) unless it holds.
    """
    new = parse_json(item, "'ITEM_JSON'", typed=typed)
    old = table_of(ctx, table_name).put(new, condition=condition, **placeholders(names, values, typed),
                                        return_old=True)
    if as_json:
        print_json({"item": shown(new, typed), "old": shown(old, typed)})
    else:
        print_message(f"{'replaced' if old else 'stored'} the item in {table_name}")


@table.command("delete")
@click.argument("table_name", metavar="TABLE")
@click.argument("key", metavar="KEY_JSON")
@conditional_options("Delete only if this condition expression holds.")
@click.pass_context
def delete(ctx: click.Context, table_name: str, key: str, condition: str | None, names: str | None,
           values: str | None, typed: bool, as_json: bool) -> None:
    """Delete one item, found by its key.

    Deleting a key that has no item is not an error. With --condition, nothing is
    deleted (exit 1) unless it holds.
    """
    wanted = parse_json(key, "'KEY_JSON'", typed=typed)
    old = table_of(ctx, table_name).delete(wanted, condition=condition, **placeholders(names, values, typed),
                                           return_old=True)
    if as_json:
        print_json({"key": shown(wanted, typed), "old": shown(old, typed)})
    else:
        print_message(f"deleted the item from {table_name}" if old else f"no item in {table_name} has that key")


def placeholders(names: str | None, values: str | None, typed: bool) -> dict[str, Any]:
    """`names=` and `values=` of an SDK call from --names and --values."""
    found: dict[str, Any] = {}
    if names is not None:
        found["names"] = parse_json(names, "'--names'")
    if values is not None:
        found["values"] = parse_json(values, "'--values'", typed=typed)
    return found




@table.command("query")
@click.argument("table_name", metavar="TABLE")
@click.argument("partition", metavar="PARTITION_VALUE")
@click.option("--eq", metavar="VALUE", help="Sort key = VALUE.")
@click.option("--lt", metavar="VALUE", help="Sort key < VALUE.")
@click.option("--lte", metavar="VALUE", help="Sort key <= VALUE.")
@click.option("--gt", metavar="VALUE", help="Sort key > VALUE.")
@click.option("--gte", metavar="VALUE", help="Sort key >= VALUE.")
@click.option("--between", nargs=2, metavar="LOW HIGH", help="LOW <= sort key <= HIGH.")
@click.option("--begins-with", metavar="PREFIX", help="The sort key starts with PREFIX.")
@click.option("--reverse", is_flag=True, help="Descending sort key order.")
@page_options
@click.pass_context
def query(ctx: click.Context, table_name: str, partition: str, reverse: bool, filter_: str | None,
          names: str | None, values: str | None, limit: int | None, start: str | None, consistent: bool,
          typed: bool, as_json: bool, between: tuple[str, str] | None, **sort: str | None) -> None:
    """Print the items of one partition, in sort key order.

    The items of TABLE whose partition key is PARTITION_VALUE, narrowed by at most
    one sort key condition. Key values are read by the key's type (a number key
    takes 42, a binary key base64 text).
    """
    target = table_of(ctx, table_name)
    given = {op: value for op, value in sort.items() if value is not None}
    if between:
        given["between"] = between  # type: ignore[assignment]
    if len(given) > 1:
        raise click.UsageError(f"give at most one sort key condition, got {', '.join(given)}")
    conditions: dict[str, Any] = {}
    for op, value in given.items():
        hint = f"'--{op.replace('_', '-')}'"
        conditions[op] = (tuple(key_value(target, 1, v, hint) for v in value) if op == "between"
                          else key_value(target, 1, str(value), hint))
    partition_value = key_value(target, 0, partition, "'PARTITION_VALUE'")
    extra = placeholders(names, values, typed)

    def fetch(page_limit: int | None, start_key: dict[str, Any] | None) -> Page:
        return target.query(partition_value, **conditions, filter=filter_, **extra, limit=page_limit,
                            forward=not reverse, start=start_key, consistent=consistent)

    print_items(target, pages(fetch, limit, start, typed), typed, as_json)


@table.command("scan")
@click.argument("table_name", metavar="TABLE")
@page_options
@click.pass_context
def scan(ctx: click.Context, table_name: str, filter_: str | None, names: str | None, values: str | None,
         limit: int | None, start: str | None, consistent: bool, typed: bool, as_json: bool) -> None:
    """Print the items of a table, in no particular order."""
    target = table_of(ctx, table_name)
    extra = placeholders(names, values, typed)

    def fetch(page_limit: int | None, start_key: dict[str, Any] | None) -> Page:
        return target.scan(filter=filter_, **extra, limit=page_limit, start=start_key, consistent=consistent)

    print_items(target, pages(fetch, limit, start, typed), typed, as_json)


def pages(fetch: Callable[[int | None, dict[str, Any] | None], Page], limit: int | None, start: str | None,
          typed: bool) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to `limit` items (all when None) page by page, and the key to continue after."""
    start_key = parse_json(start, "'--start'", typed=typed) if start is not None else None
    items: list[dict[str, Any]] = []
    while True:
        page = fetch(None if limit is None else limit - len(items), start_key)
        items += page.items
        start_key = page.next
        if start_key is None or (limit is not None and len(items) >= limit):
            return items, start_key


def print_items(target: Table, found: tuple[list[dict[str, Any]], dict[str, Any] | None], typed: bool,
                as_json: bool) -> None:
    """`{"items", "count", "next"}` with --json; else a table (key attributes first) and a count."""
    items, next_key = found
    if as_json:
        print_json({"items": [shown(i, typed) for i in items], "count": len(items), "next": shown(next_key, typed)})
        return
    if items:
        columns = list(dict.fromkeys([*target.key_names, *(name for item in items for name in item)]))
        print_table([escape(c) for c in columns],
                    ([cell(item[c]) if c in item else "" for c in columns] for item in items))
    more = ""
    if next_key is not None:
        more = f" (more: add --start '{orjson.dumps(shown(next_key, typed)).decode()}')"
    print_message(f"{len(items)} item{'' if len(items) == 1 else 's'}{more}")


def cell(value: Any) -> str:
    """One attribute in a table cell: strings as they are, anything else as compact JSON, cut short."""
    text = value if isinstance(value, str) else orjson.dumps(jsonable(value)).decode()
    return escape(text if len(text) <= CELL_WIDTH else text[:CELL_WIDTH - 1] + "…")
