"""Length-prefixed frames: a sans-IO decoder, a stream scanner, sync and asyncio adapters.

Wire format: an unsigned length header (4 bytes, big-endian by default; 1, 2, 4 or 8
bytes, big- or little-endian on request) followed by exactly that many payload bytes.
Zero-length frames are valid.

One parser, several users. :class:`FrameFormat` owns the header (pack, parse, limit
check); everything else is built on it:

- :class:`FrameDecoder` -- sans-IO, for code that wants whole frames::

      decoder = FrameDecoder()
      for payload in decoder.feed(chunk):   # any split of the stream
          ...
      decoder.eof()                         # IncompleteFrame if a frame is cut short

  The length is checked against the limit as soon as the header is complete, before
  any body byte is buffered (:class:`FrameTooLarge`). A decoder that raised it stays
  failed: the stream can no longer be resynchronised. Work is linear however the
  bytes are split: body pieces are collected in a list and joined once.

- :class:`FrameScanner` -- sans-IO and non-buffering, for a proxy that forwards bytes
  and only needs to know where frames lie in them (frame-aware toxics). Each call
  ``scanner.scan(chunk)`` returns a list of :class:`Span` covering every byte of the
  chunk, in order, with offsets *into that chunk*::

      Span(kind="header", frame=0, start=0, end=4, frame_offset=0, length=5)
      Span(kind="body",   frame=0, start=4, end=9, frame_offset=4, length=5)

  ``frame`` is the 0-based frame index since the start of the stream; ``frame_offset``
  is the offset of ``start`` counted from the first byte of that frame's header;
  ``length`` is the frame's declared payload length (``None`` on a header piece that
  ends before the header does). A part split across chunks is reported as several
  pieces; ``scanner.position`` is the absolute stream offset of the next chunk, so
  ``position + start`` is absolute. Empty parts (the body of a zero-length frame) give
  no span. A header declaring more than the limit does not raise: its header span is
  reported, ``scanner.error`` holds the :class:`FrameTooLarge`, and every later byte
  is reported as one ``"unframed"`` span per chunk (the stream is not framed, or no
  longer in sync). Payload bytes are never copied; at most one header is held.

- Sync socket adapters :func:`send_frame` / :func:`recv_frame`. ``send_frame`` makes a
  single ``sendall`` for frames up to 64 KiB and a gathered ``sendmsg`` above that (no
  payload copy, no write-write-read Nagle stall). ``recv_frame`` reads exactly one frame
  (it never reads past it, so it needs no state between calls) and returns ``None``
  on a clean EOF at a frame boundary. A timeout mid-frame leaves the socket in an
  unknown place in the stream: close it.

- Asyncio adapters :func:`read_frame` / :func:`write_frame`. ``write_frame`` queues the
  whole frame with one ``write`` before awaiting ``drain``, so a cancelled writer never
  leaves half a frame queued. ``read_frame`` consumes the header before awaiting the
  body; if it is cancelled (or times out) in between, or the header announces a frame
  over the limit, the reader is no longer at a frame boundary. That reader is then
  recorded as desynchronised (a ``WeakKeyDictionary`` keyed by the ``StreamReader``,
  so nothing is kept alive and no wrapper object is needed), and every later
  ``read_frame`` on it raises :class:`StreamDesynchronized` at once instead of parsing
  payload bytes as a header. :func:`is_desynchronized` tells whether it happened.

Errors: :class:`FrameError` is the base; :class:`FrameTooLarge` (``.length``,
``.limit``) is permanent; :class:`IncompleteFrame` (an ``EOFError``; ``.phase`` is
``"header"`` or ``"body"``, ``.expected`` the size of that part, ``.partial`` the bytes
of it that did arrive) is transient. The ``transient`` class attribute is what
:func:`chaosnet.retry.is_transient` reads.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import struct
import time
import weakref
from collections.abc import Callable
from typing import Literal, NamedTuple

from chaosnet.picklable import Picklable

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEADER_SIZE",
    "HEADER_SIZES",
    "BytesLike",
    "FrameDecoder",
    "FrameError",
    "FrameFormat",
    "FrameScanner",
    "FrameTooLarge",
    "IncompleteFrame",
    "Span",
    "StreamDesynchronized",
    "encode_frame",
    "frame_format",
    "is_desynchronized",
    "read_frame",
    "recv_frame",
    "send_frame",
    "write_frame",
]

HEADER_SIZE = 4
DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
HEADER_SIZES = (1, 2, 4, 8)

ByteOrder = Literal["big", "little"]
BytesLike = bytes | bytearray | memoryview
Phase = Literal["header", "body"]
SpanKind = Literal["header", "body", "unframed"]

_STRUCT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
_ORDER_PREFIX = {"big": ">", "little": "<"}
# Up to this size a frame is copied into one buffer and sent with one call.
_SINGLE_SEND_MAX = 64 * 1024
# recv() allocates its full size argument, so large bodies are read into one buffer.
_RECV_DIRECT_MAX = 256 * 1024


class FrameError(Exception):
    """Base class of every framing error."""


class FrameTooLarge(Picklable, FrameError):
    """A frame's length exceeds the limit (sent or received). Permanent: never retried."""

    transient = False
    _init_fields = ("length", "limit")

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"frame of {length} bytes exceeds the limit of {limit} bytes")
        self.length = length
        self.limit = limit


