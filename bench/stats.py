"""Percentiles for the benchmark tables (nearest-rank, as every bench script prints them)."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    if q == 50:
        return statistics.median(values)
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]
