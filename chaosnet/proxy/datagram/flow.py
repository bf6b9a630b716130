"""One flow of a datagram proxy: a client address, its own upstream socket, two paths.

A *flow* is what a NAT keeps per client: datagrams from one client address go
out through one socket of the flow's own (connected to the upstream, so only the
upstream's replies reach it), and what comes back on it goes to that client
address from the proxy's listening socket. A :class:`Path` is one direction of a
flow: the toxic chain for that direction, then the send.

Lifecycle: created by the first datagram from a new client address -> forwarding
-> closed, when it was idle for the proxy's ``flow_timeout`` (no datagram arrived
from either side, whatever the toxics did with them), when a ``timeout`` toxic
with a time limit closes it, or when the proxy is disabled, deleted, changed or
stopped. Closing cancels its timers and toxics,
drops what they held and closes its socket.

Send failures never end a flow (UDP has no connection to lose): a destination
that cannot take a datagram (``EAGAIN``/``ENOBUFS``) or reports an ICMP error
(``ECONNREFUSED``: nothing listens upstream) costs that datagram, counted in the
record's ``send_errors``, and the last error is kept in ``error``.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Protocol

from chaosnet.proxy.chain import Chain, ChainPair
from chaosnet.proxy.datagram.flowlog import FlowRecord

if TYPE_CHECKING:
    from chaosnet.proxy.runtime import Runtime
    from chaosnet.proxy.timers import Timer
    from chaosnet.proxy.toxics.base import ToxicSpec

Address = tuple[str, int]
READ_BATCH = 64  # datagrams read per readiness callback: a turn stays well under budget
RECV_SIZE = 1 << 16  # over the largest UDP payload, so nothing is cut by the read
_LOST_SENDS = (BlockingIOError, InterruptedError)


class FlowOwner(Protocol):
    """What a flow needs of its proxy (the datagram proxy, seen narrowly)."""

    name: str
    runtime: Runtime
    sock: socket.socket | None
    flow_timeout: int

    def flow_closed(self, flow: Flow, by: str) -> None: ...


class Path(Chain["Flow"]):
    """One direction of a flow: its toxic chain and the send at its end (the sink).

    Counts what it forwarded and what each toxic did.
    """

    transport = "udp"

    __slots__ = ("bytes", "datagrams", "flow", "passed", "send")

    def __init__(
        self, flow: Flow, stream: str, send: Callable[[bytes | memoryview], object]
    ) -> None:
        super().__init__(flow, flow.runtime, stream)
        self.flow = flow
        self.send = send
        self.datagrams = 0  # forwarded to the destination
        self.bytes = 0
        self.passed = 0  # datagrams that entered the chain (reorder measures overtaking)

    # -- what datagram toxics use beyond the Pipe ------------------------------------------

    def hold(self, count: int) -> None:
        """A stage made ``count`` bytes more (copies of a datagram)."""
        self._hold(count)

    def count(self, spec: ToxicSpec, what: str) -> None:
        """Record that toxic ``spec`` did ``what`` to one datagram of this flow."""
        self.flow.record.counted(spec.name, what)

    def shut(self) -> None:
        self.close_stages()

    # -- datagrams in and out ----------------------------------------------------------

    def enter(self, datagram: bytes) -> None:
        """A datagram read from the source, into the chain (there are toxics)."""
        if self.budget.over_limit():  # the engine holds too much: tail drop, counted
            self.flow.record.overflow += 1
            return
        self.passed += 1
        self._hold(len(datagram))
        self.head.on_data(datagram)

    def on_data(self, data: bytes) -> None:
        """The sink: what the last stage passes on is sent."""
        if self.in_flight:
            self._release(len(data))
        if self.flow.running:
            self.forward(data)

    def on_end(self, end: object) -> None:
        """Datagram toxics never end a path; a cut closes the whole flow instead."""
        self.flow.close(getattr(end, "by", "proxy"))

    def forward(self, data: bytes | memoryview) -> None:
        try:
            self.send(data)
        except _LOST_SENDS:
            self.flow.send_failed(None)
            return
        except OSError as exc:
            self.flow.send_failed(exc)
            return
        self.datagrams += 1
        self.bytes += len(data)

    def _release(self, count: int) -> None:
        count = min(count, self.in_flight)
        if count > 0:
            self.budget.give_back(self.in_flight, count)
            self.in_flight -= count


class Flow(ChainPair[Path]):
    """One client address of a datagram proxy, with its own socket towards the upstream."""

    __slots__ = (
        "client",
        "down",
        "expiry",
        "last_active",
        "opened_at",
        "proxy",
        "record",
        "running",
        "runtime",
        "seq",
        "sock",
        "toxics",
        "up",
    )
    record: FlowRecord

    def __init__(
        self,
        proxy: FlowOwner,
        client: Address,
        seq: int,
        record: FlowRecord,
        upstream: Address,
        family: socket.AddressFamily,
    ) -> None:
        self.proxy = proxy
        self.runtime = proxy.runtime
        self.client = client
        self.seq = seq
        self.record = record
        self.opened_at = self.last_active = time.monotonic()
        self.running = True
        self.toxics: set[str] = set()
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect(upstream)  # UDP: no handshake; only the upstream's datagrams arrive
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        listening = proxy.sock
        assert listening is not None
        sendto = listening.sendto
        self.up = Path(self, "upstream", sock.send)
        self.down = Path(self, "downstream", lambda data: sendto(data, client))
        record.paths = (self.up, self.down)
        self.expiry: Timer | None = None
        self.runtime.poller.set_reader(sock.fileno(), partial(self.guarded, self._read_replies))
        self._arm_expiry(self.opened_at)

    @property
    def proxy_name(self) -> str:
        return self.proxy.name

    # -- datagrams -----------------------------------------------------------------------

    def _read_replies(self) -> None:
        """Replies from the upstream: up to ``READ_BATCH`` per call (the poller re-reports)."""
        recv_into, view, down = self.sock.recv_into, self.runtime.buffer.view, self.down
        self.last_active = time.monotonic()
        for _ in range(READ_BATCH):
            try:
                count = recv_into(view, RECV_SIZE)
            except _LOST_SENDS:
                return
            except OSError as exc:  # an ICMP error for an earlier send to the upstream
                self.send_failed(exc)
                continue
            if not self.running:
                return
            if down.head is down:
                down.forward(view[:count])
            else:
                down.enter(bytes(view[:count]))

    def send_failed(self, exc: OSError | None) -> None:
        record = self.record
        record.send_errors += 1
        if exc is not None:
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            record.error = f"{name}: {exc.strerror or exc}"

    # -- expiry and closing ---------------------------------------------------------------

    def _arm_expiry(self, since: float) -> None:
        timeout = self.proxy.flow_timeout / 1000
        self.expiry = self.runtime.timers.call_at(since + timeout, self._check_idle, self)

    def _check_idle(self) -> None:
        # Traffic only writes ``last_active``; the timer re-arms from it, so a busy flow
        # costs one timer per flow_timeout, not one per datagram.
        self.expiry = None
        if time.monotonic() - self.last_active >= self.proxy.flow_timeout / 1000:
            self.close("idle")
        else:
            self._arm_expiry(self.last_active)

    def fail(self, exc: BaseException) -> None:
        self.record.error = f"internal error: {exc!r}"
        self.runtime.report(exc)
        self.close("proxy")

    def close(self, by: str) -> None:
        if not self.running:
            return
        self.running = False
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        self.up.shut()
        self.down.shut()
        self.runtime.poller.forget(self.sock.fileno())
        self.sock.close()
        self.proxy.flow_closed(self, by)
