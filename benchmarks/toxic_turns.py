"""Control-cycle latency while each toxic runs at its most expensive setting, flat out.

``python -m benchmarks.toxic_turns [--seconds S] [--connections N] [--output FILE.json]``

For every stream toxic, one ``chaosnet serve`` process (its own, real sockets)
proxies ``N`` connections to the benchmarks' echo upstream; a load process sends
and reads on each as fast as it can, through the toxic at the setting that costs
the engine most per byte (a 1-byte slicer, corrupting every byte, a latency of
1 ms with jitter -- a timer per chunk -- ...). Meanwhile the main process times
control cycles (create a proxy, add a toxic, remove it, delete the proxy: four
requests, as in figure 6) for ``S`` seconds and reports the median and p99.
The engine's promise (issue 14.10): p99 <= 20 ms for every toxic, however set.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.environment import Environment
from benchmarks.stats import median, percentile
from chaosnet.control import Address

TARGET_P99_MS = 20.0
CHUNK = 64 * 1024

#: The costliest setting of every stream toxic: most work per byte or per chunk.
EXPENSIVE: dict[str, dict[str, Any]] = {
    "noop": {},
    "latency": {"latency": 1, "jitter": 1},
    "bandwidth": {"rate": 10_000_000},
    "slow_close": {"delay": 1},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 86_400_000},
    "slicer": {"average_size": 1, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 2**62},
    "truncate_frame": {"frame": 2**62, "header_size": 1},
    "limit_time": {"duration": 86_400_000},
    "corrupt": {"probability": 1.0},
    "corrupt_bodies": {"probability": 1.0, "body_only": True, "header_size": 1},
}


def _pump(address: Address, seconds: float) -> None:
    """Send and read on one connection until ``seconds`` pass (the load process's threads)."""
    deadline = time.monotonic() + seconds
    data = bytes(range(256)) * (CHUNK // 256)
    try:
        sock = socket.create_connection(address, timeout=1)
    except OSError:
        return

    def read() -> None:
        while time.monotonic() < deadline:
            try:
                if not sock.recv(1 << 20):
                    return
            except OSError:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    with sock:
        while time.monotonic() < deadline:
            try:
                sock.sendall(data)
            except OSError:
                break
        reader.join(2)


def _load(addresses: list[Address], seconds: float) -> None:
    threads = [threading.Thread(target=_pump, args=(a, seconds)) for a in addresses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 5)


def _cycles(env: Environment, echo: str, seconds: float) -> list[float]:
    client = env.servers["chaosnet"].client
    durations: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        name = f"cycle-{time.monotonic_ns()}"
        started = time.perf_counter()
        client.create_proxy(name, echo)
        client.add_toxic(name, "latency", name="cycle", attributes={"latency": 10})
        client.remove_toxic(name, "cycle")
        client.delete_proxy(name)
        durations.append(time.perf_counter() - started)
    return durations


def measure(
    kind: str, attributes: dict[str, Any], seconds: float, connections: int
) -> dict[str, Any]:
    with Environment(None) as env:
        assert env.upstreams is not None
        host, port = env.upstreams.echo
        echo = f"{host}:{port}"
        client = env.servers["chaosnet"].client
        proxy = client.create_proxy("loaded", echo)
        toxic = "corrupt" if kind == "corrupt_bodies" else kind
        for stream in ("upstream", "downstream"):
            client.add_toxic("loaded", toxic, stream=stream, attributes=attributes)
        load = multiprocessing.get_context("spawn").Process(
            target=_load, args=([proxy.address] * connections, seconds + 1)
        )
        load.start()
        try:
            time.sleep(0.5)  # the streams are under way (a warm-up, not a synchronisation)
            durations = _cycles(env, echo, seconds)
        finally:
            load.join(seconds + 10)
            if load.is_alive():
                load.kill()
    ms = [d * 1000 for d in durations]
    return {
        "toxic": kind,
        "attributes": attributes,
        "cycles": len(ms),
        "median_ms": round(median(ms), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toxic_turns")
    parser.add_argument("--seconds", type=float, default=5.0, help="cycles timed per toxic")
    parser.add_argument("--connections", type=int, default=4, help="streams through the toxic")
    parser.add_argument("--toxics", default="", help="comma-separated subset")
    parser.add_argument("--output", type=Path, default=None, help="JSON results file")
    args = parser.parse_args(argv)
    chosen = [t for t in args.toxics.split(",") if t] or list(EXPENSIVE)
    rows = []
    for kind in chosen:
        row = measure(kind, EXPENSIVE[kind], args.seconds, args.connections)
        mark = "ok" if row["p99_ms"] <= TARGET_P99_MS else "OVER"
        print(
            f"{kind:15} cycles {row['cycles']:5}  median {row['median_ms']:7.2f} ms  "
            f"p99 {row['p99_ms']:7.2f} ms  max {row['max_ms']:7.2f} ms  {mark}",
            flush=True,
        )
        rows.append(row)
    if args.output is not None:
        args.output.write_text(json.dumps({"target_p99_ms": TARGET_P99_MS, "rows": rows}, indent=2))
    return 0 if all(row["p99_ms"] <= TARGET_P99_MS for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
