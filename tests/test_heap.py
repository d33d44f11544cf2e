"""Packing the zygote's heap (squall/runtime/heap.py): free pymalloc blocks are taken."""

from __future__ import annotations

from squall.runtime import heap


def test_free_blocks_are_read_from_pymallocs_report() -> None:
    blocks = heap.free_blocks()
    assert blocks and all(size % 8 == 0 and free >= 0 for size, free in blocks.items())


def test_filling_takes_the_free_blocks_that_objects_left_behind() -> None:
    size = 240  # the block of a 200-byte bytes object (33-byte header, rounded up to 8)
    churn = [bytes(200) for _ in range(20_000)]
    del churn[::2]  # free every other one: free blocks in every pool of that size class
    before = heap.free_blocks().get(size, 0)

    taken = heap.fill_free_blocks()

    assert before >= 9_000 and taken >= before
    assert heap.free_blocks().get(size, 0) < 200  # other threads may free a few meanwhile