class IncompleteFrame(Picklable, FrameError, EOFError):
    """The stream ended inside a frame (a truncated frame). Transient: retry on a new stream."""

    transient = True
    _init_fields = ("phase", "expected", "partial")

    def __init__(self, phase: Phase, expected: int, partial: bytes) -> None:
        super().__init__(
            f"stream ended inside a frame {phase}: got {len(partial)} of {expected} bytes"
        )
        self.phase: Phase = phase
        self.expected = expected
        self.partial = partial


class StreamDesynchronized(FrameError):
    """A stream reader is no longer at a frame boundary; the connection must be closed."""

    transient = False


class FrameFormat:
    """The frame header: its size, byte order and the length limit. Shared by all parsers.

    ``limit`` is ``max_frame_size`` capped at what the header can express (255 for a
    1-byte header).
    """

    __slots__ = ("_struct", "byte_order", "header_size", "length_at", "limit", "max_frame_size")

    def __init__(
        self,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        *,
        header_size: int = HEADER_SIZE,
        byte_order: ByteOrder = "big",
    ) -> None:
        if header_size not in HEADER_SIZES:
            raise ValueError(f"header_size must be 1, 2, 4 or 8, got {header_size!r}")
        if byte_order not in _ORDER_PREFIX:
            raise ValueError(f"byte_order must be 'big' or 'little', got {byte_order!r}")
        if isinstance(max_frame_size, bool) or not isinstance(max_frame_size, int):
            raise TypeError(f"max_frame_size must be an int, got {max_frame_size!r}")
        if max_frame_size < 0:
            raise ValueError(f"max_frame_size must be >= 0, got {max_frame_size}")
        self.header_size = header_size
        self.byte_order: ByteOrder = byte_order
        self.max_frame_size = max_frame_size
        self.limit = min(max_frame_size, (1 << (8 * header_size)) - 1)
        self._struct = struct.Struct(_ORDER_PREFIX[byte_order] + _STRUCT_CODES[header_size])
        unpack_from = self._struct.unpack_from

        def length_at(buffer: BytesLike, offset: int = 0) -> int:
            """The length declared by the header at ``offset`` of ``buffer``."""
            length: int = unpack_from(buffer, offset)[0]
            return length

        self.length_at: Callable[[BytesLike, int], int] = length_at

    def __repr__(self) -> str:
        return (
            f"FrameFormat(max_frame_size={self.max_frame_size}, "
            f"header_size={self.header_size}, byte_order={self.byte_order!r})"
        )

    def check(self, length: int) -> None:
        """Raise :class:`FrameTooLarge` if ``length`` is over the limit."""
        if length > self.limit:
            raise FrameTooLarge(length, self.limit)

    def header(self, length: int) -> bytes:
        """The header for a payload of ``length`` bytes (limit-checked)."""
        if length > self.limit:
            raise FrameTooLarge(length, self.limit)
        return self._struct.pack(length)

    def encode(self, payload: BytesLike) -> bytes:
        """Header and payload as one ``bytes``."""
        return self.header(_nbytes(payload)) + payload


@functools.lru_cache(maxsize=64)
def frame_format(
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    header_size: int = HEADER_SIZE,
    byte_order: ByteOrder = "big",
) -> FrameFormat:
    """A shared, cached :class:`FrameFormat` (they are immutable)."""
    return FrameFormat(max_frame_size, header_size=header_size, byte_order=byte_order)


def _nbytes(payload: BytesLike) -> int:
    return payload.nbytes if isinstance(payload, memoryview) else len(payload)


def _outgoing(payload: BytesLike, fmt: FrameFormat) -> list[BytesLike]:
    """What to send for one frame (the limit checked first): one buffer up to
    ``_SINGLE_SEND_MAX`` bytes, else the header and the payload, which is not copied."""
    size = _nbytes(payload)
    header = fmt.header(size)
    if size <= _SINGLE_SEND_MAX:
        return [header + payload]
    return [header, payload]


