"""Client workloads: what a scenario's client does, and how each request is recorded.

A workload is a function of a :class:`WorkloadContext`. It iterates
``ctx.schedule()``, which paces requests at the scenario's rate, fires the
steps due after a count of requests, and stops early when the run is stopped;
each item is a :class:`Request` to use as a context manager::

    def my_workload(ctx: WorkloadContext) -> None:
        with FramedClient(ctx.endpoints, retry=ctx.retry, timeout=ctx.timeout) as client:
            for req in ctx.schedule():
                with req:                       # an exception marks it failed, and is kept
                    with req.counting(client):  # its attempts and endpoint, from the client
                        reply = client.request(req.payload)
                    req.answer(reply, expected=req.payload)

The builtin workloads (``framed``, ``kv``, ``stream``, ``datagram``, ``http``) are written
exactly so, with chaosnet's own primitives. A user callable gets the same
context: the proxy addresses, a retry policy built from the file, a seed.
"""

from __future__ import annotations

import contextlib
import http.client as http_client
import random
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Protocol

from chaosnet.address import format_address
from chaosnet.connection import FramedClient, connect
from chaosnet.datagram import DatagramClient
from chaosnet.kv import Ack, Failure, KVProtocolError, Put, decode_response, encode_request
from chaosnet.retry import Endpoint, RetryError, RetryPolicy
from chaosnet.scenario.model import BuiltinServer, Client, Scenario

STREAM_CHUNK = 64 * 1024
#: What each builtin server speaks, named as the workload that talks to it.
SERVER_KINDS = {
    "framed_echo": "framed",
    "kv": "kv",
    "echo": "stream",
    "udp_echo": "datagram",
    "http": "http",
}


def scenario_kind(spec: Scenario) -> str | None:
    """What the client talks to: its builtin workload, else the builtin server behind its
    first endpoint (None: a command or container server, whose protocol is its own)."""
    if not spec.client.is_callable:
        return spec.client.workload
    proxy = spec.proxies.get(spec.client.endpoints[0])
    server = spec.servers.get(proxy.server or "") if proxy is not None else None
    return SERVER_KINDS.get(server.builtin) if isinstance(server, BuiltinServer) else None


@dataclass
class RequestRecord:
    """What happened to one request: when, how many attempts, and how it ended."""

    index: int
    started: float  # seconds since the workload started
    ended: float = 0.0
    attempts: int = 1
    ok: bool = False
    error: str | None = None  # exception class name
    error_chain: tuple[str, ...] = ()  # its class and base class names, for matching
    message: str | None = None
    endpoint: str | None = None
    key: str | None = None  # kv workloads: the key written
    tried: tuple[str, ...] = ()  # a give-up's attempts: endpoint, timing and error of each
    wire_attempts: int = 0  # attempts the proxies saw (0: none seen, or no connection log)

    @property
    def latency(self) -> float:
        return self.ended - self.started

    @property
    def failed(self) -> bool:
        return not self.ok


class WrongAnswer(Exception):
    """The server answered, but not what the request expected."""


class TransferIncomplete(ConnectionError):
    """A stream transfer ended before every byte came back. Transient."""

    transient = True


def _error_names(exc: BaseException) -> tuple[str, ...]:
    """The class and its bases, each by name and by qualified name (module.QualName)."""
    names = [
        name
        for cls in type(exc).__mro__
        if issubclass(cls, BaseException)
        for name in (cls.__name__, f"{cls.__module__}.{cls.__qualname__}")
    ]
    if isinstance(exc, RetryError) and exc.last_error is not None:
        names += _error_names(exc.last_error)
    return tuple(names)


class CountsAttempts(Protocol):
    """A client that counts its attempts and tells where it sent the last one
    (``FramedClient``, ``DatagramClient``)."""

    @property
    def attempts(self) -> int: ...

    @property
    def endpoint(self) -> Endpoint | None: ...


