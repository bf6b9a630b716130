"""``http1``: HTTP/1.1 requests (upstream) and responses (downstream), as RFC 9112 frames them.

A message is one request or one response. Its parts:

- ``head``: the request or status line and the header fields, up to and
  including the empty line (its size is not known ahead);
- ``body``: the content -- a Content-Length body (``part_size`` = the length), the
  data of each chunk (``part_size`` = the chunk's size), or a response body read
  until the server closes (``part_size`` None; the message ends at EOF);
- ``meta``: the chunk-size lines, the CRLF after each chunk's data, the last
  chunk and the trailer fields.

Which body a message has: a request has a chunked body, a Content-Length body or
none. A response to HEAD, a 1xx, 204 or 304 response has none; a 2xx answer to
CONNECT and a 101 make the connection a tunnel (the rest is not HTTP: both
directions pass it unframed); otherwise chunked, Content-Length, or read to EOF.
Interim responses (100 Continue, 102, 103) end with ``last == INTERIM``: the
final response still follows, so ``Expect: 100-continue`` is framed as it happens.
Keep-alive and pipelining need nothing more: messages follow each other.

The response framer must know the request methods in order (HEAD, CONNECT):
both directions of a connection share one :class:`Exchange`. Requests that an
``inject_reply`` toxic keeps from the server are marked there, so the framer of
what the server sends pairs each response with the request it answers.

Bounded state: a 256-byte line prefix, a few integers, and the exchange's
request methods (one byte each, the last 1024). A head longer than ``max_head``,
a line that cannot be parsed, or a bad chunk size desynchronizes the stream.
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
    ending,
    printable,
)

KEEP = 256  # bytes of a line kept: the start line's method/target, a header's name and value
DEFAULT_MAX_HEAD = 1 << 16
EXCHANGE_WINDOW = 1024
OTHER, HEAD_METHOD, CONNECT = 0, 1, 2
SKIPPED = 4  # the server never gets this request (inject_reply with forward: false)

# phases
START, HEADERS, BODY_LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS, BODY_EOF = range(8)
LINE_PHASES = frozenset({START, HEADERS, CHUNK_SIZE, TRAILERS})
TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class Exchange:
    """What both directions of one connection share: the requests' methods, in order."""

    __slots__ = ("base", "codes", "tunnel")

    def __init__(self) -> None:
        self.codes = bytearray()
        self.base = 0  # the request index of codes[0]
        self.tunnel = False  # a 101 or an accepted CONNECT: no more HTTP on this connection

    def add(self, code: int) -> int:
        if len(self.codes) >= EXCHANGE_WINDOW:
            drop = EXCHANGE_WINDOW // 2
            del self.codes[:drop]
            self.base += drop
        self.codes.append(code)
        return self.base + len(self.codes) - 1

    def code(self, index: int) -> int:
        at = index - self.base
        return self.codes[at] if 0 <= at < len(self.codes) else OTHER

    def skip(self, index: int) -> None:
        at = index - self.base
        if 0 <= at < len(self.codes):
            self.codes[at] |= SKIPPED


