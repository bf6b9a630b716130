"""``bandwidth``: limit a direction to ``rate`` KB/s (1 KB = 1000 bytes; 0 = unlimited).

Data is released in slices of at most 10 ms worth of the rate, each slice at the
moment the link would have finished sending it, so a receiver measures the rate
from the first byte on (Toxiproxy sends 100 ms slices after sleeping for them).
A rate change applies from the next slice; removing the toxic releases what it
holds at once.
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
)
from chaosnet.proxy.toxics.datagrams import DatagramToxic

SLICE_S = 0.01
QUEUE_S = 0.5  # datagrams: the queue holds this much of the rate


class BandwidthToxic(Holding[bytes | End]):
    type_name = "bandwidth"
    summary = "bandwidth limit"
    effect = "throughput capped at `rate`; 0 = unlimited"
    attributes = (
        Attr(
            "rate",
            "int",
            0,
            maximum=10**9,
            unit="KB/s",
            help="throughput limit (1 KB = 1000 bytes); 0 = no limit",
            required=True,
        ),
    )
    transports: ClassVar[tuple[Transport, ...]] = ("tcp", "udp")
    datagram_effect = (
        "a `rate` link: datagrams leave one after the other; the queue holds 0.5 s of the rate, "
        "a datagram that does not fit is dropped (tail drop)"
    )
    __slots__ = ("free_at",)

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.free_at = 0.0  # when the simulated link finishes what it already sent

    def _bytes_per_s(self) -> int:
        return self.int_attr("rate") * 1000

    def on_data(self, data: bytes) -> None:
        if not self.queue and self._bytes_per_s() <= 0:
            self.emit(data)
            return
        if not self.queue:  # a new burst: the simulated link has been idle
            self.free_at = max(self.free_at, self.pipe.now())
        self.queue.append(data)
        if self.timer is None:
            self._pump()

    def on_end(self, end: End) -> None:
        if not self.queue:
            self.emit_end(end)
            return
        self.queue.append(end)

    def _pump(self) -> None:
        self.timer = None
        while self.queue:
            head = self.queue[0]
            if isinstance(head, End):
                self.queue.popleft()
                self.emit_end(head)
                return
            rate = self._bytes_per_s()
            if rate <= 0:
                self.queue.popleft()
                self.emit(head)
                continue
            size = min(len(head), max(1, int(rate * SLICE_S)))
            done_at = self.free_at + size / rate
            if not self.pipe.is_due(done_at):
                self.timer = self.pipe.call_at(done_at, self._pump)
                return
            self.free_at = done_at
            if size == len(head):
                self.queue.popleft()
                self.emit(head)
            else:
                self.queue[0] = head[size:]
                self.emit(head[:size])

    def on_update(self) -> None:
        if self.timer is not None:
            cancel(self.timer)
            self._pump()


class DatagramBandwidth(DatagramToxic, Holding[bytes], datagrams_of=BandwidthToxic):
    """``bandwidth`` on a datagram proxy: a ``rate`` KB/s link with a bounded queue.

    Datagrams leave one after the other, each when the simulated link has finished
    sending it (``size / rate`` after the previous one, or after its arrival if the
    link was idle). The queue holds at most ``QUEUE_S`` (0.5 s) of the rate in
    bytes, and always at least one datagram; a datagram that does not fit is
    dropped (tail drop) and counted as ``dropped``. ``rate`` 0 = no limit.
    """

    __slots__ = ("free_at", "queued")

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.queued = 0  # bytes in the queue
        self.free_at = 0.0

    def _bytes_per_s(self) -> int:
        return self.int_attr("rate") * 1000

    def on_data(self, data: bytes) -> None:
        rate = self._bytes_per_s()
        if rate <= 0 and not self.queue:
            self.emit(data)
            return
        if self.queue and self.queued + len(data) > rate * QUEUE_S:
            self.drop_counted(data)
            return
        if not self.queue:
            self.free_at = max(self.free_at, self.pipe.now())
        self.queue.append(data)
        self.queued += len(data)
        if self.timer is None:
            self._pump()

    def _pump(self) -> None:
        self.timer = None
        queue = self.queue
        while queue:
            head = queue[0]
            rate = self._bytes_per_s()
            if rate > 0:
                done_at = self.free_at + len(head) / rate
                if not self.pipe.is_due(done_at):
                    self.timer = self.pipe.call_at(done_at, self._pump)
                    return
                self.free_at = done_at
            queue.popleft()
            self.queued -= len(head)
            self.emit(head)

    def on_update(self) -> None:
        if self.timer is not None:
            cancel(self.timer)
            self._pump()

    def on_remove(self) -> None:
        super().on_remove()
        self.queued = 0

    def on_close(self) -> None:
        super().on_close()
        self.queued = 0
