"""Connections that retry and fail over: ``connect()``, ``FramedClient``, ``AsyncFramedClient``.

Endpoints are ``(host, port)`` tuples: one, or a sequence whose first is the primary
and the rest fallbacks. Every operation starts at the primary; when an attempt fails on
an endpoint (its connect, or a request over a connection to it: a timeout, a reset, a
truncated reply), the next attempt goes to the next endpoint *without* a backoff wait
(failing over costs nothing), and the policy's backoff applies only after the last
endpoint failed. After a success the next reconnect tries the primary first again. One
retry policy (attempts, deadline) covers the whole operation, and its give-up
:class:`~chaosnet.retry.RetryError` lists every attempt with the endpoint it hit.

``FramedClient`` / ``AsyncFramedClient`` send a request frame and read one reply frame
(:mod:`chaosnet.framing`). A request attempt is: (re)connect if needed, send, receive.
Its time limit is ``timeout``, cut to the policy's remaining deadline. On an error the
connection is closed (its stream position is unknown), and the policy decides whether
to reconnect and resend:

- ``idempotent=True`` (the default): resent on any transient error.
- ``idempotent=False``: resent only if it cannot have reached the server (the connect
  failed). Once sending has started, an error that would be retried raises
  :class:`RequestMayHaveBeenDelivered` instead, with the error as ``__cause__``.

An idle connection the server closed meanwhile is noticed before sending (a
non-blocking peek), so it is replaced without spending an attempt and without making a
non-idempotent request fail. A reply that ends the connection cleanly before any byte
of it arrived raises :class:`ConnectionClosed`, a transient error.

Requests on one client are serialised (a lock); the counters ``attempts``,
``connections_opened``, ``reconnects`` and ``endpoint`` describe what happened. Every
socket is closed on every path; ``close()`` is idempotent, and a closed client raises
:class:`ClientClosed`.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from chaosnet.address import format_address
from chaosnet.closing import AsyncClosing, Closing
from chaosnet.framing import (
    DEFAULT_MAX_FRAME_SIZE,
    BytesLike,
    frame_format,
    read_frame,
    recv_frame,
    write_frame,
)
from chaosnet.retry import Attempt, Endpoint, RetryPolicy, UnsafeToRetry

__all__ = [
    "DEFAULT_TIMEOUT",
    "AsyncFramedClient",
    "ClientClosed",
    "ConnectionClosed",
    "FramedClient",
    "RequestMayHaveBeenDelivered",
    "connect",
]

DEFAULT_TIMEOUT = 5.0
# Bounds the graceful close of an asyncio connection; after it the transport is aborted.
_CLOSE_TIMEOUT = 1.0


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


class ConnectionClosed(ConnectionError):
    """The peer closed the connection cleanly before replying. Transient."""

    transient = True


class RequestMayHaveBeenDelivered(UnsafeToRetry):
    """A non-idempotent request failed after it may have reached the server; not resent."""

    def __init__(self, endpoint: Endpoint | None, cause: BaseException) -> None:
        where = format_address(*endpoint) if endpoint else "the server"
        super().__init__(
            f"non-idempotent request to {where} failed after it may have been delivered "
            f"({type(cause).__name__}: {cause}); not resending it"
        )
        self.endpoint = endpoint
        self.cause = cause


class ClientClosed(RuntimeError):
    """The client was used after ``close()``."""


def normalize_endpoints(endpoints: Endpoint | Sequence[Endpoint]) -> tuple[Endpoint, ...]:
    """``(host, port)`` or a sequence of them, checked, as a tuple of tuples."""
    if isinstance(endpoints, Sequence) and len(endpoints) == 2 and isinstance(endpoints[0], str):
        items: Sequence[object] = [endpoints]
    else:
        items = endpoints
    if isinstance(items, str | bytes) or not isinstance(items, Sequence) or not items:
        raise ValueError(f"endpoints: expected (host, port) or a list of them, got {endpoints!r}")
    result = []
    for item in items:
        if (
            not isinstance(item, Sequence)
            or len(item) != 2
            or not isinstance(item[0], str)
            or isinstance(item[1], bool)
            or not isinstance(item[1], int)
            or not 0 < item[1] < 65536
        ):
            raise ValueError(f"endpoints: {item!r} is not a (host, port) pair")
        result.append((item[0], item[1]))
    return tuple(result)


def _describe(endpoints: Sequence[Endpoint]) -> str:
    return ", ".join(format_address(host, port) for host, port in endpoints)


class _Failover:
    """Which endpoint to connect to: the primary first, then each fallback in turn."""

    __slots__ = ("endpoints", "index")

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        self.index = 0

    def current(self) -> Endpoint:
        return self.endpoints[self.index]

    def failed(self, attempt: Attempt, endpoint: Endpoint | None = None) -> None:
        """Move past the endpoint that failed (default: the current one); back off only
        after the whole list failed."""
        position = self.index if endpoint is None else self.endpoints.index(endpoint)
        self.index = (position + 1) % len(self.endpoints)
        attempt.skip_backoff = self.index != 0

    def succeeded(self) -> None:
        self.index = 0  # the next reconnect tries the primary first again


def _budget(timeout: float, attempt: Attempt) -> float:
    """This attempt's time limit: ``timeout``, cut to the policy's remaining deadline."""
    remaining = attempt.remaining
    budget = timeout if remaining is None else min(timeout, remaining)
    if budget <= 0:
        raise TimeoutError("no time left for another attempt")
    return budget


def _open_socket(failover: _Failover, attempt: Attempt, timeout: float) -> socket.socket:
    endpoint = failover.current()
    attempt.endpoint = endpoint
    try:
        return socket.create_connection(endpoint, timeout=_budget(timeout, attempt))
    except Exception:
        failover.failed(attempt)
        raise


def connect(
    endpoints: Endpoint | Sequence[Endpoint],
    policy: RetryPolicy | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> socket.socket:
    """A socket connected to the first endpoint that answers, tried under ``policy``.

    Without a policy each endpoint is tried once. The socket keeps ``timeout`` as its
    timeout. Giving up raises :class:`~chaosnet.retry.RetryError` naming every
    endpoint's failure.
    """
    targets = normalize_endpoints(endpoints)
    policy = policy or RetryPolicy(attempts=len(targets))
    failover = _Failover(targets)
    for attempt in policy.retrying(f"connect to {_describe(targets)}"):
        with attempt:
            sock = _open_socket(failover, attempt, timeout)
            sock.settimeout(timeout)
            return sock
    raise AssertionError("unreachable: the loop returns or raises")


def _idle_and_open(sock: _HasFileno) -> bool:
    """True if nothing is readable on an idle connection (the peer did not close it)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    readable, _, _ = select.select([sock], [], [], 0)
    return not readable


