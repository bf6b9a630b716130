"""Percentiles, medians and the interleaved-repetition loop every figure uses."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    if math.isnan(numerator) or math.isnan(denominator):
        return None
    return numerator / denominator


def interleaved(
    paths: Sequence[str], repetitions: int, measure: Callable[[str, int], T]
) -> dict[str, list[T]]:
    """``measure(path, repetition)`` for every path, ``repetitions`` times, in a rotating
    order (d c t, c t d, t d c, ...) so slow drift of the machine hits every path alike."""
    results: dict[str, list[T]] = {path: [] for path in paths}
    for repetition in range(repetitions):
        shift = repetition % len(paths)
        for path in (*paths[shift:], *paths[:shift]):
            results[path].append(measure(path, repetition))
    return results
