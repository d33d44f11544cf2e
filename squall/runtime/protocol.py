"""The platform <-> instance wire protocol (see docs/internals.md, "Instance protocol").

Two byte streams connect the platform to one instance process:

* platform -> instance (the child's stdin pipe, moved to a private fd):
  frames of `>II` (header length, payload length), a JSON header, the payload.
* instance -> platform (the child's stdout pipe; fd 1 and fd 2 both write to it):
  whatever the function prints, with frames embedded. A frame starts with a
  per-instance random marker (`nonce`, 16 bytes, given in the `init` frame), then
  the same `>II` + header + payload layout. Bytes outside frames are log output.
  Because output and frames share one pipe, the logs of an invocation always
  arrive before its result frame.

Every message is a frozen dataclass below, built and read by both sides. Its header is
`{"t": TAG, field: value, ...}` with every field but the one named by `PAYLOAD`, which
travels as the frame's payload. In the order they happen:

  platform -> instance  Init        init         once, first
  instance -> platform  Ready       ready        handler imported, initializer run
                        InitFailed  init_failed  + Lambda error object; then the instance exits
  platform -> instance  Invoke      invoke       + event JSON
  instance -> platform  Result      result       + result JSON or Lambda error object;
                                                 `exiting`: the instance exits after it
  platform -> instance  Shutdown    shutdown     to an idle instance with a shutdown hook
  instance -> platform  Bye         bye          the hook has run; the instance exits

An instance serves one invocation at a time and never writes between them. A frame that
is none of these (unknown `t`, a field missing, unknown or of the wrong type, a payload on
a message without one) raises ProtocolError, which names the message and the field.

Frames from an instance are bounded: the node reads a frame's two lengths first and
refuses (kills the instance) a header over MAX_HEAD_BYTES or a payload over
MAX_PAYLOAD_BYTES before it reads, let alone buffers, a byte of either.

The node's messages to and from its zygotes use the same frames and machinery
(squall/runtime/zygote_protocol.py).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self, TypeVar

import orjson

NONCE_SIZE = 16
LENGTHS = struct.Struct(">II")
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""The largest payload of an instance -> platform frame: Lambda's response limit (6 MB)."""
MAX_HEAD_BYTES = 64 * 1024
"""The largest JSON header of an instance -> platform frame (a real one is under 200 bytes)."""


# -- framing -------------------------------------------------------------------
class ProtocolError(ValueError):
    """A frame that is not a message of its protocol. `message` is the tag of the message it
    was read as (None when not even that is known), `field` the field at fault, if one is."""

    def __init__(self, message: str | None, field: str | None, problem: str) -> None:
        what = f"{message} frame" if message else "frame"
        super().__init__(f"invalid {what}: " + (f"field {field!r} {problem}" if field else problem))
        self.message = message
        self.field = field


def encode_frame(header: dict[str, Any], payload: bytes = b"", marker: bytes = b"") -> bytes:
    """Serialize a frame; `marker` is the nonce for instance -> platform frames."""
    head = orjson.dumps(header)
    return b"".join((marker, LENGTHS.pack(len(head), len(payload)), head, payload))