class Request:
    """One request of a workload; ``with req:`` records its outcome."""

    def __init__(self, ctx: WorkloadContext, index: int) -> None:
        self.ctx = ctx
        self.index = index
        self.attempts = 1
        self.endpoint: Endpoint | None = None
        self.record = RequestRecord(index=index, started=ctx.now())
        self._answered = False
        self._wrong: str | None = None

    @property
    def payload(self) -> bytes:
        """This request's payload: ``client.payload`` bytes, the same for the same seed."""
        rng = random.Random(f"{self.ctx.seed}:payload:{self.index}")
        return rng.randbytes(self.ctx.payload_size)

    @property
    def key(self) -> str:
        """The kv key of this request: one key per logical write."""
        return f"{self.ctx.scenario}/{self.index}"

    @property
    def value(self) -> str:
        return f"value-{self.index}"

    @contextlib.contextmanager
    def counting(self, client: CountsAttempts) -> Iterator[None]:
        """Charge this request with the attempts ``client`` makes inside the block, and
        record the endpoint it used, however the block ends."""
        before = client.attempts
        try:
            yield
        finally:
            self.attempts = client.attempts - before
            self.endpoint = client.endpoint

    def answer(self, reply: Any, expected: Any) -> None:
        """Record the reply; a reply that differs from ``expected`` fails the request."""
        self._answered = True
        if reply != expected:
            self._wrong = f"expected {_short(expected)}, got {_short(reply)}"

    def __enter__(self) -> Request:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        record = self.record
        record.ended = self.ctx.now()
        record.attempts = self.attempts
        record.endpoint = format_address(*self.endpoint) if self.endpoint else None
        record.key = self.key
        if exc is None and self._wrong is not None:
            exc = WrongAnswer(self._wrong)
        if exc is None:
            record.ok = True
        elif isinstance(exc, Exception):
            record.error = type(exc).__name__
            record.error_chain = _error_names(exc)
            record.message = _first_line(exc)
            if isinstance(exc, RetryError) and exc.last_error is not None:
                last = exc.last_error
                record.message += f"; last error: {type(last).__name__}: {_first_line(last)}"
                origin = exc.attempts[0].started_at
                record.tried = tuple(attempt.describe(origin) for attempt in exc.attempts)
                where = exc.attempts[-1].endpoint
                if record.endpoint is None and where is not None:
                    record.endpoint = format_address(*where)  # the give-up's last attempt
        self.ctx.finished(record)
        return isinstance(exc, Exception)  # keep going; Ctrl-C and the like pass through


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}... ({len(value)} bytes)"


@dataclass
class WorkloadContext:
    """Everything a workload gets. ``retry`` is None when the file asks for no retry."""

    scenario: str
    endpoints: list[Endpoint]
    proxies: dict[str, Endpoint]
    servers: dict[str, Endpoint]
    retry: RetryPolicy | None
    seed: int
    count: int
    rate: float | None
    payload_size: int
    timeout: float
    idempotent: bool
    max_frame_size: int
    options: dict[str, Any]
    on_request_done: Callable[[RequestRecord], None]
    before_request: Callable[[int], None]
    stop_event: threading.Event = field(default_factory=threading.Event)
    records: list[RequestRecord] = field(default_factory=list)
    origin: float = field(default_factory=time.monotonic)
    rng: random.Random = field(init=False, repr=False)
    #: What the endpoints' servers speak: framed, kv, stream (or None for any other server).
    kind: str | None = None
    #: The file's retry settings as written (None: no retry), for a client of its own.
    retry_settings: RetrySettings | None = None
    #: For the watchdog: since when the workload's own code runs (None: waiting in
    #: ``schedule``), and the request in flight.
    busy_since: float | None = field(default=0.0, repr=False)
    in_flight: int | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.seed}:workload")  # for a callable's own choices

    @property
    def policy(self) -> RetryPolicy:
        """The retry policy, or a single attempt when the file asks for none."""
        return self.retry or RetryPolicy(attempts=1, seed=self.seed)

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    def now(self) -> float:
        return time.monotonic() - self.origin

    def finished(self, record: RequestRecord) -> None:
        self.records.append(record)
        self.on_request_done(record)

    def schedule(self) -> Iterator[Request]:
        """``count`` requests, paced at ``rate``; steps due after N requests fire in between."""
        for index in range(self.count):
            self.busy_since, self.in_flight = None, None
            self.before_request(index)
            if self.rate is not None and not self._wait_until(index / self.rate):
                return
            if self.stopped:
                return
            request = Request(self, index)
            self.busy_since, self.in_flight = request.record.started, index
            yield request
        self.busy_since, self.in_flight = self.now(), None  # the workload's own closing code

    def _wait_until(self, offset: float) -> bool:
        """Wait until ``offset`` seconds after the start; False when the run is stopped."""
        delay = offset - self.now()
        if delay > 0:
            return not self.stop_event.wait(delay)
        return not self.stopped


