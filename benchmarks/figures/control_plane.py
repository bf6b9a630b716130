"""Figure 6: the control plane, idle and while 500 connections stream through a proxy.

One cycle = create a proxy, add a latency toxic, remove it, delete the proxy
(four HTTP requests on a kept-alive connection, as the pytest plugin makes them).
It is timed idle, with 500 connections streaming at 100 KB/s each (a busy test),
and with 500 connections streaming as fast as the machine allows (saturation).
Under load, the toxic is added to and removed from the *loaded* proxy -- so it is
inserted into and taken out of 500 busy connections, the case where Toxiproxy
hangs (#412, #558) -- while the cycle's own proxy is created and deleted beside it.
The streams come from ``benchmarks.loader`` in a process of its own.

A request that takes longer than ``CONTROL_TIMEOUT_S`` (5 s) counts as a hang:
that cycle counts with the time until the timeout (a lower bound), the series
stops, and that path's server is restarted so the rest of the run goes on.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from benchmarks.environment import CHAOSNET, PROXIED, ProxyServer, python_env
from benchmarks.figures.common import Context, Sample, cost_details
from benchmarks.loader import STREAMING_LINE
from benchmarks.report import Row
from benchmarks.resources import peak_rss_bytes, reset_peak_rss
from benchmarks.stats import interleaved, median, percentile
from chaosnet.control import Address, BackendUnreachable
from chaosnet.errors import ChaosnetError
from chaosnet.servers.process import ServerProcess
from chaosnet.servers.readiness import LogLine

IDLE_TARGET_MS = 2.0
LOADED_TARGET_MS = 20.0
LOADER_MAX_S = 300.0
LOADER_READY_S = 60.0
CYCLES_BUDGET_S = 15.0  # per repetition: a slow server does fewer cycles, not a longer run
PACED_B_PER_S = 100_000  # per connection: 50 MB/s in all for 500 connections


def run(ctx: Context) -> list[Row]:
    reps = min(ctx.plan.repetitions, 3)
    idle_cycles = max(1, ctx.plan.control_cycles // reps)
    load_cycles = max(1, ctx.plan.load_cycles // reps)
    idle = _series(ctx, "6a", reps, idle_cycles, None)
    paced = _series(ctx, "6c", reps, load_cycles, PACED_B_PER_S)
    flat_out = _series(ctx, "6e", reps, load_cycles, 0)
    conns = ctx.plan.load_connections
    paced_label = f"{conns} conns at {PACED_B_PER_S // 1000} KB/s each"
    flat_label = f"{conns} conns streaming flat out"
    return [
        _row("6a", "control cycle, idle, median", idle, "p50", IDLE_TARGET_MS),
        _row("6b", "control cycle, idle, p99", idle, "p99", None),
        _row("6c", f"control cycle, {paced_label}, median", paced, "p50", LOADED_TARGET_MS),
        _row("6d", f"control cycle, {paced_label}, p99", paced, "p99", None),
        _row("6e", f"control cycle, {flat_label}, median", flat_out, "p50", LOADED_TARGET_MS),
        _row("6f", f"control cycle, {flat_label}, p99", flat_out, "p99", None),
        _hangs_row(idle, paced, flat_out),
        _rss_row(flat_out, flat_label),
    ]


def _series(
    ctx: Context, key: str, reps: int, cycles: int, rate: int | None
) -> dict[str, list[Sample]]:
    """``rate``: None idle, 0 flat out, else bytes/s per streaming connection."""
    load = "idle" if rate is None else f"{ctx.plan.load_connections} conns at {rate or 'max'} B/s"
    ctx.say(f"figure {key}: control cycles, {load}, {cycles} per repetition")
    upstream = ctx.env.upstream()
    paths = tuple(p for p in PROXIED if p in ctx.env.servers)

    def measure(path: str, _: int) -> Sample:
        server = ctx.env.servers[path]
        reset_peak_rss(server.pid)
        with (
            _load(ctx, server, upstream.source, rate) as (target, stats),
            ctx.timed(key, path) as usage,
        ):
            durations, hung = _cycles(server, upstream.echo, target, cycles)
        peak = peak_rss_bytes(server.pid)
        stats["peak_rss_MB"] = peak / 1e6 if peak else float("nan")
        if hung:
            ctx.notes.append(f"figure {key}: {path} control request hung (> timeout): {hung}")
            ctx.env.restart(path)
        ms = [d * 1000 for d in durations]
        extra = {
            "p50": percentile(ms, 50),
            "p99": percentile(ms, 99),
            "max": max(ms, default=float("nan")),
            "cycles": len(ms),
            "hangs": 1 if hung else 0,
        } | stats
        return Sample(extra["p50"], usage, extra)

    return interleaved(paths, reps, measure)


@contextmanager
def _load(
    ctx: Context, server: ProxyServer, source: Address, rate: int | None
) -> Iterator[tuple[str | None, dict[str, float]]]:
    """The proxy toxics go on (None: the cycle's own proxy), while its connections stream."""
    stats: dict[str, float] = {}
    if rate is None:
        yield None, stats
        return
    name = f"loaded-{time.monotonic_ns()}"
    info = server.client.create_proxy(name, f"{source[0]}:{source[1]}")
    host, port = info.address
    conns = str(ctx.plan.load_connections)
    argv = [sys.executable, "-m", "benchmarks.loader", host, str(port), conns]
    argv += [str(LOADER_MAX_S), str(rate)]
    loader = ServerProcess(
        argv,
        name="bench-loader",
        ready=LogLine(rf"^{STREAMING_LINE} \d+ of \d+$"),
        env=python_env(),
        ready_timeout=LOADER_READY_S,
    )
    try:
        with loader:
            started = time.perf_counter()
            yield name, stats
            seconds = time.perf_counter() - started
        stats |= _loader_stats(loader.log_text(), seconds)
    finally:
        with suppress(ChaosnetError):
            server.client.delete_proxy(name)


def _loader_stats(log: str, seconds: float) -> dict[str, float]:
    streaming = re.search(rf"{STREAMING_LINE} (\d+) of", log)
    done = re.search(r"loader done bytes=(\d+) errors=(\d+)", log)
    stats: dict[str, float] = {"streaming": float(streaming.group(1)) if streaming else 0.0}
    if done:
        stats["load_MB_per_s"] = int(done.group(1)) / seconds / 1e6
        stats["load_errors"] = float(done.group(2))
    return stats


def _cycles(
    server: ProxyServer, echo: Address, toxic_on: str | None, count: int
) -> tuple[list[float], str]:
    """Timed cycles; stops at the first hang and says which request hung."""
    client = server.client
    durations: list[float] = []
    upstream = f"{echo[0]}:{echo[1]}"
    deadline = time.monotonic() + CYCLES_BUDGET_S
    for number in range(count):
        if time.monotonic() > deadline:
            break
        name = f"cycle-{time.monotonic_ns()}-{number}"
        target = toxic_on or name
        step = "create"
        started = time.perf_counter()
        try:
            client.create_proxy(name, upstream)
            step = "add toxic"
            client.add_toxic(target, "latency", name="cycle", attributes={"latency": 10})
            step = "remove toxic"
            client.remove_toxic(target, "cycle")
            step = "delete"
            client.delete_proxy(name)
        except BackendUnreachable as exc:
            durations.append(time.perf_counter() - started)  # a lower bound: it never ended
            return durations, f"{step}: {exc}"
        durations.append(time.perf_counter() - started)
    return durations, ""


def _row(
    key: str, title: str, results: dict[str, list[Sample]], stat: str, target_ms: float | None
) -> Row:
    values = {p: median([s.extra[stat] for s in samples]) for p, samples in results.items()}
    met = None
    target = ""
    if target_ms is not None:
        chaosnet = values.get(CHAOSNET)
        target = f"chaosnet ≤ {target_ms:g} ms"
        met = chaosnet is not None and chaosnet <= target_ms
    hung = [p for p, samples in results.items() if any(s.extra["hangs"] for s in samples)]
    compare = "; ".join(f"{p} hung: its value is a lower bound" for p in hung)
    return Row(key, title, "ms", values, target, met, compare, {}, cost_details(results))


def _hangs_row(*series: dict[str, list[Sample]]) -> Row:
    values: dict[str, float | None] = {
        path: float(sum(s.extra["hangs"] for one in series for s in one.get(path, [])))
        for path in series[0]
    }
    met = values.get(CHAOSNET) == 0
    title = "control requests that hung (> 5 s)"
    return Row("6g", title, "count", values, "chaosnet 0", met)


def _rss_row(results: dict[str, list[Sample]], label: str) -> Row:
    values: dict[str, float | None] = {
        path: max((s.extra.get("peak_rss_MB", float("nan")) for s in samples), default=None)
        for path, samples in results.items()
    }
    return Row("6h", f"proxy peak RSS, {label}", "MB", values)
