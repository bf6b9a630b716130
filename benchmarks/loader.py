"""Background load for the control-plane figure: many connections streaming at once.

``python -m benchmarks.loader HOST PORT CONNECTIONS SECONDS [RATE]`` opens
CONNECTIONS connections to HOST:PORT (a proxy in front of the upstream ``source``),
asks each for an endless stream and reads it into one shared buffer
(``BufferedProtocol``: no allocation per read). With RATE (bytes/s per
connection) each connection stops reading while it is ahead of that pace, and
TCP flow control slows the proxy and the source to it; without, they go flat out.
It prints ``loader streaming N of CONNECTIONS`` once every connection has
received data (or after 20 s, with N the ones that have), then keeps reading
until SIGTERM or SECONDS pass, and prints ``loader done bytes=B errors=E`` before
exiting. It runs in its own process so the load does not share a GIL with the
control client being timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import cast

from benchmarks.upstream import SIZE, raise_open_files_limit
from chaosnet.proxy.loop import new_event_loop

ENDLESS = 1 << 62
READ_BUFFER = 256 << 10
CONNECT_TIMEOUT_S = 10.0
STREAM_WAIT_S = 20.0
STREAMING_LINE = "loader streaming"


class Drain(asyncio.BufferedProtocol):
    buffer = memoryview(bytearray(READ_BUFFER))

    def __init__(self, counters: Counters, rate: float) -> None:
        self.counters = counters
        self.rate = rate
        self.flowing = False
        self.received = 0
        self.started = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def request(self) -> None:
        self.started = time.monotonic()
        self.transport.write(SIZE.pack(ENDLESS))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.counters.bytes += nbytes
        self.received += nbytes
        if self.rate > 0:
            ahead = self.received / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(ahead, self._resume)
        if not self.flowing:
            self.flowing = True
            self.counters.flowing += 1
            if self.counters.flowing == self.counters.wanted:
                self.counters.all_flowing.set()

    def _resume(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.counters.stopping:
            self.counters.errors += 1


class Counters:
    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.flowing = 0
        self.bytes = 0
        self.errors = 0
        self.stopping = False
        self.all_flowing = asyncio.Event()


async def _main(host: str, port: int, connections: int, seconds: float, rate: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    counters = Counters(connections)
    drains: list[Drain] = []
    # Connect everything first, then ask for data: streams already flowing would
    # slow this loop down while it still has connects to finish.
    for _ in range(connections):
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, drain = await loop.create_connection(lambda: Drain(counters, rate), host, port)
            drains.append(drain)
        except (OSError, TimeoutError):
            counters.errors += 1
    counters.wanted = len(drains)
    for drain in drains:
        drain.request()
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):  # starved connections are reported, not fatal
        async with asyncio.timeout(STREAM_WAIT_S):
            await counters.all_flowing.wait()
    print(f"{STREAMING_LINE} {counters.flowing} of {connections}", flush=True)
    try:
        async with asyncio.timeout(max(0.0, seconds - (time.monotonic() - started))):
            await stop.wait()
    except TimeoutError:
        pass
    counters.stopping = True
    for drain in drains:
        drain.transport.abort()
    print(f"loader done bytes={counters.bytes} errors={counters.errors}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        print(
            "usage: python -m benchmarks.loader HOST PORT CONNECTIONS SECONDS [RATE]",
            file=sys.stderr,
        )
        return 2
    raise_open_files_limit()
    host, port, connections, seconds = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    rate = float(argv[4]) if len(argv) == 5 else 0.0
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_main(host, port, connections, seconds, rate))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
