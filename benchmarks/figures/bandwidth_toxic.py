"""Figure 5: accuracy of the bandwidth toxic at 100 KB/s and at 10 MB/s (1 KB = 1000 B).

The client downloads ``rate x seconds`` bytes through a proxy whose downstream
has the toxic and times it from the request to the last byte, as an application
would. Relative error = |measured rate - configured| / configured. There is no
direct figure (a direct connection has no toxic).
"""

from __future__ import annotations

from benchmarks.clients import download
from benchmarks.environment import CHAOSNET, Toxic
from benchmarks.figures.common import Context, Sample, cost_details
from benchmarks.report import Row
from benchmarks.stats import interleaved, median

RATES_KB_S = ((100, "5a", "100 KB/s"), (10_000, "5b", "10 MB/s"))
TARGET_PERCENT = 5.0


def run(ctx: Context) -> list[Row]:
    return [_rate(ctx, rate, key, label) for rate, key, label in RATES_KB_S]


def _rate(ctx: Context, rate_kb_s: int, key: str, label: str) -> Row:
    rate = rate_kb_s * 1000
    total = int(rate * ctx.plan.bandwidth_seconds)
    budget = ctx.plan.bandwidth_seconds * 5 + 10
    ctx.say(f"figure {key}: bandwidth toxic {label}, {total:,} bytes")
    toxic = Toxic("bandwidth", {"rate": rate_kb_s})
    paths = ctx.env.proxied
    with ctx.env.proxies(ctx.env.upstream().source, [toxic], paths) as addresses:

        def measure(path: str, _: int) -> Sample:
            with ctx.timed(key, path) as usage:
                seconds = download(addresses[path], total, budget)
            measured = total / seconds
            error = abs(measured - rate) / rate * 100
            return Sample(error, usage, {"measured_B_per_s": measured, "seconds": seconds})

        results = interleaved(paths, ctx.plan.bandwidth_repetitions, measure)
    values = {p: median([s.value for s in samples]) for p, samples in results.items()}
    chaosnet = values.get(CHAOSNET)
    met = chaosnet is not None and chaosnet <= TARGET_PERCENT
    title = f"bandwidth toxic {label}, relative error"
    target = f"chaosnet ≤ {TARGET_PERCENT:g}%"
    details = cost_details(results) | {"bytes": total, "configured_B_per_s": rate}
    return Row(key, title, "%", dict(values), target, met, "", {}, details)
