"""Figure 2: 32-byte round trips with no toxic, on 1 and on 50 concurrent connections.

Values are round-trip times (µs) per path; what the target compares is the
latency each proxy *adds* over the direct path in the same run.
"""

from __future__ import annotations

from benchmarks.clients import concurrent_round_trips, round_trips, run_async
from benchmarks.environment import CHAOSNET, DIRECT, TOXIPROXY
from benchmarks.figures.common import Context, Sample, cost_details, times
from benchmarks.report import Row
from benchmarks.stats import interleaved, median, percentile, ratio
from chaosnet.control import Address

MESSAGE = 32
CONCURRENT = 50
BUDGET_S = 60.0


def run(ctx: Context) -> list[Row]:
    with ctx.env.proxies(ctx.env.upstream().echo) as addresses:
        single = _collect(ctx, "2a", addresses, 1)
        many = _collect(ctx, "2c", addresses, CONCURRENT)
    return [
        _row("2a", "round trip 32 B, 1 conn, p50", single, 50, "≤ 1.0x toxiproxy's added"),
        _row("2b", "round trip 32 B, 1 conn, p99", single, 99, ""),
        _row("2c", "round trip 32 B, 50 conns, p50", many, 50, "≤ 1.0x toxiproxy's added"),
        _row("2d", "round trip 32 B, 50 conns, p99", many, 99, ""),
    ]


def _collect(
    ctx: Context, key: str, addresses: dict[str, Address], conns: int
) -> dict[str, list[Sample]]:
    plan = ctx.plan
    ctx.say(f"figure {key}: 32-byte round trips, {conns} connection(s)")

    def measure(path: str, _: int) -> Sample:
        with ctx.timed(key, path) as usage:
            if conns == 1:
                samples = round_trips(addresses[path], plan.round_trips, MESSAGE, BUDGET_S)
                errors = 0
            else:
                result = run_async(
                    lambda: concurrent_round_trips(
                        addresses[path],
                        connections=conns,
                        rounds=plan.concurrent_rounds,
                        payload=b"\x5a" * MESSAGE,
                        budget_s=BUDGET_S,
                        warmup=5,
                    )
                )
                samples, errors = result.samples, result.errors
        micros = [s * 1e6 for s in samples]
        extra = {"p50": percentile(micros, 50), "p99": percentile(micros, 99)}
        extra |= {"count": len(micros), "errors": errors}
        return Sample(extra["p50"], usage, extra)

    return interleaved(ctx.env.paths, plan.repetitions, measure)


def _row(key: str, title: str, results: dict[str, list[Sample]], q: int, target: str) -> Row:
    name = f"p{q}"
    values = {path: median([s.extra[name] for s in samples]) for path, samples in results.items()}
    direct = values.get(DIRECT)
    added = {
        path: (values[path] - direct) if path in values and direct is not None else None
        for path in (CHAOSNET, TOXIPROXY)
    }
    share = ratio(added[CHAOSNET], added[TOXIPROXY])
    met = None
    if target and share is not None:
        met = share <= 1.0
    compare = f"added {_us(added[CHAOSNET])} vs {_us(added[TOXIPROXY])} ({times(share)})"
    per_repetition = median([s.extra["count"] for s in results.get(CHAOSNET, [])])
    details = cost_details(results, per_repetition / 1e6, "million_round_trips") | {
        "added_us": added,
        "statistic": name,
    }
    for path, samples in results.items():
        details[path]["repetitions"] = [s.extra[name] for s in samples]
    return Row(
        key, title, "µs", values, target, met, compare, {"added chaosnet/toxiproxy": share}, details
    )


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} µs"