def encode_frame(
    payload: BytesLike,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    header_size: int = HEADER_SIZE,
    byte_order: ByteOrder = "big",
) -> bytes:
    """Encode one frame; raises :class:`FrameTooLarge` over the limit."""
    return frame_format(max_frame_size, header_size, byte_order).encode(payload)


class FrameDecoder:
    """Sans-IO decoder: feed it bytes as they arrive, get whole payloads back."""

    __slots__ = ("_failed", "_format", "_head", "_length", "_need", "_parts")

    def __init__(
        self,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        *,
        header_size: int = HEADER_SIZE,
        byte_order: ByteOrder = "big",
    ) -> None:
        self._format = FrameFormat(max_frame_size, header_size=header_size, byte_order=byte_order)
        self._head = b""  # an incomplete header (shorter than header_size)
        self._parts: list[bytes] = []  # body pieces of the current frame
        self._length = 0  # declared length of the frame whose body is pending
        self._need = 0  # body bytes still missing; > 0 only inside a body
        self._failed: FrameTooLarge | None = None

    @property
    def format(self) -> FrameFormat:
        return self._format

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame (0 at a frame boundary)."""
        if self._need:
            return self._format.header_size + self._length - self._need
        return len(self._head)

    def feed(self, data: BytesLike) -> list[bytes]:
        """Consume ``data``; return the payloads of every frame it completes, in order."""
        if self._failed is not None:
            raise FrameTooLarge(self._failed.length, self._failed.limit)
        if type(data) is not bytes:
            data = bytes(data)
        frames: list[bytes] = []
        if not data:
            return frames
        pos = 0
        if self._need:
            pos = self._continue_body(data, frames)
        elif self._head:
            pos = self._continue_header(data, frames)
        if pos < 0:
            return frames
        self._scan(data, pos, frames)
        return frames

    def eof(self) -> None:
        """Declare the end of the stream; raise :class:`IncompleteFrame` inside a frame."""
        if self._need:
            raise IncompleteFrame("body", self._length, b"".join(self._parts))
        if self._head:
            raise IncompleteFrame("header", self._format.header_size, self._head)

    def _continue_body(self, data: bytes, frames: list[bytes]) -> int:
        """Add to a pending body; return where the rest of ``data`` starts, -1 if none."""
        need = self._need
        if len(data) < need:
            self._parts.append(data)
            self._need = need - len(data)
            return -1
        parts = self._parts
        parts.append(data if len(data) == need else data[:need])
        frames.append(b"".join(parts))
        self._parts = []
        self._need = 0
        return need

    def _continue_header(self, data: bytes, frames: list[bytes]) -> int:
        """Complete a split header (and its body if present); -1 if ``data`` runs out."""
        fmt = self._format
        missing = fmt.header_size - len(self._head)
        if len(data) < missing:
            self._head += data
            return -1
        length = self._checked(fmt.length_at(self._head + data[:missing], 0))
        self._head = b""
        stop = missing + length
        if stop <= len(data):
            frames.append(data[missing:stop])
            return stop
        self._start_body(data, missing, length)
        return -1

    def _scan(self, data: bytes, pos: int, frames: list[bytes]) -> None:
        """The hot loop: whole frames from ``data[pos:]``, then park the remainder."""
        fmt = self._format
        hsize = fmt.header_size
        limit = fmt.limit
        length_at = fmt.length_at
        append = frames.append
        end = len(data)
        last_header = end - hsize
        while pos <= last_header:
            length = length_at(data, pos)
            if length > limit:
                self._checked(length)
            body = pos + hsize
            stop = body + length
            if stop > end:
                self._start_body(data, body, length)
                return
            append(data[body:stop])
            pos = stop
        if pos < end:
            self._head = data[pos:]

    def _start_body(self, data: bytes, body: int, length: int) -> None:
        if body < len(data):
            self._parts = [data[body:]]
        self._length = length
        self._need = length - (len(data) - body)

    def _checked(self, length: int) -> int:
        if length > self._format.limit:
            self._failed = FrameTooLarge(length, self._format.limit)
            raise FrameTooLarge(length, self._format.limit)
        return length


class Span(NamedTuple):
    """Where one frame part (or a piece of it) lies within a scanned chunk."""

    kind: SpanKind
    frame: int  # 0-based frame index in the stream
    start: int  # offset in the chunk
    end: int  # exclusive offset in the chunk
    frame_offset: int  # offset of ``start`` from the first byte of the frame's header
    length: int | None  # declared payload length; None while the header is incomplete

    @property
    def size(self) -> int:
        return self.end - self.start


_HEADER: SpanKind = "header"
_BODY: SpanKind = "body"
_UNFRAMED: SpanKind = "unframed"


class FrameScanner:
    """Sans-IO, non-buffering frame locator for a byte stream passing through (see module doc)."""

    __slots__ = ("_done", "_format", "_head", "_length", "_phase", "error", "frame", "position")

    def __init__(
        self,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        *,
        header_size: int = HEADER_SIZE,
        byte_order: ByteOrder = "big",
    ) -> None:
        self._format = FrameFormat(max_frame_size, header_size=header_size, byte_order=byte_order)
        self._phase: SpanKind = _HEADER
        self._head = b""  # header bytes of the current frame seen so far (at most one header)
        self._done = 0  # bytes of the current frame already scanned
        self._length: int | None = None
        self.frame = 0  # index of the frame the next byte belongs to
        self.position = 0  # absolute stream offset of the next chunk
        self.error: FrameTooLarge | None = None

    @property
    def format(self) -> FrameFormat:
        return self._format

    @property
    def at_boundary(self) -> bool:
        """True when the bytes scanned so far end exactly at a frame boundary."""
        return self._phase == _HEADER and self._done == 0

    def scan(self, chunk: BytesLike) -> list[Span]:
        """Locate the frame parts in ``chunk``; the spans cover it completely, in order."""
        spans: list[Span] = []
        end = _nbytes(chunk)
        pos = 0
        while pos < end:
            if self._phase == _HEADER and not self._done:
                pos = self._scan_frames(chunk, pos, end, spans)
                if pos >= end:
                    break
            if self._phase == _HEADER:
                pos = self._scan_header(chunk, pos, end, spans)
            elif self._phase == _BODY:
                pos = self._scan_body(pos, end, spans)
            else:
                spans.append(Span(_UNFRAMED, self.frame, pos, end, self._done, self._length))
                self._done += end - pos
                pos = end
        self.position += end
        return spans

    def _scan_frames(self, chunk: BytesLike, pos: int, end: int, spans: list[Span]) -> int:
        """The hot loop: frames whose header starts in this chunk, from a frame boundary.

        Returns where the slow path takes over: a header split by the chunk's end, an
        oversized length, or the chunk's end (a body running on is parked here).
        """
        fmt = self._format
        hsize = fmt.header_size
        limit = fmt.limit
        length_at = fmt.length_at
        append = spans.append
        new = tuple.__new__  # Span(...) without NamedTuple's Python-level __new__
        frame = self.frame
        last_header = end - hsize
        while pos <= last_header:
            length = length_at(chunk, pos)
            if length > limit:
                break
            body = pos + hsize
            stop = body + length
            append(new(Span, (_HEADER, frame, pos, body, 0, length)))
            if stop > end:
                if body < end:
                    append(new(Span, (_BODY, frame, body, end, hsize, length)))
                self.frame = frame
                self._phase = _BODY
                self._done = hsize + end - body
                self._length = length
                return end
            if length:
                append(new(Span, (_BODY, frame, body, stop, hsize, length)))
            frame += 1
            pos = stop
        self.frame = frame
        return pos

    def _scan_header(self, chunk: BytesLike, pos: int, end: int, spans: list[Span]) -> int:
        fmt = self._format
        hsize = fmt.header_size
        done = self._done
        stop = min(end, pos + hsize - done)
        if stop - pos < hsize - done:  # the header goes on in a later chunk
            self._head += bytes(chunk[pos:stop])
            spans.append(Span(_HEADER, self.frame, pos, stop, done, None))
            self._done = done + stop - pos
            return stop
        if done:
            length = fmt.length_at(self._head + bytes(chunk[pos:stop]), 0)
            self._head = b""
        else:
            length = fmt.length_at(chunk, pos)
        spans.append(Span(_HEADER, self.frame, pos, stop, done, length))
        self._length = length
        self._done = hsize
        if length > fmt.limit:
            self.error = FrameTooLarge(length, fmt.limit)
            self._phase = _UNFRAMED
        elif length:
            self._phase = _BODY
        else:
            self._next_frame()
        return stop

    def _scan_body(self, pos: int, end: int, spans: list[Span]) -> int:
        length = self._length
        assert length is not None
        done = self._done
        stop = min(end, pos + self._format.header_size + length - done)
        spans.append(Span(_BODY, self.frame, pos, stop, done, length))
        self._done = done + stop - pos
        if self._done == self._format.header_size + length:
            self._next_frame()
        return stop

    def _next_frame(self) -> None:
        self.frame += 1
        self._phase = _HEADER
        self._done = 0
        self._length = None


# --- sync socket adapters -------------------------------------------------------------


def send_frame(
    sock: socket.socket,
    payload: BytesLike,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    header_size: int = HEADER_SIZE,
    byte_order: ByteOrder = "big",
) -> None:
    """Send one frame; the limit is checked before anything is sent."""
    pieces = _outgoing(payload, frame_format(max_frame_size, header_size, byte_order))
    if len(pieces) == 1:
        sock.sendall(pieces[0])
        return
    header, body = pieces
    sent = sock.sendmsg(pieces)
    if sent < len(header):
        sock.sendall(header[sent:])
        sent = len(header)
    if sent - len(header) < _nbytes(body):
        sock.sendall(memoryview(body)[sent - len(header) :])


def recv_frame(
    sock: socket.socket,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    header_size: int = HEADER_SIZE,
    byte_order: ByteOrder = "big",
    deadline: float | None = None,
) -> bytes | None:
    """Read exactly one frame; ``None`` on a clean EOF at a frame boundary.

    ``deadline`` (a ``time.monotonic()`` value) bounds the whole frame, not each read:
    the socket's timeout is set to what is left before every read.
    """
    fmt = frame_format(max_frame_size, header_size, byte_order)
    header = _recv_exactly(sock, fmt.header_size, deadline)
    if len(header) < fmt.header_size:
        if not header:
            return None
        raise IncompleteFrame("header", fmt.header_size, header)
    length = fmt.length_at(header, 0)
    fmt.check(length)
    body = _recv_exactly(sock, length, deadline)
    if len(body) < length:
        raise IncompleteFrame("body", length, body)
    return body


def _recv_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    """``size`` bytes, or fewer if the peer closed the stream first."""
    if size == 0:
        return b""
    if size <= _RECV_DIRECT_MAX:
        _apply_deadline(sock, deadline)
        first = sock.recv(size)
        if len(first) == size or not first:
            return first
    else:
        first = b""
    buffer = bytearray(size)
    view = memoryview(buffer)
    view[: len(first)] = first
    got = len(first)
    while got < size:
        _apply_deadline(sock, deadline)
        count = sock.recv_into(view[got:], size - got)
        if not count:
            break
        got += count
    view.release()
    return bytes(buffer) if got == size else bytes(buffer[:got])


def _apply_deadline(sock: socket.socket, deadline: float | None) -> None:
    if deadline is None:
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline reached while receiving a frame")
    sock.settimeout(left)


# --- asyncio adapters -----------------------------------------------------------------

_desynchronized: weakref.WeakKeyDictionary[asyncio.StreamReader, str] = weakref.WeakKeyDictionary()


def is_desynchronized(reader: asyncio.StreamReader) -> bool:
    """True once a :func:`read_frame` on ``reader`` stopped between a header and its body."""
    return reader in _desynchronized


async def read_frame(
    reader: asyncio.StreamReader,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    header_size: int = HEADER_SIZE,
    byte_order: ByteOrder = "big",
) -> bytes | None:
    """Read one frame; ``None`` on a clean EOF at a frame boundary."""
    why = _desynchronized.get(reader)
    if why is not None:
        raise StreamDesynchronized(f"stream is not at a frame boundary ({why}); close it")
    fmt = frame_format(max_frame_size, header_size, byte_order)
    try:
        # Cancelling readexactly() consumes nothing, so the stream stays in sync here.
        header = await reader.readexactly(fmt.header_size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise IncompleteFrame("header", fmt.header_size, exc.partial) from None
    length = fmt.length_at(header, 0)
    if length > fmt.limit:
        _desynchronized[reader] = f"a header announced {length} bytes, over the limit"
        raise FrameTooLarge(length, fmt.limit)
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise IncompleteFrame("body", length, exc.partial) from None
    except BaseException as exc:  # cancelled or failed after the header was consumed
        _desynchronized[reader] = f"{type(exc).__name__} while reading a {length}-byte body"
        raise


async def write_frame(
    writer: asyncio.StreamWriter,
    payload: BytesLike,
    *,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    header_size: int = HEADER_SIZE,
    byte_order: ByteOrder = "big",
) -> None:
    """Queue one whole frame, then wait for the transport's buffer to drain."""
    writer.writelines(_outgoing(payload, frame_format(max_frame_size, header_size, byte_order)))
    await writer.drain()
