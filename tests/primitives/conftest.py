"""Fixtures for the primitives' tests: a real local fault server and an fd-leak check."""

from __future__ import annotations

import contextlib
import gc
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from chaosnet.framing import FrameError, encode_frame, recv_frame, send_frame
from tests.support import open_fds

Address = tuple[str, int]

FD_SETTLE_S = 2.0
JOIN_TIMEOUT_S = 5.0
HANG_LIMIT_S = 10.0  # a "hang" connection never outlives this, even if stop() is missed


@pytest.fixture(autouse=True)
def no_fd_leak() -> Iterator[None]:
    """Fail the test if it leaves a file descriptor open (after a bounded settle)."""
    before = set(open_fds().items())
    yield
    settle_until = time.monotonic() + FD_SETTLE_S
    while True:
        leaked = set(open_fds().items()) - before
        if not leaked or time.monotonic() > settle_until:
            break
        gc.collect()
        time.sleep(0.01)  # settle loop, bounded: closes done by other threads land
    assert not leaked, f"file descriptors leaked: {sorted(leaked)}"


def reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, not a FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


Behaviour = Callable[["FaultServer", socket.socket], None]


def echo(server: FaultServer, conn: socket.socket) -> None:
    while (frame := recv_frame(conn)) is not None:
        send_frame(conn, frame)


def echo_once(server: FaultServer, conn: socket.socket) -> None:
    frame = recv_frame(conn)
    if frame is not None:
        send_frame(conn, frame)


def reset_on_accept(server: FaultServer, conn: socket.socket) -> None:
    reset(conn)


def reset_after_request(server: FaultServer, conn: socket.socket) -> None:
    recv_frame(conn)
    reset(conn)


def close_after_request(server: FaultServer, conn: socket.socket) -> None:
    recv_frame(conn)


def hang(server: FaultServer, conn: socket.socket) -> None:
    recv_frame(conn)
    server.requests.release()
    server.stopping.wait(HANG_LIMIT_S)


def header_only(server: FaultServer, conn: socket.socket) -> None:
    recv_frame(conn)
    conn.sendall(encode_frame(b"0123456789")[:4])


def partial_header(server: FaultServer, conn: socket.socket) -> None:
    recv_frame(conn)
    conn.sendall(encode_frame(b"0123456789")[:2])


def half_body(server: FaultServer, conn: socket.socket) -> None:
    recv_frame(conn)
    conn.sendall(encode_frame(b"0123456789")[:9])


def oversized(server: FaultServer, conn: socket.socket) -> None:
    """Announce a 4 GiB - 1 frame, then send nothing more: the client must not wait."""
    recv_frame(conn)
    conn.sendall(b"\xff\xff\xff\xff")
    server.stopping.wait(HANG_LIMIT_S)


def fin_then_rst(server: FaultServer, conn: socket.socket) -> None:
    """Read only the request header, send FIN, then close with unread data (RST).

    A client still sending is in CLOSE_WAIT when the RST arrives: Linux reports that
    as EPIPE, i.e. ``BrokenPipeError``.
    """
    conn.recv(4)
    conn.shutdown(socket.SHUT_WR)
    conn.close()


class FaultServer:
    """A framed TCP server on 127.0.0.1 that misbehaves for real, as scripted.

    Connection number ``i`` (in accept order) runs ``script[i]``; connections past the
    end of the script run its last entry. Errors raised by a behaviour (other than the
    client going away) are re-raised by :meth:`stop`, in the test that caused them.
    """

    def __init__(self, *script: Behaviour) -> None:
        assert script, "a FaultServer needs at least one behaviour"
        self.script = script
        self.stopping = threading.Event()
        self.accepted = 0
        self.finished = threading.Semaphore(0)  # released when a connection's handler ends
        self.requests = threading.Semaphore(0)  # released by ``hang`` once it has the request
        self.errors: list[BaseException] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address: Address = self._listener.getsockname()[:2]
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-server")
        self._acceptor.start()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:  # stop() shut the listener down
                return
            with self._lock:
                behaviour = self.script[min(self.accepted, len(self.script) - 1)]
                self.accepted += 1
                self._conns.append(conn)
                thread = threading.Thread(target=self._serve, args=(behaviour, conn))
                self._threads.append(thread)
            thread.start()

    def _serve(self, behaviour: Behaviour, conn: socket.socket) -> None:
        try:
            behaviour(self, conn)
        except (OSError, FrameError):
            pass  # the client went away or misbehaved: what these tests provoke
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            conn.close()
            self.finished.release()

    def wait_finished(self, count: int = 1, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Block until ``count`` more connection handlers have ended."""
        for _ in range(count):
            assert self.finished.acquire(timeout=timeout), "server handler did not finish"

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        self._acceptor.join(JOIN_TIMEOUT_S)
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)
        assert not self._acceptor.is_alive(), "fault server did not stop accepting"
        assert not any(t.is_alive() for t in threads), "fault server handler still running"
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def fault_server() -> Iterator[Callable[..., FaultServer]]:
    """Factory: ``fault_server(behaviour, ...)`` starts a server; all stop at teardown."""
    servers: list[FaultServer] = []

    def start(*script: Behaviour) -> FaultServer:
        server = FaultServer(*script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def refused_address() -> Address:
    """An address that refuses connections: a listening socket that was closed."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address: Address = listener.getsockname()[:2]
    return address
