"""The engine-wide bound on buffered bytes: arithmetic, and back-pressure on real sockets."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from chaosnet.proxy.budget import HIGH_WATER, LOW_WATER, READ_SIZE, BufferBudget
from chaosnet.proxy.embedded import EmbeddedServer
from tests.proxy.conftest import SEED
from tests.proxy.support import (
    IO_TIMEOUT_S,
    Api,
    connect,
    echo,
    listen_address,
    recv_all,
    recv_exactly,
    upstream,
    wait_for,
)

LIMIT = 256 << 10
STREAMS = 6
STREAM_BYTES = 1 << 20
LATENCY_MS = 20


# -- arithmetic ---------------------------------------------------------------------------------


def test_holders_are_counted_once_each() -> None:
    budget = BufferBudget(1 << 20)
    budget.take(0, 100)
    budget.take(100, 50)
    budget.take(0, 10)
    assert (budget.held, budget.holders, budget.peak) == (160, 2, 160)
    budget.give_back(150, 150)
    budget.give_back(10, 5)
    assert (budget.held, budget.holders, budget.peak) == (5, 1, 160)


def test_below_the_limit_only_the_per_direction_marks_apply() -> None:
    budget = BufferBudget(64 << 20)
    budget.take(0, 400 << 10)
    assert not budget.must_pause(400 << 10)
    assert budget.must_pause(HIGH_WATER + 1)
    assert budget.may_resume(LOW_WATER)
    assert not budget.may_resume(LOW_WATER + 1)
    assert budget.pressure_pauses == 0


def test_over_the_limit_the_biggest_holders_stop_and_small_ones_go_on() -> None:
    budget = BufferBudget(1 << 20)
    for _ in range(4):
        budget.take(0, 300 << 10)  # four directions, 1.2 MiB in all: over the limit
    share = (1 << 20) // 4 - READ_SIZE
    assert budget.share() == share
    assert budget.must_pause(share + 1)
    assert not budget.must_pause(share)
    assert not budget.must_pause(0)  # holding nothing, it may always read
    assert budget.pressure_pauses == 1
    assert not budget.may_resume(share // 4 + 1)
    assert budget.may_resume(share // 4)


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        BufferBudget(0)


# -- on real sockets ------------------------------------------------------------------------------


def numbered_source(conn: socket.socket) -> None:
    """Read a 1-byte stream number, send its STREAM_BYTES, close."""
    with conn:
        number = recv_exactly(conn, 1)
        conn.sendall(pattern(number[0]))


def pattern(number: int) -> bytes:
    """Bytes that differ per stream and per position, so loss or reordering shows."""
    seed = hashlib.sha256(bytes([number])).digest()
    block = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(2048))
    return (block * (STREAM_BYTES // len(block) + 1))[:STREAM_BYTES]


def endless_source(conn: socket.socket) -> None:
    chunk = b"s" * (64 << 10)
    with conn:
        while True:
            conn.sendall(chunk)  # ends with an OSError when the client goes away


@pytest.fixture
def tight_server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(seed=SEED, buffer_limit=LIMIT) as running:
        yield running
        errors = running.take_errors()
    assert not errors, f"engine errors: {errors!r}"


def budget_state(server: EmbeddedServer) -> tuple[int, int, int, int]:
    return server.call_in_engine(
        lambda engine: (
            engine.runtime.budget.held,
            engine.runtime.budget.holders,
            engine.runtime.budget.peak,
            engine.runtime.budget.pressure_pauses,
        )
    )


def test_reading_pauses_at_the_engine_limit_and_resumes_losing_and_reordering_nothing(
    tight_server: EmbeddedServer,
) -> None:
    api = Api(tight_server.url)
    with upstream(numbered_source) as server:
        address = listen_address(api.create_proxy("p", server.address))
        api.add_toxic("p", "latency", attributes={"latency": LATENCY_MS})
        received: dict[int, bytes] = {}

        def stream(number: int) -> None:
            with connect(address) as sock:
                sock.sendall(bytes([number]))
                received[number] = recv_all(sock)

        threads = [threading.Thread(target=stream, args=(n,)) for n in range(STREAMS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(IO_TIMEOUT_S * 2)
        assert not any(thread.is_alive() for thread in threads)
    api.close()
    for number in range(STREAMS):
        assert received.get(number) == pattern(number), f"stream {number} damaged"
    wait_for(lambda: budget_state(tight_server)[:2] == (0, 0))  # everything given back
    _, _, peak, pressure_pauses = budget_state(tight_server)
    assert pressure_pauses > 0  # reading did pause because of the engine-wide limit
    # Without the engine-wide bound each direction could hold HIGH_WATER (3 MiB in all).
    assert peak <= LIMIT + (STREAMS + 1) * READ_SIZE, peak


def test_under_pressure_a_connection_holding_little_still_gets_through(
    tight_server: EmbeddedServer,
) -> None:
    api = Api(tight_server.url)
    with upstream(endless_source) as source, upstream(echo) as echo_server:
        streams = listen_address(api.create_proxy("streams", source.address))
        requests = listen_address(api.create_proxy("requests", echo_server.address))
        api.add_toxic("streams", "latency", attributes={"latency": LATENCY_MS})
        api.add_toxic("requests", "latency", attributes={"latency": LATENCY_MS})
        stop = threading.Event()

        def drain() -> None:
            with connect(streams) as sock:
                while not stop.is_set() and sock.recv(1 << 16):
                    pass

        hogs = [threading.Thread(target=drain) for _ in range(4)]
        for hog in hogs:
            hog.start()
        try:
            wait_for(lambda: budget_state(tight_server)[3] > 0)  # the limit is biting
            with connect(requests) as sock:
                for _ in range(5):
                    started = time.monotonic()
                    sock.sendall(b"ping")
                    assert recv_exactly(sock, 4) == b"ping"
                    assert time.monotonic() - started < LATENCY_MS / 1000 + 0.5
        finally:
            stop.set()
            for hog in hogs:
                hog.join(IO_TIMEOUT_S)
    api.close()
    assert not any(hog.is_alive() for hog in hogs)
