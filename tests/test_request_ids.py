"""Unit tests of squall.request_ids: Lambda-looking ids that sort by creation time, and X-Ray
trace headers."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from squall.request_ids import new_request_id, new_trace_id, trace_id_from

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_an_id_is_a_version_7_uuid_in_the_usual_text_form() -> None:
    text = new_request_id()

    assert UUID_TEXT.fullmatch(text)
    parsed = uuid.UUID(text)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)


def test_the_time_part_is_the_millisecond_given() -> None:
    now_ns = 1_795_000_000_123_456_789

    assert int(new_request_id(now_ns).replace("-", "")[:12], 16) == 1_795_000_000_123


@given(st.integers(0, 2**47), st.integers(1, 2**20))
def test_an_id_made_a_millisecond_later_sorts_later(millis: int, later: int) -> None:
    first = new_request_id(millis * 1_000_000)
    second = new_request_id((millis + later) * 1_000_000)

    assert first < second


def test_ids_are_unique() -> None:
    ids = {new_request_id(1_000_000) for _ in range(10_000)}  # all in the same millisecond

    assert len(ids) == 10_000


TRACE = re.compile(r"Root=1-([0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0")


def test_a_new_trace_id_is_an_x_ray_header_stamped_with_its_second() -> None:
    match = TRACE.fullmatch(new_trace_id(1_795_000_000.9))

    assert match is not None and int(match.group(1), 16) == 1_795_000_000
    assert new_trace_id() != new_trace_id()


@pytest.mark.parametrize("header", ["Root=1-5e1b4151-5ac6c58f5b5dbd6a5e4f8ed6",
                                    "Root=1-5e1b4151-5ac6c58f5b5dbd6a5e4f8ed6;Parent=53995c3f42cd8ad8;Sampled=1"])
def test_an_incoming_trace_header_goes_on(header: str) -> None:
    assert trace_id_from(header) == header


@pytest.mark.parametrize("header", [None, "", "Root=nonsense", "Root=1-5E1B4151-5ac6c58f5b5dbd6a5e4f8ed6",
                                    "Root=1-5e1b4151-5ac6c58f5b5dbd6a5e4f8ed6;" + "x" * 300,
                                    "Root=1-5e1b4151-5ac6c58f5b5dbd6a5e4f8ed6;Parent=a b"])
def test_a_missing_or_malformed_trace_header_is_replaced(header: str | None) -> None:
    assert TRACE.fullmatch(trace_id_from(header))