Workload = Callable[[WorkloadContext], object]


@dataclass(frozen=True)
class RetrySettings:
    """``client.retry`` of the scenario file, with durations in seconds."""

    attempts: int
    deadline: float | None
    backoff: str
    initial: float
    cap: float
    multiplier: float

    @classmethod
    def of(cls, client: Client) -> RetrySettings | None:
        return None if client.retry is None else cls(**client.retry.model_dump())

    def policy(self, seed: int) -> RetryPolicy:
        """These settings as a policy (its fields are the policy's parameters), the jitter
        seeded with ``seed``."""
        return RetryPolicy(**asdict(self), seed=seed)


def retry_policy(client: Client, seed: int) -> RetryPolicy | None:
    """The file's retry policy with its jitter seeded, or None for no retry."""
    settings = RetrySettings.of(client)
    return None if settings is None else settings.policy(seed)


# -- builtin workloads ------------------------------------------------------------------


def _framed_client(ctx: WorkloadContext) -> FramedClient:
    return FramedClient(
        ctx.endpoints, retry=ctx.policy, timeout=ctx.timeout, max_frame_size=ctx.max_frame_size
    )


def framed(ctx: WorkloadContext) -> None:
    """Framed request/response through ``FramedClient``; the reply must equal the request."""
    with _framed_client(ctx) as client:
        for req in ctx.schedule():
            with req:
                with req.counting(client):
                    reply = client.request(req.payload, idempotent=ctx.idempotent)
                req.answer(reply, expected=req.payload)


def kv(ctx: WorkloadContext) -> None:
    """kv puts, one key per request, each with its own request id (kept across resends)."""
    with _framed_client(ctx) as client:
        for req in ctx.schedule():
            with req:
                put = Put(req.key, req.value, request_id=f"{ctx.seed}-{req.index}")
                with req.counting(client):
                    reply = client.request(encode_request(put), idempotent=ctx.idempotent)
                response = decode_response(reply)
                if isinstance(response, Failure):
                    raise KVProtocolError(f"kv server rejected the put: {response.message}")
                req.answer(type(response), expected=Ack)


def stream(ctx: WorkloadContext) -> None:
    """Bulk transfers through a raw echo server: send ``payload`` bytes, read them all back."""
    connect_once = RetryPolicy(attempts=len(ctx.endpoints), backoff="constant", initial=0)
    for req in ctx.schedule():
        with req:
            data = req.payload
            req.attempts = 0
            for attempt in ctx.policy.retrying(f"transfer {req.index}"):
                with attempt:
                    req.attempts += 1
                    with connect(ctx.endpoints, connect_once, ctx.timeout) as sock:
                        req.endpoint = sock.getpeername()[:2]
                        echoed = _transfer(sock, data, ctx.timeout)
            req.answer(echoed, expected=data)


