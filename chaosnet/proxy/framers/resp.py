"""``resp``: Redis's RESP2 and RESP3, requests and replies.

A message is one top-level value, however deeply nested (arrays, maps, sets,
pushes, attributes, streamed aggregates and streamed strings included), or, in
requests, one inline command line. Its parts:

- ``head``: the top-level value's type line -- ``*3\\r\\n``, ``$5\\r\\n`` -- or the
  whole line of a top-level simple value (``+OK\\r\\n``, ``:1\\r\\n``) or inline
  command;
- ``body``: the bytes of every bulk string, verbatim string and bulk error at any
  depth (``part_size`` is its declared length);
- ``meta``: the rest -- nested type lines and the CRLF after each bulk string.

A RESP3 push (``>``) ends with ``last == INTERIM``: it is not the reply of a
request. An attribute (``|``) belongs to the value that follows it. A type byte
RESP does not define (outside an inline command), a bad length, nesting deeper
than 64, or a type line longer than 64 bytes where a length is expected
desynchronizes the stream. State: the open aggregates' counts and a 64-byte line
prefix.
"""

from __future__ import annotations

from typing import ClassVar

from chaosnet.proxy.framers.base import (
    BODY,
    FINAL,
    HEAD,
    INTERIM,
    META,
    NOT_LAST,
    Buffer,
    LineReader,
    Part,
    PartKind,
    ending,
    new_part,
    printable,
)

KEEP = 64  # bytes of a type line kept: enough for any length, the summary's start
MAX_DEPTH = 64
STREAMED = -3  # an aggregate or string of unknown size ("?"), ended by "." or ";0"
SIMPLE = frozenset(b"+-:_,#(")
BULK = frozenset(b"$!=")
AGGREGATE = {ord("*"): 1, ord("~"): 1, ord(">"): 1, ord("%"): 2}
ATTRIBUTE = ord("|")
STREAM_CHUNK = ord(";")
STREAM_END = ord(".")
NAMES = {
    "$": "bulk",
    "*": "array",
    ":": "integer",
    "_": "null",
    ",": "double",
    "#": "boolean",
    "(": "big number",
    "!": "bulk error",
    "=": "verbatim",
    "%": "map",
    "~": "set",
    ">": "push",
    "|": "attribute",
}

# phases
LINE, BULK_DATA, BULK_END, INLINE = range(4)


