"""The load generators of the datagram figure: a blast, ping-pong, many flows at once.

All of them use plain blocking or non-blocking UDP sockets on loopback; every loop
is bounded in count and in time.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from dataclasses import dataclass

from chaosnet.control import Address

COUNT = struct.Struct("!QQQ")  # the sink's answer: count, first and last arrival (ns)
CONTROL_TIMEOUT_S = 2.0
BLAST_BATCH = 256  # datagrams between two looks at the clock


@dataclass
class Blast:
    sent: int
    received: int
    per_second: float  # received, over the time between the first and the last arrival


def _ask(sink: Address, request: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        control.settimeout(CONTROL_TIMEOUT_S)
        control.sendto(request, sink)
        return control.recv(64)


def blast(target: Address, sink: Address, size: int, seconds: float) -> Blast:
    """Send ``size``-byte datagrams to ``target`` as fast as possible for ``seconds``;
    the rate is what reached ``sink``, counted there."""
    _ask(sink, b"\x00reset")
    payload = b"\x01" * size  # a first byte 0 would be a control datagram
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(target)
        send = sock.send
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            for _ in range(BLAST_BATCH):
                try:
                    send(payload)
                except (BlockingIOError, ConnectionRefusedError):
                    continue
            sent += BLAST_BATCH
    received, first, last = _settled_count(sink)
    span = (last - first) / 1e9
    rate = (received - 1) / span if received > 1 and span > 0 else 0.0
    return Blast(sent, received, rate)


def _settled_count(sink: Address) -> tuple[int, int, int]:
    """The sink's count once nothing more arrives (what was in flight is counted)."""
    previous = -1
    deadline = time.monotonic() + CONTROL_TIMEOUT_S
    while True:
        count, first, last = COUNT.unpack(_ask(sink, b"\x00count"))
        if count == previous or time.monotonic() > deadline:
            return count, first, last
        previous = count
        time.sleep(0.02)  # how long in-flight datagrams get to land; bounded above


def ping_pong(target: Address, count: int, size: int, budget_s: float) -> list[float]:
    """Sequential round trips through an echo; seconds each (a lost one is skipped)."""
    payload = bytes(size)
    samples: list[float] = []
    clock = time.perf_counter
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(target)
        sock.settimeout(1.0)
        until = time.monotonic() + budget_s
        for _ in range(count):
            if time.monotonic() > until:
                break
            started = clock()
            sock.send(payload)
            try:
                sock.recv(size + 1)
            except TimeoutError:
                continue
            samples.append(clock() - started)
    return samples


@dataclass
class FlowRound:
    replies: int
    errors: int
    seconds: float


def many_flows(target: Address, flows: int, rounds: int, timeout_s: float) -> list[FlowRound]:
    """``flows`` sockets (one flow each) send one datagram per round at once and wait for
    every echo; a reply missing after ``timeout_s`` is an error."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(flows)]
    results: list[FlowRound] = []
    try:
        with selectors.DefaultSelector() as selector:
            for index, sock in enumerate(sockets):
                sock.setblocking(False)
                sock.connect(target)
                selector.register(sock, selectors.EVENT_READ, index)
            for number in range(rounds):
                results.append(_one_round(sockets, selector, number, timeout_s))
    finally:
        for sock in sockets:
            sock.close()
    return results


def _one_round(
    sockets: list[socket.socket], selector: selectors.BaseSelector, number: int, timeout_s: float
) -> FlowRound:
    started = time.perf_counter()
    waiting = set(range(len(sockets)))
    for index, sock in enumerate(sockets):
        sock.send(struct.pack("!II", number, index) + bytes(56))
    deadline = time.monotonic() + timeout_s
    while waiting and time.monotonic() < deadline:
        for key, _ in selector.select(max(0.0, deadline - time.monotonic())):
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            sock = ready
            try:
                while True:
                    data = sock.recv(128)
                    round_number, index = struct.unpack_from("!II", data)
                    if round_number == number:
                        waiting.discard(index)
            except (BlockingIOError, ConnectionRefusedError):
                pass
    return FlowRound(len(sockets) - len(waiting), len(waiting), time.perf_counter() - started)
