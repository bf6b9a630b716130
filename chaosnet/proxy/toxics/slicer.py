"""``slicer``: split each chunk into pieces of ``average_size`` +/- ``size_variation`` bytes.

The split points are chosen as Toxiproxy does (halve the chunk, move the middle by
a draw in ``[-size_variation, size_variation)``, recurse until a piece is within
``size_variation`` of ``average_size``), from the seeded source. Each piece is a
separate write, and ``delay`` microseconds pass after each one (timed by the
engine's timer queue: to the microsecond where a timerfd drives it, so the
wake-up, tens of microseconds, is the floor; to 1 ms with the loop's own timers).
``size_variation`` must be smaller than ``average_size`` (Toxiproxy recurses
forever otherwise). Pieces are cut as they are sent, and without a delay at most
``EMITS_PER_TURN`` go out per callback: the rest follow on the next turn of the
timer queue, so 1-byte pieces of a fast stream never hold up the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from chaosnet.proxy.toxics.base import (
    EMITS_PER_TURN,
    MAX_BYTES,
    MAX_MS,
    Attr,
    End,
    FieldError,
    Holding,
    Pipe,
    Receiver,
    ToxicSpec,
)


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
    __slots__ = ("cutting",)

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.cutting: Iterator[bytes] | None = None  # the pieces left of the chunk being cut

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
        return [0, *self._bounds(size)]

    def _bounds(self, size: int) -> Iterator[int]:
        """The end of each piece in order, computed as they are taken (never all at once)."""
        average, variation = self.int_attr("average_size"), self.int_attr("size_variation")
        rng = self.pipe.rng(self.spec) if variation > 0 else None
        stack = [(0, size)]
        while stack:  # depth first, left before right: the order of Toxiproxy's recursion
            start, end = stack.pop()
            if (end - start) - average <= variation:
                yield end
                continue
            mid = start + (end - start) // 2
            if rng is not None:
                mid += rng.randrange(-variation, variation)
            stack.append((mid, end))
            stack.append((start, mid))

    def _pieces(self, data: bytes) -> Iterator[bytes]:
        start = 0
        for end in self._bounds(len(data)):
            yield data[start:end]
            start = end

    def on_data(self, data: bytes) -> None:
        self.queue.append(data)
        if self.timer is None:
            self._next()

    def on_end(self, end: End) -> None:
        if not self.queue and self.timer is None and self.cutting is None:
            self.emit_end(end)
        else:
            self.queue.append(end)

    def _next(self) -> None:
        """Pass on pieces: one per ``delay``, or up to the turn's budget when there is none."""
        self.timer = None
        delay = self.int_attr("delay") / 1_000_000
        for _ in range(EMITS_PER_TURN if delay <= 0 else 1):
            piece = self._take()
            if piece is None:
                return
            self.emit(piece)
        # One piece per write: a 64 KiB chunk in 1-byte pieces is 65,536 sends, so the
        # rest waits for the next turn instead of holding the loop (and the API) up.
        self.timer = self.pipe.call_at(self.pipe.now() + delay, self._next)

    def _take(self) -> bytes | None:
        """The next piece, or None when nothing is left (an End held is passed on)."""
        while True:
            if self.cutting is not None:
                piece = next(self.cutting, None)
                if piece is not None:
                    return piece
                self.cutting = None
            if not self.queue:
                return None
            item = self.queue.popleft()
            if isinstance(item, End):
                self.emit_end(item)
                return None
            self.cutting = self._pieces(item)

    def on_remove(self) -> None:
        if self.cutting is not None:  # the rest of the chunk being cut goes first, whole
            self.queue.appendleft(b"".join(self.cutting))
            self.cutting = None
        super().on_remove()

    def on_close(self) -> None:
        self.cutting = None
        super().on_close()
