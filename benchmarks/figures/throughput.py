"""Figure 1: bulk throughput with no toxic, one connection, each way (MB/s, 1 MB = 10**6 B)."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.clients import bulk_upload, download
from benchmarks.figures.common import Context, Sample, cost_details, higher_is_better, medians
from benchmarks.report import Row
from benchmarks.stats import interleaved
from chaosnet.control import Address

TARGET = "≥ 1.0x toxiproxy and ≥ 0.5x direct"


def run(ctx: Context) -> list[Row]:
    up = ctx.env.upstream()
    return [
        _direction(ctx, "1a", "throughput, upload (client → server)", up.bulk_sink, bulk_upload),
        _direction(ctx, "1b", "throughput, download (server → client)", up.bulk_source, download),
    ]


def _direction(
    ctx: Context,
    key: str,
    title: str,
    upstream: Address,
    transfer: Callable[[Address, int, float], float],
) -> Row:
    total, budget = ctx.plan.bulk_bytes, ctx.plan.bulk_budget_s
    ctx.say(f"figure {key}: {title}, {total >> 20} MiB")
    with ctx.env.proxies(upstream) as addresses:

        def measure(path: str, _: int) -> Sample:
            with ctx.timed(key, path) as usage:
                seconds = transfer(addresses[path], total, budget)
            return Sample(total / seconds / 1e6, usage)

        results = interleaved(ctx.env.paths, ctx.plan.repetitions, measure)
    values = medians(results)
    met, compare, ratios = higher_is_better(values, 1.0, 0.5)
    details = cost_details(results, total / 1e9, "GB") | {"bytes": total}
    return Row(key, title, "MB/s", values, TARGET, met, compare, ratios, details)
