"""``slicer``: split each chunk into pieces of ``average_size`` +/- ``size_variation`` bytes.

The split points are chosen as Toxiproxy does (halve the chunk, move the middle by
a draw in ``[-size_variation, size_variation)``, recurse until a piece is within
``size_variation`` of ``average_size``), from the seeded source. Each piece is a
separate write, and ``delay`` microseconds pass after each one (timed by the
engine's timer queue: to the microsecond where a timerfd drives it, so the
wake-up, tens of microseconds, is the floor; to 1 ms with the loop's own timers).
``size_variation`` must be smaller than ``average_size`` (Toxiproxy recurses
forever otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping

from chaosnet.proxy.toxics.base import MAX_BYTES, MAX_MS, Attr, End, FieldError, Holding


class SlicerToxic(Holding[bytes | End]):
    type_name = "slicer"
    summary = "slicing / reassembly"
    effect = (
        "each chunk split into pieces of about `average_size` ± `size_variation` bytes, "
        "`delay` after each piece"
    )
    attributes = (
        Attr(
            "average_size",
            "int",
            0,
            minimum=1,
            maximum=MAX_BYTES,
            unit="bytes",
            help="mean piece size",
            required=True,
        ),
        Attr(
            "size_variation",
            "int",
            0,
            maximum=MAX_BYTES,
            unit="bytes",
            help="± variation of piece sizes; smaller than average_size",
        ),
        Attr("delay", "int", 0, maximum=MAX_MS * 1000, unit="µs", help="pause after each piece"),
    )
    __slots__ = ()

    @classmethod
    def check(cls, values: Mapping[str, object]) -> None:
        average, variation = values["average_size"], values["size_variation"]
        assert isinstance(average, int)
        assert isinstance(variation, int)
        if variation >= average:
            raise FieldError(
                f"attributes.size_variation: must be smaller than average_size ({average}), "
                f"got {variation}"
            )

    def cuts(self, size: int) -> list[int]:
        """Piece boundaries for a chunk of ``size`` bytes: [0, a, b, ..., size]."""
        average, variation = self.int_attr("average_size"), self.int_attr("size_variation")
        rng = self.pipe.rng(self.spec) if variation > 0 else None
        bounds = [0]
        stack = [(0, size)]
        while stack:  # depth first, left before right: the order of Toxiproxy's recursion
            start, end = stack.pop()
            if (end - start) - average <= variation:
                bounds.append(end)
                continue
            mid = start + (end - start) // 2
            if rng is not None:
                mid += rng.randrange(-variation, variation)
            stack.append((mid, end))
            stack.append((start, mid))
        return bounds

    def on_data(self, data: bytes) -> None:
        bounds = self.cuts(len(data))
        pieces = [data[bounds[i - 1] : bounds[i]] for i in range(1, len(bounds))]
        if self.int_attr("delay") <= 0 and not self.queue:
            for piece in pieces:
                self.emit(piece)
            return
        self.queue.extend(pieces)
        if self.timer is None:
            self._next()

    def on_end(self, end: End) -> None:
        if not self.queue and self.timer is None:
            self.emit_end(end)
        else:
            self.queue.append(end)

    def _next(self) -> None:
        self.timer = None
        if not self.queue:
            return
        item = self.queue.popleft()
        self.release(item)
        if isinstance(item, End):
            return
        delay = self.int_attr("delay") / 1_000_000
        self.timer = self.pipe.call_at(self.pipe.now() + delay, self._next)
