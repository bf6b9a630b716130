"""The engine: every proxy of one server, on one event loop, and the errors it hit.

All state lives on the loop's thread; the control API's handlers run on the same
loop, so nothing needs a lock and no change can hang waiting for a data path
(Toxiproxy #412/#558). What the proxies, links and directions share (loop,
poller, timers, budget, seed, counters, error report) is the engine's
:class:`~chaosnet.proxy.runtime.Runtime`, handed down to each of them.
``report``/``take_errors`` are the one thread-safe door: an exception that
escapes engine internals is kept until the embedding test harness drains it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from chaosnet.proxy.budget import DEFAULT_LIMIT
from chaosnet.proxy.connlog import DEFAULT_HISTORY
from chaosnet.proxy.datagram.proxy import DEFAULT_FLOW_TIMEOUT_MS, DatagramProxy
from chaosnet.proxy.errors import ApiError, proxy_exists, proxy_not_found
from chaosnet.proxy.framers import Protocol
from chaosnet.proxy.proxy import Proxy
from chaosnet.proxy.runtime import Runtime


@dataclass(frozen=True)
class ProxyConfig:
    """A proxy as a create/populate request describes it (already validated)."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True
    transport: str = "tcp"  # "udp": a datagram proxy (chaosnet extension)
    flow_timeout: int | None = None  # ms, datagram proxies only (None: the default)
    protocol: Protocol | None = None


class Engine:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        seed: int | None = None,
        history: int = DEFAULT_HISTORY,
        echo_errors: bool = False,
        buffer_limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.runtime = Runtime.create(
            loop,
            seed=seed,
            history=history,
            buffer_limit=buffer_limit,
            echo_errors=echo_errors,
        )
        self.proxies: dict[str, Proxy] = {}

    @property
    def seed(self) -> int:
        return self.runtime.seed

    # -- errors --------------------------------------------------------------------------------

    def report(self, exc: BaseException) -> None:
        self.runtime.report(exc)

    def take_errors(self) -> list[BaseException]:
        return self.runtime.errors.take()

    # -- proxies -------------------------------------------------------------------------------

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise proxy_not_found(name)
        return proxy

    async def create(self, config: ProxyConfig) -> Proxy:
        if config.name in self.proxies:
            raise proxy_exists(config.name)
        proxy = self._new_proxy(config)
        proxy.protocol = config.protocol
        if config.enabled or config.transport == "udp":  # a disabled UDP proxy holds its port
            await proxy.set_enabled(config.enabled)
        self.proxies[config.name] = proxy
        return proxy

    def _new_proxy(self, config: ProxyConfig) -> Proxy:
        if config.transport == "udp":
            timeout = config.flow_timeout or DEFAULT_FLOW_TIMEOUT_MS
            return DatagramProxy(self.runtime, config.name, config.listen, config.upstream, timeout)
        return Proxy(self.runtime, config.name, config.listen, config.upstream)

    async def delete(self, name: str) -> None:
        self.get(name).stop()
        del self.proxies[name]

    async def populate(self, configs: Sequence[ProxyConfig]) -> list[Proxy]:
        """Toxiproxy's populate: keep identical proxies, replace changed ones, add new ones.

        Stops at the first failure; ``ApiError.done`` then lists the proxies handled.
        """
        done: list[Proxy] = []
        for config in configs:
            try:
                done.append(await self._add_or_replace(config))
            except ApiError as exc:
                raise PopulateError(exc, done) from None
        return done

    async def _add_or_replace(self, config: ProxyConfig) -> Proxy:
        existing = self.proxies.get(config.name)
        if existing is not None:
            if (
                not existing.differs(config.listen, config.upstream)
                and _same_transport(existing, config)
                and existing.protocol == config.protocol
            ):
                return existing
            await self.delete(config.name)
        return await self.create(config)

    async def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (Toxiproxy's ``/reset``)."""
        for proxy in list(self.proxies.values()):
            await proxy.reset_toxics()
            await proxy.start()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        self.proxies.clear()
        self.runtime.close()


def _same_transport(proxy: Proxy, config: ProxyConfig) -> bool:
    if proxy.transport != config.transport:
        return False
    wanted = config.flow_timeout
    return wanted is None or getattr(proxy, "flow_timeout", None) == wanted


class PopulateError(ApiError):
    def __init__(self, cause: ApiError, done: list[Proxy]) -> None:
        super().__init__(cause.status, cause.message, cause.detail)
        self.done = done
