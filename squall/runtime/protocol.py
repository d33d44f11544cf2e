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

Messages (header `t` field), in the order they happen:

  platform -> instance  init     {spec...}                     once, first
  instance -> platform  ready    {init_ms}                     handler imported
                        init_error {init_ms} + error payload   then the instance exits
  platform -> instance  invoke   {id, deadline_ms, ...} + event JSON
  instance -> platform  result   {ok, duration_ms, max_rss_kb} + result JSON or error object

An instance serves one invocation at a time and never writes between them.

Frames from an instance are bounded: the node reads a frame's two lengths first and
refuses (kills the instance) a header over MAX_HEAD_BYTES or a payload over
MAX_PAYLOAD_BYTES before it reads, let alone buffers, a byte of either.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import orjson

NONCE_SIZE = 16
LENGTHS = struct.Struct(">II")
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""The largest payload of an instance -> platform frame: Lambda's response limit (6 MB)."""
MAX_HEAD_BYTES = 64 * 1024
"""The largest JSON header of an instance -> platform frame (a real one is under 200 bytes)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded message: a small JSON header and a raw payload (usually JSON)."""

    header: dict[str, Any]
    payload: bytes = b""

    @property
    def kind(self) -> str:
        return str(self.header.get("t", ""))


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


def decode_frame(head: bytes | bytearray | memoryview, payload: bytes) -> Frame:
    return Frame(orjson.loads(head), payload)
