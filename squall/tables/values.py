"""DynamoDB's typed attribute values as they travel on the wire.

An AttributeValue is a dict with exactly one type descriptor: {"S": "x"},
{"N": "12.5"}, {"B": "<base64>"}, {"BOOL": true}, {"NULL": true}, {"L": [...]},
{"M": {...}}, {"SS": [...]}, {"NS": [...]}, {"BS": [...]}.  This module
validates them, compares and orders them as DynamoDB does (numbers as exact
38-digit decimals, strings by UTF-8 bytes, binary by bytes), implements
`size()`, and encodes key values into bytes whose order is DynamoDB's order.
"""

from __future__ import annotations

import base64
import binascii
import re
from decimal import (
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Underflow,
)
from typing import Any

from squall.tables.errors import ValidationError

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

TYPES = ("S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M")
SET_TYPES = {"SS": "S", "NS": "N", "BS": "B"}
MAX_DIGITS = 38
MAX_EXPONENT = 125
MIN_EXPONENT = -130
ARITHMETIC = Context(prec=MAX_DIGITS, traps=[Inexact, Rounded, InvalidOperation, Overflow, Underflow])

_NUMBER_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SET_NAMES = {"SS": "string", "NS": "number", "BS": "binary"}
_INVALID = "One or more parameter values were invalid: "


def type_of(value: AttributeValue) -> str:
    """The type descriptor of a (validated) value, e.g. "S" or "NS"."""
    return next(iter(value))


def parse_number(text: object) -> Decimal:
    """An N value's exact decimal, or ValidationError when DynamoDB rejects it."""
    if not isinstance(text, str) or not _NUMBER_RE.fullmatch(text):
        raise ValidationError(f"The parameter cannot be converted to a numeric value: {text}")
    return _canonical(Decimal(text))


def _canonical(number: Decimal) -> Decimal:
    """`number` with trailing zeros stripped, checked against DynamoDB's limits."""
    if number.is_zero():
        return Decimal(0)
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    while digits and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    if len(digits) > MAX_DIGITS:
        raise ValidationError("Attempting to store more than 38 significant digits in a Number")
    result = Decimal((sign, digits, exponent))
    if result.adjusted() > MAX_EXPONENT:
        raise ValidationError(
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        )
    if result.adjusted() < MIN_EXPONENT:
        raise ValidationError(
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        )
    return result


def format_number(number: Decimal) -> str:
    """DynamoDB's canonical text of a number: plain notation, no trailing zeros."""
    canonical = _canonical(number)
    return "0" if canonical.is_zero() else format(canonical, "f")


def number_value(number: Decimal) -> AttributeValue:
    """An N AttributeValue holding `number`."""
    return {"N": format_number(number)}


def arithmetic(left: Decimal, right: Decimal, subtract: bool = False) -> Decimal:
    """left + right (or left - right) exactly, failing past 38 digits as DynamoDB does."""
    try:
        result = ARITHMETIC.subtract(left, right) if subtract else ARITHMETIC.add(left, right)
    except (Inexact, Rounded):
        raise ValidationError("Number overflow. Attempting to store more than 38 significant digits in a Number") from None
    return _canonical(result)


def decode_binary(text: object) -> bytes:
    """A B value's bytes (its wire form is base64 text)."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    if not isinstance(text, str):
        raise ValidationError(f"{_INVALID}Binary value must be base64-encoded")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{_INVALID}Binary value must be base64-encoded: {text}") from None


def _envelope(value: object) -> tuple[str, Any]:
    """(type descriptor, payload) of a value with exactly one known descriptor, else ValidationError."""
    if not isinstance(value, dict) or not value:
        raise ValidationError(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        )
    if len(value) > 1:
        raise ValidationError(
            "Supplied AttributeValue has more than one datatypes set, "
            "must contain exactly one of the supported datatypes"
        )
    kind, inner = next(iter(value.items()))
    if kind not in TYPES:
        raise ValidationError(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
        )
    return kind, inner


def validate(value: object) -> AttributeValue:
    """`value` itself when it is a well-formed AttributeValue, else ValidationError."""
    kind, inner = _envelope(value)
    _validate_inner(kind, inner)
    return value  # type: ignore[return-value]


def _validate_inner(kind: str, inner: object) -> None:
    """Check the payload of a value whose descriptor is `kind`."""
    if kind == "S" and not isinstance(inner, str):
        raise ValidationError(f"{_INVALID}String value must be a string")
    if kind == "N":
        parse_number(inner)
    if kind == "B":
        decode_binary(inner)
    if kind == "BOOL" and not isinstance(inner, bool):
        raise ValidationError(f"{_INVALID}Boolean value must be true or false")
    if kind == "NULL" and inner is not True:
        raise ValidationError(f"{_INVALID}Null attribute value types must have the value of true")
    if kind == "L":
        if not isinstance(inner, list):
            raise ValidationError(f"{_INVALID}List value must be a list")
        for element in inner:
            validate(element)
    if kind == "M":
        if not isinstance(inner, dict):
            raise ValidationError(f"{_INVALID}Map value must be a map")
        for element in inner.values():
            validate(element)
    if kind in SET_TYPES:
        _validate_set(kind, inner)


def _validate_set(kind: str, inner: object) -> None:
    """Sets are non-empty lists of distinct scalars of one type."""
    if not isinstance(inner, list):
        raise ValidationError(f"{_INVALID}Set value must be a list")
    if not inner:
        raise ValidationError(f"{_INVALID}An {_SET_NAMES[kind]} set  may not be empty")
    element_kind = SET_TYPES[kind]
    for element in inner:
        _validate_inner(element_kind, element)
    if len({_scalar(element_kind, element) for element in inner}) != len(inner):
        raise ValidationError(f"{_INVALID}Input collection {inner} contains duplicates.")


def _scalar(kind: str, inner: Any) -> str | Decimal | bytes:
    """The comparable Python value of an S, N or B payload."""
    if kind == "N":
        return parse_number(inner)
    if kind == "B":
        return decode_binary(inner)
    return str(inner)


def canonical(value: AttributeValue) -> AttributeValue:
    """A validated copy of `value` with every number in DynamoDB's canonical text (one pass)."""
    kind, inner = _envelope(value)
    if kind == "N":
        return {"N": format_number(parse_number(inner))}
    if kind == "L":
        if not isinstance(inner, list):
            raise ValidationError(f"{_INVALID}List value must be a list")
        return {"L": [canonical(element) for element in inner]}
    if kind == "M":
        if not isinstance(inner, dict):
            raise ValidationError(f"{_INVALID}Map value must be a map")
        return {"M": {name: canonical(element) for name, element in inner.items()}}
    _validate_inner(kind, inner)
    if kind == "NS":
        return {"NS": [format_number(parse_number(n)) for n in inner]}
    return {kind: list(inner) if isinstance(inner, list) else inner}


