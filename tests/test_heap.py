"""Packing the zygote's heap (squall/runtime/heap.py): free pymalloc blocks are taken."""

from __future__ import annotations

from squall.runtime import heap


def test_free_blocks_are_read_from_pymallocs_report() -> None:
    blocks = heap.free_blocks()
    assert blocks and all(size % 8 == 0 and free >= 0 for size, free in blocks.items())


def test_filling_takes_the_free_blocks_that_objects_left_behind() -> None:
    churn = [bytes(100 + n % 300) for n in range(20_000)]
    del churn[::2]  # free half of them: free blocks in many pools of many size classes
    before = sum(free for size, free in heap.free_blocks().items() if size >= 16)

    taken = heap.fill_free_blocks()

    after = sum(free for size, free in heap.free_blocks().items() if size >= 16)
    assert taken >= 5_000 and before >= 5_000
    assert after < before / 10
