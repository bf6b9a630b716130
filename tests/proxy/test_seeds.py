"""Same seed, same order of connections: the same faults, byte for byte.

Each run uses a fresh server; what the client recorded is compared between runs.
Toxiproxy's seed has no effect (its issue #274).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from chaosnet.proxy.embedded import EmbeddedServer
from tests.proxy.support import (
    Api,
    Upstream,
    connect,
    listen_address,
    recv_chunks,
    recv_exactly,
    upstream,
)


def run(
    seed: int,
    upstream_server: Upstream,
    toxic: dict[str, Any],
    client: Callable[[tuple[str, int]], Any],
) -> tuple[Any, list[dict[str, Any]]]:
    with EmbeddedServer(seed=seed) as server:
        api = Api(server.url)
        address = listen_address(api.create_proxy("p", upstream_server.address))
        api.add_toxic("p", **toxic)
        recorded = client(address)
        log = api.get("/proxies/p/connections").body["connections"]
        api.close()
        assert server.take_errors() == []
    return recorded, log


def hit_pattern(address: tuple[str, int]) -> list[bool]:
    """Which of 20 connections the toxic (limit_data 0: cut at the first reply) hit."""
    pattern = []
    for _ in range(20):
        with connect(address) as sock:
            sock.sendall(b"?")
            pattern.append(recv_exactly(sock, 1) != b"?")
    return pattern


def test_toxicity_draws_repeat(echo_server: Upstream) -> None:
    toxic = {"type": "limit_data", "toxicity": 0.5}
    first, log = run(7, echo_server, toxic, hit_pattern)
    again, _ = run(7, echo_server, toxic, hit_pattern)
    other, _ = run(8, echo_server, toxic, hit_pattern)
    assert first == again
    assert first != other
    assert 0 < sum(first) < 20
    assert [bool(r["toxics"]) for r in log] == first


def test_a_toxic_seed_overrides_the_server_seed(echo_server: Upstream) -> None:
    toxic = {"type": "limit_data", "toxicity": 0.5, "seed": 99}
    first, _ = run(1, echo_server, toxic, hit_pattern)
    again, _ = run(2, echo_server, toxic, hit_pattern)
    assert first == again


def corrupted_stream(address: tuple[str, int]) -> list[bytes]:
    streams = []
    for _ in range(3):
        with connect(address) as sock:
            sock.sendall(bytes(4000))
            streams.append(recv_exactly(sock, 4000))
    return streams


def test_corruption_positions_and_bits_repeat(echo_server: Upstream) -> None:
    toxic = {"type": "corrupt", "attributes": {"probability": 0.01}}
    first, _ = run(11, echo_server, toxic, corrupted_stream)
    again, _ = run(11, echo_server, toxic, corrupted_stream)
    other, _ = run(12, echo_server, toxic, corrupted_stream)
    assert first == again
    assert first != other
    assert len(set(first)) == 3  # each connection has its own positions


def sliced(address: tuple[str, int]) -> list[int]:
    with connect(address) as sock:
        sock.shutdown(socket.SHUT_WR)
        return [len(chunk) for chunk in recv_chunks(sock)]


def test_slicer_sizes_repeat() -> None:
    def send_block(conn: socket.socket) -> None:
        conn.sendall(bytes(600))
        conn.close()

    toxic = {
        "type": "slicer",
        "attributes": {"average_size": 100, "size_variation": 60, "delay": 40_000},
    }
    with upstream(send_block) as server:
        first, _ = run(21, server, toxic, sliced)
        again, _ = run(21, server, toxic, sliced)
        other, _ = run(23, server, toxic, sliced)
    assert sum(first) == 600
    assert first == again
    assert first != other


def jittered_delays(address: tuple[str, int]) -> list[float]:
    delays = []
    with connect(address) as sock:
        for _ in range(6):
            start = time.monotonic()
            sock.sendall(b"j")
            recv_exactly(sock, 1)
            delays.append(time.monotonic() - start)
    return delays


def test_jitter_repeats(echo_server: Upstream) -> None:
    # Wide jitter, so that scheduling noise on a loaded machine (a few ms) stays well
    # below the difference between two seeds' draws (tens of ms).
    toxic = {"type": "latency", "attributes": {"latency": 40, "jitter": 40}}
    first, _ = run(31, echo_server, toxic, jittered_delays)
    again, _ = run(31, echo_server, toxic, jittered_delays)
    other, _ = run(32, echo_server, toxic, jittered_delays)
    assert all(abs(a - b) < 0.015 for a, b in zip(first, again, strict=True)), (first, again)
    assert any(abs(a - b) > 0.025 for a, b in zip(first, other, strict=True)), (first, other)
