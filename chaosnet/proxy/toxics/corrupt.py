"""``corrupt`` (chaosnet): flip one random bit in each passing byte with ``probability``.

Positions and bits come from the seeded source (the gaps between corrupted bytes
are drawn from the geometric distribution, so the cost does not grow with the
traffic), and they repeat exactly for the same seed and the same bytes. With
``body_only`` the toxic follows chaosnet's framing (``header_size``,
``byte_order``) and corrupts only payload bytes, so length headers stay intact
and the receiver still reads whole frames -- with damaged contents.
"""

from __future__ import annotations

import math

from chaosnet.framing import FrameScanner
from chaosnet.proxy.toxics.base import Attr, Pipe, Receiver, Toxic, ToxicSpec
from chaosnet.proxy.toxics.framed import FRAMING_ATTRIBUTES, scanner_for


class CorruptToxic(Toxic):
    type_name = "corrupt"
    in_toxiproxy = False
    summary = "bit flips (optionally frame bodies only)"
    effect = (
        "each byte has one random bit flipped with probability `probability`; with "
        "`body_only`, only frame payloads (headers intact, frames still parse)"
    )
    attributes = (
        Attr(
            "probability",
            "float",
            0.0,
            maximum=1,
            help="chance each byte is corrupted",
            required=True,
        ),
        Attr("body_only", "bool", False, help="corrupt frame payloads only, never headers"),
        *FRAMING_ATTRIBUTES,
    )
    __slots__ = ("gap", "scanner")

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.scanner: FrameScanner | None = None
        if self.attr("body_only"):
            self.scanner = scanner_for(self.attr("header_size"), self.attr("byte_order"))
        self.gap = self._next_gap()  # eligible bytes to pass before the next corrupted one

    def _next_gap(self) -> int:
        probability = self.attr("probability")
        assert isinstance(probability, float)
        if probability >= 1:
            return 0
        if probability <= 0:
            return -1  # never
        draw = self.pipe.rng(self.spec).random()
        return int(math.log1p(-draw) / math.log1p(-probability))

    def on_data(self, data: bytes) -> None:
        if self.scanner is not None:
            ranges = [(s.start, s.end) for s in self.scanner.scan(data) if s.kind == "body"]
        else:
            ranges = [(0, len(data))]
        if self.gap < 0:
            self.emit(data)
            return
        buffer: bytearray | None = None
        rng = self.pipe.rng(self.spec)
        for start, end in ranges:
            position = start + self.gap
            while position < end:
                if buffer is None:
                    buffer = bytearray(data)
                buffer[position] ^= 1 << rng.randrange(8)
                self.gap = self._next_gap()
                position += 1 + self.gap
            self.gap = position - end
        self.emit(data if buffer is None else bytes(buffer))

    def on_update(self) -> None:
        self.gap = self._next_gap()
