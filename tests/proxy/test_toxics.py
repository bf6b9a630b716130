"""Toxic behaviour specific to chaosnet's engine (connection-log records, live updates,
chaining, toxicity draws, removal under load). What both servers share is proven once,
on both, in ``tests/conformance/test_toxics.py``."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from tests.proxy.support import (
    Api,
    Upstream,
    connect,
    listen_address,
    recv_all,
    recv_chunks,
    recv_exactly,
    sends,
    timed_round_trip,
    upstream,
    wait_for,
)


def test_latency_applies_to_live_connections_and_removal_is_immediate(
    api: Api, echo_server: Upstream
) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    with connect(address) as sock:
        assert timed_round_trip(sock) < 0.04
        api.add_toxic("p", "latency", attributes={"latency": 60})
        assert timed_round_trip(sock) >= 0.055
        api.patch("/proxies/p/toxics/latency_downstream", {"attributes": {"latency": 120}})
        assert timed_round_trip(sock) >= 0.115
        sock.sendall(b"held")
        api.delete("/proxies/p/toxics/latency_downstream")  # releases what it holds at once
        start = time.monotonic()
        assert recv_exactly(sock, 4) == b"held"
        assert time.monotonic() - start < 0.1
        assert timed_round_trip(sock) < 0.04


def test_latency_jitter_stays_in_range(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "latency", attributes={"latency": 30, "jitter": 20})
    with connect(address) as sock:
        delays = [timed_round_trip(sock) for _ in range(12)]
    assert all(0.009 <= d < 0.3 for d in delays), delays
    assert max(delays) - min(delays) > 0.008  # it does vary


def test_bandwidth_zero_is_unlimited(api: Api) -> None:
    payload = b"b" * 2_000_000
    with upstream(sends(payload)) as server:
        address = listen_address(api.create_proxy("p", server.address))
        api.add_toxic("p", "bandwidth", attributes={"rate": 0})
        with connect(address) as sock:
            start = time.monotonic()
            assert recv_all(sock) == payload
            assert time.monotonic() - start < 0.5


def test_timeout_drops_data_then_closes(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "timeout", attributes={"timeout": 100})
    with connect(address) as sock:
        start = time.monotonic()
        sock.sendall(b"lost")
        assert recv_all(sock) == b""
        assert 0.09 <= time.monotonic() - start < 1.0
    record = api.get("/proxies/p/connections").body["connections"][0]
    assert (record["closed_by"], record["close_kind"]) == ("toxic timeout_downstream", "fin")
    assert record["bytes_downstream"] == 0


@pytest.mark.parametrize("timeout_ms", [0, 80])
def test_reset_peer_resets_after_data(api: Api, echo_server: Upstream, timeout_ms: int) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "reset_peer", attributes={"timeout": timeout_ms})
    with connect(address) as sock:
        start = time.monotonic()
        sock.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            recv_all(sock)
        assert time.monotonic() - start >= timeout_ms / 1000 - 0.005
    record = api.get("/proxies/p/connections").body["connections"][0]
    assert (record["closed_by"], record["close_kind"]) == ("toxic reset_peer_downstream", "rst")


def test_reset_peer_upstream_resets_the_server(api: Api) -> None:
    seen: list[str] = []

    def watch(conn: socket.socket) -> None:
        try:
            recv_all(conn)
            seen.append("eof")
        except ConnectionResetError:
            seen.append("reset")

    with upstream(watch) as server:
        address = listen_address(api.create_proxy("p", server.address))
        api.add_toxic("p", "reset_peer", stream="upstream")
        with connect(address) as sock:
            sock.sendall(b"x")
            with pytest.raises(ConnectionResetError):
                recv_all(sock)
        wait_for(lambda: bool(seen))
    assert seen == ["reset"]


def test_slicer_variation_keeps_pieces_in_bounds(api: Api) -> None:
    payload = b"s" * 4000
    with upstream(sends(payload)) as server:
        address = listen_address(api.create_proxy("p", server.address))
        api.add_toxic(
            "p", "slicer", attributes={"average_size": 200, "size_variation": 100, "delay": 3000}
        )
        with connect(address) as sock:
            chunks = recv_chunks(sock)
    assert b"".join(chunks) == payload
    assert len(chunks) >= 8


def test_limit_data_passes_exactly_n_bytes(api: Api) -> None:
    payload = bytes(range(256)) * 4
    with upstream(sends(payload, then_close=False)) as server:
        address = listen_address(api.create_proxy("p", server.address))
        api.add_toxic("p", "limit_data", attributes={"bytes": 300})
        with connect(address) as sock:
            assert recv_all(sock) == payload[:300]
    record = api.get("/proxies/p/connections").body["connections"][0]
    assert record["bytes_downstream"] == 300
    assert record["closed_by"] == "toxic limit_data_downstream"


def test_toxics_chain_in_order(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "latency", name="a", attributes={"latency": 40})
    api.add_toxic("p", "latency", name="b", stream="upstream", attributes={"latency": 40})
    api.add_toxic("p", "limit_data", attributes={"bytes": 6})
    with connect(address) as sock:
        start = time.monotonic()
        sock.sendall(b"abcdefgh")
        assert recv_all(sock) == b"abcdef"
        assert time.monotonic() - start >= 0.075


def test_toxicity_is_drawn_per_connection(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("p", echo_server.address))
    api.add_toxic("p", "limit_data", toxicity=0.5, attributes={"bytes": 0})
    outcomes = []
    for _ in range(16):
        with connect(address) as sock:
            sock.sendall(b"?")
            outcomes.append(recv_exactly(sock, 1) == b"?")
    assert 2 <= sum(outcomes) <= 14, outcomes
    wait_for(lambda: api.get("/proxies/p/connections").body["open"] == 0)
    records = api.get("/proxies/p/connections").body["connections"]
    hit = [bool(r["toxics"]) for r in records]
    assert hit == [not ok for ok in outcomes]


def test_removing_toxics_under_load_never_hangs(api: Api) -> None:
    """Toxiproxy #412/#558: removing a toxic while data flows can hang its API."""
    stop = threading.Event()

    def stream(conn: socket.socket) -> None:
        block = b"z" * 65536
        with contextlib.suppress(OSError):
            while not stop.is_set():
                conn.sendall(block)

    with upstream(stream) as server:
        address = listen_address(api.create_proxy("p", server.address))
        api.add_toxic("p", "latency", attributes={"latency": 20})
        api.add_toxic("p", "bandwidth", name="bw", attributes={"rate": 2000})
        api.add_toxic("p", "slicer", attributes={"average_size": 500, "delay": 10})
        readers = [connect(address) for _ in range(20)]
        try:
            for sock in readers:
                assert sock.recv(100)  # every connection is streaming
            for name in ("latency_downstream", "bw", "slicer_downstream"):
                start = time.monotonic()
                assert api.delete(f"/proxies/p/toxics/{name}").status == 204
                assert time.monotonic() - start < 0.5
            for sock in readers:
                assert sock.recv(100)  # and still streaming, now unhindered
        finally:
            stop.set()
            for sock in readers:
                sock.close()
