"""The engine: every proxy of one server, on one event loop, and the errors it hit.

All state lives on the loop's thread; the control API's handlers run on the same
loop, so nothing needs a lock and no change can hang waiting for a data path
(Toxiproxy #412/#558). ``report``/``take_errors`` are the one thread-safe door: an
exception that escapes engine internals is kept here until the embedding test
harness drains it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from chaosnet.proxy.budget import DEFAULT_LIMIT, BufferBudget
from chaosnet.proxy.connlog import DEFAULT_HISTORY
from chaosnet.proxy.counters import Counters
from chaosnet.proxy.direction import ReadBuffer
from chaosnet.proxy.errors import ApiError, proxy_exists, proxy_not_found
from chaosnet.proxy.poller import Poller
from chaosnet.proxy.proxy import Proxy
from chaosnet.proxy.timers import TimerQueue
from chaosnet.seeds import fresh_seed

MAX_KEPT_ERRORS = 100


@dataclass(frozen=True)
class ProxyConfig:
    """A proxy as a create/populate request describes it (already validated)."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True


class Engine:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        seed: int | None = None,
        history: int = DEFAULT_HISTORY,
        echo_errors: bool = False,
        buffer_limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.loop = loop
        self.seed = fresh_seed() if seed is None else seed
        self.history = history
        self.buffer = ReadBuffer()
        self.poller = Poller(loop)
        self.budget = BufferBudget(buffer_limit)
        self.proxies: dict[str, Proxy] = {}
        self.counters = Counters()
        self._echo_errors = echo_errors
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self.timers = TimerQueue(loop, self.report)

    # -- errors --------------------------------------------------------------------------------

    def report(self, exc: BaseException) -> None:
        with self._errors_lock:
            if len(self._errors) < MAX_KEPT_ERRORS:
                self._errors.append(exc)
        if self._echo_errors:
            print(f"chaosnet serve: internal error: {exc!r}", file=sys.stderr, flush=True)

    def take_errors(self) -> list[BaseException]:
        with self._errors_lock:
            errors, self._errors = self._errors, []
        return errors

    # -- proxies -------------------------------------------------------------------------------

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise proxy_not_found(name)
        return proxy

    async def create(self, config: ProxyConfig) -> Proxy:
        if config.name in self.proxies:
            raise proxy_exists(config.name)
        proxy = Proxy(self, config.name, config.listen, config.upstream)
        if config.enabled:
            await proxy.start()
        self.proxies[config.name] = proxy
        return proxy

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
            if not existing.differs(config.listen, config.upstream):
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
        self.poller.close()
        self.timers.close()


class PopulateError(ApiError):
    def __init__(self, cause: ApiError, done: list[Proxy]) -> None:
        super().__init__(cause.status, cause.message, cause.detail)
        self.done = done