def _transfer(sock: socket.socket, data: bytes, timeout: float) -> bytes:
    """Send ``data`` while reading the echo; once all of it is back, close in order.

    Sending and receiving interleave, so a large transfer cannot deadlock on
    full buffers. The client half-closes only after the whole echo arrived
    (Toxiproxy drops both directions at a half-close), then reads to the
    server's close, so a delayed close (``slow_close``) is part of the transfer.
    ``timeout`` bounds each wait for progress.
    """
    sock.setblocking(False)
    received = bytearray()
    view = memoryview(data)
    sent = 0
    closing = False
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while True:
            if not selector.select(timeout):
                raise TimeoutError(
                    f"no progress for {timeout:g}s ({sent} bytes sent, {len(received)} back)"
                )
            if sent < len(data):
                with contextlib.suppress(BlockingIOError):
                    sent += sock.send(view[sent : sent + STREAM_CHUNK])
                if sent == len(data):
                    selector.modify(sock, selectors.EVENT_READ)
            try:
                chunk = sock.recv(STREAM_CHUNK)
            except BlockingIOError:
                continue
            if chunk:
                received += chunk
            elif len(received) < len(data):
                raise TransferIncomplete(
                    f"the connection ended after {len(received)} of {len(data)} bytes"
                )
            else:
                return bytes(received)  # the server's close: the transfer is over
            if len(received) >= len(data) and not closing:
                sock.shutdown(socket.SHUT_WR)
                closing = True


def datagram(ctx: WorkloadContext) -> None:
    """Datagram requests through ``DatagramClient``: each reply must be the request's own.

    The client matches replies by request id, so a duplicate, late or reordered
    reply is skipped, never taken for the answer; the check is that every request
    got exactly its own payload back.
    """
    with DatagramClient(ctx.endpoints, retry=ctx.policy, timeout=ctx.timeout) as client:
        for req in ctx.schedule():
            with req:
                with req.counting(client):
                    reply = client.request(req.payload)
                req.answer(reply, expected=req.payload)


class HttpServerError(Exception):
    """The server (or the proxy) answered with a 5xx status. Transient: retried."""

    transient = True

    def __init__(self, status: int, retry_after: str | None) -> None:
        after = f", Retry-After: {retry_after}" if retry_after is not None else ""
        super().__init__(f"HTTP {status}{after}")
        self.status = status


def http(ctx: WorkloadContext) -> None:
    """HTTP/1.1 with the standard library's ``http.client``: ``POST /echo`` with the payload.

    One keep-alive connection, opened again after an error or a ``Connection: close``;
    a 5xx answer is an error the retry policy retries; the body must equal the payload.
    """
    host, port = ctx.endpoints[0]
    conn: http_client.HTTPConnection | None = None
    try:
        for req in ctx.schedule():
            with req:
                req.attempts = 0
                req.endpoint = (host, port)
                for attempt in ctx.policy.retrying(f"request {req.index}"):
                    with attempt:
                        req.attempts += 1
                        if conn is None:
                            conn = http_client.HTTPConnection(host, port, timeout=ctx.timeout)
                        try:
                            body = _post(conn, req.payload)
                        except BaseException:
                            conn.close()
                            conn = None
                            raise
                req.answer(body, expected=req.payload)
    finally:
        if conn is not None:
            conn.close()


def _post(conn: http_client.HTTPConnection, payload: bytes) -> bytes:
    conn.request(
        "POST", "/echo", body=payload, headers={"Content-Type": "application/octet-stream"}
    )
    response = conn.getresponse()
    body = response.read()
    if response.will_close:
        conn.close()  # the next request opens a new connection
    if response.status >= 500:
        raise HttpServerError(response.status, response.getheader("Retry-After"))
    return body


BUILTIN: dict[str, Workload] = {
    "framed": framed,
    "kv": kv,
    "stream": stream,
    "datagram": datagram,
    "http": http,
}
