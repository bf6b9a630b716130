"""Real upstream servers, a raw HTTP client and socket helpers for the proxy tests.

Shared by ``tests/proxy`` and ``tests/conformance``. Every wait is bounded by a
socket timeout or a join timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chaosnet.address import Address

Handler = Callable[[socket.socket], None]

IO_TIMEOUT_S = 5.0
JOIN_TIMEOUT_S = 5.0
LINGER_RESET = struct.pack("ii", 1, 0)


class Upstream:
    """A threaded TCP server on 127.0.0.1:0; ``handler`` runs once per connection."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: Address = self._listener.getsockname()[:2]
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.accepted = threading.Semaphore(0)
        self.errors: list[BaseException] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    @property
    def port(self) -> int:
        return self.address[1]

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT_S)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._conns.append(conn)
                self._threads.append(thread)
            self.accepted.release()
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._handler(conn)
        except OSError:
            pass  # the test made the connection fail; that is its business
        except BaseException as exc:
            self.errors.append(exc)

    def wait_accepted(self, count: int = 1, timeout: float = IO_TIMEOUT_S) -> None:
        for _ in range(count):
            assert self.accepted.acquire(timeout=timeout), "upstream saw no connection"

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(JOIN_TIMEOUT_S)
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
        assert not self.errors, self.errors


def echo(conn: socket.socket) -> None:
    """Echo until EOF, then half-close back (an orderly FIN)."""
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


def silent(conn: socket.socket) -> None:
    """Read and discard until EOF."""
    with conn:
        while conn.recv(65536):
            pass


@contextlib.contextmanager
def upstream(handler: Handler = echo) -> Iterator[Upstream]:
    server = Upstream(handler)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def echo_server() -> Iterator[Upstream]:
    """An in-process echo upstream (the proxy and conformance suites' own, not the plugin's
    process): their conftests import this one definition."""
    with upstream(echo) as running:
        yield running


# -- sockets -----------------------------------------------------------------------------------


def connect(address: Address, timeout: float = IO_TIMEOUT_S) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_all(sock: socket.socket) -> bytes:
    """Everything until EOF (a reset raises)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def recv_chunks(sock: socket.socket) -> list[bytes]:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return chunks


def round_trip(address: Address, payload: bytes = b"ping") -> bytes:
    with connect(address) as sock:
        sock.sendall(payload)
        return recv_exactly(sock, len(payload))


def reset_close(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


def wait_for(predicate: Callable[[], bool], timeout: float = IO_TIMEOUT_S) -> None:
    """Poll a condition the proxy updates asynchronously (bounded)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


# -- control API -----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """A bare HTTP/1.1 client for the control API (one keep-alive connection)."""

    def __init__(self, url: str, user_agent: str = "chaosnet-tests") -> None:
        self.url = url
        host, _, port = url.removeprefix("http://").rpartition(":")
        self._conn = http.client.HTTPConnection(host, int(port), timeout=IO_TIMEOUT_S)
        self.user_agent = user_agent

    def request(
        self, method: str, path: str, body: Any = None, *, raw: bytes | None = None
    ) -> Reply:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        headers = {"User-Agent": self.user_agent, "Content-Type": "application/json"}
        try:
            self._conn.request(method, path, body=data, headers=headers)
            response = self._conn.getresponse()
        except (http.client.HTTPException, ConnectionError):
            self._conn.close()  # a server may close a keep-alive connection; retry once
            self._conn.request(method, path, body=data, headers=headers)
            response = self._conn.getresponse()
        payload = response.read()
        try:
            parsed = json.loads(payload) if payload.strip() else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return Reply(response.status, parsed, {k.lower(): v for k, v in response.getheaders()})

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Reply:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Any = None) -> Reply:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> Reply:
        return self.request("DELETE", path)

    def create_proxy(self, name: str, upstream: Address, **extra: Any) -> dict[str, Any]:
        reply = self.post(
            "/proxies",
            {
                "name": name,
                "listen": "127.0.0.1:0",
                "upstream": f"{upstream[0]}:{upstream[1]}",
                **extra,
            },
        )
        assert reply.status == 201, reply
        body: dict[str, Any] = reply.body
        return body

    def add_toxic(self, proxy: str, type: str, **fields: Any) -> dict[str, Any]:
        reply = self.post(f"/proxies/{proxy}/toxics", {"type": type, **fields})
        assert reply.status == 200, reply
        body: dict[str, Any] = reply.body
        return body

    def close(self) -> None:
        self._conn.close()


def listen_address(proxy: dict[str, Any]) -> Address:
    host, _, port = str(proxy["listen"]).rpartition(":")
    return host.strip("[]"), int(port)


def timed_round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for ``payload`` to go through an echoing path and back."""
    start = time.monotonic()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - start


def sends(data: bytes, *, then_close: bool = True) -> Handler:
    """An upstream handler that sends ``data``, then closes (or reads until the client does)."""

    def handler(conn: socket.socket) -> None:
        conn.sendall(data)
        if then_close:
            conn.close()
        else:
            recv_all(conn)

    return handler
