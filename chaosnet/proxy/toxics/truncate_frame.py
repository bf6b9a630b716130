"""``truncate_frame`` (chaosnet): cut one frame short, then close, reset or hang.

Knows chaosnet's length-prefixed framing (``header_size`` 1, 2, 4 or 8 bytes,
``byte_order``). Frames are counted from 0 per connection and per direction; the
frames before ``frame`` pass byte-exact, and of frame ``frame`` only a prefix
passes:

- ``at: "header"``: the first ``header_size // 2`` header bytes (a receiver gets
  ``IncompleteFrame`` with ``phase == "header"``; needs ``header_size`` >= 2);
- ``at: "body"``: the header and ``length // 2`` payload bytes (``phase ==
  "body"``); a frame with an empty payload is complete after its header, so the
  cut falls right after it;
- ``at: N`` (an integer): the first N bytes of the frame, header included (0
  cuts exactly at the frame boundary; N past the frame's end cuts right after it).

Then ``then``: ``"close"`` (FIN, both ways), ``"reset"`` (RST both ways) or
``"hang"`` (this direction sends no more data and the sockets stay open while
its peers keep them open: a FIN still passes, as through ``timeout``'s black
hole, so a connection both peers have closed is closed by the proxy too and
never held forever; removing the toxic while it hangs closes the connection,
since the stream is broken mid-frame). The other direction is not affected
until the close or reset.
"""

from __future__ import annotations

from collections.abc import Mapping

from chaosnet.framing import Span
from chaosnet.proxy.toxics.base import (
    MAX_BYTES,
    Attr,
    FieldError,
    Pipe,
    Receiver,
    Toxic,
    ToxicSpec,
)
from chaosnet.proxy.toxics.framed import FRAMING_ATTRIBUTES, scanner_for

#: What follows a cut, for every toxic that truncates (truncate_frame, truncate_message).
THEN_AFTER_CUT = Attr(
    "then", "choice", "close", choices=("close", "reset", "hang"), help="what follows the cut"
)


def cut_position(head: str, unit: str) -> Attr:
    """The ``at`` of a truncating toxic: inside the ``head`` part, the body, or N bytes in."""
    return Attr(
        "at",
        "int_or_choice",
        "body",
        maximum=MAX_BYTES,
        choices=(head, "body"),
        unit="bytes",
        help=f'"{head}", "body" or a byte offset into the {unit}',
    )


class Truncating(Toxic):
    """A stage that passes its stream up to a cut, then does ``then`` (:data:`THEN_AFTER_CUT`).

    After the cut every byte is dropped. A hang keeps the connection open (an end
    still passes); removing the toxic while it hangs closes the connection, since
    the stream is broken mid-frame or mid-message.
    """

    __slots__ = ("done", "hanging")

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.done = False  # the cut was made
        self.hanging = False

    def cut_after(self, data: bytes, keep: int) -> None:
        """The cut: pass the first ``keep`` bytes of ``data``, drop the rest, do ``then``."""
        if keep:
            self.emit(data[:keep])
        self.pipe.dropped(len(data) - keep)
        self.done = True
        then = self.attr("then")
        if then == "hang":
            self.hanging = True
        else:
            self.cut("rst" if then == "reset" else "fin")

    def on_remove(self) -> None:
        if self.hanging:
            self.hanging = False
            self.cut("fin")


class TruncateFrameToxic(Truncating):
    type_name = "truncate_frame"
    in_toxiproxy = False
    summary = "truncated frame (header, body or byte offset; then FIN, RST or hang)"
    effect = (
        "frames before `frame` pass byte-exact; frame `frame` is cut inside its header "
        '(`at: "header"`, `header_size // 2` bytes), inside its body (`"body"`: header + '
        "length // 2), or after N bytes (`at: N`); then `close` (FIN), `reset` (RST) or `hang` "
        "(nothing more on this direction, sockets open)"
    )
    attributes = (
        *FRAMING_ATTRIBUTES,
        Attr("frame", "int", 0, maximum=MAX_BYTES, help="0-based index of the frame to cut"),
        cut_position("header", "frame"),
        THEN_AFTER_CUT,
    )
    __slots__ = ("scanner",)

    @classmethod
    def check(cls, values: Mapping[str, object]) -> None:
        if values["at"] == "header" and values["header_size"] == 1:
            raise FieldError('attributes.at: "header" needs header_size >= 2 to cut inside it')

    def __init__(self, spec: ToxicSpec, pipe: Pipe, downstream: Receiver) -> None:
        super().__init__(spec, pipe, downstream)
        self.scanner = scanner_for(self.attr("header_size"), self.attr("byte_order"))

    def on_data(self, data: bytes) -> None:
        if self.done:
            self.drop(data)
            return
        target = self.int_attr("frame")
        for span in self.scanner.scan(data):
            if span.frame != target or span.kind == "unframed":
                continue
            cut = self._cut_offset(span)
            if cut is not None and span.frame_offset <= cut <= span.frame_offset + span.size:
                self.cut_after(data, span.start + cut - span.frame_offset)
                return
        self.emit(data)

    def _cut_offset(self, span: Span) -> int | None:
        """Where frame ``frame`` is cut, counted from its first header byte; None if unknown yet."""
        header_size = self.int_attr("header_size")
        at = self.attr("at")
        if at == "header":
            return header_size // 2
        if isinstance(at, int) and at <= header_size:
            return at
        if span.length is None:
            return None  # the header is not complete yet
        if at == "body":
            return header_size + span.length // 2
        assert isinstance(at, int)
        return min(at, header_size + span.length)
