"""squall/lambda_json.py against Lambda's own Python runtime (awslambdaric's LambdaMarshaller,
from PyPI): the same bytes for every result it can write, the same error for every one it
cannot."""

from __future__ import annotations

import collections
import datetime
import decimal
import enum
import math
import uuid
from typing import Any

import pytest
from awslambdaric.lambda_runtime_exception import FaultException
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

from squall import lambda_json
from squall.lambda_json import MarshalError, ascii_only, dumps, loads, marshal_result, read_event

Point = collections.namedtuple("Point", "x y")


class Color(enum.IntEnum):
    RED = 1


class Mode(str, enum.Enum):
    FAST = "fast"


class Custom:
    pass


# (what a handler returns, what Lambda's python3.11 runtime writes); None: a marshal error.
CASES: list[tuple[str, Any, str | None]] = [
    ("a DynamoDB number", {"price": decimal.Decimal("1.10")}, '{"price": 1.10}'),
    ("a huge Decimal", decimal.Decimal("1e400"), "1E+400"),
    ("a NaN Decimal", decimal.Decimal("NaN"), "NaN"),
    ("int keys", {200: 5, 404: 1}, '{"200": 5, "404": 1}'),
    ("float, bool and None keys", {1.5: 1, True: 2, None: 3}, '{"1.5": 1, "true": 2, "null": 3}'),
    ("an int over 64 bits", {"big": 2**64}, '{"big": 18446744073709551616}'),
    ("NaN", float("nan"), "NaN"),
    ("infinities", [math.inf, -math.inf], "[Infinity, -Infinity]"),
    ("negative zero", -0.0, "-0.0"),
    ("a float", 0.1, "0.1"),
    ("bytes inside a value", {"body": b"aGVsbG8=", "isBase64Encoded": True},
     '{"body": "aGVsbG8=", "isBase64Encoded": true}'),
    ("a tuple", (1, "two"), '[1, "two"]'),
    ("a namedtuple", Point(1, 2), '{"x": 1, "y": 2}'),
    ("an IntEnum", Color.RED, "1"),
    ("a str Enum", Mode.FAST, '"fast"'),
    ("non-ASCII text", {"k": "é☃😀"}, '{"k": "\\u00e9\\u2603\\ud83d\\ude00"}'),
    ("a string", "hello", '"hello"'),
    ("None", None, "null"),
    ("nested", {"a": [1, {"b": None}], "c": False}, '{"a": [1, {"b": null}], "c": false}'),
    ("a datetime", datetime.datetime(2026, 1, 1), None),
    ("a date", datetime.date(2026, 1, 1), None),
    ("a set", {1, 2}, None),
    ("a UUID", uuid.UUID(int=1), None),
    ("an object", Custom(), None),
    ("bytes that are not UTF-8, inside a value", {"b": b"\xff"}, None),
    ("a tuple key", {(1, 2): 3}, None),
]


def lambda_writes(value: Any) -> str | FaultException:
    try:
        encoded, _content_type = LambdaMarshaller().marshal_response(value)
    except FaultException as fault:
        return fault
    return encoded


@pytest.mark.parametrize(("value", "expected"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_result_is_written_as_lambdas_runtime_writes_it(value: Any, expected: str | None) -> None:
    reference = lambda_writes(value)
    if expected is None:
        assert isinstance(reference, FaultException) and reference.exception_type == "Runtime.MarshalError"
        with pytest.raises(MarshalError) as raised:
            marshal_result(value)
        assert str(raised.value) == reference.msg  # "Unable to marshal response: Object of type ..."
        assert raised.value.error_type == "Runtime.MarshalError"
    else:
        assert reference == expected
        assert marshal_result(value) == expected.encode()


def test_python_3_12_and_later_write_text_as_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12")
    value = {"k": "é☃😀", "n": decimal.Decimal("2.50")}

    assert marshal_result(value, ensure_ascii=False) == lambda_writes(value).encode()  # type: ignore[union-attr]
    assert marshal_result(value, ensure_ascii=False) == '{"k": "é☃😀", "n": 2.50}'.encode()


@pytest.mark.parametrize(("runtime", "escaped"), [("python3.9", True), ("python3.11", True), ("python3.12", False),
                                                  ("python3.13", False), ("nonsense", True)])
def test_which_runtimes_escape_non_ascii(runtime: str, escaped: bool) -> None:
    assert ascii_only(runtime) is escaped


def test_a_bytes_result_is_the_payload_as_it_is_when_it_is_text() -> None:
    assert marshal_result(b'{"already": "json"}') == b'{"already": "json"}'
    assert marshal_result(bytearray(b"plain text")) == b"plain text"
    assert lambda_writes(b"plain text") == b"plain text"  # Lambda passes bytes on untouched


def test_a_bytes_result_that_is_not_text_is_a_marshal_error() -> None:
    with pytest.raises(MarshalError, match="Unable to marshal response: 'utf-8' codec can't decode byte 0x89"):
        marshal_result(b"\x89PNG\r\n\x1a\n")


def test_error_objects_are_written_with_lambdas_spacing() -> None:
    error = {"errorMessage": "boom", "errorType": "ValueError", "requestId": "r-1", "stackTrace": []}

    assert dumps(error) == b'{"errorMessage": "boom", "errorType": "ValueError", "requestId": "r-1", "stackTrace": []}'


@pytest.mark.parametrize(("text", "value"), [
    ('{"a": 1, "b": [true, null]}', {"a": 1, "b": [True, None]}),
    ('{"big": 18446744073709551616}', {"big": 2**64}),
    ('"\\ud800"', "\ud800"),
])
def test_events_are_read_as_lambdas_runtime_reads_them(text: str, value: Any) -> None:
    assert read_event(text.encode()) == value == LambdaMarshaller().unmarshal_request(text)


def test_an_event_with_nan_is_refused_as_lambdas_runtime_refuses_it() -> None:
    with pytest.raises(FaultException, match="Unable to unmarshal input"):
        LambdaMarshaller().unmarshal_request("[NaN]")
    with pytest.raises(ValueError):
        read_event(b"[NaN]")


def test_results_are_read_back_whatever_lambdas_runtime_wrote() -> None:
    value = {"price": decimal.Decimal("1.10"), "n": math.nan, "inf": math.inf, "big": 2**70}
    read = loads(marshal_result(value))
    assert read["price"] == 1.10 and math.isnan(read["n"]) and read["inf"] == math.inf and read["big"] == 2**70


def test_what_is_not_json_is_refused() -> None:
    for text in (b"{", b"not json", b""):
        with pytest.raises(ValueError):
            lambda_json.loads(text)
        with pytest.raises(ValueError):
            read_event(text)
