"""The control server: an engine plus its aiohttp API on one listening socket, on one loop.

Used by :class:`~chaosnet.proxy.embedded.EmbeddedServer` (background thread) and
``chaosnet serve`` (foreground). The API socket is bound here (port 0 gives a
real port at once, no free-port race) and handed to aiohttp.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from chaosnet.proxy.addresses import family_of, format_address
from chaosnet.proxy.api import build_app
from chaosnet.proxy.budget import DEFAULT_LIMIT
from chaosnet.proxy.connlog import DEFAULT_HISTORY
from chaosnet.proxy.engine import Engine, ProxyConfig
from chaosnet.proxy.guards import admission, is_loopback_host
from chaosnet.proxy.httpconn import IDLE_TIMEOUT_S, ApiRunner
from chaosnet.proxy.metrics import MetricsOptions

SHUTDOWN_TIMEOUT_S = 0.5


class ControlServer:
    def __init__(
        self,
        host: str,
        port: int,
        seed: int | None,
        *,
        history: int = DEFAULT_HISTORY,
        echo_errors: bool = False,
        buffer_limit: int = DEFAULT_LIMIT,
        metrics: MetricsOptions | None = None,
        idle_timeout: float = IDLE_TIMEOUT_S,
    ) -> None:
        self._host = host
        self._metrics = metrics
        self._idle_timeout = idle_timeout
        self._port = port
        self._seed = seed
        self._history = history
        self._echo_errors = echo_errors
        self._buffer_limit = buffer_limit
        self._runner: web.AppRunner | None = None
        self.engine: Engine | None = None
        self.address: tuple[str, int] | None = None

    @property
    def seed(self) -> int | None:
        return self._seed

    @property
    def url(self) -> str:
        assert self.address is not None
        return f"http://{format_address(*self.address)}"

    async def start(self, proxies: Sequence[ProxyConfig] = ()) -> None:
        """Bind the API and create ``proxies``; raises OSError or ApiError, leaving nothing open."""
        loop = asyncio.get_running_loop()
        engine = Engine(
            loop,
            self._seed,
            self._history,
            echo_errors=self._echo_errors,
            buffer_limit=self._buffer_limit,
        )
        loop.set_exception_handler(lambda _loop, context: _report(engine, context))
        sock = _bind(self._host, self._port)
        app = build_app(engine, self._metrics)
        app.middlewares.append(admission(loopback_only=is_loopback_host(self._host)))
        runner = ApiRunner(
            app,
            idle_timeout=self._idle_timeout,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        )
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self.engine, self._runner = engine, runner
            name = sock.getsockname()
            self.address = (name[0], name[1])
            await engine.populate(proxies)
        except BaseException:
            await self.stop()
            sock.close()
            raise

    async def stop(self) -> None:
        if self.engine is not None:
            self.engine.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _report(engine: Engine, context: dict[str, Any]) -> None:
    """Unhandled errors in loop callbacks; a peer hanging up is not an error."""
    exc = context.get("exception")
    if isinstance(exc, ConnectionError | asyncio.CancelledError):
        return
    engine.report(exc if isinstance(exc, BaseException) else RuntimeError(context["message"]))
