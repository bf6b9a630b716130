"""The interface every framer implements: fed bytes as they pass, it says where messages lie.

A framer is sans-IO and never holds a message: ``scan(data, start, end)`` labels
the bytes ``data[start:end]`` and returns a list of :class:`Part` covering them
completely, in order, with offsets into ``data``. Each part lies inside one
message and one of its parts:

- ``head``: the message's start as its protocol defines it (HTTP status/request
  line and headers, a RESP type and length line, a length header);
- ``body``: payload bytes (an HTTP body or chunk's data, a RESP bulk string's
  bytes, a frame's payload, a line's content);
- ``meta``: framing bytes inside or after the body (chunk-size lines, trailers,
  CRLFs after bulk strings, a line's delimiter) that a receiver parses, so
  ``corrupt body_only`` leaves them alone;
- ``unframed``: the stream broke its protocol (see below): bytes with no place.

``part_size`` is the declared size of the part a piece belongs to when the
protocol says it ahead (a length header, a Content-Length body, a chunk, a bulk
string), else None; ``part_offset`` is the piece's start within that part, so a
piece with ``part_offset == 0`` starts a new part (a new body element). ``last``
is nonzero on the piece that ends its message: :data:`FINAL` for a message, or
:data:`INTERIM` for one that is not a reply of its own (an HTTP 1xx response, a
RESP3 push message).

A stream that violates its protocol makes the framer *desynchronized*: ``error``
says why, and every later byte is reported as ``unframed``. A framer never
raises on bad input. ``eof()`` tells it the stream ended; it returns the index
of a message that the end completes (an HTTP body read to EOF), else None.

Framers keep only small bounded state (a line prefix, a few counters); the
benchmark checks that a connection's framers stay under 4 KiB.
"""

from __future__ import annotations

from typing import ClassVar, Literal, NamedTuple

PartKind = Literal["head", "body", "meta", "unframed"]
Buffer = bytes | bytearray

NOT_LAST = 0
FINAL = 1
INTERIM = 2

HEAD: PartKind = "head"
BODY: PartKind = "body"
META: PartKind = "meta"
UNFRAMED: PartKind = "unframed"


class Part(NamedTuple):
    """One piece of one part of one message, within a scanned chunk."""

    kind: PartKind
    message: int  # 0-based index of the message in its stream
    start: int  # offset in the scanned buffer
    end: int  # exclusive offset in the scanned buffer
    offset: int  # offset of ``start`` from the message's first byte
    part_offset: int  # offset of ``start`` within its part (head, body element, ...)
    part_size: int | None  # declared size of that part, when known ahead
    last: int  # NOT_LAST, FINAL or INTERIM: this piece ends the message


new_part = tuple.__new__  # Part(...) without NamedTuple's Python-level __new__