def _stream_idle_and_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """The asyncio version: what the loop already saw, then what the kernel holds."""
    if reader.at_eof() or reader.exception() is not None or writer.is_closing():
        return False
    sock = writer.get_extra_info("socket")
    return sock is None or _idle_and_open(sock)


#: The lock that serialises a client's requests: a thread lock, or an asyncio one.
_Lock = TypeVar("_Lock", threading.Lock, asyncio.Lock)


class _EndpointClient(Generic[_Lock]):
    """What every chaosnet client shares (framed here, datagram in ``chaosnet.datagram``):
    its endpoints, retry policy, per-attempt timeout, failover state, attempt count,
    whether it is closed, the lock its requests take (``_new_lock`` makes it: the
    blocking or the asyncio kind), and the socket it holds (every client but
    ``AsyncFramedClient``, whose connection is a stream pair) with the endpoint that
    socket goes to. ``what`` names a request in retry logs and errors."""

    _new_lock: Callable[[], _Lock]

    def __init__(
        self,
        endpoints: Endpoint | Sequence[Endpoint],
        *,
        retry: RetryPolicy | None,
        timeout: float,
        what: str,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.endpoints = normalize_endpoints(endpoints)
        self.policy = retry or RetryPolicy()
        self.timeout = timeout
        self._failover = _Failover(self.endpoints)
        self._closed = False
        self.attempts = 0  # attempts, all requests together
        self._name = f"{what} to {_describe(self.endpoints)}"
        self._lock: _Lock = self._new_lock()
        self._sock: socket.socket | None = None
        self.endpoint: Endpoint | None = None  # where the open socket or connection goes

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed(f"{type(self).__name__} to {_describe(self.endpoints)} is closed")

    def _release(self) -> None:
        """Close the socket at once (nothing is waited for) and forget its endpoint."""
        sock, self._sock = self._sock, None
        self.endpoint = None
        if sock is not None:
            sock.close()

    def _close_now(self) -> None:
        """``close()`` of a client that holds a socket: closed for good, socket released."""
        self._closed = True
        self._release()


class _ClientBase(_EndpointClient[_Lock], ABC):
    """What both framed clients share: their constructor, framing, connection counters,
    resend safety, and the handling of an idle connection and of a reply that never came."""

    def __init__(
        self,
        endpoints: Endpoint | Sequence[Endpoint],
        *,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    ) -> None:
        super().__init__(endpoints, retry=retry, timeout=timeout, what="request")
        self.max_frame_size = max_frame_size
        self._format = frame_format(max_frame_size)
        self._sent = False  # whether the current attempt started sending
        self.connections_opened = 0

    @property
    def reconnects(self) -> int:
        """Connections opened after the first one."""
        return max(0, self.connections_opened - 1)

    @contextmanager
    def _counted(self, attempt: Attempt, idempotent: bool) -> Iterator[None]:
        """One request attempt: counted, and its error replaced by
        :class:`RequestMayHaveBeenDelivered` when resending it would be unsafe."""
        self.attempts += 1
        self._sent = False
        try:
            yield
        except Exception as exc:
            if self._sent and not idempotent and self.policy.is_retryable(exc):
                raise RequestMayHaveBeenDelivered(attempt.endpoint, exc) from exc
            raise

    def _reuses(self, attempt: Attempt, idle_and_open: bool) -> bool:
        """Whether the open connection carries this attempt. One the peer closed while it
        was idle is dropped, so a new one replaces it without an attempt lost."""
        if idle_and_open:
            attempt.endpoint = self.endpoint
            return True
        self._drop()
        return False

    @abstractmethod
    def _drop(self) -> None:
        """Close the connection at once: its position in the stream is unknown."""

    def _replied(self, reply: bytes | None) -> bytes:
        """``reply``, or :class:`ConnectionClosed` when the stream ended before it."""
        if reply is None:
            where = format_address(*self.endpoint) if self.endpoint else "the server"
            raise ConnectionClosed(f"{where} closed the connection before replying")
        return reply


class FramedClient(_ClientBase[threading.Lock], Closing):
    """Blocking request/reply client over framed TCP, with retry and failover."""

    _new_lock = threading.Lock

    def close(self) -> None:
        """Close the connection; the client cannot be used afterwards."""
        self._close_now()

    def request(self, payload: BytesLike, *, idempotent: bool = True) -> bytes:
        """Send ``payload`` as one frame and return the reply frame's payload."""
        frame = self._format.encode(payload)  # FrameTooLarge before any connection
        with self._lock:
            self._check_open()
            for attempt in self.policy.retrying(self._name):
                with attempt, self._counted(attempt, idempotent):
                    return self._attempt(frame, attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    def _attempt(self, frame: bytes, attempt: Attempt) -> bytes:
        deadline = time.monotonic() + _budget(self.timeout, attempt)
        try:
            sock = self._connection(attempt)
        except BaseException:
            self._drop()
            raise
        endpoint = self.endpoint
        try:
            sock.settimeout(max(1e-6, deadline - time.monotonic()))
            self._sent = True
            sock.sendall(frame)
            reply = self._replied(
                recv_frame(sock, max_frame_size=self.max_frame_size, deadline=deadline)
            )
        except BaseException:
            self._drop()
            self._failover.failed(attempt, endpoint)
            raise
        self._failover.succeeded()
        return reply

    def _connection(self, attempt: Attempt) -> socket.socket:
        sock = self._sock
        if sock is not None and self._reuses(attempt, _idle_and_open(sock)):
            return sock
        sock = _open_socket(self._failover, attempt, self.timeout)
        self._sock = sock
        self.endpoint = attempt.endpoint
        self.connections_opened += 1
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _drop(self) -> None:
        self._release()


class AsyncFramedClient(_ClientBase[asyncio.Lock], AsyncClosing):
    """Asyncio request/reply client over framed TCP, with retry and failover.

    Each attempt runs under ``asyncio.timeout`` (``timeout`` cut to the deadline). A
    cancelled or timed-out request closes its connection, so no later request can read
    a stale reply.
    """

    _new_lock = asyncio.Lock
    _reader: asyncio.StreamReader | None = None  # the open connection, a stream pair
    _writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        """Close the connection (gracefully, bounded); the client cannot be used afterwards."""
        self._closed = True
        writer, self._writer, self._reader = self._writer, None, None
        self.endpoint = None
        if writer is None:
            return
        writer.close()
        try:
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            writer.transport.abort()  # the socket is released either way

    async def request(self, payload: BytesLike, *, idempotent: bool = True) -> bytes:
        """Send ``payload`` as one frame and return the reply frame's payload."""
        self._format.header(memoryview(payload).nbytes)  # FrameTooLarge before connecting
        async with self._lock:
            self._check_open()
            async for attempt in self.policy.aretrying(self._name):
                # The attempt's timeout is a TimeoutError once out of its block.
                with attempt, self._counted(attempt, idempotent):
                    async with asyncio.timeout(_budget(self.timeout, attempt)):
                        return await self._attempt(payload, attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _attempt(self, payload: BytesLike, attempt: Attempt) -> bytes:
        reader, writer = await self._connection(attempt)
        endpoint = self.endpoint
        try:
            self._sent = True
            await write_frame(writer, payload, max_frame_size=self.max_frame_size)
            reply = self._replied(await read_frame(reader, max_frame_size=self.max_frame_size))
        except BaseException:
            self._drop()
            self._failover.failed(attempt, endpoint)
            await asyncio.sleep(0)  # let the transport release its socket now
            raise
        self._failover.succeeded()
        return reply

    async def _connection(
        self, attempt: Attempt
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = self._reader, self._writer
        if (
            reader is not None
            and writer is not None
            and self._reuses(attempt, _stream_idle_and_open(reader, writer))
        ):
            return reader, writer
        endpoint = self._failover.current()
        attempt.endpoint = endpoint
        try:
            reader, writer = await asyncio.open_connection(*endpoint)
        except BaseException:  # a timeout arrives here as a cancellation
            self._failover.failed(attempt)
            raise
        self._reader, self._writer = reader, writer
        self.endpoint = endpoint
        self.connections_opened += 1
        return reader, writer

    def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self.endpoint = None
        if writer is not None:
            writer.transport.abort()
