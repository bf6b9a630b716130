"""The control server and its proxies in this process, on a background thread.

::

    with EmbeddedServer(seed=7) as server:      # start() returns once listening
        url = server.url                         # "http://127.0.0.1:PORT"
        ...                                      # any Toxiproxy client, or chaosnet.control
    # stop(): every listener and connection closed, the thread joined

The thread runs its own event loop (uvloop when installed). Exceptions that escape
the engine's internals (a toxic or a connection crashing) are kept, and
:meth:`EmbeddedServer.take_errors` drains them so a test harness can fail the test
that caused them.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from chaosnet.errors import ChaosnetError
from chaosnet.proxy.addresses import format_address
from chaosnet.proxy.budget import DEFAULT_LIMIT
from chaosnet.proxy.connlog import DEFAULT_HISTORY
from chaosnet.proxy.control_server import ControlServer
from chaosnet.proxy.httpconn import IDLE_TIMEOUT_S
from chaosnet.proxy.loop import new_event_loop
from chaosnet.seeds import fresh_seed

if TYPE_CHECKING:
    from chaosnet.proxy.engine import Engine

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 10.0
T = TypeVar("T")


class EmbeddedServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        *,
        history: int = DEFAULT_HISTORY,
        buffer_limit: int = DEFAULT_LIMIT,
        idle_timeout: float = IDLE_TIMEOUT_S,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._seed = fresh_seed() if seed is None else seed
        self._server = ControlServer(
            host,
            port,
            self._seed,
            history=history,
            buffer_limit=buffer_limit,
            idle_timeout=idle_timeout,
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # -- addresses -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._server.address is None:
            raise ChaosnetError("embedded chaosnet server is not started")
        return self._server.address[1]

    @property
    def url(self) -> str:
        return f"http://{format_address(self._host, self.port)}"

    @property
    def seed(self) -> int:
        return self._seed

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> EmbeddedServer:
        if self._thread is not None:
            raise ChaosnetError("embedded chaosnet server already started")
        self._thread = threading.Thread(target=self._run, name="chaosnet-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise ChaosnetError(f"embedded chaosnet server did not start in {START_TIMEOUT_S:g}s")
        if self._failure is not None:
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
            where = format_address(self._host, self._requested_port)
            raise ChaosnetError(
                f"embedded chaosnet server cannot listen on {where}: {self._failure}"
            ) from self._failure
        return self

    def _run(self) -> None:
        loop = new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        try:
            await self._server.start()
        except Exception as exc:  # reported to start()'s caller
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await self._server.stop()
            await _cancel_leftover_tasks()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            raise ChaosnetError(f"embedded chaosnet server did not stop in {STOP_TIMEOUT_S:g}s")

    def call_in_engine(self, fn: Callable[[Engine], T]) -> T:
        """``fn(engine)`` run on the server's loop thread, its result returned here.

        For diagnostics and tests: the engine's state (timers, buffer budget, links)
        is only consistent on that thread.
        """
        loop, engine = self._loop, self._server.engine
        if self._thread is None or loop is None or engine is None:
            raise ChaosnetError("embedded chaosnet server is not started")

        async def call() -> T:
            return fn(engine)

        return asyncio.run_coroutine_threadsafe(call(), loop).result(CALL_TIMEOUT_S)

    def take_errors(self) -> list[BaseException]:
        engine = self._server.engine
        return engine.take_errors() if engine is not None else []

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


async def _cancel_leftover_tasks() -> None:
    """Upstream-name resolutions still running belong to closed connections."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
