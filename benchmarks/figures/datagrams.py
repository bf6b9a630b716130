"""Figure 10: datagram (UDP) proxies, beside a direct socket in the same run.

- 10a: 64-byte datagrams per second through a datagram proxy with no toxic. One
  sender blasts as fast as it can for a while; the rate is what the upstream sink
  counted between its first and last arrival (datagrams the proxy could not take
  in time are lost, as UDP loses them). Target: >= 100,000/s.
- 10b: 64-byte ping-pong round trips through a UDP echo, p50; target: the proxy
  adds <= 50 µs over direct.
- 10c/10d: 1,000 flows (one socket each) send one datagram each at once, and wait
  for every echo, for several rounds; errors (a reply missing after 2 s) must be 0;
  the proxy's RSS during the run is reported.

Toxiproxy has no datagram proxy, so its column is empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.datagram_clients import blast, many_flows, ping_pong
from benchmarks.environment import CHAOSNET, DIRECT
from benchmarks.figures.common import Context, Sample, cost_details, times
from benchmarks.report import Row
from benchmarks.resources import peak_rss_bytes, reset_peak_rss, rss_bytes
from benchmarks.stats import interleaved, median, percentile, ratio
from chaosnet.control import Address

SIZE = 64
RATE_TARGET = 100_000
ADDED_P50_TARGET_US = 50.0
FLOW_TIMEOUT_S = 2.0
PATHS = (DIRECT, CHAOSNET)


@contextmanager
def udp_proxies(ctx: Context, upstream: Address) -> Iterator[dict[str, Address]]:
    server = ctx.env.servers[CHAOSNET]
    name = f"udp{id(upstream) % 100000}"
    info = server.client.create_proxy(name, f"{upstream[0]}:{upstream[1]}", transport="udp")
    try:
        yield {DIRECT: upstream, CHAOSNET: info.address}
    finally:
        server.client.delete_proxy(name)


def run(ctx: Context) -> list[Row]:
    upstreams = ctx.env.upstream()
    return [_rate(ctx, upstreams.udp_sink), _round_trip(ctx, upstreams.udp_echo), *_flows(ctx)]


def _rate(ctx: Context, sink: Address) -> Row:
    seconds = 0.3 if ctx.plan.quick else 2.0
    ctx.say(f"figure 10a: 64-byte datagrams blasted for {seconds:g}s")
    with udp_proxies(ctx, sink) as addresses:

        def measure(path: str, _: int) -> Sample:
            with ctx.timed("10a", path) as usage:
                result = blast(addresses[path], sink, SIZE, seconds)
            extra = {"sent": result.sent, "received": result.received}
            return Sample(result.per_second, usage, extra)

        results = interleaved(PATHS, ctx.plan.repetitions, measure)
    values = {path: median([s.value for s in samples]) for path, samples in results.items()}
    to_direct = ratio(values[CHAOSNET], values[DIRECT])
    met = values[CHAOSNET] >= RATE_TARGET
    return Row(
        "10a",
        "UDP 64 B datagrams/s, no toxic",
        "dgram/s",
        values,
        "≥ 100,000/s",
        met,
        f"{times(to_direct)} direct",
        {"chaosnet/direct": to_direct},
        cost_details(results),
    )


def _round_trip(ctx: Context, echo: Address) -> Row:
    count = ctx.plan.round_trips
    ctx.say(f"figure 10b: {count} UDP round trips of 64 bytes")
    with udp_proxies(ctx, echo) as addresses:

        def measure(path: str, _: int) -> Sample:
            with ctx.timed("10b", path) as usage:
                samples = ping_pong(addresses[path], count, SIZE, budget_s=60.0)
            micros = [s * 1e6 for s in samples]
            extra = {"p99": percentile(micros, 99), "count": len(micros)}
            return Sample(percentile(micros, 50), usage, extra)

        results = interleaved(PATHS, ctx.plan.repetitions, measure)
    values = {path: median([s.value for s in samples]) for path, samples in results.items()}
    added = values[CHAOSNET] - values[DIRECT]
    return Row(
        "10b",
        "UDP round trip 64 B, p50",
        "µs",
        values,
        "≤ +50 µs over direct",
        added <= ADDED_P50_TARGET_US,
        f"added {added:.1f} µs",
        {"added_us": added},
        cost_details(results),
    )


def _flows(ctx: Context) -> list[Row]:
    flows, rounds = ctx.plan.scale_connections, ctx.plan.scale_rounds
    ctx.say(f"figure 10c: {flows} UDP flows at once x {rounds} rounds")
    echo = ctx.env.upstream().udp_echo
    pid = ctx.pid(CHAOSNET)
    with udp_proxies(ctx, echo) as addresses:

        def measure(path: str, _: int) -> Sample:
            before = rss_bytes(pid) if path == CHAOSNET and pid is not None else None
            reset = reset_peak_rss(pid) if path == CHAOSNET and pid is not None else False
            with ctx.timed("10c", path) as usage:
                result = many_flows(addresses[path], flows, rounds, FLOW_TIMEOUT_S)
            peak = peak_rss_bytes(pid) if path == CHAOSNET and pid is not None else None
            seconds = sum(r.seconds for r in result)
            extra = {
                "errors": sum(r.errors for r in result),
                "seconds": seconds,
                "rss_before_MB": before / 1e6 if before else None,
                "peak_rss_MB": peak / 1e6 if peak else None,
                "peak_is_per_figure": reset,
            }
            return Sample(seconds, usage, extra)

        results = interleaved(PATHS, ctx.plan.repetitions, measure)
    errors = {
        path: median([s.extra["errors"] for s in samples]) for path, samples in results.items()
    }
    seconds = {path: median([s.value for s in samples]) for path, samples in results.items()}
    peaks = [s.extra["peak_rss_MB"] for s in results[CHAOSNET] if s.extra["peak_rss_MB"]]
    peak = median(peaks) if peaks else None
    details = cost_details(results)
    return [
        Row(
            "10c",
            f"UDP {flows} flows at once, errors",
            "errors",
            errors,
            "0",
            errors[CHAOSNET] == 0,
            f"{rounds} rounds, {seconds[CHAOSNET]:.2f}s vs {seconds[DIRECT]:.2f}s direct",
            {},
            details,
        ),
        Row(
            "10d",
            f"UDP {flows} flows, proxy peak RSS",
            "MB",
            {CHAOSNET: peak},
            "",
            None,
            "reported",
            {},
            details,
        ),
    ]
