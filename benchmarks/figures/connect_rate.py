"""Figure 3: new connections per second, each with one 32-byte round trip, then closed.

Eight client workers keep eight connections in setup at any time, so the figure
is the proxy's accept -> upstream connect -> first byte -> teardown rate, not one
connection's latency. The issue sets no target; the ratios are reported.
"""

from __future__ import annotations

from benchmarks.clients import connection_rate, run_async
from benchmarks.figures.common import Context, Sample, cost_details, higher_is_better, medians
from benchmarks.report import Row
from benchmarks.stats import interleaved

CONCURRENCY = 8
BUDGET_S = 30.0


def run(ctx: Context) -> list[Row]:
    count = ctx.plan.new_connections
    ctx.say(f"figure 3: {count} new connections, {CONCURRENCY} at a time")
    with ctx.env.proxies(ctx.env.upstream().echo) as addresses:

        def measure(path: str, _: int) -> Sample:
            with ctx.timed("3", path) as usage:
                rate = run_async(
                    lambda: connection_rate(
                        addresses[path], count=count, concurrency=CONCURRENCY, budget_s=BUDGET_S
                    )
                )
            extra = {"completed": rate.completed, "errors": rate.errors}
            return Sample(rate.per_second, usage, extra)

        results = interleaved(ctx.env.paths, ctx.plan.repetitions, measure)
    values = medians(results)
    _, compare, ratios = higher_is_better(values, 1.0, None)
    details = cost_details(results, count / 1000, "1000_connections")
    title = "new connections + 1 round trip"
    return [Row("3", title, "conn/s", values, "", None, compare, ratios, details)]
