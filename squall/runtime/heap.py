"""Packing the zygote's heap before it forks, so that instances share more of it.

After a fork, every page the child writes is copied into the child's private memory.
pymalloc serves a new small object from a free block of a pool that is already partly
used, and such pools are spread over the whole inherited heap: each of the child's first
few thousand allocations would dirty (and copy) a different 4 KB page of the zygote's.
`fill_free_blocks()` takes every free block of every pool in the zygote with a small
object that is never touched again, so the child's allocations land in fresh pools of
its own, packed together, and the inherited pages stay shared.

The free blocks per size class come from `sys._debugmallocstats()` (CPython only; where
its report cannot be read, nothing is filled).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_STATS_ROW = re.compile(r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", re.M)
_BYTES_HEADER = sys.getsizeof(b"")
_fillers: list[object] = []
"""The objects that hold the free blocks; kept for the zygote's life (and its children's)."""


def free_blocks() -> dict[int, int]:
    """{block size: free blocks in pools in use}, from pymalloc's own report on stderr."""
    if not hasattr(sys, "_debugmallocstats"):
        return {}
    with tempfile.TemporaryFile() as report:
        saved = os.dup(2)
        os.dup2(report.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        report.seek(0)
        text = report.read().decode("ascii", "replace")
    return {int(size): int(avail) for _, size, _, _, avail in _STATS_ROW.findall(text)}


def _filler(size: int, n: int) -> object | None:
    """A new untracked object whose allocation takes one `size`-byte block, or None."""
    if size >= _BYTES_HEADER + 7:
        return bytes(size - _BYTES_HEADER)
    if size == 32:
        return (1 << 40) + n  # a two-digit int
    if size == 24:
        return n + 0.5
    if size == 16:
        return object()
    return None


def fill_free_blocks() -> int:
    """Take every free pymalloc block with a filler object; how many were taken."""
    taken = 0
    for size, available in free_blocks().items():
        for n in range(available):
            filler = _filler(size, n)
            if filler is None:
                break
            _fillers.append(filler)
            taken += 1
    return taken
