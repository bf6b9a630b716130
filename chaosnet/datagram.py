"""Datagram request/response: one sans-IO core, a blocking client and an asyncio client.

UDP loses, duplicates, reorders, delays and cuts datagrams, and nothing tells the
sender. A request/response client has to match each reply to its request, ignore
replies it no longer wants, and resend on silence. This module does that.

Wire format (every integer unsigned big-endian; a 16-byte header, then the payload)::

    offset  size  field
         0     1  version: 1
         1     1  kind: 1 = request, 2 = reply
         2     2  payload length in bytes
         4     8  request id
        12     4  CRC-32 (zlib.crc32) of header bytes 0-11 followed by the payload
        16     n  payload (exactly ``payload length`` bytes)

A server answers a request with a reply carrying the same request id. A datagram
that is shorter than its header, has another version or kind, a length that does
not match its size, or a wrong CRC is *malformed* (:class:`MalformedDatagram`, with
``.partial``, the bytes that arrived, and ``.reason``): a corrupted or truncated
datagram is detected, never taken as an answer.

Pieces:

- :func:`encode` / :func:`decode` -- the codec; :func:`encode` checks the whole
  datagram against ``max_datagram_size`` before anything is sent
  (:class:`DatagramTooLarge`, permanent).
- :class:`Ledger` -- sans-IO request bookkeeping for one client: it numbers
  requests (sequential ids from a random start), classifies every arriving datagram
  as the answer, a *duplicate* (a reply to a request already answered), a *late*
  reply (to a request that gave up), a *stray* (not a reply to any request of this
  client) or *malformed*, and counts each kind. Only the answer is returned.
- :class:`DatagramClient` / :class:`AsyncDatagramClient` -- the same request loop
  over a blocking socket and over the event loop.

A request: its datagram is built (size-checked) once, and every attempt sends it
again with the *same* request id, so a slow reply to an earlier attempt still
answers it. An attempt waits ``timeout`` seconds (cut to the retry policy's
remaining deadline) for the answer; datagrams that are not the answer are counted
and skipped while it waits. An attempt fails with :class:`NoReply` (a
``TimeoutError``) on silence, with :class:`MalformedReply` when a malformed
datagram arrives (its id cannot be trusted, so the attempt ends and the request is
resent), or with ``ConnectionRefusedError`` when the kernel reports an ICMP
port-unreachable from an earlier send. All three are transient: the
:class:`~chaosnet.retry.RetryPolicy` (default ``RetryPolicy()``) decides whether
and when to resend, within its attempts and deadline, and gives up with a
:class:`~chaosnet.retry.RetryError` listing every attempt and its endpoint.

Endpoints: one ``(host, port)`` or a list, the first being the primary. After an
attempt fails on an endpoint the next attempt goes to the next endpoint without a
backoff wait; the backoff applies after the last one failed, and an answered
request makes the next one start at the primary again (as
:mod:`chaosnet.connection`). The client keeps one socket, connected to the
endpoint in use, so its source address stays the same across requests (one flow
for a NAT or a datagram proxy).

Requests on one client are serialised; ``client.attempts`` counts the datagrams
sent and ``client.ledger`` holds the counts above. ``close()`` is idempotent and a
closed client raises :class:`~chaosnet.connection.ClientClosed`.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from chaosnet.closing import AsyncClosing, Closing
from chaosnet.connection import _budget, _EndpointClient, _Lock
from chaosnet.picklable import Picklable
from chaosnet.retry import Attempt, Endpoint, RetryPolicy

__all__ = [
    "DEFAULT_MAX_DATAGRAM_SIZE",
    "DEFAULT_TIMEOUT",
    "HEADER_SIZE",
    "AsyncDatagramClient",
    "DatagramClient",
    "DatagramError",
    "DatagramTooLarge",
    "Ledger",
    "MalformedDatagram",
    "MalformedReply",
    "Message",
    "NoReply",
    "decode",
    "encode",
]

VERSION = 1
REQUEST = 1
REPLY = 2
HEADER_SIZE = 16
#: The largest UDP payload over IPv4 (65535 - 8 UDP - 20 IP header bytes).
DEFAULT_MAX_DATAGRAM_SIZE = 65_507
DEFAULT_TIMEOUT = 1.0
#: How many finished requests a ledger remembers to tell duplicates and late replies.
REMEMBERED = 4096

_HEAD = struct.Struct(">BBHQ")  # version, kind, length, request id (the CRC follows)
_CRC = struct.Struct(">I")
_ID_MASK = (1 << 64) - 1

Kind = Literal["request", "reply"]
_KIND_CODES: dict[Kind, int] = {"request": REQUEST, "reply": REPLY}
_KIND_NAMES: dict[int, Kind] = {REQUEST: "request", REPLY: "reply"}


class DatagramError(Exception):
    """Base class of the datagram errors."""


class DatagramTooLarge(Picklable, DatagramError):
    """A datagram over the maximum size; raised before sending. Permanent."""

    transient = False
    _init_fields = ("size", "limit")

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"datagram of {size} bytes exceeds the maximum of {limit} bytes")
        self.size = size
        self.limit = limit


class MalformedDatagram(Picklable, DatagramError):
    """A datagram that does not parse; ``.partial`` holds the bytes that arrived."""

    transient = True
    _init_fields = ("reason", "partial")

    def __init__(self, reason: str, partial: bytes) -> None:
        super().__init__(f"malformed datagram ({len(partial)} bytes): {reason}")
        self.reason = reason
        self.partial = partial


class MalformedReply(MalformedDatagram):
    """A malformed datagram arrived while a request waited; never taken as the answer.

    Transient: the request is resent (with the same id).
    """


class NoReply(TimeoutError):
    """No answer arrived within the attempt's time. Transient."""


