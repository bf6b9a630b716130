"""The runtime of a builtin server process: bind, announce, serve, stop on SIGTERM.

One asyncio loop (uvloop when importable) serves every connection with a small
``asyncio.Protocol``: no task per connection, so a thousand concurrent clients
cost a thousand transports and nothing more. A bad client costs one log line
on stderr and its own connection, never the server. A datagram server
(:func:`serve_datagrams`) answers each datagram with at most one datagram, to
the address it came from; a datagram it cannot answer is logged and dropped.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, cast

from chaosnet.address import format_address

LISTEN_BACKLOG = 4096  # asyncio's default of 100 drops SYNs under a 1,000-client burst
SHUTDOWN_TIMEOUT_S = 2.0
READY_WORDS = "listening on"


@dataclass
class ServerContext:
    """What every connection of one server shares: its name, its log and its transports."""

    kind: str
    verbose: bool = False
    transports: set[asyncio.Transport] = field(default_factory=set)

    def log(self, message: str) -> None:
        print(f"chaosnet-server {self.kind}: {message}", file=sys.stderr, flush=True)


class ServerProtocol(asyncio.Protocol):
    """Connection bookkeeping, flow control and error logging shared by the builtin servers."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.transport: asyncio.Transport | None = None
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = format_address(str(peer[0]), int(peer[1]))
        self.ctx.transports.add(self.transport)
        if self.ctx.verbose:
            self.ctx.log(f"connection from {self.peer}")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.ctx.transports.discard(self.transport)
        if exc is not None:
            self.ctx.log(f"connection from {self.peer} lost: {type(exc).__name__}: {exc}")
        elif self.ctx.verbose:
            self.ctx.log(f"connection from {self.peer} closed")

    # The peer reads slower than we answer: stop reading until our buffer drains.
    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def fail(self, what: str, exc: BaseException) -> None:
        """Log a bad client (or our own bug) and drop only its connection."""
        self.ctx.log(f"connection from {self.peer}: {what}: {type(exc).__name__}: {exc}")
        if self.transport is not None:
            self.transport.abort()


ProtocolFactory = Callable[[ServerContext], asyncio.Protocol]
#: A datagram server's answer to one datagram, or None for no answer.
DatagramHandler = Callable[[bytes], bytes | None]
DATAGRAM_BUFFER = 4 << 20  # asked for: a burst from many clients at once is not lost


class DatagramServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, ctx: ServerContext, handler: DatagramHandler) -> None:
        self.ctx = ctx
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            answer = self.handler(data)
        except Exception as exc:  # a bad datagram costs a log line, never the server
            self.ctx.log(f"datagram from {format_address(str(addr[0]), int(addr[1]))}: {exc}")
            return
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def error_received(self, exc: Exception) -> None:
        if self.ctx.verbose:  # an ICMP error for an earlier answer: that client is gone
            self.ctx.log(f"send failed: {type(exc).__name__}: {exc}")


def serve(
    kind: str, factory: ProtocolFactory, *, host: str, port: int, verbose: bool = False
) -> int:
    """Run the server until SIGTERM or SIGINT; the exit status (0 on a clean stop)."""
    return _run(ServerContext(kind, verbose), lambda ctx: _serve(ctx, factory, host, port))


def serve_datagrams(
    kind: str, handler: DatagramHandler, *, host: str, port: int, verbose: bool = False
) -> int:
    """Run a datagram server until SIGTERM or SIGINT; the exit status (0 on a clean stop)."""
    return _run(
        ServerContext(kind, verbose), lambda ctx: _serve_datagrams(ctx, handler, host, port)
    )


def _run(ctx: ServerContext, main: Callable[[ServerContext], Coroutine[Any, Any, int]]) -> int:
    """``main(ctx)`` on a fresh event loop of the server's kind, to its exit status."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main(ctx))


async def _serve_datagrams(
    ctx: ServerContext, handler: DatagramHandler, host: str, port: int
) -> int:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, DATAGRAM_BUFFER)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        ctx.log(f"cannot listen on {format_address(host, port)}: {exc.strerror or exc}")
        return 1
    transport, _ = await loop.create_datagram_endpoint(
        lambda: DatagramServerProtocol(ctx, handler), sock=sock
    )
    await _announce_and_wait(ctx, sock.getsockname())
    ctx.log("stopping")
    transport.close()
    return 0


async def _announce_and_wait(ctx: ServerContext, bound: tuple[Any, ...]) -> None:
    """Print the ready line with the bound address, then wait for SIGTERM or SIGINT."""
    print(
        f"chaosnet-server {ctx.kind} {READY_WORDS} {format_address(str(bound[0]), int(bound[1]))}",
        flush=True,
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(ctx: ServerContext, factory: ProtocolFactory, host: str, port: int) -> int:
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            lambda: factory(ctx), host, port, backlog=LISTEN_BACKLOG, reuse_address=True
        )
    except OSError as exc:
        ctx.log(f"cannot listen on {format_address(host, port)}: {exc.strerror or exc}")
        return 1
    await _announce_and_wait(ctx, server.sockets[0].getsockname())
    ctx.log(f"stopping ({len(ctx.transports)} open connections)")
    server.close()
    for transport in list(ctx.transports):
        transport.close()  # flushes what is buffered, then FIN
    try:
        await asyncio.wait_for(server.wait_closed(), SHUTDOWN_TIMEOUT_S)
    except TimeoutError:
        ctx.log("some connections did not close in time")
    return 0