class Framer:
    """Base class: the desynchronization bookkeeping every framer shares."""

    protocol: ClassVar[str] = ""
    #: Whether ``at: "head"`` means anything: a line has no head.
    has_head: ClassVar[bool] = True

    #: Whether ``summary()`` says more than the size (HTTP, RESP).
    summarises: ClassVar[bool] = False

    __slots__ = ("coarse", "error", "message", "offset", "summaries")

    def __init__(self) -> None:
        self.error: str | None = None  # why the stream is no longer framed
        self.message = 0  # index of the message the next byte belongs to
        self.offset = 0  # bytes of that message already scanned
        #: When a list, each message's summary is appended as it ends (for the message log).
        self.summaries: list[str] | None = None
        #: Coarse parts: a message's pieces within one scan may come as one part, whose
        #: ``kind`` is then its first piece's. Boundaries, sizes and ``last`` stay exact;
        #: the connection's own counting needs nothing more, and it is faster.
        self.coarse = False

    def scan(self, data: Buffer, start: int = 0, end: int | None = None) -> list[Part]:
        """The parts of ``data[start:end]``, in order; once desynchronized, all unframed."""
        stop = len(data) if end is None else end
        parts: list[Part] = []
        if self.error is not None:
            self.unframed(parts, start, stop)
        else:
            self._scan(data, start, stop, parts)
        return parts

    def _scan(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> None:
        """Append the parts of ``data[pos:stop]`` (the stream is still framed)."""
        raise NotImplementedError

    def _emit(
        self, parts: list[Part], kind: PartKind, s: int, e: int, at: int, size: int | None
    ) -> None:
        """A piece ``data[s:e]`` of the current message, ``at`` bytes into its part."""
        parts.append(new_part(Part, (kind, self.message, s, e, self.offset, at, size, NOT_LAST)))
        self.offset += e - s

    def eof(self) -> int | None:
        return None

    def summary(self) -> str:
        """A short description of the message being scanned (valid once its head is seen)."""
        return ""

    @property
    def at_boundary(self) -> bool:
        return self.offset == 0

    def desync(self, reason: str, parts: list[Part], pos: int, end: int) -> int:
        """Give up framing: the rest of the stream is ``unframed``."""
        self.error = reason
        return self.unframed(parts, pos, end)

    def unframed(self, parts: list[Part], pos: int, end: int) -> int:
        if pos < end:
            parts.append(
                new_part(Part, (UNFRAMED, self.message, pos, end, self.offset, 0, None, 0))
            )
            self.offset += end - pos
        return end


class LineReader(Framer):
    """A framer that reads lines across chunks (HTTP's head and chunk sizes, RESP's type
    lines): it keeps the current line's first ``keep`` bytes and counts its length.

    It scans in steps of a phase machine: ``_step`` scans as far as the current
    phase goes (a whole message at once where it can) and moves to the next phase.
    """

    keep: ClassVar[int] = 256

    __slots__ = ("line", "line_len")

    def __init__(self) -> None:
        super().__init__()
        self.line = bytearray()  # the current line's first ``keep`` bytes
        self.line_len = 0  # its length so far

    def _scan(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> None:
        step = self._step
        while pos < stop:
            if self.error is not None:
                self.unframed(parts, pos, stop)
                return
            pos = step(data, pos, stop, parts)

    def _step(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        """Scan from ``pos`` as far as the current phase goes: where the scan goes on."""
        raise NotImplementedError

    def read_line(self, data: Buffer, pos: int, stop: int) -> tuple[int, bool]:
        """Take the current line's bytes from ``pos``, up to its LF or ``stop``: where they
        end, and whether the line did."""
        newline = data.find(b"\n", pos, stop)
        end = stop if newline < 0 else newline + 1
        if self.line_len < self.keep:
            self.line += data[pos : min(end, pos + self.keep - self.line_len)]
        self.line_len += end - pos
        return end, newline >= 0

    def crlf_after(
        self, what: str, data: Buffer, pos: int, stop: int, parts: list[Part], left: int
    ) -> tuple[int, int]:
        """The CRLF after ``what``'s data, of which ``left`` bytes are still due (it may be
        split across chunks): where the scan goes on, and how many bytes are still due.
        Anything but CRLF desynchronizes the stream."""
        take = min(left, stop - pos)
        done = 2 - left
        if data[pos : pos + take] != b"\r\n"[done : done + take]:
            return self.desync(f"{what} not followed by CRLF", parts, pos, stop), left
        self._emit(parts, META, pos, pos + take, done, 2)
        return pos + take, left - take

    def take_line(self) -> tuple[bytes, int]:
        """The line that ended (its first ``keep`` bytes) and its length; the next is empty."""
        line, total = bytes(self.line), self.line_len
        self.line.clear()
        self.line_len = 0
        return line, total


_PRINTABLE = bytes(b if 32 <= b < 127 else ord("?") for b in range(256))


def printable(raw: bytes, limit: int = 60) -> str:
    """Bytes from the wire as a short, safe summary string."""
    text = raw[:limit].translate(_PRINTABLE).decode("ascii")
    return text + ("..." if len(raw) > limit else "")


def ending(part: Part, last: int, end: int | None = None) -> Part:
    """``part`` as the last piece of its message (and ending at ``end``): no ``_replace``."""
    kind, message, start, old_end, offset, part_offset, part_size, _ = part
    stop = old_end if end is None else end
    return new_part(Part, (kind, message, start, stop, offset, part_offset, part_size, last))
