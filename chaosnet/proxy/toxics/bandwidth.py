"""``bandwidth``: limit a direction to ``rate`` KB/s (1 KB = 1000 bytes; 0 = unlimited).

Data is released in slices of at most 10 ms worth of the rate, each slice at the
moment the link would have finished sending it, so a receiver measures the rate
from the first byte on (Toxiproxy sends 100 ms slices after sleeping for them).
A rate change applies from the next slice; removing the toxic releases what it
holds at once.
"""

from __future__ import annotations

from chaosnet.proxy.toxics.base import Attr, End, Holding, Pipe, Receiver, ToxicSpec, cancel

SLICE_S = 0.01


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
