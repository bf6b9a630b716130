"""Figure 7: what a test pays for its proxy.

- ``7a`` per-test cost: on the embedded backend (the plugin's default) a test
  calls ``chaos.proxy()`` on the session's in-process server and the controller
  deletes it afterwards; without a shared server, a test that wants the real
  Toxiproxy starts ``toxiproxy-server``, creates the proxy, and stops it.
- ``7b`` the same ``chaos.proxy()`` + cleanup on an already running server
  (in-process embedded vs the running ``toxiproxy-server``);
- ``7c`` starting and stopping the server itself (a session's one-off cost).

The embedded server runs in this process on its background thread, as under
pytest: this figure is the one that measures the in-process configuration.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmarks.environment import CHAOSNET, TOXIPROXY
from benchmarks.figures.common import Context, times
from benchmarks.report import Row
from benchmarks.stats import median, percentile, ratio
from chaosnet.backends.toxiproxy import ToxiproxyBackend
from chaosnet.chaos import Chaos
from chaosnet.control import Address, ControlClient
from chaosnet.proxy.embedded import EmbeddedServer

PER_TEST_TARGET = 20.0


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def _chaos_proxy(client: ControlClient, upstream: Address) -> Callable[[], None]:
    def one_test() -> None:
        chaos = Chaos(client, name_prefix="bench-")
        chaos.proxy(upstream)
        chaos.close()

    return one_test


def _toxiproxy_test(ctx: Context, upstream: Address) -> Callable[[], None]:
    def one_test() -> None:
        backend = ToxiproxyBackend(binary=ctx.env.toxiproxy_bin)
        backend.start()
        client = ControlClient(backend.url, backend="toxiproxy")
        try:
            _chaos_proxy(client, upstream)()
        finally:
            client.close()
            backend.stop()

    return one_test


def _embedded_start_stop() -> None:
    server = EmbeddedServer()
    server.start()
    server.stop()


def _toxiproxy_start_stop(ctx: Context) -> Callable[[], None]:
    def start_stop() -> None:
        backend = ToxiproxyBackend(binary=ctx.env.toxiproxy_bin)
        backend.start()
        backend.stop()

    return start_stop


def run(ctx: Context) -> list[Row]:
    plan = ctx.plan
    ctx.say(
        f"figure 7: chaos.proxy() x {plan.plugin_cycles}, "
        f"toxiproxy starts x {plan.toxiproxy_starts}"
    )
    upstream = ctx.env.upstream().echo
    samples: dict[str, list[float]] = {
        k: [] for k in ("embedded", "running_t", "start_t", "srv_c", "srv_t")
    }
    has_toxiproxy = TOXIPROXY in ctx.env.servers
    with EmbeddedServer() as server:
        client = ControlClient(server.url, backend="embedded")
        embedded_test = _chaos_proxy(client, upstream)
        for _ in range(20):  # warm-up: imports, first connection, caches
            embedded_test()
        rounds = max(1, plan.toxiproxy_starts)
        per_round = max(1, plan.plugin_cycles // rounds)
        for _ in range(rounds):
            if has_toxiproxy:
                samples["start_t"].append(_timed(_toxiproxy_test(ctx, upstream)))
                samples["srv_t"].append(_timed(_toxiproxy_start_stop(ctx)))
                on_running = _chaos_proxy(ctx.env.servers[TOXIPROXY].client, upstream)
                samples["running_t"] += [_timed(on_running) for _ in range(per_round)]
            samples["embedded"] += [_timed(embedded_test) for _ in range(per_round)]
            samples["srv_c"].append(_timed(_embedded_start_stop))
        client.close()
    m = {k: median(v) if v else None for k, v in samples.items()}
    per_test = ratio(m["start_t"], m["embedded"])
    running = ratio(m["running_t"], m["embedded"])
    details = {
        k: {"median_ms": m[k], "p99_ms": percentile(v, 99), "count": len(v)}
        for k, v in samples.items()
    }
    return [
        Row(
            "7a",
            "per-test proxy: chaos.proxy() vs starting toxiproxy",
            "ms",
            {CHAOSNET: m["embedded"], TOXIPROXY: m["start_t"]},
            f"toxiproxy ≥ {PER_TEST_TARGET:g}x chaosnet",
            None if per_test is None else per_test >= PER_TEST_TARGET,
            f"{times(per_test)} cheaper",
            {"toxiproxy/chaosnet": per_test},
            details,
        ),
        Row(
            "7b",
            "chaos.proxy() + cleanup, running server",
            "ms",
            {CHAOSNET: m["embedded"], TOXIPROXY: m["running_t"]},
            "",
            None,
            f"{times(running)} cheaper",
            {"toxiproxy/chaosnet": running},
        ),
        Row(
            "7c",
            "server start + stop (once per session)",
            "ms",
            {CHAOSNET: m["srv_c"], TOXIPROXY: m["srv_t"]},
            "",
            None,
            f"{times(ratio(m['srv_t'], m['srv_c']))} cheaper",
        ),
    ]
