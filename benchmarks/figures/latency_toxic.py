"""Figure 4: accuracy of a 50 ms latency toxic, 100 concurrent connections.

Each connection does closed-loop 32-byte round trips through a proxy whose
downstream has ``latency=50``; the error of one round trip is
``|RTT - 50 ms|``. Connections start 0.5 ms apart, so the client is never
handed 100 replies at once and its own scheduling stays out of the figure; the
``direct`` column is that client's floor (the same loop with no proxy: its RTT
is the error it would add).
"""

from __future__ import annotations

from benchmarks.clients import concurrent_round_trips, run_async
from benchmarks.environment import CHAOSNET, Toxic
from benchmarks.figures.common import Context, Sample, cost_details
from benchmarks.report import Row
from benchmarks.stats import interleaved, median, percentile

LATENCY_MS = 50
CONNECTIONS = 100
STAGGER_S = 0.0005
TARGET_P99_MS = 2.0
BUDGET_S = 60.0


def run(ctx: Context) -> list[Row]:
    rounds = ctx.plan.latency_rounds
    ctx.say(f"figure 4: latency toxic {LATENCY_MS} ms, {CONNECTIONS} conns x {rounds} round trips")
    toxic = Toxic("latency", {"latency": LATENCY_MS, "jitter": 0})
    with ctx.env.proxies(ctx.env.upstream().echo, [toxic]) as addresses:

        def measure(path: str, _: int) -> Sample:
            configured = 0.0 if path == "direct" else LATENCY_MS / 1000
            with ctx.timed("4", path) as usage:
                result = run_async(
                    lambda: concurrent_round_trips(
                        addresses[path],
                        connections=CONNECTIONS,
                        rounds=rounds,
                        payload=b"\x5a" * 32,
                        budget_s=BUDGET_S,
                        stagger_s=STAGGER_S,
                        warmup=1,
                    )
                )
            errors_ms = [abs(s - configured) * 1000 for s in result.samples]
            extra = {
                "p50": percentile(errors_ms, 50),
                "p99": percentile(errors_ms, 99),
                "max": max(errors_ms, default=float("nan")),
                "count": len(errors_ms),
                "errors": result.errors,
            }
            return Sample(extra["p99"], usage, extra)

        results = interleaved(ctx.env.paths, ctx.plan.repetitions, measure)
    rows = []
    for q in ("p50", "p99"):
        values = {p: median([s.extra[q] for s in samples]) for p, samples in results.items()}
        details = cost_details(results)
        for path, samples in results.items():
            details[path]["repetitions"] = [s.extra[q] for s in samples]
        chaosnet = values.get(CHAOSNET)
        met = None
        target = ""
        if q == "p99":
            target = f"chaosnet ≤ {TARGET_P99_MS:g} ms"
            met = chaosnet is not None and chaosnet <= TARGET_P99_MS
        title = f"latency toxic 50 ms, 100 conns, |error| {q}"
        rows.append(
            Row(
                f"4{'a' if q == 'p50' else 'b'}",
                title,
                "ms",
                values,
                target,
                met,
                "direct = client floor",
                {},
                details,
            )
        )
    return rows
