"""``chaosnet serve``: the control API and the proxies in the foreground.

Prints ``chaosnet serve: listening on http://HOST:PORT`` (the real port when 0 was
asked) on stdout once ready, and the seed on stderr, so a run can be replayed with
``--seed``. SIGINT/SIGTERM stop it cleanly, closing every socket. A bad config
file or an address that cannot be bound is one line on stderr and exit status 2.

It takes toxiproxy-server's command line too (``-host``, ``-port``, ``-config``,
``-seed``, ``-proxy-metrics``, ``-runtime-metrics``, ``-version``, single- or
double-dash, ``-flag=value``), so a script or image that runs ``toxiproxy-server``
runs ``chaosnet serve`` with the same flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import sys
from pathlib import Path

from chaosnet.errors import ChaosnetError
from chaosnet.proxy.addresses import format_address
from chaosnet.proxy.api import TOXIPROXY_API_VERSION
from chaosnet.proxy.budget import DEFAULT_LIMIT
from chaosnet.proxy.config import load_config
from chaosnet.proxy.connlog import DEFAULT_HISTORY
from chaosnet.proxy.control_server import ControlServer
from chaosnet.proxy.engine import ProxyConfig
from chaosnet.proxy.errors import ApiError
from chaosnet.proxy.loop import new_event_loop
from chaosnet.proxy.metrics import MetricsOptions
from chaosnet.seeds import fresh_seed
from chaosnet.version import __version__

EXIT_OK = 0
EXIT_USAGE = 2
MAX_OPEN_FILES = 1 << 16


def main(
    host: str,
    port: int,
    seed: int | None,
    config: Path | None,
    *,
    history: int = DEFAULT_HISTORY,
    buffer_limit: int = DEFAULT_LIMIT,
    metrics: MetricsOptions | None = None,
) -> int:
    try:
        proxies = load_config(config) if config is not None else []
    except ChaosnetError as exc:
        return _fail(str(exc))
    _raise_open_files_limit()
    loop = new_event_loop()
    try:
        server = ControlServer(
            host,
            port,
            fresh_seed() if seed is None else seed,
            echo_errors=True,
            history=history,
            buffer_limit=buffer_limit,
            metrics=metrics,
        )
        return loop.run_until_complete(_serve(server, format_address(host, port), proxies))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


async def _serve(server: ControlServer, where: str, proxies: list[ProxyConfig]) -> int:
    try:
        await server.start(proxies)
    except OSError as exc:
        return _fail(f"cannot listen on {where}: {exc.strerror or exc}")
    except ApiError as exc:
        return _fail(f"config: {exc}")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        print(f"chaosnet serve: seed {server.seed}", file=sys.stderr, flush=True)
        print(f"chaosnet serve: listening on {server.url}", flush=True)
        await stopping.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await server.stop()
    return EXIT_OK


def print_version() -> int:
    """``-version``: toxiproxy-server prints ``toxiproxy-server version 2.12.0``."""
    print(f"chaosnet serve version {__version__} (Toxiproxy API {TOXIPROXY_API_VERSION})")
    return EXIT_OK


def _fail(message: str) -> int:
    print(f"chaosnet serve: error: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def _raise_open_files_limit() -> None:
    """Thousands of proxied connections need thousands of descriptors (2 each)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
