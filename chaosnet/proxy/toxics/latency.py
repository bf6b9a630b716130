"""``latency``: delay every chunk by ``latency`` +/- ``jitter`` milliseconds.

As in Toxiproxy each chunk read from the source is stamped on arrival and
released ``latency + j`` ms later, ``j`` drawn uniformly from ``[-jitter, jitter)``
(from the seeded source). Chunks keep their order: a chunk whose own delay is
shorter still waits for the one before it. The end of the stream follows the
last chunk without extra delay. Updating the toxic re-times the chunks it holds;
removing it releases them at once.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from chaosnet.proxy.toxics.base import Attr, End, Pipe, Receiver, Toxic, cancel, ms

if TYPE_CHECKING:
    from chaosnet.proxy.timers import Timer
    from chaosnet.proxy.toxics.spec import ToxicSpec


class LatencyToxic(Toxic):
    type_name = "latency"
    summary = "delays each chunk by latency +/- jitter"
    attributes = (
        Attr("latency", "int", 0, unit="ms", help="delay added to every chunk"),
        Attr("jitter", "int", 0, unit="ms", help="random +/- variation of each delay"),
    )
    __slots__ = ("queue", "timer")

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        # (arrival time, jitter draw in ms, chunk or end)
        self.queue: deque[tuple[float, int, bytes | End]] = deque()
        self.timer: Timer | None = None

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
            self._release(item)
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
            self._release(queue.popleft()[2])
        if queue and self.timer is None:
            self._schedule()

    def _release(self, item: bytes | End) -> None:
        if isinstance(item, End):
            self.emit_end(item)
        else:
            self.emit(item)

    def on_update(self) -> None:
        cancel(self.timer)
        self.timer = None
        if self.queue:
            self._fire()

    def on_remove(self) -> None:
        cancel(self.timer)
        self.timer = None
        while self.queue:
            self._release(self.queue.popleft()[2])

    def on_close(self) -> None:
        cancel(self.timer)
        self.queue.clear()
