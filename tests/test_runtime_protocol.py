"""Unit tests of the instance wire protocol and of output collection (no processes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.runtime.output import OutputCollector, parse_line
from squall.runtime.protocol import (
    LENGTHS,
    MAX_HEAD_BYTES,
    MAX_PAYLOAD_BYTES,
    FrameTooLarge,
    check_lengths,
    decode_frame,
    decode_lengths,
    encode_frame,
)
from squall.types import LogLevel

json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=12)


@given(header=st.dictionaries(st.text(max_size=10), json_values, max_size=5), payload=st.binary(max_size=512),
       marker=st.binary(max_size=16))
def test_frames_round_trip(header: dict, payload: bytes, marker: bytes) -> None:
    data = encode_frame(header, payload, marker)
    assert data.startswith(marker)
    body = data[len(marker):]
    head_len, payload_len = decode_lengths(body)
    assert LENGTHS.size + head_len + payload_len == len(body)
    frame = decode_frame(body[LENGTHS.size:LENGTHS.size + head_len], body[LENGTHS.size + head_len:])
    assert frame.header == header and frame.payload == payload


def test_frame_lengths_over_the_limits_are_refused() -> None:
    check_lengths(MAX_HEAD_BYTES, MAX_PAYLOAD_BYTES)
    for head_len, payload_len in ((MAX_HEAD_BYTES + 1, 0), (10, MAX_PAYLOAD_BYTES + 1), (10, 2**32 - 1)):
        with pytest.raises(FrameTooLarge):
            check_lengths(head_len, payload_len)


def test_lambda_formatted_lines_keep_their_level() -> None:
    line = parse_line("[WARNING]\t2026-01-01T00:00:00.000Z\trid\tfirst\rsecond", 1.0)
    assert line.level is LogLevel.WARN
    assert line.message.endswith("first\nsecond")
    assert parse_line("[ERROR]\tx", 1.0).level is LogLevel.ERROR
    assert parse_line("plain print", 1.0).level is LogLevel.INFO


def test_collector_splits_lines_across_chunks() -> None:
    collector = OutputCollector()
    for chunk in (b"hel", b"lo\nwor", b"ld\n", b"tail"):
        collector.feed(chunk)
    assert [line.message for line in collector.finish()] == ["hello", "world", "tail"]
    assert collector.finish() == []


@given(st.lists(st.binary(max_size=300), max_size=30))
def test_collector_caps_output_and_says_so(chunks: list[bytes]) -> None:
    collector = OutputCollector(limit=1000)
    for chunk in chunks:
        collector.feed(chunk)
    lines = collector.finish()
    total = sum(len(c) for c in chunks)
    stored = sum(len(line.message.encode("utf-8", "surrogateescape")) for line in lines
                 if not line.message.startswith("[squall]"))
    assert stored <= 1000 * 3  # replacement characters can widen undecodable bytes
    truncated = any(line.message.startswith("[squall] log output truncated") for line in lines)
    assert truncated == (total > 1000)