@dataclass(frozen=True, slots=True)
class Message:
    kind: Kind
    request_id: int
    payload: bytes


def encode(
    kind: Kind,
    request_id: int,
    payload: bytes | bytearray | memoryview,
    max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
) -> bytes:
    """One datagram; :class:`DatagramTooLarge` if it would exceed ``max_datagram_size``."""
    body = bytes(payload)
    size = HEADER_SIZE + len(body)
    if size > max_datagram_size:
        raise DatagramTooLarge(size, max_datagram_size)
    if size > HEADER_SIZE + 0xFFFF:
        raise DatagramTooLarge(size, HEADER_SIZE + 0xFFFF)  # the length field's limit
    head = _HEAD.pack(VERSION, _KIND_CODES[kind], len(body), request_id & _ID_MASK)
    return head + _CRC.pack(zlib.crc32(body, zlib.crc32(head))) + body


def decode(datagram: bytes | bytearray | memoryview) -> Message:
    """The message in ``datagram``; :class:`MalformedDatagram` if it does not parse."""
    data = bytes(datagram)
    if len(data) < HEADER_SIZE:
        raise MalformedDatagram(f"shorter than the {HEADER_SIZE}-byte header", data)
    version, code, length, request_id = _HEAD.unpack_from(data)
    if version != VERSION:
        raise MalformedDatagram(f"version {version}, expected {VERSION}", data)
    kind = _KIND_NAMES.get(code)
    if kind is None:
        raise MalformedDatagram(f"unknown kind {code}", data)
    if HEADER_SIZE + length != len(data):
        got = len(data) - HEADER_SIZE
        raise MalformedDatagram(f"payload of {got} bytes, the header says {length}", data)
    (crc,) = _CRC.unpack_from(data, 12)
    if zlib.crc32(data[HEADER_SIZE:], zlib.crc32(data[:12])) != crc:
        raise MalformedDatagram("CRC mismatch (corrupted)", data)
    return Message(kind, request_id, data[HEADER_SIZE:])


# -- the sans-IO core ------------------------------------------------------------------


