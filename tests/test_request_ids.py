"""Unit tests of squall.request_ids: Lambda-looking ids that sort by creation time."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from squall.request_ids import new_request_id

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
