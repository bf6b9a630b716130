"""The benchmarks' upstream servers: one process, four loopback ports, never the bottleneck.

- ``echo``: sends every byte back (so framed round trips work too);
- ``source``: reads an 8-byte big-endian size, sends that many bytes, closes;
  a huge size streams until the client goes away;
- ``bulk_sink``: reads an 8-byte size, then that many bytes, answers 8 bytes, closes
  (no half-close: Toxiproxy closes both directions when one ends);
- ``bulk_source``: like ``source``;
- ``udp_echo``: sends every datagram back to its sender;
- ``udp_sink``: counts datagrams and the first and last arrival times; a datagram
  ``\x00reset`` clears the count and ``\x00count`` is answered with
  ``!QQQ`` (count, first and last arrival in ``time.monotonic_ns()``). The control
  datagrams go straight to it, never through a proxy.
- ``drain``: reads until the client half-closes, answers the byte count (8 bytes),
  closes: any byte stream, so a framed proxy sees nothing but the messages.

``echo`` and ``source`` serve many connections on one uvloop loop with small
``asyncio.Protocol`` objects (no task per connection, no copy on the echo path).
The two bulk servers give each connection a thread doing blocking
``recv_into``/``sendall`` on big buffers: the copy happens in the kernel with
the GIL released, so one bulk connection moves several GB/s on loopback, faster
than any proxy under test (the ``direct`` figures prove it).

Run: ``python -m benchmarks.upstream``; prints ``upstream KIND HOST:PORT`` per
server, then ``upstream ready``; SIGTERM/SIGINT stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
import socket
import struct
import sys
import threading
import time
from typing import cast

from benchmarks.clients import recv_exactly
from chaosnet.proxy.loop import new_event_loop

HOST = "127.0.0.1"
SIZE = struct.Struct("!Q")
BULK_BUFFER = 4 << 20
STREAM_SLICE = 256 << 10
BACKLOG = 4096
SOCKET_TIMEOUT_S = 60.0
READY_LINE = "upstream ready"


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # close our side too


class Source(asyncio.Protocol):
    """Sends the requested number of bytes, pausing while the socket buffer is full."""

    payload = memoryview(b"\xa5" * STREAM_SLICE)

    def __init__(self) -> None:
        self.header = b""
        self.left = 0
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if len(self.header) >= SIZE.size:
            return
        self.header += data
        if len(self.header) >= SIZE.size:
            self.left = SIZE.unpack_from(self.header)[0]
            self._pump()

    def _pump(self) -> None:
        while self.left > 0 and not self.paused and not self.transport.is_closing():
            piece = min(self.left, STREAM_SLICE)
            self.left -= piece
            self.transport.write(self.payload[:piece])
        if self.left == 0 and not self.transport.is_closing():
            self.transport.close()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()


def _bulk_sink(conn: socket.socket) -> None:
    buffer = memoryview(bytearray(BULK_BUFFER))
    with conn:
        left = SIZE.unpack(recv_exactly(conn, SIZE.size))[0]
        while left > 0:
            count = conn.recv_into(buffer[: min(left, BULK_BUFFER)])
            if count == 0:
                return
            left -= count
        conn.sendall(SIZE.pack(0))


def _drain(conn: socket.socket) -> None:
    buffer = memoryview(bytearray(BULK_BUFFER))
    total = 0
    with conn:
        while count := conn.recv_into(buffer):
            total += count
        conn.sendall(SIZE.pack(total))


def _bulk_source(conn: socket.socket) -> None:
    payload = memoryview(b"\xa5" * BULK_BUFFER)
    with conn:
        left = SIZE.unpack(recv_exactly(conn, SIZE.size))[0]
        while left > 0:
            piece = min(left, BULK_BUFFER)
            conn.sendall(payload[:piece])
            left -= piece


UDP_BUFFER = 4 << 20  # asked for; the kernel caps it at net.core.rmem_max
COUNT = struct.Struct("!QQQ")


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)
    sock.bind((HOST, 0))
    return sock


def _udp_echo(sock: socket.socket) -> None:
    buffer = bytearray(1 << 16)
    view = memoryview(buffer)
    while True:
        count, address = sock.recvfrom_into(buffer)
        with contextlib.suppress(OSError):
            sock.sendto(view[:count], address)


def _udp_sink(sock: socket.socket) -> None:
    buffer = bytearray(1 << 16)
    clock = time.monotonic_ns
    count = first = last = 0
    while True:
        size, address = sock.recvfrom_into(buffer)
        if size and buffer[0] == 0:
            if buffer[1:size] == b"count":
                sock.sendto(COUNT.pack(count, first, last), address)
            else:
                count = first = last = 0
                sock.sendto(b"ok", address)
            continue
        last = clock()
        if not count:
            first = last
        count += 1


def _serve_threads(listener: socket.socket, handler: object) -> None:
    assert callable(handler)
    while True:
        conn, _ = listener.accept()
        conn.settimeout(SOCKET_TIMEOUT_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_guarded, args=(handler, conn), daemon=True).start()


def _guarded(handler: object, conn: socket.socket) -> None:
    assert callable(handler)
    with contextlib.suppress(OSError):  # a client gone mid-transfer is not our failure
        handler(conn)


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(BACKLOG)
    return sock


def _announce(kind: str, sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]
    print(f"upstream {kind} {host}:{port}", flush=True)


async def _main() -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    servers = []
    for kind, protocol in (("echo", Echo), ("source", Source)):
        sock = _listen()
        servers.append(await loop.create_server(protocol, sock=sock, backlog=BACKLOG))
        _announce(kind, sock)
    threaded = (("bulk_sink", _bulk_sink), ("bulk_source", _bulk_source), ("drain", _drain))
    for kind, handler in threaded:
        sock = _listen()
        threading.Thread(target=_serve_threads, args=(sock, handler), daemon=True).start()
        _announce(kind, sock)
    for kind, serve in (("udp_echo", _udp_echo), ("udp_sink", _udp_sink)):
        sock = _udp_socket()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()
        _announce(kind, sock)
    print(READY_LINE, flush=True)
    await stopping.wait()
    for server in servers:
        server.close()


def raise_open_files_limit() -> None:
    """A thousand connections need a thousand descriptors, and more through a proxy."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 16 if hard == resource.RLIM_INFINITY else min(hard, 1 << 16)
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main() -> int:
    raise_open_files_limit()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(_main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