class Ledger:
    """Numbers a client's requests and sorts every arriving datagram.

    Counters: ``requests``, ``answered``, ``abandoned``, and for datagrams that were
    not the answer ``duplicates``, ``late``, ``stray`` and ``malformed``.
    """

    __slots__ = (
        "_finished",
        "_next_id",
        "abandoned",
        "answered",
        "duplicates",
        "late",
        "malformed",
        "max_datagram_size",
        "pending",
        "requests",
        "stray",
    )

    def __init__(
        self, max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE, first_id: int | None = None
    ) -> None:
        if isinstance(max_datagram_size, bool) or not isinstance(max_datagram_size, int):
            raise TypeError(f"max_datagram_size must be an int, got {max_datagram_size!r}")
        if max_datagram_size < HEADER_SIZE:
            raise ValueError(
                f"max_datagram_size must be >= {HEADER_SIZE} (the header), got {max_datagram_size}"
            )
        self.max_datagram_size = max_datagram_size
        self._next_id = random.getrandbits(64) if first_id is None else first_id & _ID_MASK
        self._finished: OrderedDict[int, bool] = OrderedDict()  # id -> answered?
        self.pending: int | None = None  # the id of the request waiting for its answer
        self.requests = self.answered = self.abandoned = 0
        self.duplicates = self.late = self.stray = self.malformed = 0

    def open(self, payload: bytes | bytearray | memoryview) -> tuple[int, bytes]:
        """A new request: its id and its datagram (size-checked, nothing counted on failure)."""
        request_id = self._next_id
        datagram = encode("request", request_id, payload, self.max_datagram_size)
        self._next_id = (request_id + 1) & _ID_MASK
        self.pending = request_id
        self.requests += 1
        return request_id, datagram

    def receive(self, datagram: bytes) -> bytes | None:
        """The answer's payload if ``datagram`` is it; None (counted) if it is not.

        Raises :class:`MalformedReply` for a datagram that does not parse.
        """
        try:
            message = decode(datagram)
        except MalformedDatagram as exc:
            self.malformed += 1
            raise MalformedReply(exc.reason, exc.partial) from None
        if message.kind != "reply":
            self.stray += 1
            return None
        if message.request_id == self.pending:
            self._finish(message.request_id, answered=True)
            return message.payload
        seen = self._finished.get(message.request_id)
        if seen is None:
            self.stray += 1
        elif seen:
            self.duplicates += 1
        else:
            self.late += 1
        return None

    def give_up(self) -> None:
        """The pending request ended without an answer; a reply to it now is late."""
        if self.pending is not None:
            self._finish(self.pending, answered=False)

    def _finish(self, request_id: int, *, answered: bool) -> None:
        self.pending = None
        if answered:
            self.answered += 1
        else:
            self.abandoned += 1
        self._finished[request_id] = answered
        if len(self._finished) > REMEMBERED:
            self._finished.popitem(last=False)


# -- the clients -----------------------------------------------------------------------


