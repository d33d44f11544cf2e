"""Plain Python values <-> DynamoDB typed values (squall.sdk.table_values), as the SDK and the
CLI convert them: round trips, numbers, sets, bytes, nesting and the errors."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.sdk.table_values import from_typed, from_typed_item, to_number_text, to_typed, to_typed_item

numbers = st.one_of(
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(lambda d: d.is_finite()),
)
scalars = st.one_of(st.text(), numbers, st.binary(), st.booleans(), st.none())
sets = st.one_of(st.frozensets(st.text(), min_size=1), st.frozensets(st.binary(), min_size=1),
                 st.frozensets(st.integers(), min_size=1))
plain = st.recursive(
    st.one_of(scalars, sets),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(st.text(), children, max_size=4)),
    max_leaves=20,
)
typed_scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text()),
    st.builds(lambda n: {"N": str(n)}, st.integers()),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda s: {"SS": sorted(s)}, st.frozensets(st.text(), min_size=1)),
)
typed = st.recursive(
    typed_scalars,
    lambda children: st.one_of(st.builds(lambda items: {"L": items}, st.lists(children, max_size=4)),
                               st.builds(lambda m: {"M": m}, st.dictionaries(st.text(), children, max_size=4))),
    max_leaves=20,
)


def normal(value: Any) -> Any:
    """`value` as a table gives it back: numbers as Decimal, tuples as lists, frozensets as sets
    (booleans kept apart from numbers, which they equal in Python)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, (set, frozenset)):
        return {normal(v) for v in value}
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    return value


@given(plain)
def test_plain_values_survive_a_round_trip(value: Any) -> None:
    assert normal(from_typed(to_typed(value))) == normal(value)


@given(typed)
def test_typed_values_survive_a_round_trip(value: dict[str, Any]) -> None:
    assert to_typed(from_typed(value)) == value


@given(numbers)
def test_numbers_come_back_as_exact_decimals(number: int | Decimal) -> None:
    back = from_typed(to_typed(number))
    assert isinstance(back, Decimal) and back == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_is_stored_as_its_shortest_text_and_reads_back_equal(number: float) -> None:
    text = to_typed(number)["N"]
    assert Decimal(text) == Decimal(repr(number))
    assert float(from_typed({"N": text})) == number


def test_scalars_map_to_their_dynamodb_types() -> None:
    assert to_typed("x") == {"S": "x"}
    assert to_typed("") == {"S": ""}
    assert to_typed(12) == {"N": "12"}
    assert to_typed(Decimal("1.50")) == {"N": "1.50"}
    assert to_typed(0.1) == {"N": "0.1"}
    assert to_typed(10**40) == {"N": str(10**40)}
    assert to_typed(b"\x00\xff") == {"B": "AP8="}
    assert to_typed(bytearray(b"hi")) == {"B": "aGk="}
    assert to_typed(memoryview(b"hi")) == {"B": "aGk="}
    assert to_typed(True) == {"BOOL": True}
    assert to_typed(False) == {"BOOL": False}
    assert to_typed(None) == {"NULL": True}


def test_booleans_are_not_numbers() -> None:
    assert to_typed([True, 1]) == {"L": [{"BOOL": True}, {"N": "1"}]}
    with pytest.raises(TypeError):
        to_number_text(True)


def test_containers_nest() -> None:
    value = {"tags": ["a", {"deep": (1, None)}], "meta": {}}
    assert to_typed(value) == {"M": {
        "tags": {"L": [{"S": "a"}, {"M": {"deep": {"L": [{"N": "1"}, {"NULL": True}]}}}]},
        "meta": {"M": {}},
    }}
    assert from_typed(to_typed(value)) == {"tags": ["a", {"deep": [Decimal(1), None]}], "meta": {}}


def test_sets_are_sorted_typed_and_deduplicated() -> None:
    assert to_typed({"b", "a"}) == {"SS": ["a", "b"]}
    assert to_typed(frozenset({b"b", b"a"})) == {"BS": ["YQ==", "Yg=="]}
    assert to_typed({10, 2, Decimal("2.5")}) == {"NS": ["2", "2.5", "10"]}
    assert to_typed({Decimal("1.0"), 0.1, Decimal("0.1")})["NS"] in (["0.1", "1.0"], ["0.1", "1"])
    assert from_typed({"NS": ["1", "2.5"]}) == {Decimal(1), Decimal("2.5")}
    assert from_typed({"SS": ["a"]}) == {"a"}
    assert from_typed({"BS": ["YQ=="]}) == {b"a"}


@pytest.mark.parametrize("empty", [set(), frozenset()])
def test_an_empty_set_is_an_error(empty: set[Any]) -> None:
    with pytest.raises(ValueError, match="empty set"):
        to_typed_item({"tags": empty})


def test_a_mixed_set_is_an_error() -> None:
    with pytest.raises(TypeError, match="only strings, only numbers or only bytes"):
        to_typed({"a", 1})
    with pytest.raises(TypeError):
        to_typed({True})


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf, Decimal("NaN"), Decimal("Infinity")])
def test_numbers_must_be_finite(number: float | Decimal) -> None:
    with pytest.raises(ValueError, match="finite"):
        to_typed(number)


def test_an_unsupported_type_names_where_it_is() -> None:
    with pytest.raises(TypeError, match=r"item\['when'\]\[1\]: datetime cannot be stored"):
        to_typed_item({"when": [1, datetime.datetime(2024, 1, 1)]})
    with pytest.raises(TypeError, match="attribute names are strings"):
        to_typed_item({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="expected a dict"):
        to_typed_item(["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [
    {}, {"S": "a", "N": "1"}, {"X": 1}, {"S": 1}, {"N": "one"}, {"N": "NaN"}, {"N": 1}, {"B": "not base64!"},
    {"BOOL": "yes"}, {"NULL": False}, {"L": {}}, {"M": []}, {"SS": [1]}, "S", None,
])
def test_malformed_typed_values_are_errors(bad: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        from_typed(bad)


def test_typed_items_convert_by_attribute() -> None:
    item = {"id": {"S": "a1"}, "n": {"N": "-0.5"}, "raw": {"B": "aGk="}}
    assert from_typed_item(item) == {"id": "a1", "n": Decimal("-0.5"), "raw": b"hi"}
    assert to_typed_item(from_typed_item(item)) == item
