"""``length_prefix``: chaosnet's own length-prefixed frames, located by ``chaosnet.framing``.

A message is one frame: the head is its length header (``header_size`` bytes,
``part_size`` = ``header_size``), the body its payload (``part_size`` = the
declared length; a zero-length frame has no body piece). There is no meta.
This is not a second parser: the pieces come from
:class:`chaosnet.framing.FrameScanner`, the parser the client primitives, the
builtin servers and the frame toxics use. A header declaring more than
``max_size`` desynchronizes the stream.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from chaosnet.framing import FrameScanner
from chaosnet.proxy.framers.base import (
    BODY,
    FINAL,
    HEAD,
    NOT_LAST,
    Buffer,
    Framer,
    Part,
    ending,
    new_part,
)


class LengthPrefixFramer(Framer):
    protocol: ClassVar[str] = "length_prefix"

    __slots__ = ("header_size", "scanner")

    def __init__(
        self, header_size: int = 4, byte_order: Literal["big", "little"] = "big", max_size: int = 0
    ) -> None:
        super().__init__()
        limit = max_size or (1 << (8 * header_size)) - 1
        self.header_size = header_size
        self.scanner = FrameScanner(limit, header_size=header_size, byte_order=byte_order)

    def _scan(self, data: Buffer, start: int, stop: int, parts: list[Part]) -> None:
        chunk = data if start == 0 and stop == len(data) else memoryview(data)[start:stop]
        hsize = self.header_size
        append = parts.append
        for kind, frame, s, e, frame_offset, length in self.scanner.scan(chunk):
            done = frame_offset + e - s
            if kind == "header":
                last = FINAL if length == 0 and done == hsize else NOT_LAST
                part = (HEAD, frame, s + start, e + start, frame_offset, frame_offset, hsize, last)
            elif kind == "body":
                assert length is not None
                last = FINAL if done == hsize + length else NOT_LAST
                if (
                    self.coarse
                    and parts
                    and parts[-1].message == frame
                    and parts[-1].end == s + start
                ):
                    parts[-1] = ending(parts[-1], last, e + start)  # header and body
                    continue
                body_at = frame_offset - hsize
                part = (BODY, frame, s + start, e + start, frame_offset, body_at, length, last)
            else:
                error = self.scanner.error
                self.message, self.offset = frame, frame_offset
                self.desync(f"bad frame header: {error}", parts, s + start, stop)
                return
            append(new_part(Part, part))
        self.message = self.scanner.frame
        self.offset = 0 if self.scanner.at_boundary else self._done_in_frame(parts)

    def _done_in_frame(self, parts: list[Part]) -> int:
        if not parts:
            return self.offset
        last = parts[-1]
        return last.offset + last.end - last.start

    def summary(self) -> str:
        return ""  # the log shows the size for length-prefixed messages
