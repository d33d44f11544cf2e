"""Unit tests of squall.tables.values: validation, ordering, size() and key bytes."""

from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.tables.errors import ConditionalCheckFailed, TableError, ValidationError
from squall.tables.values import (
    arithmetic, canonical, compare, equal, format_number, parse_number, size, sort_key_bytes, validate,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_errors_carry_aws_codes() -> None:
    assert ValidationError("x").code == "ValidationException"
    assert ValidationError("x").message == "x"
    assert ConditionalCheckFailed().code == "ConditionalCheckFailedException"
    assert isinstance(ConditionalCheckFailed(), TableError)


@pytest.mark.parametrize(
    "value",
    [
        {"S": ""}, {"S": "x"}, {"N": "12.5"}, {"N": "-1e-130"}, {"B": b64(b"\x00\xff")},
        {"BOOL": False}, {"NULL": True}, {"L": [{"S": "a"}, {"N": "1"}]},
        {"M": {"a": {"M": {"b": {"L": []}}}}}, {"SS": ["a", "b"]}, {"NS": ["1", "2.5"]},
        {"BS": [b64(b"a")]},
    ],
)
def test_valid_values(value: dict[str, object]) -> None:
    assert validate(value) is value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({}, "Supplied AttributeValue is empty"),
        ({"S": "a", "N": "1"}, "more than one datatypes"),
        ({"X": "a"}, "Supplied AttributeValue is empty"),
        ({"N": "abc"}, "cannot be converted to a numeric value: abc"),
        ({"N": "NaN"}, "numeric value"),
        ({"N": "1_000"}, "numeric value"),
        ({"N": "1" * 39}, "more than 38 significant digits"),
        ({"N": "1e126"}, "Number overflow"),
        ({"N": "1e-131"}, "Number underflow"),
        ({"B": "!!"}, "base64"),
        ({"NULL": False}, "Null attribute value types must have the value of true"),
        ({"BOOL": "true"}, "Boolean"),
        ({"SS": []}, "An string set  may not be empty"),
        ({"NS": []}, "An number set  may not be empty"),
        ({"SS": ["a", "a"]}, "contains duplicates"),
        ({"NS": ["1", "1.0"]}, "contains duplicates"),
        ({"L": [{"N": "x"}]}, "numeric value"),
        ({"M": {"a": {}}}, "Supplied AttributeValue is empty"),
    ],
)
def test_invalid_values(value: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        validate(value)


def test_numbers_are_canonical_and_exact() -> None:
    assert format_number(parse_number("1.50")) == "1.5"
    assert format_number(parse_number("1e2")) == "100"
    assert format_number(parse_number("-0.0")) == "0"
    assert format_number(parse_number("0.000123")) == "0.000123"
    assert parse_number("9" * 38) == Decimal("9" * 38)
    assert parse_number("1" + "0" * 50) == Decimal("1e50")


def test_canonical_rewrites_numbers_everywhere() -> None:
    value = {"M": {"n": {"N": "1.50"}, "l": {"L": [{"N": "1e2"}, {"S": "1.50"}]}, "ns": {"NS": ["0.0", "-2E0"]}}}
    assert canonical(value) == {
        "M": {"n": {"N": "1.5"}, "l": {"L": [{"N": "100"}, {"S": "1.50"}]}, "ns": {"NS": ["0", "-2"]}}
    }
    assert value["M"]["n"] == {"N": "1.50"}
    with pytest.raises(ValidationError):
        canonical({"N": "x"})


def test_arithmetic_is_exact_to_38_digits() -> None:
    assert arithmetic(Decimal("0.1"), Decimal("0.2")) == Decimal("0.3")
    assert arithmetic(Decimal(5), Decimal(7), subtract=True) == Decimal(-2)
    with pytest.raises(ValidationError, match="38 significant digits"):
        arithmetic(Decimal("1e37"), Decimal("0.1"))


def test_equality() -> None:
    assert equal({"N": "1"}, {"N": "1.00"})
    assert not equal({"N": "1"}, {"S": "1"})
    assert equal({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    assert equal({"NS": ["1", "2"]}, {"NS": ["2.0", "1"]})
    assert not equal({"L": [{"S": "a"}, {"S": "b"}]}, {"L": [{"S": "b"}, {"S": "a"}]})
    assert equal({"M": {"a": {"N": "1"}}}, {"M": {"a": {"N": "1.0"}}})
    assert not equal({"M": {"a": {"N": "1"}}}, {"M": {"b": {"N": "1"}}})
    assert equal({"BOOL": True}, {"BOOL": True})
    assert equal({"NULL": True}, {"NULL": True})
    assert equal({"B": b64(b"ab")}, {"B": b64(b"ab")})


def test_ordering() -> None:
    assert compare({"N": "10"}, {"N": "9"}) == 1
    assert compare({"N": "-10"}, {"N": "-9"}) == -1
    assert compare({"N": "1.0"}, {"N": "1"}) == 0
    assert compare({"S": "Z"}, {"S": "a"}) == -1
    assert compare({"S": "\uffff"}, {"S": "\U0001f600"}) == -1  # UTF-8 bytes, not UTF-16
    assert compare({"B": b64(b"\x01")}, {"B": b64(b"\x01\x00")}) == -1
    assert compare({"S": "1"}, {"N": "1"}) is None
    assert compare({"BOOL": True}, {"BOOL": False}) is None
    assert compare({"L": []}, {"L": []}) is None


def test_size() -> None:
    assert size({"S": "héllo"}) == 5
    assert size({"B": b64(b"abc")}) == 3
    assert size({"SS": ["a", "b"]}) == 2
    assert size({"L": [{"NULL": True}]}) == 1
    assert size({"M": {}}) == 0
    assert size({"N": "1"}) is None
    assert size({"BOOL": True}) is None


def test_sort_key_bytes_rejects_non_key_types() -> None:
    with pytest.raises(ValidationError):
        sort_key_bytes({"BOOL": True})


def test_sort_key_bytes_examples() -> None:
    numbers = ["-1e125", "-100", "-10", "-9.99", "-1.23", "-1.2", "-1", "-0.5", "-1e-130",
               "0", "1e-130", "0.5", "1", "1.2", "1.23", "9.99", "10", "100", "9.9e125"]
    keys = [sort_key_bytes({"N": n}) for n in numbers]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    assert sort_key_bytes({"N": "1.0"}) == sort_key_bytes({"N": "1"})
    assert sort_key_bytes({"S": "é"}) == "é".encode()


@st.composite
def dynamo_decimals(draw: st.DrawFn) -> Decimal:
    digits = draw(st.integers(min_value=0, max_value=10**38 - 1))
    exponent = draw(st.integers(min_value=-130 - 37, max_value=125 - 37))
    sign = draw(st.sampled_from([1, -1]))
    number = Decimal(sign * digits).scaleb(exponent)
    if number != 0 and not -130 <= number.adjusted() <= 125:
        number = Decimal(sign * digits)
    return number


def _key(number: Decimal) -> bytes:
    return sort_key_bytes({"N": format(number, "f") if number.adjusted() < 30 else str(number)})


@settings(max_examples=500)
@given(dynamo_decimals(), dynamo_decimals())
def test_number_key_order_equals_decimal_order(a: Decimal, b: Decimal) -> None:
    ka, kb = _key(a), _key(b)
    assert (ka < kb) == (a < b)
    assert (ka == kb) == (a == b)


@given(st.text(), st.text())
def test_string_key_order_equals_utf8_order(a: str, b: str) -> None:
    assert (sort_key_bytes({"S": a}) < sort_key_bytes({"S": b})) == (a.encode() < b.encode())
    assert compare({"S": a}, {"S": b}) == (a.encode() > b.encode()) - (a.encode() < b.encode())


@given(st.binary(), st.binary())
def test_binary_key_order_equals_bytes_order(a: bytes, b: bytes) -> None:
    assert (sort_key_bytes({"B": b64(a)}) < sort_key_bytes({"B": b64(b)})) == (a < b)


@given(dynamo_decimals())
def test_format_number_round_trips(number: Decimal) -> None:
    text = format_number(number)
    assert parse_number(text) == number
    assert "e" not in text.lower()
