"""Every Toxiproxy toxic, as a plain client sees it, on both servers (raw sockets)."""

from __future__ import annotations

import socket
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


def test_no_toxic_passes_data(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t0", echo_server.address))
    with connect(address) as sock:
        for size in (1, 65536, 1 << 20):
            payload = bytes(range(256)) * (size // 256 or 1)
            sock.sendall(payload)
            assert recv_exactly(sock, len(payload)) == payload


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency(api: Api, echo_server: Upstream, stream: str) -> None:
    address = listen_address(api.create_proxy("t1", echo_server.address))
    with connect(address) as sock:
        assert timed_round_trip(sock) < 0.04
        api.add_toxic("t1", "latency", stream=stream, attributes={"latency": 60})
        assert 0.055 <= timed_round_trip(sock) < 0.5  # a live connection sees it too
        api.delete(f"/proxies/t1/toxics/latency_{stream}")
        assert timed_round_trip(sock) < 0.04


def test_latency_jitter_bounds(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t2", echo_server.address))
    api.add_toxic("t2", "latency", attributes={"latency": 40, "jitter": 20})
    with connect(address) as sock:
        delays = [timed_round_trip(sock) for _ in range(8)]
    assert all(0.018 <= d < 0.3 for d in delays), delays


def test_bandwidth(api: Api) -> None:
    payload = b"b" * 150_000
    with upstream(sends(payload)) as server:
        address = listen_address(api.create_proxy("t3", server.address))
        api.add_toxic("t3", "bandwidth", attributes={"rate": 500})
        with connect(address) as sock:
            start = time.monotonic()
            assert recv_all(sock) == payload
            elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 0.7, elapsed


def test_slow_close(api: Api) -> None:
    with upstream(sends(b"bye")) as server:
        address = listen_address(api.create_proxy("t4", server.address))
        api.add_toxic("t4", "slow_close", attributes={"delay": 150})
        with connect(address) as sock:
            start = time.monotonic()
            assert recv_exactly(sock, 3) == b"bye"
            assert time.monotonic() - start < 0.1  # data is not delayed
            assert recv_all(sock) == b""
            assert time.monotonic() - start >= 0.14


def test_timeout_closes_without_data(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t5", echo_server.address))
    api.add_toxic("t5", "timeout", attributes={"timeout": 100})
    with connect(address) as sock:
        start = time.monotonic()
        sock.sendall(b"lost")
        assert recv_all(sock) == b""
        assert 0.09 <= time.monotonic() - start < 1.0


def test_timeout_zero_blackholes_until_removed(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t6", echo_server.address))
    api.add_toxic("t6", "timeout", attributes={"timeout": 0})
    with connect(address) as sock:
        sock.settimeout(0.2)
        sock.sendall(b"void")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(5)
        assert api.delete("/proxies/t6/toxics/timeout_downstream").status == 204
        assert recv_all(sock) == b""


def test_reset_peer(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t7", echo_server.address))
    api.add_toxic("t7", "reset_peer", attributes={"timeout": 0})
    with connect(address) as sock:
        sock.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            recv_all(sock)


def test_reset_peer_after_timeout(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t8", echo_server.address))
    api.add_toxic("t8", "reset_peer", attributes={"timeout": 100})
    with connect(address) as sock:
        start = time.monotonic()
        sock.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            recv_all(sock)
        assert time.monotonic() - start >= 0.09


def test_slicer(api: Api) -> None:
    payload = bytes(range(200))
    with upstream(sends(payload)) as server:
        address = listen_address(api.create_proxy("t9", server.address))
        api.add_toxic(
            "t9", "slicer", attributes={"average_size": 20, "size_variation": 5, "delay": 15_000}
        )
        with connect(address) as sock:
            start = time.monotonic()
            chunks = recv_chunks(sock)
            elapsed = time.monotonic() - start
    assert b"".join(chunks) == payload
    assert len(chunks) >= 6
    assert sum(1 for chunk in chunks if len(chunk) <= 25) >= 6
    assert elapsed >= 0.1


def test_limit_data(api: Api) -> None:
    payload = bytes(range(256)) * 4
    with upstream(sends(payload, then_close=False)) as server:
        address = listen_address(api.create_proxy("t10", server.address))
        api.add_toxic("t10", "limit_data", attributes={"bytes": 300})
        with connect(address) as sock:
            assert recv_all(sock) == payload[:300]


def test_limit_data_upstream(api: Api) -> None:
    received: list[bytes] = []
    with upstream(lambda conn: received.append(recv_all(conn))) as server:
        address = listen_address(api.create_proxy("t11", server.address))
        api.add_toxic("t11", "limit_data", stream="upstream", attributes={"bytes": 5})
        with connect(address) as sock:
            sock.sendall(b"1234567890")
            recv_all(sock)
        wait_for(lambda: bool(received))
    assert received == [b"12345"]


def test_noop(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t12", echo_server.address))
    api.add_toxic("t12", "noop")
    api.add_toxic("t12", "noop", stream="upstream")
    with connect(address) as sock:
        assert timed_round_trip(sock, b"n" * 50_000) < 0.5


def test_toxicity_zero_disables_a_toxic(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t13", echo_server.address))
    api.add_toxic("t13", "timeout", toxicity=0.0, attributes={"timeout": 0})
    with connect(address) as sock:
        assert timed_round_trip(sock) < 0.1


def test_disable_refuses_new_and_closes_existing(api: Api, echo_server: Upstream) -> None:
    proxy = api.create_proxy("t14", echo_server.address)
    address = listen_address(proxy)
    live = connect(address)
    assert timed_round_trip(live) < 0.1
    api.post("/proxies/t14", {"enabled": False})
    assert recv_all(live) == b""
    live.close()
    with pytest.raises(ConnectionRefusedError):
        connect(address)
    api.post("/proxies/t14", {"enabled": True})
    with connect(address) as sock:
        assert timed_round_trip(sock) < 0.1


def test_delete_closes_and_refuses(api: Api, echo_server: Upstream) -> None:
    address = listen_address(api.create_proxy("t15", echo_server.address))
    with connect(address) as live:
        live.sendall(b"x")  # a round trip: accepted by the proxy, not still in its backlog
        assert live.recv(1) == b"x"
        assert api.delete("/proxies/t15").status == 204
        assert recv_all(live) == b""
    with pytest.raises(ConnectionRefusedError):
        connect(address)


def test_upstream_down_closes_the_client(api: Api) -> None:
    dead = socket.create_server(("127.0.0.1", 0))
    port = dead.getsockname()[1]
    dead.close()
    address = listen_address(api.create_proxy("t16", ("127.0.0.1", port)))
    with connect(address) as sock:
        assert recv_all(sock) == b""