def decode_lengths(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Header and payload lengths from the first 8 bytes of a frame."""
    head_len, payload_len = LENGTHS.unpack(bytes(data[: LENGTHS.size]))
    return head_len, payload_len


class FrameTooLarge(Exception):
    """An instance announced a frame over the limits: its bytes are not read."""

    def __init__(self, head_len: int, payload_len: int) -> None:
        super().__init__(f"frame of {head_len} + {payload_len} bytes, over the limits of "
                         f"{MAX_HEAD_BYTES} + {MAX_PAYLOAD_BYTES}")
        self.head_len = head_len
        self.payload_len = payload_len


def check_lengths(head_len: int, payload_len: int) -> None:
    """Raise FrameTooLarge unless both lengths of an instance's frame are within the limits."""
    if head_len > MAX_HEAD_BYTES or payload_len > MAX_PAYLOAD_BYTES:
        raise FrameTooLarge(head_len, payload_len)


def split_frame(data: bytes, marker: bytes = b"") -> tuple[bytes, bytes]:
    """(header, payload) of one whole frame, `marker` first; ProtocolError if it is not one."""
    if not data.startswith(marker):
        raise ProtocolError(None, None, "does not start with its marker")
    body = data[len(marker):]
    if len(body) < LENGTHS.size:
        raise ProtocolError(None, None, f"is {len(body)} bytes, too short for its two lengths")
    head_len, payload_len = decode_lengths(body)
    if LENGTHS.size + head_len + payload_len != len(body):
        raise ProtocolError(None, None, f"announces {head_len} + {payload_len} bytes but has "
                                        f"{len(body) - LENGTHS.size}")
    end = LENGTHS.size + head_len
    return body[LENGTHS.size:end], body[end:]


# -- messages ------------------------------------------------------------------
Check = Callable[[Any], Any]
"""Returns a header value as its field holds it, or raises TypeError naming what it should be."""


def _str(value: Any) -> str:
    if type(value) is str:
        return value
    raise TypeError("a string")


def _int(value: Any) -> int:
    if type(value) is int:  # not a bool
        return value
    raise TypeError("an integer")


def _float(value: Any) -> float:
    if type(value) is float or type(value) is int:  # not a bool
        return float(value)
    raise TypeError("a number")


def _bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise TypeError("true or false")


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError("a string or null")


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise TypeError("a list of strings")


def _string_map(value: Any) -> dict[str, str]:
    if isinstance(value, dict) and all(isinstance(item, str) for item in value.values()):
        return value
    raise TypeError("an object of strings")


def _object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise TypeError("an object")


CHECKS: dict[str, Check] = {
    "str": _str, "int": _int, "float": _float, "bool": _bool, "str | None": _optional_str,
    "tuple[str, ...]": _strings, "dict[str, str]": _string_map, "dict[str, Any]": _object,
}
"""How a header field of each annotated type is read (a message field of another type is
refused when its class is defined)."""


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


class Message:
    """What every message has: a tag, header fields, perhaps a payload field."""

    __slots__ = ()
    TAG: ClassVar[str]
    PAYLOAD: ClassVar[str] = ""
    """The field that travels as the frame's payload (bytes); empty: the message has none."""
    HEADER_FIELDS: ClassVar[tuple[tuple[str, Check], ...]] = ()
    HEADER_KEYS: ClassVar[frozenset[str]] = frozenset({"t"})

    def header(self) -> dict[str, Any]:
        head: dict[str, Any] = {"t": self.TAG}
        for name, _check in self.HEADER_FIELDS:
            head[name] = getattr(self, name)
        return head

    def to_bytes(self, marker: bytes = b"") -> bytes:
        """The whole frame; `marker` is the instance's nonce on frames it sends."""
        return encode_frame(self.header(), getattr(self, self.PAYLOAD) if self.PAYLOAD else b"", marker)

    @classmethod
    def from_bytes(cls, data: bytes, marker: bytes = b"") -> Self:
        """The message in one whole frame, which must be of this class."""
        head, payload = split_frame(data, marker)
        header = load_header(head)
        if header["t"] != cls.TAG:
            raise ProtocolError(cls.TAG, "t", f"is {header['t']!r}")
        return cls.from_header(header, payload)

    @classmethod
    def from_header(cls, header: Mapping[str, Any], payload: bytes = b"") -> Self:
        """The message whose decoded header (tag included) and payload these are. A number
        may come as an integer, a tuple as a list; anything else amiss raises ProtocolError."""
        values = []
        for name, check in cls.HEADER_FIELDS:
            try:
                value = header[name]
            except KeyError:
                raise ProtocolError(cls.TAG, name, "is missing") from None
            try:
                values.append(check(value))
            except TypeError as exc:
                raise ProtocolError(cls.TAG, name, f"must be {exc}, not {_kind(value)}") from None
        if header.keys() != cls.HEADER_KEYS:  # every field is there: one is unknown, or `t` is missing
            unknown = sorted(set(header) - cls.HEADER_KEYS)
            if not unknown:
                raise ProtocolError(cls.TAG, "t", "is missing")
            raise ProtocolError(cls.TAG, unknown[0], "is not a field of this message")
        if cls.PAYLOAD:
            values.append(payload)  # the last field (see wire_message)
        elif payload:
            raise ProtocolError(cls.TAG, None, f"has no payload, got {len(payload)} bytes")
        return cls(*values)


M = TypeVar("M", bound=Message)


def wire_message(cls: type[M]) -> type[M]:
    """Class decorator (outside @dataclass): read the fields' annotations into HEADER_FIELDS
    and HEADER_KEYS."""
    every = fields(cls)  # type: ignore[arg-type]
    if cls.PAYLOAD and every[-1].name != cls.PAYLOAD:
        raise TypeError(f"{cls.__name__}: the payload field {cls.PAYLOAD!r} must be the last field")
    cls.HEADER_FIELDS = tuple((f.name, CHECKS[str(f.type)]) for f in every if f.name != cls.PAYLOAD)
    cls.HEADER_KEYS = frozenset({"t", *(name for name, _check in cls.HEADER_FIELDS)})
    return cls


def load_header(head: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A frame's header as a dict with a string `t`, or ProtocolError."""
    try:
        header = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(None, None, f"header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ProtocolError(None, None, f"header is {_kind(header)}, not an object")
    if not isinstance(header.get("t"), str):
        raise ProtocolError(None, "t", "(the message's tag) is missing or not a string")
    return header


def decode(head: bytes | bytearray | memoryview, payload: bytes, kinds: Mapping[str, type[M]],
           sender: str) -> M:
    """The message of a frame from `sender`, one of `kinds` (by tag)."""
    header = load_header(head)
    kind = kinds.get(header["t"])
    if kind is None:
        raise ProtocolError(None, "t", f"is {header['t']!r}, not a message {sender} sends "
                                       f"({', '.join(kinds)})")
    return kind.from_header(header, payload)


@wire_message
@dataclass(frozen=True, slots=True)
class Init(Message):
    """What an instance needs to import and run the handler; the first frame it reads."""

    TAG: ClassVar[str] = "init"
    nonce: str
    """The marker that starts every frame the instance sends."""
    function: str
    version: str
    handler: str
    """`module.function`."""
    code_dir: str
    memory: int
    """MB, as the context reports it."""
    environ: dict[str, str]
    """The instance's whole environment."""
    sys_path: tuple[str, ...]
    """Folders put first on the import path."""
    log_group: str
    log_stream: str
    sandbox: dict[str, Any]
    """Settings of squall/runtime/sandbox.py; empty: none."""
    initializer: str | None
    """`module.function` called as `hook(context)` after the import, before `ready`."""
    shutdown: str | None
    """`module.function` called as `hook(context)` on a `shutdown` frame."""
    deadline_ms: int
    """When the init times out (ms since the epoch): the initializer's context's deadline."""
    arn: str
    """The function's ARN: what the initializer and the shutdown hook see as
    `invoked_function_arn`."""


@wire_message
@dataclass(frozen=True, slots=True)
class Ready(Message):
    """The handler is imported and the initializer has run: the instance takes invocations."""

    TAG: ClassVar[str] = "ready"
    init_ms: float


@wire_message
@dataclass(frozen=True, slots=True)
class InitFailed(Message):
    """The import, the sandbox or the initializer failed; the instance exits after this."""

    TAG: ClassVar[str] = "init_failed"
    PAYLOAD: ClassVar[str] = "error"
    init_ms: float
    error: bytes = b""
    """Lambda's error object, JSON."""


@wire_message
@dataclass(frozen=True, slots=True)
class Invoke(Message):
    """Run the handler once on `event`."""

    TAG: ClassVar[str] = "invoke"
    PAYLOAD: ClassVar[str] = "event"
    request_id: str
    deadline_ms: int
    """When the invocation times out (ms since the epoch)."""
    arn: str
    """The ARN the call was made with: the context's `invoked_function_arn`."""
    version: str = "$LATEST"
    """The context's `function_version`: `$LATEST` for an unqualified call, else the number."""
    trace_id: str = ""
    """The call's X-Ray trace header, the instance's `_X_AMZN_TRACE_ID` while it runs."""
    client_context: str | None = None
    """The caller's client context, JSON (Invoke's X-Amz-Client-Context, decoded)."""
    event: bytes = b""
    """The event, JSON (empty: None)."""


@wire_message
@dataclass(frozen=True, slots=True)
class Result(Message):
    """How an invocation ended."""

    TAG: ClassVar[str] = "result"
    PAYLOAD: ClassVar[str] = "payload"
    ok: bool
    duration_ms: float
    max_rss_kb: int
    """The instance's peak resident memory so far."""
    exiting: bool = False
    """The handler called sys.exit(): the instance exits after this frame."""
    payload: bytes = b""
    """The handler's result, JSON, or Lambda's error object when not `ok`."""


@wire_message
@dataclass(frozen=True, slots=True)
class Shutdown(Message):
    """Run the shutdown hook (the instance is idle), answer `bye` and exit."""

    TAG: ClassVar[str] = "shutdown"
    deadline_ms: int
    """The hook's context's deadline (ms since the epoch); the node kills it then."""


@wire_message
@dataclass(frozen=True, slots=True)
class Bye(Message):
    """The shutdown hook has run (or failed, its traceback logged); the instance exits."""

    TAG: ClassVar[str] = "bye"


NodeMessage = Init | Invoke | Shutdown
InstanceMessage = Ready | InitFailed | Result | Bye
FROM_NODE: dict[str, type[NodeMessage]] = {m.TAG: m for m in (Init, Invoke, Shutdown)}
FROM_INSTANCE: dict[str, type[InstanceMessage]] = {m.TAG: m for m in (Ready, InitFailed, Result, Bye)}


def from_node(head: bytes | bytearray | memoryview, payload: bytes) -> NodeMessage:
    """The message of a frame the node sent (read by the instance)."""
    return decode(head, payload, FROM_NODE, "the node")


def from_instance(head: bytes | bytearray | memoryview, payload: bytes) -> InstanceMessage:
    """The message of a frame an instance sent (read by the node)."""
    return decode(head, payload, FROM_INSTANCE, "an instance")
