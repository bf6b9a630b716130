"""``corrupt`` (chaosnet): flip one random bit in each passing byte with ``probability``.

Positions and bits come from the seeded source (the gaps between corrupted bytes
are drawn from the geometric distribution, so the cost does not grow with the
traffic), and they repeat exactly for the same seed and the same bytes. One
callback makes at most ``FLIPS_PER_TURN`` flips; a denser chunk is passed on in
parts over the next turns, and ``probability: 1`` flips every byte at once. With
``body_only`` the toxic follows chaosnet's framing (``header_size``,
``byte_order``) and corrupts only payload bytes, so length headers stay intact
and the receiver still reads whole frames -- with damaged contents. On a proxy
with a protocol, ``body_only`` means that protocol's bodies (HTTP content and
chunk data, RESP bulk strings, line contents, frame payloads; see
``chaosnet/proxy/framers/base.py``) and the framing attributes are not used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from chaosnet.framing import FrameScanner
from chaosnet.proxy.toxics.base import (
    MAX_BYTES,
    Attr,
    End,
    Holding,
    Pipe,
    Receiver,
    ToxicSpec,
    Transport,
)
from chaosnet.proxy.toxics.datagrams import DatagramToxic
from chaosnet.proxy.toxics.framed import FRAMING_ATTRIBUTES, scanner_for

FLIPS_PER_TURN = 1024  # bit flips one callback makes at most (a Python loop each)
_ONE_BIT = bytes(1 << (value & 7) for value in range(256))  # a random byte -> one bit
if TYPE_CHECKING:
    from chaosnet.proxy.framers.base import Part


class CorruptToxic(Holding[bytes | End]):
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
    transports: ClassVar[tuple[Transport, ...]] = ("tcp", "udp")
    datagram_summary = "bit flips"
    datagram_effect = (
        "each byte has one random bit flipped with `probability`, across datagrams; "
        "`body_only` needs stream framing (400)"
    )
    __slots__ = ("gap", "scanner")

    @classmethod
    def uses_messages(cls, values: Mapping[str, object]) -> bool:
        return bool(values["body_only"])

    @classmethod
    def wants(cls, part: Part, values: Mapping[str, object]) -> bool:
        return part.kind == "body"

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.scanner: FrameScanner | None = None
        if self.attr("body_only") and not spec.framed:  # framed: the gate hands it bodies only
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
        gap = math.log1p(-draw) / math.log1p(-probability)  # finite: probability >= 1e-9
        return int(min(gap, MAX_BYTES))

    def on_data(self, data: bytes) -> None:
        if self.queue or self.timer is not None:  # behind data still being corrupted
            self.queue.append(data)
        else:
            self._process(data)

    def on_end(self, end: End) -> None:
        if self.queue or self.timer is not None:
            self.queue.append(end)
        else:
            self.emit_end(end)

    def _process(self, data: bytes) -> None:
        """Corrupt and pass on what one turn's budget covers; the rest waits for the next."""
        limit = self._bytes_per_turn()
        if len(data) > limit:
            data, rest = data[:limit], data[limit:]
            self.queue.appendleft(rest)
            self.timer = self.pipe.call_at(self.pipe.now(), self._resume)
        self.emit(self._corrupt(data))

    def _resume(self) -> None:
        self.timer = None
        if self.queue:
            item = self.queue.popleft()
            if isinstance(item, End):
                self.emit_end(item)
            else:
                self._process(item)
        if self.queue and self.timer is None:
            self.timer = self.pipe.call_at(self.pipe.now(), self._resume)

    def _bytes_per_turn(self) -> int:
        probability = self.attr("probability")
        assert isinstance(probability, float)
        if probability <= 0 or probability >= 1:
            return MAX_BYTES  # nothing to flip, or every byte at once (_flip_all)
        return max(1, int(FLIPS_PER_TURN / probability))

    def _corrupt(self, data: bytes) -> bytes:
        if self.scanner is not None:
            ranges = [(s.start, s.end) for s in self.scanner.scan(data) if s.kind == "body"]
        else:
            ranges = [(0, len(data))]
        if self.gap < 0:
            return data
        if self.attr("probability") == 1.0:
            return self._flip_all(data, ranges)
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
        return data if buffer is None else bytes(buffer)

    def _flip_all(self, data: bytes, ranges: list[tuple[int, int]]) -> bytes:
        """Every byte in ``ranges`` gets one random bit flipped, in C (no per-byte loop)."""
        buffer = bytearray(data)
        rng = self.pipe.rng(self.spec)
        for start, end in ranges:
            size = end - start
            masks = rng.randbytes(size).translate(_ONE_BIT)
            flipped = int.from_bytes(buffer[start:end]) ^ int.from_bytes(masks)
            buffer[start:end] = flipped.to_bytes(size)
        return bytes(buffer)

    def on_update(self) -> None:
        self.gap = self._next_gap()


class DatagramCorrupt(DatagramToxic, CorruptToxic, datagrams_of=CorruptToxic):
    """``corrupt`` on a datagram proxy: the same per-byte bit flips, datagram by datagram.

    A datagram is corrupted whole and passed on at once, never split (it is at most
    64 KiB, so its flips are bounded). The gap to the next corrupted byte carries
    over from one datagram to the next, so ``probability`` is exactly per byte. A
    datagram with at least one flipped bit is counted as ``corrupted``.
    ``body_only`` needs a stream's framing and is refused on a datagram proxy.
    """

    __slots__ = ()

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.scanner = None  # whole datagrams: no framing

    def on_data(self, data: bytes) -> None:
        corrupted = self._corrupt(data)
        if corrupted is not data:
            self.count("corrupted")
        self.emit(corrupted)
