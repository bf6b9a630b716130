"""Retry overhead on the success path: a retried call against a bare call.

Figures, in nanoseconds per call (best of a few repetitions, each bounded in count
and time): ``bare_call_ns`` and the *added* cost of ``policy.call``, the decorator,
the attempt loop; async: ``bare_await_ns`` and the added cost of ``policy.acall``
(without and with a deadline, which adds an ``asyncio.timeout``), the async decorator
and the async attempt loop.

Run: ``python -m benchmarks.bench_retry [--quick]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from benchmarks.report import micro_main
from benchmarks.stats import Fastest, fastest
from chaosnet.retry import RetryPolicy


def _best_ns(run: Callable[[], None], calls: int, repeats: int) -> float:
    return fastest(run, repeats) / calls * 1e9


def _sync_figures(calls: int, repeats: int) -> dict[str, float]:
    policy = RetryPolicy(attempts=3)

    def work(x: int) -> int:
        return x

    decorated = policy(work)
    call = policy.call

    def bare() -> None:
        for i in range(calls):
            work(i)

    def via_call() -> None:
        for i in range(calls):
            call(work, i)

    def via_decorator() -> None:
        for i in range(calls):
            decorated(i)

    def via_loop() -> None:
        for i in range(calls):
            for attempt in policy.retrying():
                with attempt:
                    work(i)

    base = _best_ns(bare, calls, repeats)
    return {
        "bare_call_ns": base,
        "call_overhead_ns": _best_ns(via_call, calls, repeats) - base,
        "decorator_overhead_ns": _best_ns(via_decorator, calls, repeats) - base,
        "loop_overhead_ns": _best_ns(via_loop, calls, repeats) - base,
    }


async def _async_figures(calls: int, repeats: int) -> dict[str, float]:
    policy = RetryPolicy(attempts=3)
    with_deadline = RetryPolicy(attempts=3, deadline=60.0)

    async def work(x: int) -> int:
        return x

    decorated = policy(work)

    async def timed(run: Callable[[], Awaitable[None]]) -> float:
        timing = Fastest(repeats)
        for _ in timing.runs():
            await run()
        return timing.seconds / calls * 1e9

    async def bare() -> None:
        for i in range(calls):
            await work(i)

    async def via_acall() -> None:
        for i in range(calls):
            await policy.acall(work, i)

    async def via_acall_deadline() -> None:
        for i in range(calls):
            await with_deadline.acall(work, i)

    async def via_decorator() -> None:
        for i in range(calls):
            await decorated(i)

    async def via_loop() -> None:
        for i in range(calls):
            async for attempt in policy.aretrying():
                with attempt:
                    await work(i)

    base = await timed(bare)
    return {
        "bare_await_ns": base,
        "acall_overhead_ns": await timed(via_acall) - base,
        "acall_deadline_overhead_ns": await timed(via_acall_deadline) - base,
        "async_decorator_overhead_ns": await timed(via_decorator) - base,
        "async_loop_overhead_ns": await timed(via_loop) - base,
    }


def measure(quick: bool = False) -> dict[str, float]:
    """Every retry-overhead figure, by name."""
    calls = 20_000 if quick else 200_000
    repeats = 3 if quick else 7
    figures = _sync_figures(calls, repeats)
    figures |= asyncio.run(_async_figures(calls, repeats))
    return figures


def main() -> None:
    micro_main(measure, __doc__ or "", quick_help="fewer calls and repeats")


if __name__ == "__main__":
    main()
