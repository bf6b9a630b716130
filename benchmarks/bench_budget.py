"""The buffer budget's bookkeeping per held chunk: ``BufferBudget.take`` + ``give_back``.

A direction with toxics counts every chunk it reads into the engine's budget and
out again when the chunk is sent or dropped: two method calls per chunk. An earlier
build did the same arithmetic inline in the direction; this measures what the
calls cost over it. Figures, in nanoseconds per chunk (one take and one give-back,
best of a few repetitions, each bounded in count and time, the loop's own cost
subtracted): ``take_give_back_ns`` (the methods) and ``inlined_ns`` (the same
arithmetic written out in the loop). Figure 1c/1d is the held-chunk path's
throughput; at 64 KiB a chunk, N MB/s are N * 15.3 chunks a second.

Run: ``python -m benchmarks.bench_budget [--quick]``.
"""

from __future__ import annotations

from benchmarks.report import micro_main
from benchmarks.stats import fastest
from chaosnet.proxy.budget import READ_SIZE, BufferBudget


def measure(quick: bool = False) -> dict[str, float]:
    """Both figures, by name."""
    calls = 20_000 if quick else 200_000
    repeats = 3 if quick else 7
    chunk = READ_SIZE

    def bare() -> None:
        held = 0
        for _ in range(calls):
            held += chunk
            held -= chunk

    def methods() -> None:
        budget = BufferBudget()
        take, give_back = budget.take, budget.give_back
        held = 0
        for _ in range(calls):
            take(held, chunk)
            held += chunk
            give_back(held, chunk)
            held -= chunk

    def inlined() -> None:
        budget = BufferBudget()
        held = 0
        for _ in range(calls):
            if held <= 0:
                budget.holders += 1
            total = budget.held + chunk
            budget.held = total
            if total > budget.peak:
                budget.peak = total
            held += chunk
            budget.held -= chunk
            if held > 0 >= held - chunk:
                budget.holders -= 1
            held -= chunk

    base = fastest(bare, repeats)
    return {
        "take_give_back_ns": (fastest(methods, repeats) - base) / calls * 1e9,
        "inlined_ns": (fastest(inlined, repeats) - base) / calls * 1e9,
    }


def main() -> None:
    micro_main(measure, __doc__ or "", quick_help="fewer calls and repeats")


if __name__ == "__main__":
    main()