class _ClientBase(_EndpointClient[_Lock]):
    """What both datagram clients share: their constructor, the ledger, the one socket
    (connected to the endpoint in use; ``endpoint`` is where the last datagram went), the
    bookkeeping around a request and the start of each attempt. ``attempts`` counts
    datagrams sent, all requests together."""

    _blocking = True  # whether the socket blocks (the asyncio client's is served by the loop)

    def __init__(
        self,
        endpoints: Endpoint | Sequence[Endpoint],
        *,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_datagram_size: int = DEFAULT_MAX_DATAGRAM_SIZE,
    ) -> None:
        super().__init__(endpoints, retry=retry, timeout=timeout, what="datagram request")
        self.ledger = Ledger(max_datagram_size)

    @property
    def max_datagram_size(self) -> int:
        return self.ledger.max_datagram_size

    @contextmanager
    def _request(self, payload: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """A new request's datagram (:class:`DatagramTooLarge` before any send); if the
        block does not return its answer, the request is given up."""
        self._check_open()
        _, datagram = self.ledger.open(payload)
        try:
            yield datagram
        except BaseException:
            self.ledger.give_up()
            raise

    def _start(self, attempt: Attempt) -> tuple[socket.socket, _Wait]:
        """An attempt begins: the socket connected to its endpoint (recorded on it) and
        how long it may wait for the answer; counted once its time is known."""
        endpoint = self._failover.current()
        attempt.endpoint = endpoint
        started = time.monotonic()
        wait = _Wait(endpoint, started, started + _budget(self.timeout, attempt))
        self.attempts += 1
        try:
            return self._socket(endpoint), wait
        except Exception:
            self._failover.failed(attempt, endpoint)
            raise

    def _socket(self, endpoint: Endpoint) -> socket.socket:
        if self._sock is None:
            family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            self._sock.setblocking(self._blocking)
        if self.endpoint != endpoint:
            self._sock.connect(endpoint)  # UDP: no handshake, returns at once
            self.endpoint = endpoint
        return self._sock


@dataclass(frozen=True, slots=True)
class _Wait:
    """How long one attempt waits for the answer from ``endpoint``: from ``started`` until
    ``deadline`` (``time.monotonic()`` values)."""

    endpoint: Endpoint
    started: float
    deadline: float

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def no_reply(self) -> NoReply:
        host, port = self.endpoint
        return NoReply(f"no reply from {host}:{port} within {self.deadline - self.started:.3f}s")


class DatagramClient(_ClientBase[threading.Lock], Closing):
    """Blocking request/response client over UDP, with retry and failover."""

    _new_lock = threading.Lock

    def close(self) -> None:
        self._close_now()

    def request(self, payload: bytes | bytearray | memoryview) -> bytes:
        """Send ``payload`` as one request and return the answer's payload."""
        with self._lock, self._request(payload) as datagram:
            for attempt in self.policy.retrying(self._name):
                with attempt:
                    return self._attempt(datagram, attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    def _attempt(self, datagram: bytes, attempt: Attempt) -> bytes:
        sock, wait = self._start(attempt)
        try:
            sock.send(datagram)
            size = self.max_datagram_size + 1  # one more: a reply over the limit is seen
            while True:
                left = wait.left()
                if left <= 0:
                    raise wait.no_reply()
                sock.settimeout(left)
                try:
                    data = sock.recv(size)
                except TimeoutError:
                    raise wait.no_reply() from None
                answer = self.ledger.receive(data)
                if answer is not None:
                    self._failover.succeeded()
                    return answer
        except Exception:
            self._failover.failed(attempt, wait.endpoint)
            raise


class AsyncDatagramClient(_ClientBase[asyncio.Lock], AsyncClosing):
    """Asyncio request/response client over UDP, with retry and failover.

    The socket is non-blocking and served by the running loop (``sock_recv``); a
    cancelled request leaves nothing behind but its id, remembered as given up.
    """

    _new_lock = asyncio.Lock
    _blocking = False

    async def close(self) -> None:
        self._close_now()

    async def request(self, payload: bytes | bytearray | memoryview) -> bytes:
        """Send ``payload`` as one request and return the answer's payload."""
        async with self._lock:
            with self._request(payload) as datagram:
                async for attempt in self.policy.aretrying(self._name):
                    with attempt:
                        return await self._attempt(datagram, attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _attempt(self, datagram: bytes, attempt: Attempt) -> bytes:
        sock, wait = self._start(attempt)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendall(sock, datagram)
            size = self.max_datagram_size + 1
            try:
                async with asyncio.timeout_at(loop.time() + wait.left()):
                    while True:
                        answer = self.ledger.receive(await loop.sock_recv(sock, size))
                        if answer is not None:
                            self._failover.succeeded()
                            return answer
            except TimeoutError:
                raise wait.no_reply() from None
        except Exception:
            self._failover.failed(attempt, wait.endpoint)
            raise
