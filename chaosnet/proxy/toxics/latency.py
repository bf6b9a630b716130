"""``latency``: delay every chunk by ``latency`` +/- ``jitter`` milliseconds.

As in Toxiproxy each chunk read from the source is stamped on arrival and
released ``latency + j`` ms later, ``j`` drawn uniformly from ``[-jitter, jitter)``
(from the seeded source). Chunks keep their order: a chunk whose own delay is
shorter still waits for the one before it. The end of the stream follows the
last chunk without extra delay. Updating the toxic re-times the chunks it holds;
removing it releases them at once.
"""

from __future__ import annotations

from typing import ClassVar

from chaosnet.proxy.toxics.base import (
    Attr,
    End,
    Holding,
    Pipe,
    Receiver,
    ToxicSpec,
    Transport,
    cancel,
    ms,
)
from chaosnet.proxy.toxics.datagrams import DatagramToxic, HeldDatagrams

#: (arrival time, jitter draw in ms, chunk or end)
Held = tuple[float, int, bytes | End]


class LatencyToxic(Holding[Held]):
    type_name = "latency"
    summary = "latency ± jitter"
    effect = (
        "each chunk delayed by latency ± jitter (jitter drawn in [-jitter, jitter)); order kept"
    )
    attributes = (
        Attr("latency", "int", 0, unit="ms", help="delay added to every chunk", required=True),
        Attr("jitter", "int", 0, unit="ms", help="random ± variation of each delay"),
    )
    transports: ClassVar[tuple[Transport, ...]] = ("tcp", "udp")
    datagram_summary = "latency ± jitter (datagrams overtake)"
    datagram_effect = (
        "each datagram sent latency ± jitter after it arrived; with jitter datagrams overtake "
        "each other, as on a real network"
    )
    __slots__ = ()

    def held(self, entry: Held) -> bytes | End:
        return entry[2]

    def _jitter(self) -> int:
        jitter = self.int_attr("jitter")
        return self.pipe.rng(self.spec).randrange(-jitter, jitter) if jitter > 0 else 0

    def _due(self, arrival: float, jitter: int) -> float:
        return arrival + ms(self.int_attr("latency") + jitter)

    def on_data(self, data: bytes) -> None:
        self._hold(data, self._jitter())

    def on_end(self, end: End) -> None:
        self._hold(end, -self.int_attr("latency"))  # right after the chunks before it

    def _hold(self, item: bytes | End, jitter: int) -> None:
        now = self.pipe.now()
        if not self.queue and self.pipe.is_due(self._due(now, jitter)):
            self.release(item)
            return
        self.queue.append((now, jitter, item))
        if self.timer is None:
            self._schedule()

    def _schedule(self) -> None:
        arrival, jitter, _ = self.queue[0]
        self.timer = self.pipe.call_at(self._due(arrival, jitter), self._fire)

    def _fire(self) -> None:
        self.timer = None
        queue, is_due = self.queue, self.pipe.is_due
        while queue and is_due(self._due(queue[0][0], queue[0][1])):
            self.release(queue.popleft()[2])
        if queue and self.timer is None:
            self._schedule()

    def on_update(self) -> None:
        cancel(self.timer)
        self.timer = None
        if self.queue:
            self._fire()


class DatagramLatency(DatagramToxic, datagrams_of=LatencyToxic):
    """``latency`` on a datagram proxy: each datagram is delayed on its own.

    Datagram ``i`` is sent ``latency + j_i`` ms after it arrived, ``j_i`` drawn
    uniformly from ``[-jitter, jitter)``. There is no order to keep: with jitter a
    datagram may overtake the ones before it, as on a real network. Without
    jitter the order is kept. Removing the toxic sends what it holds at once.
    """

    __slots__ = ("held",)

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.held = HeldDatagrams(pipe, self.emit)

    def on_data(self, data: bytes) -> None:
        jitter = self.int_attr("jitter")
        offset = self.pipe.rng(self.spec).randrange(-jitter, jitter) if jitter > 0 else 0
        due = self.pipe.now() + ms(self.int_attr("latency") + offset)
        if not self.held and self.pipe.is_due(due):
            self.emit(data)
        else:
            self.held.hold(due, data)

    def on_remove(self) -> None:
        self.held.release_all()

    def on_close(self) -> None:
        self.held.clear()
