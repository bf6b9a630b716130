"""Figure 1: bulk throughput, one connection, each way (MB/s, 1 MB = 10**6 B).

1a/1b: no toxic, beside the direct path. 1c/1d: through a 1 ms ``latency`` toxic
on the direction the data flows, beside Toxiproxy: every chunk is held in the
toxic's queue and released by a timer, so this is the held-chunk path (each held
chunk is counted into the engine's buffer budget and out again; figure 9g gives
the cost of that bookkeeping per chunk). The direct path has no toxic to compare.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.clients import bulk_upload, download
from benchmarks.environment import CHAOSNET, DIRECT, TOXIPROXY, Toxic
from benchmarks.figures.common import (
    Context,
    Sample,
    cost_details,
    higher_is_better,
    medians,
    times,
)
from benchmarks.report import Row
from benchmarks.stats import interleaved, ratio
from chaosnet.control import Address

TARGET = "≥ 1.0x toxiproxy and ≥ 0.5x direct"
HELD_LATENCY_MS = 1


def run(ctx: Context) -> list[Row]:
    up = ctx.env.upstream()
    held = {"latency": HELD_LATENCY_MS, "jitter": 0}
    through = f"throughput through a {HELD_LATENCY_MS} ms latency toxic"
    return [
        _direction(ctx, "1a", "throughput, upload (client → server)", up.bulk_sink, bulk_upload),
        _direction(ctx, "1b", "throughput, download (server → client)", up.bulk_source, download),
        _direction(
            ctx,
            "1c",
            f"{through}, upload",
            up.bulk_sink,
            bulk_upload,
            Toxic("latency", held, "upstream"),
        ),
        _direction(
            ctx,
            "1d",
            f"{through}, download",
            up.bulk_source,
            download,
            Toxic("latency", held, "downstream"),
        ),
    ]


def _direction(
    ctx: Context,
    key: str,
    title: str,
    upstream: Address,
    transfer: Callable[[Address, int, float], float],
    toxic: Toxic | None = None,
) -> Row:
    total, budget = ctx.plan.bulk_bytes, ctx.plan.bulk_budget_s
    ctx.say(f"figure {key}: {title}, {total >> 20} MiB")
    toxics = () if toxic is None else (toxic,)
    paths = [p for p in ctx.env.paths if toxic is None or p != DIRECT]
    with ctx.env.proxies(upstream, toxics, paths) as addresses:

        def measure(path: str, _: int) -> Sample:
            with ctx.timed(key, path) as usage:
                seconds = transfer(addresses[path], total, budget)
            return Sample(total / seconds / 1e6, usage)

        results = interleaved(paths, ctx.plan.repetitions, measure)
    values = medians(results)
    details = cost_details(results, total / 1e9, "GB") | {"bytes": total}
    if toxic is None:
        met, compare, ratios = higher_is_better(values, 1.0, 0.5)
        return Row(key, title, "MB/s", values, TARGET, met, compare, ratios, details)
    to_toxiproxy = ratio(values.get(CHAOSNET), values.get(TOXIPROXY))
    ratios = {"chaosnet/toxiproxy": to_toxiproxy}
    compare = f"{times(to_toxiproxy)} toxiproxy"
    return Row(key, title, "MB/s", values, "", None, compare, ratios, details)
