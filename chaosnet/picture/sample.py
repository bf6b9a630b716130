"""How many marks a picture draws: every disturbed request, first-try ones binned past a limit.

The rule, so a page stays small (under 2 MB at 10,000 requests) and fast to draw:

- every request that failed or needed retries is drawn on its own, up to
  :data:`DISTURBED_LIMIT`; past that, the first and the last of them and an even
  sample in between (the failures first) are kept; the attempt-by-attempt detail
  of the first :data:`TRIES_KEPT` of them is kept, and every error is cut to
  :data:`ERROR_CHARS` characters;
- first-try requests are drawn on their own up to :data:`FIRST_TRY_LIMIT`; past
  that they are binned into :data:`BINS` equal slices of the time axis, one mark
  per slice with its count and its fastest, median and slowest latency;
- at most :data:`CONNECTION_LIMIT` connections per proxy: every one that ended
  abnormally (RST, a toxic, the proxy) first, then an even sample of the rest.

Whatever was left out is said in the picture's notes, with the counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from statistics import median
from typing import TypeVar

from chaosnet.picture.model import ConnectionLine, Picture, RequestBin, RequestMark

FIRST_TRY_LIMIT = 2_000
DISTURBED_LIMIT = 2_000
TRIES_KEPT = 200
ERROR_CHARS = 200
BINS = 400
CONNECTION_LIMIT = 1_000

T = TypeVar("T")


def downsample(picture: Picture) -> Picture:
    """Apply the rule to the picture's requests and connections (in place); return it."""
    _requests(picture)
    _connections(picture)
    return picture


def evenly(items: Sequence[T], keep: int) -> list[T]:
    """``keep`` items spread evenly over ``items``, the first and the last included."""
    if keep >= len(items):
        return list(items)
    if keep <= 1:
        return list(items[:keep])
    step = (len(items) - 1) / (keep - 1)
    return [items[round(i * step)] for i in range(keep)]


def _requests(picture: Picture) -> None:
    first = [r for r in picture.requests if r.outcome == "first try"]
    failed = [r for r in picture.requests if r.outcome == "failed"]
    retried = [r for r in picture.requests if r.outcome == "after retries"]
    kept_failed = evenly(failed, DISTURBED_LIMIT)
    kept_retried = evenly(retried, DISTURBED_LIMIT - len(kept_failed))
    dropped = len(failed) + len(retried) - len(kept_failed) - len(kept_retried)
    if dropped:
        picture.notes.append(
            f"{len(failed) + len(retried)} requests failed or were retried: "
            f"{len(kept_failed) + len(kept_retried)} of them are drawn (every failure first, "
            f"evenly spread), {dropped} left out"
        )
    if len(first) > FIRST_TRY_LIMIT:
        picture.bins = _bins(first, picture.start, picture.end)
        picture.notes.append(
            f"{len(first)} requests answered at the first try are drawn as "
            f"{len(picture.bins)} bins (count, fastest, median, slowest), not one by one"
        )
        first = []
    kept = sorted(first + kept_failed + kept_retried, key=lambda r: r.index)
    picture.requests = _trimmed(kept, picture.notes)


def _trimmed(requests: list[RequestMark], notes: list[str]) -> list[RequestMark]:
    """Each error cut short; attempt details for the first :data:`TRIES_KEPT` only."""
    detailed = 0
    trimmed = []
    for request in requests:
        tries = request.tries
        if tries:
            detailed += 1
            tries = tries if detailed <= TRIES_KEPT else ""
        error = request.error
        if len(error) > ERROR_CHARS:
            error = error[: ERROR_CHARS - 3] + "..."
        trimmed.append(replace(request, error=error, tries=tries))
    if detailed > TRIES_KEPT:
        notes.append(
            f"the attempts of the first {TRIES_KEPT} of {detailed} requests that gave up "
            f"are listed when hovered; the others show their error"
        )
    return trimmed


def _bins(requests: Sequence[RequestMark], start: float, end: float) -> list[RequestBin]:
    width = max(end - start, 1e-9) / BINS
    slices: dict[int, list[float]] = {}
    for request in requests:
        slot = min(BINS - 1, max(0, int((request.start - start) / width)))
        slices.setdefault(slot, []).append(request.latency)
    return [
        RequestBin(
            start=round(start + slot * width, 6),
            end=round(start + (slot + 1) * width, 6),
            count=len(latencies),
            low=min(latencies),
            median=round(median(latencies), 6),
            high=max(latencies),
        )
        for slot, latencies in sorted(slices.items())
    ]


def _connections(picture: Picture) -> None:
    kept: list[ConnectionLine] = []
    for proxy in dict.fromkeys(c.proxy for c in picture.connections):
        lines = [c for c in picture.connections if c.proxy == proxy]
        if len(lines) <= CONNECTION_LIMIT:
            kept += lines
            continue
        abnormal = [c for c in lines if c.ending not in ("FIN", "still open")]
        normal = [c for c in lines if c.ending in ("FIN", "still open")]
        chosen = evenly(abnormal, CONNECTION_LIMIT)
        chosen += evenly(normal, CONNECTION_LIMIT - len(chosen))
        kept += sorted(chosen, key=lambda c: c.id)
        picture.notes.append(
            f"proxy {proxy}: {len(chosen)} of {len(lines)} connections drawn "
            f"(every abnormal ending first, the rest evenly spread)"
        )
    picture.connections = kept
