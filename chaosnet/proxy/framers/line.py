"""``line``: messages that end with a delimiter (``\\n`` by default, or any 1- or 2-byte one).

A message is a line's content (``body``, size unknown ahead) followed by the
delimiter (``meta``, which carries ``last``). There is no head. A line longer than
``max_size`` bytes, delimiter included, desynchronizes the stream. A stream that
ends inside a line leaves that message incomplete.

When a chunk ends with the first byte of a 2-byte delimiter, that byte is labeled
``meta`` before the next chunk says whether the delimiter follows; if it does not,
the byte was content labeled ``meta``, which only means ``corrupt body_only``
leaves it alone. Message boundaries are exact whatever the split.
"""

from __future__ import annotations

from typing import ClassVar

from chaosnet.proxy.framers.base import BODY, FINAL, META, NOT_LAST, Buffer, Framer, Part, new_part

DEFAULT_MAX_LINE = 1 << 20


class LineFramer(Framer):
    protocol: ClassVar[str] = "line"
    has_head: ClassVar[bool] = False

    __slots__ = ("delimiter", "matched", "max_size")

    def __init__(self, delimiter: bytes = b"\n", max_size: int = DEFAULT_MAX_LINE) -> None:
        super().__init__()
        if not 1 <= len(delimiter) <= 2:
            raise ValueError("a line delimiter is 1 or 2 bytes")
        self.delimiter = delimiter
        self.max_size = max_size
        self.matched = 0  # delimiter bytes seen at the end of the last chunk

    def _scan(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> None:
        if self.matched and pos < stop:
            pos = self._finish_delimiter(data, pos, parts)
        delimiter = self.delimiter
        width = len(delimiter)
        append = parts.append
        while pos < stop:
            found = data.find(delimiter, pos, stop)
            if found < 0:
                self._tail(data, pos, stop, parts)
                break
            message, offset = self.message, self.offset
            size = offset + found + width - pos
            if size > self.max_size:
                self._too_long(parts, pos, stop)
                break
            if self.coarse:  # the whole line (or its rest) as one part
                kind = BODY if found > pos else META
                append(
                    new_part(Part, (kind, message, pos, found + width, offset, offset, None, FINAL))
                )
                self.message += 1
                self.offset = 0
                pos = found + width
                continue
            if found > pos:
                append(new_part(Part, (BODY, message, pos, found, offset, offset, None, NOT_LAST)))
            body_size = offset + found - pos
            append(
                new_part(Part, (META, message, found, found + width, body_size, 0, width, FINAL))
            )
            self.message += 1
            self.offset = 0
            pos = found + width

    def _finish_delimiter(self, data: Buffer, pos: int, parts: list[Part]) -> int:
        """The last chunk ended with the delimiter's first byte: does its second follow?"""
        self.matched = 0
        if data[pos] != self.delimiter[1]:
            return pos  # it was content (already labeled meta)
        offset = self.offset
        parts.append(new_part(Part, (META, self.message, pos, pos + 1, offset, 1, 2, FINAL)))
        self.message += 1
        self.offset = 0
        return pos + 1

    def _tail(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> None:
        """A line that goes on in the next chunk (maybe with half a delimiter at the end)."""
        offset = self.offset
        if offset + stop - pos > self.max_size:
            self._too_long(parts, pos, stop)
            return
        split = len(self.delimiter) == 2 and data[stop - 1] == self.delimiter[0]
        body_end = stop - 1 if split else stop
        if body_end > pos:
            parts.append(
                new_part(Part, (BODY, self.message, pos, body_end, offset, offset, None, 0))
            )
        if split:
            at = offset + body_end - pos
            parts.append(new_part(Part, (META, self.message, body_end, stop, at, 0, 2, NOT_LAST)))
            self.matched = 1
        self.offset = offset + stop - pos

    def _too_long(self, parts: list[Part], pos: int, stop: int) -> None:
        self.desync(f"line longer than max_size ({self.max_size} bytes)", parts, pos, stop)

    def summary(self) -> str:
        return ""  # the log shows the size for lines