class Http1Framer(LineReader):
    protocol: ClassVar[str] = "http1"
    summarises: ClassVar[bool] = True
    keep: ClassVar[int] = KEEP

    __slots__ = (
        "chunked",
        "exchange",
        "head_size",
        "interim",
        "length",
        "max_head",
        "phase",
        "primary",
        "remaining",
        "request",
        "requests",
        "start_line",
        "status",
        "then_tunnel",
    )

    def __init__(
        self,
        requests: bool,
        exchange: Exchange,
        *,
        primary: bool = True,
        max_head: int = DEFAULT_MAX_HEAD,
    ) -> None:
        super().__init__()
        self.requests = requests
        self.exchange = exchange
        # The connection's own framers (primary) record the request methods, and pair
        # each response with a request the server got. A toxic's framers only read the
        # methods, and pair responses with every request: they see the replies as the
        # client gets them, injected ones included.
        self.primary = primary
        self.max_head = max_head
        self.request = 0  # responses: the index of the next request to answer
        self.phase = START
        self.head_size = 0
        self._reset_message()

    def _reset_message(self) -> None:
        self.start_line = b""
        self.status = 0
        self.length: int | None = None
        self.chunked = False
        self.remaining = 0
        self.interim = False
        self.then_tunnel = False
        self.head_size = 0

    # -- scanning -----------------------------------------------------------------------------

    def _step(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        phase = self.phase
        if phase == START and self.offset == 0 and self.line_len == 0:
            fast = self._whole_head(data, pos, stop, parts)
            if fast:
                return fast
        if phase in LINE_PHASES:
            return self._line(data, pos, stop, parts)
        if phase == CHUNK_END:
            return self._chunk_end(data, pos, stop, parts)
        return self._body(pos, stop, parts)

    def eof(self) -> int | None:
        if self.error is None and self.phase == BODY_EOF:
            ended = self.message
            self._end(None, FINAL)
            return ended
        return None

    def _whole_head(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        """A head that lies whole in this chunk, parsed in one go; 0 to take the line path.

        The same checks as line by line, in the same order, so the split changes nothing.
        """
        end = data.find(b"\r\n\r\n", pos, stop)
        if end < 0 or end + 4 - pos > self.max_head or self.exchange.tunnel:
            return 0
        head = bytes(data[pos : end + 4])
        lines = head[:-4].split(b"\r\n")
        if not lines[0] or b"\n" in head.replace(b"\r\n", b""):
            return 0  # leading empty lines or bare LFs: the line path handles them
        size = end + 4 - pos
        self._emit(parts, HEAD, pos, end + 4, 0, None)
        self.head_size = size
        self._start_line(lines[0])
        for line in lines[1:]:
            if self.error is not None:
                break
            self._header(line, len(line) + 2 > KEEP)
        if self.error is None:
            self.phase = HEADERS
            self._head_done(parts)
        if self.coarse and self.phase == BODY_LENGTH and self.remaining <= stop - end - 4:
            return self._merge_body(parts, end + 4)
        return end + 4

    def _merge_body(self, parts: list[Part], body: int) -> int:
        """Coarse: a Content-Length body whole in the chunk joins the head's part."""
        stop = body + self.remaining
        head = parts.pop()
        self.offset += self.remaining
        parts.append(ending(head, NOT_LAST, stop))
        self.remaining = 0
        self._end(parts, FINAL)
        return stop

    def _line(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        if self.phase == START and self.offset == 0 and self.exchange.tunnel:
            return self.desync("tunnel: the connection switched protocols", parts, pos, stop)
        in_head = self.phase in (START, HEADERS)
        at = self.offset if in_head else self.line_len
        end, ended = self.read_line(data, pos, stop)
        if in_head:
            self.head_size += end - pos
            if self.head_size > self.max_head:
                return self.desync(f"head longer than max_head ({self.max_head})", parts, pos, stop)
        self._emit(parts, HEAD if in_head else META, pos, end, at, None)
        if ended:
            line, total = self.take_line()
            self._line_done(line.rstrip(b"\r\n"), total > KEEP, parts)
        return end

    def _line_done(self, line: bytes, long_line: bool, parts: list[Part]) -> None:
        phase = self.phase
        if phase == START:
            if line:  # empty lines before a start line are tolerated (RFC 9112 2.2)
                self._start_line(line)
        elif phase == HEADERS:
            if line:
                self._header(line, long_line)
            else:
                self._head_done(parts)
        elif phase == CHUNK_SIZE:
            self._chunk_size(line, long_line, parts)
        elif not line:  # TRAILERS: the empty line ends the message
            self._end(parts, FINAL)

    def _start_line(self, line: bytes) -> None:
        self.start_line = line
        self.phase = HEADERS
        if self.requests:
            method, _, rest = line.partition(b" ")
            target, _, version = rest.rpartition(b" ")
            if (
                not method
                or method.translate(None, TOKEN_BYTES)
                or not target
                or not version.startswith(b"HTTP/1.")
            ):
                self.error = f"not an HTTP/1 request line: {printable(line)!r}"
                return
            code = HEAD_METHOD if method == b"HEAD" else CONNECT if method == b"CONNECT" else OTHER
            if self.primary:
                self.exchange.add(code)
            return
        version, _, rest = line.partition(b" ")
        status = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(status) != 3 or not status.isdigit():
            self.error = f"not an HTTP/1 status line: {printable(line)!r}"
            return
        self.status = int(status)

    def _header(self, line: bytes, long_line: bool) -> None:
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, TOKEN_BYTES):
            if line[:1] in b" \t":  # obsolete line folding: a continuation, not a field
                return
            self.error = f"not an HTTP header field: {printable(line)!r}"
            return
        name = name.lower()
        if name not in (b"content-length", b"transfer-encoding"):
            return
        if long_line:
            self.error = f"{name.decode()} header longer than {KEEP} bytes"
        elif name == b"content-length":
            self._content_length(value.strip())
        else:
            codings = [c.strip().lower() for c in value.split(b",")]
            self.chunked = codings[-1] == b"chunked"
            if not self.chunked and self.requests:
                self.error = "request Transfer-Encoding does not end with chunked"

    def _content_length(self, value: bytes) -> None:
        values = {v.strip() for v in value.split(b",")}
        if len(values) != 1 or not value or not next(iter(values)).isdigit():
            self.error = f"bad Content-Length: {printable(value)!r}"
            return
        length = int(next(iter(values)))
        if self.length is not None and self.length != length:
            self.error = "conflicting Content-Length headers"
            return
        self.length = length

    def _head_done(self, parts: list[Part]) -> None:
        if self.requests:
            self._body_from_headers(parts, eof_allowed=False)
            return
        status = self.status
        if 100 <= status < 200 and status != 101:
            self._end(parts, INTERIM)
            return
        code = self._answered_request()
        if status == 101 or (code & CONNECT and 200 <= status < 300):
            self.exchange.tunnel = True
            self._end(parts, FINAL)
        elif code & HEAD_METHOD or status in (204, 304):
            self._end(parts, FINAL)
        else:
            self._body_from_headers(parts, eof_allowed=True)

    def _answered_request(self) -> int:
        exchange = self.exchange
        if self.primary:
            while exchange.code(self.request) & SKIPPED:
                self.request += 1
        code = exchange.code(self.request)
        self.request += 1
        return code

    def _body_from_headers(self, parts: list[Part], *, eof_allowed: bool) -> None:
        if self.chunked:
            self.phase = CHUNK_SIZE
        elif self.length:
            self.phase = BODY_LENGTH
            self.remaining = self.length
        elif self.length == 0 or not eof_allowed:
            self._end(parts, FINAL)
        else:
            self.phase = BODY_EOF

    def _chunk_size(self, line: bytes, long_line: bool, parts: list[Part]) -> None:
        size_text = line.partition(b";")[0].strip()
        try:
            size = int(size_text, 16) if not long_line and size_text.isalnum() else -1
        except ValueError:
            size = -1
        if size < 0:
            self.error = f"bad chunk size line: {printable(line)!r}"
        elif size == 0:
            self.phase = TRAILERS
        else:
            self.phase = CHUNK_DATA
            self.length = self.remaining = size

    def _body(self, pos: int, stop: int, parts: list[Part]) -> int:
        if self.phase == BODY_EOF:
            self._emit(parts, BODY, pos, stop, self.offset - self.head_size, None)
            return stop
        size = self.length
        assert size is not None
        take = min(self.remaining, stop - pos)
        self._emit(parts, BODY, pos, pos + take, size - self.remaining, size)
        self.remaining -= take
        if not self.remaining:
            if self.phase == CHUNK_DATA:
                self.phase = CHUNK_END
                self.remaining = 2
            else:
                self._end(parts, FINAL)
        return pos + take

    def _chunk_end(self, data: Buffer, pos: int, stop: int, parts: list[Part]) -> int:
        end, self.remaining = self.crlf_after("chunk data", data, pos, stop, parts, self.remaining)
        if not self.remaining:
            self.phase = CHUNK_SIZE
        return end

    def _end(self, parts: list[Part] | None, last: int) -> None:
        if parts:
            parts[-1] = ending(parts[-1], last)
        if self.summaries is not None:
            self.summaries.append(self.summary())
        self.message += 1
        self.offset = 0
        self.phase = START
        self._reset_message()

    # -- the log --------------------------------------------------------------------------------

    def summary(self) -> str:
        line = self.start_line
        if self.requests:
            method, _, rest = line.partition(b" ")
            target = rest.rpartition(b" ")[0]
            return printable(method + b" " + target, 80) if method else ""
        return str(self.status) if self.status else ""
