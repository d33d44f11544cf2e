"""JSON as Lambda's Python runtime writes and reads it: a handler's result, an error object and
an event, byte for byte what `awslambdaric` (the runtime interface client inside Lambda's
Python runtimes) gives, so that code tested on squall behaves the same on Lambda.

Lambda encodes with simplejson, not the standard library, configured so that:

* a `Decimal` (what boto3 gives for a DynamoDB number) is a JSON number, written as it is
  (`Decimal("1.10")` -> `1.10`), and a NaN Decimal is `NaN`;
* keys that are ints, floats, bools or None become strings (`{200: 5}` -> `{"200": 5}`);
* ints of any size are written whole; `nan` and `inf` are `NaN` and `Infinity`;
* bytes inside a value are decoded as UTF-8 text; tuples are lists and namedtuples objects;
* separators have spaces (`{"a": 1}`); non-ASCII text is escaped (`\\u00e9`) up to
  python3.11, written as UTF-8 from python3.12 on;
* anything else (datetime, set, a class) fails with `Runtime.MarshalError: Unable to marshal
  response: Object of type datetime is not JSON serializable`.

A result that is bytes is not encoded: Lambda passes it on as the payload, as it is. squall
does so for bytes that are UTF-8 text; other bytes fail with `Runtime.MarshalError`, as on
Lambda (its Invoke API answers with text).

Reading takes orjson's fast path and falls back to simplejson for what orjson refuses:
`read_event` reads an event as Lambda's runtime does (integers over 64 bits and lone
surrogates, not `NaN`: `Runtime.UnmarshalError`); `loads` reads a result, `NaN` and
`Infinity` included, since a result may hold them. Encoding always goes through simplejson:
orjson writes no spaces, so its bytes would differ from Lambda's.
"""

from __future__ import annotations

import decimal
import functools
import math
from typing import Any

import orjson
import simplejson
from simplejson.encoder import c_encode_basestring, c_encode_basestring_ascii, c_make_encoder
from simplejson.raw_json import RawJSON

MARSHAL_ERROR = "Runtime.MarshalError"
ASCII_ONLY_UNTIL = (3, 11)
"""The last Python runtime whose results Lambda writes with non-ASCII text escaped."""


class MarshalError(ValueError):
    """A result Lambda's runtime cannot write as JSON; `str()` is Lambda's errorMessage."""

    error_type = MARSHAL_ERROR


class _LambdaEncoder(simplejson.JSONEncoder):
    def __init__(self, ensure_ascii: bool) -> None:
        super().__init__(use_decimal=False, ensure_ascii=ensure_ascii, allow_nan=True)

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return math.nan if o.is_nan() else RawJSON(str(o))
        return super().default(o)


_ENCODERS = {ascii_only: _LambdaEncoder(ascii_only) for ascii_only in (True, False)}


class _FastEncoder:
    """simplejson's C encoder made once, with the settings `_LambdaEncoder` gives it on every
    call (JSONEncoder.encode makes a new one each time: 3.4 us against 1.4 for a small result,
    which an instance pays on every invocation). Made again after a failure, which can leave
    its cycle markers set."""

    def __init__(self, ensure_ascii: bool) -> None:
        self.ensure_ascii = ensure_ascii
        self.encode_one = self._make()

    def _make(self) -> Any:
        if c_make_encoder is None:
            return None
        self.key_memo: dict[Any, Any] = {}
        return c_make_encoder(
            {}, _ENCODERS[self.ensure_ascii].default,
            c_encode_basestring_ascii if self.ensure_ascii else c_encode_basestring, None, ": ", ", ",
            False, False, True, self.key_memo, False, True, True, None, None, "utf-8", False, False,
            decimal.Decimal, False)

    def encode(self, value: Any) -> str:
        if self.encode_one is None or isinstance(value, (str, bytes)):  # simplejson's own shortcut for these
            return _ENCODERS[self.ensure_ascii].encode(value)
        try:
            return "".join(self.encode_one(value, 0))
        except BaseException:
            self.encode_one = self._make()
            raise
        finally:
            self.key_memo.clear()


_FAST = {ascii_only: _FastEncoder(ascii_only) for ascii_only in (True, False)}


@functools.lru_cache(maxsize=16)
def ascii_only(runtime: str) -> bool:
    """Whether Lambda escapes non-ASCII text in the results of `runtime` ("python3.11", ...)."""
    try:
        version = tuple(int(part) for part in runtime.removeprefix("python").split("."))
    except ValueError:
        return True
    return version <= ASCII_ONLY_UNTIL


def dumps(value: Any, *, ensure_ascii: bool = True) -> bytes:
    """`value` as Lambda's runtime encodes a result or an error object; MarshalError if it
    cannot be (the message is Lambda's)."""
    try:
        return _FAST[ensure_ascii].encode(value).encode("utf-8")
    except Exception as exc:  # noqa: BLE001 - whatever the encoder raises is Lambda's marshal error
        raise MarshalError(f"Unable to marshal response: {exc}") from None


def marshal_result(value: Any, *, ensure_ascii: bool = True) -> bytes:
    """A handler's return value as the invocation's payload: bytes as they are (UTF-8 text
    only), anything else encoded by `dumps`."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MarshalError(f"Unable to marshal response: {exc}") from None
        return data
    return dumps(value, ensure_ascii=ensure_ascii)


def read_event(data: bytes | str) -> Any:
    """An event as Lambda's runtime reads it; ValueError if it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return simplejson.loads(data)


def loads(data: bytes | str) -> Any:
    """A result as `dumps` or `marshal_result` wrote it; ValueError if it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return simplejson.loads(data, allow_nan=True)
