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
import random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chaosnet.proxy import seeding
from chaosnet.proxy.datagram.flowlog import FlowRecord

if TYPE_CHECKING:
    from chaosnet.proxy.runtime import Runtime
    from chaosnet.proxy.timers import Timer, TimerQueue
    from chaosnet.proxy.toxics.base import Toxic, ToxicSpec

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


class Path:
    """One direction of a flow: its toxic chain and the send at its end (the sink).

    Implements the toxics' ``Pipe``; counts what it forwarded and what each toxic did.
    """

    __slots__ = (
        "budget",
        "bytes",
        "datagrams",
        "flow",
        "head",
        "held",
        "passed",
        "rngs",
        "send",
        "stages",
        "stream",
        "timers",
    )

    def __init__(
        self, flow: Flow, stream: str, send: Callable[[bytes | memoryview], object]
    ) -> None:
        runtime = flow.proxy.runtime
        self.flow = flow
        self.stream = stream
        self.send = send
        self.timers: TimerQueue = runtime.timers
        self.budget = runtime.budget
        self.stages: list[Toxic] = []
        self.head: Path | Toxic = self
        self.datagrams = 0  # forwarded to the destination
        self.bytes = 0
        self.passed = 0  # datagrams that entered the chain (reorder measures overtaking)
        self.held = 0  # bytes inside the chain, counted in the engine's budget
        self.rngs: dict[str, random.Random] | None = None

    # -- the Pipe toxics use ---------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def is_due(self, when: float) -> bool:
        return when <= time.monotonic() + self.timers.slack

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return self.timers.call_at(when, callback, self.flow)  # a failure closes this flow

    def dropped(self, count: int) -> None:
        self._release(count)

    def hold(self, count: int) -> None:
        """A stage made ``count`` bytes more (copies of a datagram)."""
        self._take(count)

    def count(self, spec: ToxicSpec, what: str) -> None:
        """Record that toxic ``spec`` did ``what`` to one datagram of this flow."""
        self.flow.record.counted(spec.name, what)

    def rng(self, spec: ToxicSpec) -> random.Random:
        if self.rngs is None:
            self.rngs = {}
        found = self.rngs.get(spec.name)
        if found is None:
            flow = self.flow
            found = seeding.derive(
                spec.effective_seed(flow.engine_seed),
                flow.proxy_name,
                spec.name,
                spec.index_of(flow.seq),
                self.stream,
                "data",
            )
            self.rngs[spec.name] = found
        return found

    @property
    def opened_at(self) -> float:
        return self.flow.opened_at

    # -- the chain -----------------------------------------------------------------

    def insert_stage(self, index: int, spec: ToxicSpec) -> None:
        after: Path | Toxic = self.stages[index] if index < len(self.stages) else self
        stage = spec.cls.stage("udp")(spec, self, after)
        self.stages.insert(index, stage)
        if index == 0:
            self.head = stage
        else:
            self.stages[index - 1].next = stage

    def find_stage(self, name: str) -> Toxic | None:
        for stage in self.stages:
            if stage.spec.name == name:
                return stage
        return None

    def remove_stage(self, stage: Toxic) -> None:
        stage.on_remove()  # what it held goes on now
        if stage in self.stages:
            index = self.stages.index(stage)
            del self.stages[index]
            if index == 0:
                self.head = self.stages[0] if self.stages else self
            else:
                self.stages[index - 1].next = stage.next

    def shut(self) -> None:
        for stage in self.stages:
            stage.on_close()
        self._release(self.held)

    # -- datagrams in and out ----------------------------------------------------------

    def enter(self, datagram: bytes) -> None:
        """A datagram read from the source, into the chain (there are toxics)."""
        budget = self.budget
        if budget.held > budget.limit:  # the engine holds too much: tail drop, counted
            self.flow.record.overflow += 1
            return
        self.passed += 1
        self._take(len(datagram))
        self.head.on_data(datagram)

    def on_data(self, data: bytes) -> None:
        """The sink: what the last stage passes on is sent."""
        if self.held:
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

    def _take(self, count: int) -> None:
        budget = self.budget
        if self.held <= 0 < count:
            budget.holders += 1
        self.held += count
        budget.held += count
        if budget.held > budget.peak:
            budget.peak = budget.held

    def _release(self, count: int) -> None:
        count = min(count, self.held)
        if count <= 0:
            return
        budget = self.budget
        self.held -= count
        budget.held -= count
        if self.held <= 0:
            budget.holders -= 1


class Flow:
    """One client address of a datagram proxy, with its own socket towards the upstream."""

    __slots__ = (
        "client",
        "down",
        "engine_seed",
        "expiry",
        "last_active",
        "opened_at",
        "proxy",
        "proxy_name",
        "record",
        "running",
        "seq",
        "sock",
        "toxics",
        "up",
    )

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
        self.proxy_name = proxy.name
        self.engine_seed = proxy.runtime.seed
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
        proxy.runtime.poller.set_reader(sock.fileno(), self._on_readable)
        self._arm_expiry(self.opened_at)

    # -- what the proxy's toxic management uses (as with a TCP link) ---------------------

    def direction(self, stream: str) -> Path:
        return self.up if stream == "upstream" else self.down

    def apply(self, spec: ToxicSpec, index: int) -> None:
        self.toxics.add(spec.name)
        if spec.name not in self.record.toxics:
            self.record.toxics.append(spec.name)
            self.proxy.runtime.counters.toxic_applied(self.proxy_name, spec.type_name)
        self.direction(spec.stream).insert_stage(index, spec)

    def unapply(self, spec: ToxicSpec) -> None:
        self.toxics.discard(spec.name)
        path = self.direction(spec.stream)
        stage = path.find_stage(spec.name)
        if stage is not None:
            path.remove_stage(stage)

    def update(self, spec: ToxicSpec) -> None:
        stage = self.direction(spec.stream).find_stage(spec.name)
        if stage is not None:
            stage.on_update()

    # -- datagrams -----------------------------------------------------------------------

    def _on_readable(self) -> None:
        """Replies from the upstream: up to ``READ_BATCH`` per call (the poller re-reports)."""
        try:
            self._read_replies()
        except Exception as exc:
            self.fail(exc)

    def _read_replies(self) -> None:
        recv_into, view, down = self.sock.recv_into, self.proxy.runtime.buffer.view, self.down
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
        self.expiry = self.proxy.runtime.timers.call_at(since + timeout, self._check_idle, self)

    def _check_idle(self) -> None:
        # Traffic only writes ``last_active``; the timer re-arms from it, so a busy flow
        # costs one timer per flow_timeout, not one per datagram.
        self.expiry = None
        if time.monotonic() - self.last_active >= self.proxy.flow_timeout / 1000:
            self.close("idle")
        else:
            self._arm_expiry(self.last_active)

    def guarded(self, callback: Callable[[], None]) -> None:
        """Run a timer callback of this flow; an exception closes this flow only."""
        if not self.running:
            return
        try:
            callback()
        except Exception as exc:
            self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        self.record.error = f"internal error: {exc!r}"
        self.proxy.runtime.report(exc)
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
        self.proxy.runtime.poller.forget(self.sock.fileno())
        self.sock.close()
        self.proxy.flow_closed(self, by)
