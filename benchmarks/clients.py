"""Load generators: fast enough that the proxy, not the client, is what gets measured.

- Bulk transfers use blocking ``sendall``/``recv_into`` of 4 MiB buffers: the
  copies run in the kernel with the GIL released, a few Python steps per MiB.
- A single connection's round trips are a blocking ``sendall``/``recv_into`` loop
  (no event loop between the wire and the timestamp).
- Many concurrent connections use one uvloop loop with small ``asyncio.Protocol``
  objects: no task and no coroutine per message, one callback per reply.

Every loop is bounded by a count and a deadline; every socket has a timeout.
The ``direct`` path runs the very same client, so its figures are the client's
ceiling: a proxy far below it is not limited by the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from chaosnet.control import Address
from chaosnet.framing import FrameDecoder, encode_frame
from chaosnet.proxy.loop import new_event_loop

SIZE = struct.Struct("!Q")
BULK_CHUNK = 4 << 20
SOCKET_TIMEOUT_S = 30.0
WARMUP_ROUND_TRIPS = 200
T = TypeVar("T")


class LoadError(RuntimeError):
    """The path under test misbehaved (short transfer, wrong echo, deadline passed)."""


def run_async(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one coroutine on a fresh uvloop (asyncio's loop without it)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(make())


def connect(address: Address) -> socket.socket:
    sock = socket.create_connection(address, timeout=SOCKET_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_into_exactly(sock: socket.socket, view: memoryview) -> None:
    """Fill ``view`` from ``sock``; a connection that closes first is a LoadError."""
    got = 0
    while got < len(view):
        count = sock.recv_into(view[got:])
        if count == 0:
            raise LoadError(f"connection closed after {got} of {len(view)} bytes")
        got += count


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """Exactly ``size`` bytes from ``sock``; a connection that closes first is a LoadError."""
    view = memoryview(bytearray(size))
    recv_into_exactly(sock, view)
    return view.tobytes()


# -- bulk ---------------------------------------------------------------------------------------


def bulk_upload(address: Address, total: int, budget_s: float) -> float:
    """Seconds to send ``total`` bytes to the sink and hear that all of them arrived."""
    payload = memoryview(bytes(BULK_CHUNK))
    deadline = time.monotonic() + budget_s
    with connect(address) as sock:
        started = time.perf_counter()
        sock.sendall(SIZE.pack(total))
        left = total
        while left > 0:
            piece = min(left, BULK_CHUNK)
            sock.sendall(payload[:piece])
            left -= piece
            if time.monotonic() > deadline:
                raise LoadError(f"upload of {total} bytes exceeded {budget_s:g}s")
        recv_into_exactly(sock, memoryview(bytearray(SIZE.size)))
        return time.perf_counter() - started


def download(address: Address, total: int, budget_s: float) -> float:
    """Seconds from asking the source for ``total`` bytes to holding the last of them."""
    view = memoryview(bytearray(BULK_CHUNK))
    deadline = time.monotonic() + budget_s
    with connect(address) as sock:
        started = time.perf_counter()
        sock.sendall(SIZE.pack(total))
        got = 0
        while got < total:
            count = sock.recv_into(view[: min(BULK_CHUNK, total - got)])
            if count == 0:
                raise LoadError(f"source closed after {got} of {total} bytes")
            got += count
            if time.monotonic() > deadline:
                raise LoadError(f"download of {total} bytes exceeded {budget_s:g}s")
        return time.perf_counter() - started


# -- one connection's round trips ------------------------------------------------------------------


def round_trips(address: Address, count: int, size: int, budget_s: float) -> list[float]:
    """Round-trip times (s) of ``size``-byte messages on one connection, after a warm-up."""
    message = b"\x5a" * size
    view = memoryview(bytearray(size))
    samples: list[float] = []
    clock = time.perf_counter
    with connect(address) as sock:
        for _ in range(WARMUP_ROUND_TRIPS):
            sock.sendall(message)
            recv_into_exactly(sock, view)
        deadline = time.monotonic() + budget_s
        for _ in range(count):
            started = clock()
            sock.sendall(message)
            recv_into_exactly(sock, view)
            samples.append(clock() - started)
            if time.monotonic() > deadline:
                break
    return samples


# -- many connections ---------------------------------------------------------------------------


@dataclass
class RoundTrips:
    samples: list[float] = field(default_factory=list)  # seconds, every completed round trip
    errors: int = 0
    elapsed_s: float = 0.0
    error_kinds: dict[str, int] = field(default_factory=dict)

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


class PingPong(asyncio.Protocol):
    """A closed loop on one connection: send, wait for the whole echo, record, repeat."""

    def __init__(
        self, payload: bytes, rounds: int, framed: bool, out: RoundTrips, unrecorded: int = 0
    ) -> None:
        self.payload = payload
        self.unrecorded = unrecorded  # warm-up round trips
        self.wire = encode_frame(payload) if framed else payload
        self.decoder = FrameDecoder() if framed else None
        self.left = rounds
        self.out = out
        self.received = 0
        self.sent_at = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def start(self) -> None:
        if self.transport is not None and not self.done.done():
            self.sent_at = time.perf_counter()
            self.transport.write(self.wire)

    def data_received(self, data: bytes) -> None:
        if self.decoder is not None:
            frames = self.decoder.feed(data)
            if not frames:
                return
            if frames != [self.payload]:
                self._fail(LoadError("echoed frame differs from the one sent"))
                return
        else:
            self.received += len(data)
            if self.received < len(self.wire):
                return
            self.received -= len(self.wire)
        if self.unrecorded > 0:
            self.unrecorded -= 1
        else:
            self.out.samples.append(time.perf_counter() - self.sent_at)
        self.left -= 1
        if self.left > 0:
            self.start()
        else:
            self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionResetError("closed by the peer mid-run"))


async def concurrent_round_trips(
    address: Address,
    *,
    connections: int,
    rounds: int,
    payload: bytes,
    budget_s: float,
    framed: bool = False,
    stagger_s: float | None = None,
    warmup: int = 0,
) -> RoundTrips:
    """``connections`` closed loops of ``rounds`` round trips each.

    With ``stagger_s`` every connection is opened first and loop ``i`` starts
    ``i * stagger_s`` later, so replies do not all land on the client at once;
    without it each connection starts as soon as it is open, and ``elapsed_s``
    is the completion time of the whole batch, connection setup included. The
    first ``warmup`` round trips of each connection are done but not recorded.
    """
    loop = asyncio.get_running_loop()
    out = RoundTrips()
    settled = 0  # sessions whose connect finished, either way
    all_settled, go = asyncio.Event(), asyncio.Event()
    started = time.perf_counter()

    async def session(index: int) -> None:
        nonlocal settled
        try:
            _, protocol = await loop.create_connection(
                lambda: PingPong(payload, rounds + warmup, framed, out, warmup), *address
            )
        finally:
            settled += 1
            if settled == connections:
                all_settled.set()
        if stagger_s is None:
            protocol.start()
        else:
            await go.wait()
            loop.call_later(index * stagger_s, protocol.start)
        await protocol.done

    tasks = [loop.create_task(session(i)) for i in range(connections)]
    if stagger_s is not None:
        with contextlib.suppress(TimeoutError):  # the deadline below still bounds the run
            await asyncio.wait_for(all_settled.wait(), budget_s)
        go.set()
    finished, pending = await asyncio.wait(tasks, timeout=budget_s)
    out.elapsed_s = time.perf_counter() - started
    for task in pending:
        task.cancel()
        out.error("deadline")
    await asyncio.gather(*pending, return_exceptions=True)
    for task in finished:
        exc = task.exception()
        if exc is not None:
            out.error(type(exc).__name__)
    return out


# -- new connections ------------------------------------------------------------------------------


class OneShot(asyncio.Protocol):
    """Connect, one round trip, close."""

    def __init__(self, message: bytes) -> None:
        self.message = message
        self.received = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.message)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received >= len(self.message) and not self.done.done():
            self.done.set_result(None)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionResetError("closed before the echo"))


@dataclass
class ConnectRate:
    completed: int
    errors: int
    elapsed_s: float

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def connection_rate(
    address: Address, *, count: int, concurrency: int, budget_s: float
) -> ConnectRate:
    """``concurrency`` workers each open a connection, do one 32-byte round trip, close;
    ``count`` connections in all, or fewer if ``budget_s`` runs out."""
    loop = asyncio.get_running_loop()
    tickets = itertools.count()
    deadline = time.monotonic() + budget_s
    completed = errors = 0
    message = b"\x5a" * 32

    async def worker() -> None:
        nonlocal completed, errors
        while next(tickets) < count and time.monotonic() < deadline:
            try:
                async with asyncio.timeout(SOCKET_TIMEOUT_S):
                    _, protocol = await loop.create_connection(lambda: OneShot(message), *address)
                    await protocol.done
                completed += 1
            except (OSError, TimeoutError):
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ConnectRate(completed, errors, time.perf_counter() - started)
