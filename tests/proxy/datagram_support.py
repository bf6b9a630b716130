"""Real UDP upstreams and senders for the datagram proxy tests.

A :class:`UdpUpstream` is a thread reading one socket on 127.0.0.1:0: it keeps
every datagram it received (in order) and answers with ``reply`` (nothing for a
sink). ``wait_for`` blocks on a condition variable, bounded: no sleeps.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

from chaosnet.datagram import MalformedDatagram, decode, encode

Address = tuple[str, int]
Reply = Callable[[bytes], list[bytes]]
IO_TIMEOUT_S = 5.0
SEQ = struct.Struct(">I")
FENCE = b"fence"


def protocol_echo(data: bytes) -> list[bytes]:
    """chaosnet.datagram's format: the payload back under the same request id."""
    try:
        message = decode(data)
    except MalformedDatagram:
        return []
    return [encode("reply", message.request_id, message.payload)]


def raw_echo(data: bytes) -> list[bytes]:
    return [data]


def sink(data: bytes) -> list[bytes]:
    return []


class UdpUpstream:
    def __init__(self, reply: Reply = sink) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address: Address = self.sock.getsockname()[:2]
        self._reply = reply
        self.received: list[bytes] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, address = self.sock.recvfrom(1 << 16)
            except OSError:
                return
            if data == b"stop" and address == self.sock.getsockname():
                return
            with self._changed:
                self.received.append(data)
                self._changed.notify_all()
            for answer in self._reply(data):
                with contextlib.suppress(OSError):
                    self.sock.sendto(answer, address)

    def wait_for(
        self, predicate: Callable[[list[bytes]], bool], timeout: float = IO_TIMEOUT_S
    ) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self.received), timeout), (
                f"upstream: condition not met after {timeout}s ({len(self.received)} received)"
            )

    def clear(self) -> None:
        with self._changed:
            self.received.clear()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendto(b"stop", self.sock.getsockname())
        self._thread.join(IO_TIMEOUT_S)
        self.sock.close()


@contextlib.contextmanager
def udp_upstream(reply: Reply = sink) -> Iterator[UdpUpstream]:
    running = UdpUpstream(reply)
    try:
        yield running
    finally:
        running.stop()


def client_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(IO_TIMEOUT_S)
    return sock


def numbered(seq: int, size: int = 64) -> bytes:
    return SEQ.pack(seq) + bytes(size - SEQ.size)


def number_of(datagram: bytes) -> int:
    return int(SEQ.unpack_from(datagram)[0])


def send_fenced(
    proxy: Address, upstream: UdpUpstream, count: int, *, window: int = 100, size: int = 64
) -> list[int]:
    """Send datagrams 0..count-1 through ``proxy`` from one socket; the numbers received.

    Datagrams go in windows small enough for the sockets' default buffers, each
    followed by a fence from a second client socket (the toxic under test must
    spare that second flow: ``max_connections=1``). The proxy reads its socket in
    arrival order, so once the fence reached the upstream, every survivor of the
    window has too: no kernel drop can pass for a toxic's.
    """
    sender, fencer = client_socket(), client_socket()
    try:
        for start in range(0, count, window):
            for seq in range(start, min(count, start + window)):
                sender.sendto(numbered(seq, size), proxy)
            fences = upstream.received.count(FENCE) + 1
            fencer.sendto(FENCE, proxy)
            upstream.wait_for(lambda got, want=fences: got.count(FENCE) >= want)
    finally:
        sender.close()
        fencer.close()
    return [number_of(d) for d in upstream.received if d != FENCE]


def open_fds() -> int:
    import os

    return len(os.listdir("/proc/self/fd")) - 1


def elapsed_since(start: float) -> float:
    return time.monotonic() - start