class RespFramer(LineReader):
    protocol: ClassVar[str] = "resp"
    summarises: ClassVar[bool] = True
    keep: ClassVar[int] = KEEP

    __slots__ = (
        "bulk_size",
        "crlf_left",
        "first",
        "line_kind",
        "name",
        "phase",
        "push",
        "remaining",
        "requests",
        "stack",
        "streaming",
        "take_name",
    )

    def __init__(self, requests: bool) -> None:
        super().__init__()
        self.requests = requests  # upstream: inline commands allowed, summary = command name
        self.stack: list[int] = []
        self.phase = LINE
        self.line_kind: PartKind = HEAD
        self.remaining = 0  # bulk bytes left
        self.bulk_size = 0
        self.crlf_left = 0
        self.streaming = False  # inside a streamed string ($?): ;N chunks until ;0
        self.first = b""  # the top-level type line (its first KEEP bytes), for the summary
        self.name = b""  # the first bulk string of a request: the command name
        self.take_name = False
        self.push = False

    # -- scanning ---------------------------------------------------------------------------

    def _step(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        phase = self.phase
        if phase == LINE and not self.stack and self.line_len == 0 and self.offset == 0:
            fast = self._whole_value(data, pos, stop, parts)
            if fast:
                return fast
        if phase in (LINE, INLINE):
            return self._line(data, pos, stop, parts)
        if phase == BULK_DATA:
            return self._bulk(data, pos, stop, parts)
        return self._bulk_end(data, pos, stop, parts)

    def _whole_value(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        """A simple value, a bulk string or an array of those, whole in this chunk: one go.

        Anything else (nulls, nesting, streaming, a value the chunk cuts) returns 0 and
        the line path handles it, with the same result.
        """
        kind = data[pos]
        newline = data.find(b"\r\n", pos, stop)
        if newline < 0 or newline + 2 - pos > KEEP or kind not in _FAST:
            return 0
        pieces: list[Piece] = [(HEAD, pos, newline + 2, None)]
        if kind in SIMPLE:
            end = newline + 2
        elif kind == DOLLAR:
            end = _bulk_at(data, newline, stop, pieces)
        else:
            end = _array_at(data, newline, stop, pieces)
        if not end:
            return 0
        self.first = bytes(data[pos : newline + 2])
        if self.requests and kind == STAR and len(pieces) > 2 and pieces[2][0] == BODY:
            _, start, stop_name, _ = pieces[2]
            self.name = bytes(data[start : min(stop_name, start + KEEP)])
        self._commit(pieces, parts)
        return end

    def _commit(self, pieces: list[Piece], parts: list[Part]) -> None:
        """The parts of a value parsed in one go, and the end of its message."""
        message = self.message
        append = parts.append
        base = pieces[0][1]
        if self.coarse:
            append(new_part(Part, (HEAD, message, base, pieces[-1][2], 0, 0, None, FINAL)))
        else:
            for kind, start, end, size in pieces:
                append(new_part(Part, (kind, message, start, end, start - base, 0, size, NOT_LAST)))
            parts[-1] = ending(parts[-1], FINAL)
        if self.summaries is not None:
            self.summaries.append(self.summary())
        self.message = message + 1
        self.offset = 0
        self.first = self.name = b""

    def _line(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        if self.line_len == 0:  # a line starts: the message's head, or a nested type line
            self.line_kind = HEAD if not self.stack and self.offset == 0 else META
            if self.line_kind == HEAD and data[pos] not in _TYPES:
                if not self.requests:
                    reason = f"RESP type byte {chr(data[pos])!r} unknown"
                    return self.desync(reason, parts, pos, stop)
                self.phase = INLINE
        at = self.line_len
        end, ended = self.read_line(data, pos, stop)
        self._emit(parts, self.line_kind, pos, end, at, None)
        if ended:
            self._line_done(parts)
        return end

    def _line_done(self, parts: list[Part]) -> None:
        line, total = self.take_line()
        if self.phase == INLINE:
            self.first = line
            self.phase = LINE
            self._value_done(parts)
            return
        kind = line[0]
        content = line[1:].rstrip(b"\r\n")
        if self.line_kind == HEAD:
            self.first = line
            self.push = kind == ord(">")
        if self.streaming:
            self._stream_chunk(kind, content, total, parts)
        elif kind in SIMPLE:
            self._element_start(parts)
            if self.error is None:
                self._value_done(parts)
        elif kind in BULK:
            self._bulk_header(content, total, parts)
        elif kind in AGGREGATE or kind == ATTRIBUTE:
            self._aggregate(kind, content, total, parts)
        elif kind == STREAM_END and self.stack and self.stack[-1] == STREAMED:
            self.stack.pop()
            self._value_done(parts)
        else:
            self._bad(f"RESP type byte {chr(kind)!r} unexpected here", parts)

    def _length(self, content: bytes, total: int, parts: list[Part]) -> int | None:
        if total > KEEP:
            self._bad("RESP length line too long", parts)
            return None
        if content == b"?":
            return STREAMED
        try:
            value = int(content)
        except ValueError:
            value = -2
        if value < -1 or not content.lstrip(b"-").isdigit():
            self._bad(f"RESP length {printable(content)!r} is not a number", parts)
            return None
        return value

    def _counted_length(self, content: bytes, total: int, parts: list[Part]) -> int | None:
        """A bulk's or an aggregate's length, the value counted in the aggregate it sits in;
        None after an error."""
        length = self._length(content, total, parts)
        if length is None:
            return None
        self._element_start(parts)
        return length if self.error is None else None

    def _bulk_header(self, content: bytes, total: int, parts: list[Part]) -> None:
        length = self._counted_length(content, total, parts)
        if length is None:
            return
        if length == STREAMED:
            self.streaming = True
        elif length == -1:
            self._value_done(parts)
        else:
            self._start_bulk(length)

    def _start_bulk(self, length: int) -> None:
        self.take_name = self.requests and not self.name and len(self.stack) == 1
        self.remaining = self.bulk_size = length
        self.phase = BULK_DATA if length else BULK_END
        self.crlf_left = 2

    def _stream_chunk(self, kind: int, content: bytes, total: int, parts: list[Part]) -> None:
        if kind != STREAM_CHUNK:
            self._bad("RESP streamed string chunk expected", parts)
            return
        length = self._length(content, total, parts)
        if length is None or length < 0:
            if self.error is None:
                self._bad("RESP streamed string chunk length is not a number", parts)
            return
        if length == 0:
            self.streaming = False
            self._value_done(parts)
        else:
            self._start_bulk(length)

    def _aggregate(self, kind: int, content: bytes, total: int, parts: list[Part]) -> None:
        count = self._counted_length(content, total, parts)
        if count is None:
            return
        if count == -1:
            self._value_done(parts)
            return
        if len(self.stack) >= MAX_DEPTH:
            self._bad(f"RESP nesting deeper than {MAX_DEPTH}", parts)
            return
        if count == STREAMED:
            self.stack.append(STREAMED)
            return
        if kind == ATTRIBUTE:
            self.stack.append(2 * count + 1)  # its pairs, then the value it is attached to
        else:
            self.stack.append(AGGREGATE[kind] * count)
            if count == 0:
                self._value_done(parts)

    def _element_start(self, parts: list[Part]) -> None:
        """A value begins: it takes one slot of the aggregate it sits in."""
        stack = self.stack
        if stack and stack[-1] != STREAMED:
            stack[-1] -= 1

    def _value_done(self, parts: list[Part]) -> None:
        """A value ended: close the aggregates it completed; the message ends with the last."""
        stack = self.stack
        while stack and stack[-1] == 0:
            stack.pop()
        if stack:
            return
        last = parts[-1]
        parts[-1] = ending(last, INTERIM if self.push else FINAL)
        if self.summaries is not None:
            self.summaries.append(self.summary())
        self.message += 1
        self.offset = 0
        self.first = self.name = b""
        self.push = False

    def _bulk(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        take = min(self.remaining, stop - pos)
        end = pos + take
        declared = self.bulk_size
        at = declared - self.remaining
        self._emit(parts, BODY, pos, end, at, declared)
        if self.take_name and len(self.name) < KEEP:
            self.name += bytes(data[pos : min(end, pos + KEEP - len(self.name))])
        self.remaining -= take
        if not self.remaining:
            self.phase = BULK_END
            self.take_name = False
        return end

    def _bulk_end(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        left = self.crlf_left
        end, self.crlf_left = self.crlf_after("RESP bulk string", data, pos, stop, parts, left)
        if not self.crlf_left:
            self.phase = LINE
            if not self.streaming:
                self._value_done(parts)
        return end

    def _bad(self, reason: str, parts: list[Part]) -> None:
        self.error = reason  # the line is labeled already; the rest of the stream is unframed

    # -- the log ------------------------------------------------------------------------------

    def summary(self) -> str:
        if self.requests:
            if self.name:
                return printable(self.name, 32).upper()
            words = self.first.split()
            return printable(words[0], 32).upper() if words and self.first[:1] not in b"*" else ""
        first = self.first
        if not first:
            return ""
        kind = chr(first[0])
        if kind == "+":
            return "+" + printable(first[1:].rstrip(b"\r\n"), 32)
        if kind == "-":
            words = first[1:].split()
            return "-" + (printable(words[0], 32) if words else "")
        if first[1:].rstrip(b"\r\n") == b"-1":
            return "null"
        return NAMES.get(kind, kind)


_TYPES = frozenset(SIMPLE | BULK | set(AGGREGATE) | {ATTRIBUTE, STREAM_END, STREAM_CHUNK})
DOLLAR, STAR = ord("$"), ord("*")
_FAST = frozenset(SIMPLE | {DOLLAR, STAR})
MAX_FAST_ELEMENTS = 64
#: A piece found by the one-go path: kind, start, end, declared size.
Piece = tuple[PartKind, int, int, int | None]


def _bulk_at(data: Buffer, newline: int, stop: int, pieces: list[Piece]) -> int:
    """A bulk string whose ``$N`` line (the last piece) ends at ``newline``; 0 if not whole."""
    start = pieces[-1][1]
    length_text = data[start + 1 : newline]
    if not length_text.isdigit():
        return 0
    length = int(length_text)
    body = newline + 2
    end = body + length
    if end + 2 > stop or data[end : end + 2] != b"\r\n":
        return 0
    if length:
        pieces.append((BODY, body, end, length))
    pieces.append((META, end, end + 2, 2))
    return end + 2


def _array_at(data: Buffer, newline: int, stop: int, pieces: list[Piece]) -> int:
    """An array of bulk strings and simple values whose ``*N`` line ends at ``newline``."""
    start = pieces[0][1]
    count_text = data[start + 1 : newline]
    if not count_text.isdigit() or not 0 < int(count_text) <= MAX_FAST_ELEMENTS:
        return 0
    at = newline + 2
    for _ in range(int(count_text)):
        line_end = data.find(b"\r\n", at, stop) if at < stop else -1
        if line_end < 0 or line_end + 2 - at > KEEP:
            return 0
        kind = data[at]
        pieces.append((META, at, line_end + 2, None))
        if kind == DOLLAR:
            at = _bulk_at(data, line_end, stop, pieces)
            if not at:
                return 0
        elif kind in SIMPLE:
            at = line_end + 2
        else:
            return 0
    return at
