"""Percentiles, medians, the interleaved-repetition loop every figure uses, and the
fastest-of-N loop of the micro benchmarks."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
#: A micro benchmark's time budget per figure: repetitions stop early once it is spent.
BUDGET_S = 5.0


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


class Fastest:
    """The fastest of up to ``repeats`` timed runs (at least one), stopping early once
    ``budget_s`` is spent. Iterate :meth:`runs` and do one run per step, sync or awaited;
    :attr:`seconds` is then the fastest step."""

    def __init__(self, repeats: int, budget_s: float = BUDGET_S) -> None:
        self.repeats = repeats
        self.budget_s = budget_s
        self.seconds = math.inf

    def runs(self) -> Iterator[None]:
        stop_at = time.perf_counter() + self.budget_s
        for _ in range(max(1, self.repeats)):
            started = time.perf_counter()
            yield
            self.seconds = min(self.seconds, time.perf_counter() - started)
            if time.perf_counter() > stop_at:
                return


def fastest(run: Callable[[], object], repeats: int, budget_s: float = BUDGET_S) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``run`` (see :class:`Fastest`)."""
    timing = Fastest(repeats, budget_s)
    for _ in timing.runs():
        run()
    return timing.seconds
