"""Issue 14.11: for every toxic and every way a client can close, once both peers have
closed, the proxy has closed both of its sockets and its log shows the connection closed.

The upstream is a real server that echoes, closes after the client's EOF and gives up
on an idle connection after ``UPSTREAM_IDLE_S`` (as real servers do), so in every
case both peers do close; the proxy must then never hold a socket open. Each toxic
runs with settings that finish quickly, on both streams, against four clients:
``fin`` (send, close), ``rst`` (send, close with SO_LINGER 0), ``half-close``
(send, shutdown(SHUT_WR), read to EOF, close) and ``abandon`` (send, close without
reading what is coming back, which makes the kernel send RST).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

from chaosnet.proxy.embedded import EmbeddedServer
from chaosnet.proxy.toxics import REGISTRY
from tests.proxy.support import LINGER_RESET, Api, Upstream, listen_address, upstream

UPSTREAM_IDLE_S = 0.3
CLIENT_WAIT_S = 3.0
SETTLE_MS = 3_000  # below the API client's 5 s socket timeout
FRAME = struct.pack(">I", 2000) + bytes(range(250)) * 8

#: Every toxic type of a TCP proxy, with attributes that let each case end within a second.
TOXICS: dict[str, list[dict[str, Any]]] = {
    "noop": [{}],
    "latency": [{"latency": 30, "jitter": 10}],
    "bandwidth": [{"rate": 50}],
    "slow_close": [{"delay": 100}],
    "timeout": [{"timeout": 0}, {"timeout": 100}],
    "reset_peer": [{"timeout": 0}, {"timeout": 50}],
    "slicer": [{"average_size": 1, "size_variation": 0, "delay": 10}],
    "limit_data": [{"bytes": 10}],
    "truncate_frame": [{"then": "close"}, {"then": "reset"}, {"then": "hang"}],
    "limit_time": [{"duration": 50, "then": "close"}, {"duration": 50, "then": "reset"}],
    "corrupt": [{"probability": 0.5}],
    "refuse_new": [{}],
    "stall_accept": [{}],
    "reset_on_accept": [{}],
    # message toxics, on a proxy framing FRAME as length_prefix messages
    "truncate_message": [{"then": "close"}, {"then": "reset"}, {"then": "hang"}],
    "stall_message": [{"duration": 50, "then": "release"}, {"duration": 50, "then": "reset"}],
    "inject_reply": [{"payload": "x"}, {"payload": "x", "forward": True}],
}
CASES = [
    pytest.param(kind, attributes, id=f"{kind}-{index}")
    for kind, variants in TOXICS.items()
    for index, attributes in enumerate(variants)
]


def test_every_toxic_is_covered() -> None:
    # TCP close patterns: the toxics of a TCP proxy (datagram-only toxics have no close)
    assert set(TOXICS) == {name for name, cls in REGISTRY.items() if "tcp" in cls.transports}


def echo_then_idle_close(conn: socket.socket) -> None:
    conn.settimeout(UPSTREAM_IDLE_S)
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:  # idle (timeout) or reset: the server gives up, close() follows
            return


def read_until_closed(sock: socket.socket) -> None:
    sock.settimeout(CLIENT_WAIT_S)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pass  # the proxy kept this client waiting (a hang): the client gives up
    except OSError:
        pass


def fin(sock: socket.socket) -> None:
    sock.close()


def rst(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


def half_close(sock: socket.socket) -> None:
    sock.shutdown(socket.SHUT_WR)
    read_until_closed(sock)
    sock.close()


def abandon(sock: socket.socket) -> None:
    sock.settimeout(0.1)
    with contextlib.suppress(OSError):  # let some of the reply arrive, then drop it unread
        sock.recv(1, socket.MSG_PEEK)
    sock.close()


PATTERNS: dict[str, Callable[[socket.socket], None]] = {
    "fin": fin,
    "rst": rst,
    "half-close": half_close,
    "abandon": abandon,
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(seed=14) as running:
        yield running
        errors = running.take_errors()
    assert not errors, f"engine errors: {errors!r}"


@pytest.fixture(scope="module")
def peer() -> Iterator[Upstream]:
    with upstream(echo_then_idle_close) as running:
        yield running


def client(address: tuple[str, int], close: Callable[[socket.socket], None]) -> None:
    try:
        sock = socket.create_connection(address, timeout=0.5)
    except OSError:
        return  # refused, reset or stalled by a connect-phase toxic: nothing was opened
    try:
        sock.sendall(FRAME)
    except OSError:
        sock.close()
        return
    close(sock)


def proxy_sockets(listen_ports: set[int], upstream_port: int) -> list[Any]:
    """This process's sockets on the proxy's side of its connections (client or upstream)."""
    return [
        conn
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.status != psutil.CONN_LISTEN
        and (
            (conn.laddr and conn.laddr.port in listen_ports)
            or (conn.raddr and conn.raddr.port == upstream_port)
        )
    ]


@pytest.mark.parametrize(("kind", "attributes"), CASES)
def test_both_peers_closed_means_the_proxy_closed(
    server: EmbeddedServer, peer: Upstream, kind: str, attributes: dict[str, Any]
) -> None:
    api = Api(server.url)
    cases = []
    try:
        toxic = REGISTRY[kind]
        protocol = {"protocol": "length_prefix"} if toxic.protocols else {}
        for stream in toxic.streams:
            for pattern, close in PATTERNS.items():
                name = f"{kind}-{stream}-{pattern}-{len(attributes)}-{threading.get_ident()}"
                proxy = api.create_proxy(name, peer.address, **protocol)
                fields = {"type": kind, "stream": stream, "attributes": attributes}
                api.add_toxic(name, **fields)
                cases.append((name, listen_address(proxy), close))
        threads = [
            threading.Thread(target=client, args=(address, close)) for _, address, close in cases
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(CLIENT_WAIT_S * 3)
        for name, _, _ in cases:
            reply = api.get(f"/proxies/{name}/connections?wait_open=0&timeout_ms={SETTLE_MS}")
            log = reply.body
            assert log["open"] == 0, (name, log)
            unclosed = [c for c in log["connections"] if c["closed_at"] is None]
            assert not unclosed, (name, unclosed)
        assert not proxy_sockets({address[1] for _, address, _ in cases}, peer.port)
    finally:
        for name, _, _ in cases:
            api.delete(f"/proxies/{name}")
        api.close()
