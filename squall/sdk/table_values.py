"""Plain Python values <-> DynamoDB's typed attribute values, like boto3's resource layer.

    to_typed({"n": 3, "tags": {"a", "b"}})  -> {"M": {"n": {"N": "3"}, "tags": {"SS": ["a", "b"]}}}
    from_typed({"N": "1.5"})                -> Decimal("1.5")

    Python                                  DynamoDB       back to Python
    str                                     S              str
    int, decimal.Decimal, float (*)         N              decimal.Decimal (exact, as boto3)
    bytes, bytearray, memoryview            B              bytes
    bool                                    BOOL           bool
    None                                    NULL           None
    list, tuple                             L              list
    dict (any Mapping with str keys)        M              dict
    set/frozenset of str | numbers | bytes  SS | NS | BS   set of str | Decimal | bytes

(*) A float is stored as the shortest decimal that reads back as the same float
(`Decimal(repr(x))`: 0.1 is stored as 0.1, not 0.1000000000000000055511151231257827), so
it comes back as a Decimal equal to what was written. NaN and infinities have no
DynamoDB form and raise ValueError, as does an empty set (DynamoDB rejects those). A value
of any other type raises TypeError naming where it is, e.g. `item['when']: datetime`.
Set members are sent sorted and without duplicates (1 and 1.0 are one number).
Limits the server checks (38 significant digits, 400 KB items, ...) are not checked here.

This module imports only the standard library: function code (`squall.sdk.tables`) and
the CLI (`squall table ...`) both convert through it.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["AttributeValue", "TypedItem", "from_typed", "from_typed_item", "to_number_text", "to_typed",
           "to_typed_item"]

AttributeValue = dict[str, Any]
"""One typed value, e.g. {"S": "x"}: exactly one of S N B BOOL NULL L M SS NS BS."""
TypedItem = dict[str, AttributeValue]

_NUMBER_TYPES = (int, Decimal, float)
_BINARY_TYPES = (bytes, bytearray, memoryview)


def to_typed(value: Any, where: str = "value") -> AttributeValue:
    """The typed form of a plain Python value (see the module docstring); `where` names
    the value in error messages."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, _NUMBER_TYPES):
        return {"N": to_number_text(value, where)}
    if isinstance(value, _BINARY_TYPES):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return {"L": [to_typed(element, f"{where}[{index}]") for index, element in enumerate(value)]}
    if isinstance(value, Mapping):
        return {"M": to_typed_item(value, where)}
    if isinstance(value, (set, frozenset)):
        return _typed_set(value, where)
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in a table; use str, int, Decimal, "
                    "float, bytes, bool, None, list, dict or a set of str, numbers or bytes")


def to_typed_item(item: Mapping[str, Any], where: str = "item") -> TypedItem:
    """The typed form of an item, a key or a map: {name: plain value} -> {name: typed value}."""
    if not isinstance(item, Mapping):
        raise TypeError(f"{where}: expected a dict of attribute names to values, got {type(item).__name__}")
    typed = {}
    for name, value in item.items():
        if not isinstance(name, str):
            raise TypeError(f"{where}: attribute names are strings, got {name!r}")
        typed[name] = to_typed(value, f"{where}[{name!r}]")
    return typed


def to_number_text(number: Decimal | float, where: str = "value") -> str:
    """The N text of a number: exact for int and Decimal, shortest round-trip text for float."""
    if isinstance(number, bool) or not isinstance(number, _NUMBER_TYPES):
        raise TypeError(f"{where}: expected a number, got {type(number).__name__}")
    if isinstance(number, int):
        return str(number)
    if isinstance(number, float):
        if not math.isfinite(number):
            raise ValueError(f"{where}: {number} cannot be stored (a number must be finite)")
        number = Decimal(repr(number))
    if not number.is_finite():
        raise ValueError(f"{where}: {number} cannot be stored (a number must be finite)")
    return str(number)


def _typed_set(members: set[Any] | frozenset[Any], where: str) -> AttributeValue:
    """SS, NS or BS: every member of one kind, sorted, duplicates (by value) dropped."""
    if not members:
        raise ValueError(f"{where}: an empty set cannot be stored (DynamoDB has no empty sets; "
                         "remove the attribute instead)")
    if all(isinstance(m, str) for m in members):
        return {"SS": sorted(members)}
    if all(isinstance(m, _BINARY_TYPES) for m in members):
        unique = sorted({bytes(m) for m in members})
        return {"BS": [base64.b64encode(m).decode("ascii") for m in unique]}
    if all(isinstance(m, _NUMBER_TYPES) and not isinstance(m, bool) for m in members):
        texts = {Decimal(text): text for text in sorted(to_number_text(m, where) for m in members)}
        return {"NS": [texts[number] for number in sorted(texts)]}
    kinds = sorted({type(m).__name__ for m in members})
    raise TypeError(f"{where}: a set must hold only strings, only numbers or only bytes, got {', '.join(kinds)}")


def from_typed(value: AttributeValue, where: str = "value") -> Any:
    """The plain Python value of a typed value (see the module docstring)."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"{where}: not a typed attribute value (one of S, N, B, BOOL, NULL, L, M, SS, NS, BS): "
                         f"{value!r}")
    kind, inner = next(iter(value.items()))
    if kind == "S" and isinstance(inner, str):
        return inner
    if kind == "N":
        return _number(inner, where)
    if kind == "B":
        return _binary(inner, where)
    if kind == "BOOL" and isinstance(inner, bool):
        return inner
    if kind == "NULL" and inner is True:
        return None
    if kind == "L" and isinstance(inner, list):
        return [from_typed(element, f"{where}[{index}]") for index, element in enumerate(inner)]
    if kind == "M" and isinstance(inner, dict):
        return from_typed_item(inner, where)
    if kind == "SS" and isinstance(inner, list) and all(isinstance(s, str) for s in inner):
        return set(inner)
    if kind == "NS" and isinstance(inner, list):
        return {_number(n, where) for n in inner}
    if kind == "BS" and isinstance(inner, list):
        return {_binary(b, where) for b in inner}
    raise ValueError(f"{where}: not a typed attribute value: {value!r}")


def from_typed_item(item: Mapping[str, AttributeValue], where: str = "item") -> dict[str, Any]:
    """The plain form of a typed item, key or map."""
    if not isinstance(item, Mapping):
        raise TypeError(f"{where}: expected a map of attribute names to typed values, got {item!r}")
    return {name: from_typed(value, f"{where}[{name!r}]") for name, value in item.items()}


def _number(text: Any, where: str) -> Decimal:
    try:
        number = Decimal(text) if isinstance(text, str) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"{where}: not a number: {text!r}")
    return number


def _binary(text: Any, where: str) -> bytes:
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise ValueError(f"{where}: binary values travel as base64 text, got {text!r}") from None
