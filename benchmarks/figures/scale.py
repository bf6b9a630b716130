"""Figure 8: 1,000 concurrent connections x 20 framed round trips through one proxy
with a 10 ms latency toxic (downstream); completion time, errors, and the proxy's
peak RSS during the batch (``VmHWM``, reset just before it, in a proxy process
restarted for this figure: a Go heap grown by earlier figures is not returned to
the OS at once and would count against Toxiproxy).

Frames are chaosnet's length-prefixed frames (64-byte payloads) and every echo is
checked. The direct path has no toxic: its time is the client's own floor.
"""

from __future__ import annotations

from benchmarks.clients import concurrent_round_trips, run_async
from benchmarks.environment import CHAOSNET, DIRECT, Toxic
from benchmarks.figures.common import Context, Sample, cost_details, times
from benchmarks.report import Row
from benchmarks.resources import peak_rss_bytes, reset_peak_rss, rss_bytes
from benchmarks.stats import interleaved, median, ratio

LATENCY_MS = 10
RSS_TARGET_MB = 150.0
BUDGET_S = 120.0
PAYLOAD = bytes(range(64))


def run(ctx: Context) -> list[Row]:
    conns, rounds = ctx.plan.scale_connections, ctx.plan.scale_rounds
    ctx.say(f"figure 8: {conns} conns x {rounds} framed round trips, latency {LATENCY_MS} ms")
    toxic = Toxic("latency", {"latency": LATENCY_MS, "jitter": 0})
    for path in ctx.env.proxied:  # fresh processes: earlier figures' heap is not this one's
        ctx.env.restart(path)
    with ctx.env.proxies(ctx.env.upstream().echo, [toxic]) as addresses:

        def measure(path: str, _: int) -> Sample:
            pid = ctx.pid(path)
            before = rss_bytes(pid) if pid is not None else None
            peak_reset = reset_peak_rss(pid) if pid is not None else False
            with ctx.timed("8", path) as usage:
                result = run_async(
                    lambda: concurrent_round_trips(
                        addresses[path],
                        connections=conns,
                        rounds=rounds,
                        payload=PAYLOAD,
                        budget_s=BUDGET_S,
                        framed=True,
                    )
                )
            peak = peak_rss_bytes(pid) if pid is not None else None
            extra = {
                "errors": result.errors,
                "error_kinds": result.error_kinds,
                "round_trips": len(result.samples),
                "rss_before_MB": before / 1e6 if before else None,
                "peak_rss_MB": peak / 1e6 if peak else None,
                "peak_is_per_figure": peak_reset,
            }
            return Sample(result.elapsed_s, usage, extra)

        results = interleaved(ctx.env.paths, ctx.plan.repetitions, measure)
    details = cost_details(results, conns * rounds / 1000, "1000_round_trips")
    time_values = {p: median([s.value for s in v]) for p, v in results.items()}
    errors = {p: float(sum(s.extra["errors"] for s in v)) for p, v in results.items()}
    rss = {
        p: (max(s.extra["peak_rss_MB"] or 0.0 for s in v) if p != DIRECT else None)
        for p, v in results.items()
    }
    vs_t = ratio(time_values.get(CHAOSNET), time_values.get("toxiproxy"))
    chaosnet_rss = rss.get(CHAOSNET)
    label = f"{conns} conns x {rounds} framed RT, {LATENCY_MS} ms latency"
    return [
        Row(
            "8a",
            f"{label}: completion",
            "s",
            time_values,
            "",
            None,
            f"{times(vs_t)} toxiproxy's time",
            {"chaosnet/toxiproxy": vs_t},
            details,
        ),
        Row(
            "8b",
            f"{label}: errors (all reps)",
            "count",
            errors,
            "chaosnet 0",
            errors.get(CHAOSNET) == 0,
        ),
        Row(
            "8c",
            f"{label}: proxy peak RSS",
            "MB",
            rss,
            f"chaosnet ≤ {RSS_TARGET_MB:g} MB",
            None if chaosnet_rss is None else chaosnet_rss <= RSS_TARGET_MB,
        ),
    ]