def set_members(value: AttributeValue) -> frozenset[str | Decimal | bytes]:
    """The comparable members of an SS, NS or BS value."""
    kind = type_of(value)
    return frozenset(_scalar(SET_TYPES[kind], element) for element in value[kind])


def equal(left: AttributeValue, right: AttributeValue) -> bool:
    """DynamoDB equality: same type and same value (numbers exactly, sets unordered)."""
    kind = type_of(left)
    if kind != type_of(right):
        return False
    if kind in ("S", "N", "B"):
        return _scalar(kind, left[kind]) == _scalar(kind, right[kind])
    if kind in SET_TYPES:
        return set_members(left) == set_members(right)
    if kind == "L":
        return len(left["L"]) == len(right["L"]) and all(
            equal(a, b) for a, b in zip(left["L"], right["L"])
        )
    if kind == "M":
        return left["M"].keys() == right["M"].keys() and all(
            equal(v, right["M"][k]) for k, v in left["M"].items()
        )
    return bool(left[kind] == right[kind])


def compare(left: AttributeValue, right: AttributeValue) -> int | None:
    """-1, 0 or 1 for two S, N or B values of one type; None when not comparable."""
    kind = type_of(left)
    if kind != type_of(right) or kind not in ("S", "N", "B"):
        return None
    if kind == "N":
        x, y = parse_number(left["N"]), parse_number(right["N"])
        return (x > y) - (x < y)
    a, b = _bytes(kind, left[kind]), _bytes(kind, right[kind])
    return (a > b) - (a < b)


def _bytes(kind: str, inner: Any) -> bytes:
    """Strings order by their UTF-8 bytes, binary by bytes."""
    return str(inner).encode("utf-8") if kind == "S" else decode_binary(inner)


def size(value: AttributeValue) -> int | None:
    """The `size()` of a value: characters, bytes or elements; None for N, BOOL, NULL."""
    kind = type_of(value)
    if kind == "S":
        return len(value["S"])
    if kind == "B":
        return len(decode_binary(value["B"]))
    if kind in ("L", "M") or kind in SET_TYPES:
        return len(value[kind])
    return None


def sort_key_bytes(value: AttributeValue) -> bytes:
    """Bytes of an S, N or B key value whose bytewise order is DynamoDB's order.

    S is its UTF-8 bytes and B its raw bytes.  N is a sign byte (01 negative,
    02 zero, 03 positive), then the adjusted exponent as two bytes and one byte
    per significant digit; for negatives exponent and digits are inverted and a
    final FF makes a shorter digit string sort after its extensions.
    """
    kind = type_of(value)
    if kind == "S":
        return str(value["S"]).encode("utf-8")
    if kind == "B":
        return decode_binary(value["B"])
    if kind != "N":
        raise ValidationError(f"{_INVALID}Key attributes must be of type S, N or B; got {kind}")
    return _number_key(parse_number(value["N"]))


def _number_key(number: Decimal) -> bytes:
    """The order-preserving encoding of a canonical decimal (see sort_key_bytes)."""
    if number.is_zero():
        return b"\x02"
    sign, digits, _ = number.as_tuple()
    exponent = number.adjusted() + 0x8000
    if not sign:
        return b"\x03" + exponent.to_bytes(2, "big") + bytes(d + 1 for d in digits)
    inverted = (0xFFFF - exponent).to_bytes(2, "big")
    return b"\x01" + inverted + bytes(10 - d for d in digits) + b"\xff"
